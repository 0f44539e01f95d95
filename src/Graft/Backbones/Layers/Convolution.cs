using Graft.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Graft.Backbones.Layers;

/// <summary>
/// What Keras's Conv2D, DepthwiseConv2D and SeparableConv2D share: a window, a stride, TensorFlow padding and an
/// activation. SAME padding is applied explicitly (TensorFlow pads the extra pixel after), except where it is
/// symmetric whatever the input size (stride 1, odd kernel), which the convolution does itself.
/// </summary>
internal abstract class ConvolutionLayer : Layer
{
    public (int H, int W) Kernel { get; }
    public (int H, int W) Stride { get; }
    public Padding Padding { get; }
    public Activation Activation { get; }

    protected ConvolutionLayer(string name, (int H, int W) kernel, (int H, int W) stride, Padding padding, Activation activation) : base(name)
    {
        Kernel = kernel; Stride = stride; Padding = padding; Activation = activation;
    }

    /// <summary>Symmetric padding the convolution applies itself (stride 1, odd kernel, SAME).</summary>
    protected long[] OwnPadding => SymmetricSame ? [(Kernel.H - 1) / 2, (Kernel.W - 1) / 2] : [0, 0];

    bool SymmetricSame => Padding == Padding.Same && Stride == (1, 1) && Kernel.H % 2 == 1 && Kernel.W % 2 == 1;

    /// <summary>The input padded for SAME where the convolution does not pad itself (null: use the input as it is).</summary>
    protected Tensor? Padded(Tensor x)
    {
        if (SymmetricSame) return null;
        var pads = Windows.TorchPads(x, Kernel, Stride, Padding);
        return pads is null ? null : nn.functional.pad(x, pads);
    }

    public override int OutputSize(int input) => Windows.OutputSize(input, Kernel.H, Stride.H, Padding);

    /// <summary>
    /// A kernel initialised as libtorch initialises convolutions (what training from scratch starts from; loaded
    /// weights replace it).
    /// </summary>
    protected static Parameter NewKernel(params long[] shape)
    {
        var kernel = new Parameter(empty(shape));
        nn.init.kaiming_uniform_(kernel, Math.Sqrt(5));
        return kernel;
    }

    /// <summary>A bias drawn from ±1/√fan-in, libtorch's default, after its kernel (the same draws as torch's own layers).</summary>
    protected static Parameter NewBias(long size, Parameter kernel)
    {
        double bound = 1 / Math.Sqrt(kernel.shape[1] * kernel.shape[2] * kernel.shape[3]);
        return new Parameter(empty(size).uniform_(-bound, bound));
    }
}

/// <summary>
/// Keras Conv2D: kernel H x W x In/groups x Out (OIHW here), optional bias, optional activation. Grouped
/// convolutions (ConvNeXt's depthwise Conv2D with groups = channels) split the input channels into groups.
/// </summary>
internal sealed class Conv2D : ConvolutionLayer
{
    public readonly Parameter weight;
    public readonly Parameter? bias;

    public Conv2D(string name, int inChannels, int filters, (int H, int W) kernel, (int H, int W) stride, Padding padding, bool useBias,
        Activation activation, int groups = 1) : base(name, kernel, stride, padding, activation)
    {
        Groups = groups;
        weight = NewKernel(filters, inChannels / groups, kernel.H, kernel.W);
        if (useBias) bias = NewBias(filters, weight);
        RegisterComponents();
    }

    public int Groups { get; }
    public int Filters => (int)weight.shape[0];
    public override string KerasClass => "Conv2D";
    public override IReadOnlyList<(string, long[])> KerasWeights =>
        bias is null ? [("kernel", KernelShape)] : [("kernel", KernelShape), ("bias", [Filters])];
    long[] KernelShape => [Kernel.H, Kernel.W, weight.shape[1], Filters];
    public override int OutputChannels(int[] inputs, int size) => Filters;

    public override void Load(IReadOnlyList<WeightArray> arrays)
    {
        Copy(weight, arrays[0], 3, 2, 0, 1); // HWIO → OIHW
        if (bias is not null) Copy(bias, arrays[1]);
    }

    public override Tensor forward(Tensor[] inputs)
    {
        int inTail = Tail(weight.shape[1]), outTail = inputs[0].requires_grad ? Tail(Filters) : 0;
        if (inTail + outTail > 0) return WidenedForward(inputs[0], inTail, outTail);
        using var padded = Padded(inputs[0]);
        var y = nn.functional.conv2d(padded ?? inputs[0], weight, bias, [Stride.H, Stride.W], OwnPadding, groups: Groups);
        return Activate(y, Activation);
    }

