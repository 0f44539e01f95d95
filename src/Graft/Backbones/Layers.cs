using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Graft.Backbones;

public enum Act { None, Relu, Relu6 }

/// <summary>
/// Convolution + optional batch norm + activation, padded like TensorFlow's SAME: when the padding
/// is uneven the extra pixel goes after (bottom/right). Pretrained weights from TFLite and Keras
/// were trained with that padding; symmetric padding silently costs accuracy.
/// </summary>
public sealed class ConvUnit : nn.Module<Tensor, Tensor>
{
    public readonly Conv2d conv;
    public readonly BatchNorm2d? bn;
    readonly Act _act;
    readonly int _kernel, _stride;

    public ConvUnit(string name, int inChannels, int outChannels, int kernel, int stride = 1, bool depthwise = false,
        Act act = Act.Relu6, bool batchNorm = false) : base(name)
    {
        _kernel = kernel; _stride = stride; _act = act;
        conv = nn.Conv2d(inChannels, outChannels, kernel, stride: stride, padding: 0L,
            groups: depthwise ? inChannels : 1, bias: !batchNorm);
        if (batchNorm) bn = nn.BatchNorm2d(outChannels, eps: 1e-3, momentum: 0.01);
        RegisterComponents();
    }

    public bool Depthwise => conv.groups > 1;
    public int Stride => _stride;
    public int Kernel => _kernel;
    public Act Activation => _act;

    public override Tensor forward(Tensor x)
    {
        var (top, bottom) = SamePadding(x.shape[2]);
        var (left, right) = SamePadding(x.shape[3]);
        using var padded = top + bottom + left + right == 0 ? null : nn.functional.pad(x, [left, right, top, bottom]);
        var y = conv.forward(padded ?? x);
        if (bn is not null) y = bn.forward(y);
        return _act switch
        {
            Act.Relu6 => y.clamp_(0, 6),
            Act.Relu => y.relu_(),
            _ => y,
        };
    }

    (long Before, long After) SamePadding(long size)
    {
        long outSize = (size + _stride - 1) / _stride;
        long total = Math.Max((outSize - 1) * _stride + _kernel - size, 0);
        return (total / 2, total - total / 2);
    }

    /// <summary>Copies weights given in PyTorch layout (OIHW; for depthwise C x 1 x H x W) into fresh NCHW-contiguous storage.</summary>
    public void SetWeights(float[] weightOihw, float[]? bias)
    {
        using var _ = no_grad();
        conv.weight!.copy_(tensor(weightOihw, conv.weight.shape));
        if (bias is not null)
        {
            if (conv.bias is null) throw new InvalidOperationException($"{GetName()} has no bias to load.");
            conv.bias.copy_(tensor(bias));
        }
    }
}

/// <summary>Global average pooling to a vector per image: [N, C, H, W] → [N, C].</summary>
public sealed class GlobalAveragePool() : nn.Module<Tensor, Tensor>("global_average_pooling")
{
    public override Tensor forward(Tensor x) => x.mean([2, 3]);
}
