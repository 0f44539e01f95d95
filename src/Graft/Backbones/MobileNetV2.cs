using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Graft.Backbones;

/// <summary>
/// MobileNetV2 (Sandler et al. 2018) with Keras's layer names: stem <c>Conv1</c>, bottleneck blocks
/// <c>expanded_conv</c> and <c>block_1</c> … <c>block_16</c>, the 1x1 <c>Conv_1</c> to 1280 channels.
/// Weights from TFLite come with batch norm folded into the convolutions (<paramref name="batchNorm"/> false).
/// </summary>
public static class MobileNetV2
{
    // (expansion t, output channels c, repeats n, first stride s), Table 2 of the paper.
    static readonly (int T, int C, int N, int S)[] Settings =
        [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];

    public static int FeatureChannels(double alpha) => alpha > 1.0 ? MakeDivisible(1280 * alpha) : 1280;

    /// <summary>The convolutional trunk: image [N,3,H,W] → feature map [N, FeatureChannels, H/32, W/32].</summary>
    public static Sequential Trunk(double alpha = 1.0, bool batchNorm = false)
    {
        var stages = new List<(string, nn.Module<Tensor, Tensor>)>();
        int channels = MakeDivisible(32 * alpha);
        stages.Add(("Conv1", new ConvUnit("Conv1", 3, channels, 3, stride: 2, batchNorm: batchNorm)));
        int block = 0;
        foreach (var (t, c, n, s) in Settings)
        {
            int outChannels = MakeDivisible(c * alpha);
            for (int i = 0; i < n; i++, block++)
            {
                string name = block == 0 ? "expanded_conv" : $"block_{block}";
                stages.Add((name, new InvertedResidual(name, channels, outChannels, i == 0 ? s : 1, t, batchNorm)));
                channels = outChannels;
            }
        }
        stages.Add(("Conv_1", new ConvUnit("Conv_1", channels, FeatureChannels(alpha), 1, batchNorm: batchNorm)));
        return nn.Sequential(stages);
    }

    /// <summary>Keras's _make_divisible: round to a multiple of 8, never more than 10% down.</summary>
    static int MakeDivisible(double value, int divisor = 8)
    {
        int rounded = Math.Max(divisor, (int)(value + divisor / 2.0) / divisor * divisor);
        return rounded < 0.9 * value ? rounded + divisor : rounded;
    }
}

/// <summary>Expand (1x1, ReLU6) → depthwise 3x3 (ReLU6) → project (1x1, linear), plus the input when shapes allow.</summary>
public sealed class InvertedResidual : nn.Module<Tensor, Tensor>
{
    public readonly ConvUnit? expand;
    public readonly ConvUnit depthwise, project;
    readonly bool _residual;

    public InvertedResidual(string name, int inChannels, int outChannels, int stride, int expansion, bool batchNorm) : base(name)
    {
        int hidden = inChannels * expansion;
        if (expansion != 1) expand = new ConvUnit($"{name}_expand", inChannels, hidden, 1, batchNorm: batchNorm);
        depthwise = new ConvUnit($"{name}_depthwise", hidden, hidden, 3, stride, depthwise: true, batchNorm: batchNorm);
        project = new ConvUnit($"{name}_project", hidden, outChannels, 1, act: Act.None, batchNorm: batchNorm);
        _residual = stride == 1 && inChannels == outChannels;
        RegisterComponents();
    }

    /// <summary>Whether the block adds its input to its output (stride 1 and as many channels out as in).</summary>
    public bool Residual => _residual;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        // call() rather than forward() so hooks (the model summary's shape probes) see the inner layers.
        var h = expand is null ? x : expand.call(x);
        h = project.call(depthwise.call(h));
        if (_residual) h = h.add_(x);
        return h.MoveToOuterDisposeScope();
    }
}