    /// <summary>
    /// The zero channels to add to <paramref name="channels"/> before libtorch convolves: its float32 convolution
    /// (oneDNN's AVX-512 kernels) computes wrong sums on some CPUs, this project's among them, when a window larger
    /// than 1x1 reads more than 16 channels that are not a multiple of 16 (EfficientNetV2's fused blocks read 24, 40
    /// or 56), and so wrong input gradients when it writes such a number of channels. Zero channels leave every sum
    /// as it is; 1x1 and grouped convolutions are not affected.
    /// </summary>
    int Tail(long channels) => Groups == 1 && Kernel != (1, 1) && channels > 16 && channels % 16 != 0 ? 16 - (int)(channels % 16) : 0;

    /// <summary>The convolution on the input and kernel widened with zero channels (input and output), its output cut back.</summary>
    Tensor WidenedForward(Tensor x, int inTail, int outTail)
    {
        using var scope = NewDisposeScope();
        var widened = inTail > 0 ? nn.functional.pad(x, [0, 0, 0, 0, 0, inTail]) : x;
        var kernel = nn.functional.pad(weight, [0, 0, 0, 0, 0, inTail, 0, outTail]);
        var offsets = bias is null ? null : outTail > 0 ? nn.functional.pad(bias, [0, outTail]) : bias;
        var padded = Padded(widened) ?? widened;
        var y = nn.functional.conv2d(padded, kernel, offsets, [Stride.H, Stride.W], OwnPadding);
        if (outTail > 0) y = y.narrow(1, 0, Filters).contiguous();
        return Activate(y, Activation).MoveToOuterDisposeScope();
    }
}

/// <summary>Keras DepthwiseConv2D (depth multiplier 1): kernel H x W x C x 1 (C x 1 x H x W here).</summary>
internal sealed class DepthwiseConv2D : ConvolutionLayer
{
    public readonly Parameter weight;
    public readonly Parameter? bias;

    public DepthwiseConv2D(string name, int channels, (int H, int W) kernel, (int H, int W) stride, Padding padding, bool useBias,
        Activation activation) : base(name, kernel, stride, padding, activation)
    {
        weight = NewKernel(channels, 1, kernel.H, kernel.W);
        if (useBias) bias = NewBias(channels, weight);
        RegisterComponents();
    }

    public int Channels => (int)weight.shape[0];
    public override string KerasClass => "DepthwiseConv2D";
    public override IReadOnlyList<(string, long[])> KerasWeights => bias is null
        ? [("depthwise_kernel", [Kernel.H, Kernel.W, Channels, 1])]
        : [("depthwise_kernel", [Kernel.H, Kernel.W, Channels, 1]), ("bias", [Channels])];

    public override void Load(IReadOnlyList<WeightArray> arrays)
    {
        Copy(weight, arrays[0], 2, 3, 0, 1); // H W C 1 → C 1 H W
        if (bias is not null) Copy(bias, arrays[1]);
    }

    public override Tensor forward(Tensor[] inputs)
    {
        using var padded = Padded(inputs[0]);
        var y = nn.functional.conv2d(padded ?? inputs[0], weight, bias, [Stride.H, Stride.W], OwnPadding, groups: Channels);
        return Activate(y, Activation);
    }
}

/// <summary>Keras SeparableConv2D: a depthwise window (H x W x In x 1) then a pointwise 1x1 (1 x 1 x In x Out), one bias.</summary>
internal sealed class SeparableConv2D : ConvolutionLayer
{
    public readonly Parameter depthwise, pointwise;
    public readonly Parameter? bias;

    public SeparableConv2D(string name, int inChannels, int filters, (int H, int W) kernel, (int H, int W) stride, Padding padding,
        bool useBias, Activation activation) : base(name, kernel, stride, padding, activation)
    {
        depthwise = NewKernel(inChannels, 1, kernel.H, kernel.W);
        pointwise = NewKernel(filters, inChannels, 1, 1);
        if (useBias) bias = NewBias(filters, pointwise);
        RegisterComponents();
    }

    public int InChannels => (int)depthwise.shape[0];
    public int Filters => (int)pointwise.shape[0];
    public override string KerasClass => "SeparableConv2D";
    public override IReadOnlyList<(string, long[])> KerasWeights
    {
        get
        {
            List<(string, long[])> arrays = [("depthwise_kernel", [Kernel.H, Kernel.W, InChannels, 1]), ("pointwise_kernel", [1, 1, InChannels, Filters])];
            if (bias is not null) arrays.Add(("bias", [Filters]));
            return arrays;
        }
    }
    public override int OutputChannels(int[] inputs, int size) => Filters;

    public override void Load(IReadOnlyList<WeightArray> arrays)
    {
        Copy(depthwise, arrays[0], 2, 3, 0, 1);
        Copy(pointwise, arrays[1], 3, 2, 0, 1);
        if (bias is not null) Copy(bias, arrays[2]);
    }

    public override Tensor forward(Tensor[] inputs)
    {
        using var padded = Padded(inputs[0]);
        using var spatial = nn.functional.conv2d(padded ?? inputs[0], depthwise, null, [Stride.H, Stride.W], OwnPadding, groups: InChannels);
        return Activate(nn.functional.conv2d(spatial, pointwise, bias), Activation);
    }
}
