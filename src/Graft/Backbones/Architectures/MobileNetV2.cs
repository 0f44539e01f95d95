using Graft.Backbones.Layers;

namespace Graft.Backbones.Architectures;

/// <summary>
/// MobileNetV2 (Sandler et al. 2018) exactly as keras.applications.mobilenet_v2 builds it: stem <c>Conv1</c>,
/// inverted-residual blocks <c>expanded_conv</c> and <c>block_1</c> … <c>block_16</c> (expand 1x1 → depthwise 3x3 →
/// linear project 1x1, plus the input when shapes allow), and <c>Conv_1</c> to 1280 channels (more for alpha &gt; 1).
/// </summary>
internal static class MobileNetV2
{
    // (expansion t, output channels c, repeats n, first stride s), Table 2 of the paper.
    static readonly (int T, int C, int N, int S)[] Settings =
        [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];

    public static Func<ArchitectureOptions, Graph> WithAlpha(double alpha) => o => Build(alpha, o);

    static Graph Build(double alpha, ArchitectureOptions o)
    {
        var b = new GraphBuilder("mobilenet_v2", o.InputSize, o.FoldedBatchNorm);
        b.Block = "Conv1";
        int x = b.Conv2D("Conv1", b.Input, MakeDivisible(32 * alpha), 3, strides: 2, padding: Padding.Same, useBias: false);
        x = b.BatchNormalization("bn_Conv1", x);
        x = b.ReLU("Conv1_relu", x, six: true);
        int id = 0;
        foreach (var (t, c, n, s) in Settings)
            for (int i = 0; i < n; i++, id++)
                x = InvertedResidual(b, x, t, i == 0 ? s : 1, MakeDivisible((int)(c * alpha)), id);
        b.Block = "Conv_1";
        x = b.Conv2D("Conv_1", x, alpha > 1.0 ? MakeDivisible(1280 * alpha) : 1280, 1, useBias: false);
        x = b.BatchNormalization("Conv_1_bn", x);
        x = b.ReLU("out_relu", x, six: true);
        if (o.IncludeTop) b.PooledClassifier("global_average_pooling2d", x, o.Classes);
        return b.Build();
    }

    static int InvertedResidual(GraphBuilder b, int input, int expansion, int stride, int filters, int id)
    {
        string prefix = id == 0 ? "expanded_conv_" : $"block_{id}_";
        b.Block = id == 0 ? "expanded_conv" : $"block_{id}";
        int inChannels = b.Channels(input), x = input;
        if (id != 0)
        {
            x = b.Conv2D(prefix + "expand", x, expansion * inChannels, 1, padding: Padding.Same, useBias: false);
            x = b.BatchNormalization(prefix + "expand_BN", x);
            x = b.ReLU(prefix + "expand_relu", x, six: true);
        }
        if (stride == 2) x = b.CorrectPad(prefix + "pad", x, 3);
        x = b.DepthwiseConv2D(prefix + "depthwise", x, 3, stride, stride == 1 ? Padding.Same : Padding.Valid, useBias: false);
        x = b.BatchNormalization(prefix + "depthwise_BN", x);
        x = b.ReLU(prefix + "depthwise_relu", x, six: true);
        x = b.Conv2D(prefix + "project", x, filters, 1, padding: Padding.Same, useBias: false);
        x = b.BatchNormalization(prefix + "project_BN", x);
        return inChannels == filters && stride == 1 ? b.Sum(prefix + "add", input, x) : x;
    }

    /// <summary>Keras's _make_divisible: round to a multiple of 8, never more than 10% down.</summary>
    static int MakeDivisible(double value, int divisor = 8)
    {
        int rounded = Math.Max(divisor, (int)(value + divisor / 2.0) / divisor * divisor);
        return rounded < 0.9 * value ? rounded + divisor : rounded;
    }
}
