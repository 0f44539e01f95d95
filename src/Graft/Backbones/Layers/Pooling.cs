using TorchSharp;
using static TorchSharp.torch;

namespace Graft.Backbones.Layers;

/// <summary>
/// Keras MaxPooling2D / AveragePooling2D with TensorFlow's padding: SAME max pooling ignores the padding, SAME
/// average pooling divides by the number of real pixels in each window (not the window size).
/// </summary>
internal sealed class Pooling2D : Layer
{
    public bool Max { get; }
    public (int H, int W) Pool { get; }
    public (int H, int W) Stride { get; }
    public Padding Padding { get; }

    public Pooling2D(string name, bool max, (int H, int W) pool, (int H, int W) stride, Padding padding) : base(name)
    {
        Max = max; Pool = pool; Stride = stride; Padding = padding;
    }

    public override string KerasClass => Max ? "MaxPooling2D" : "AveragePooling2D";
    public override int OutputSize(int input) => Windows.OutputSize(input, Pool.H, Stride.H, Padding);

    public override Tensor forward(Tensor[] inputs)
    {
        var x = inputs[0];
        long[] kernel = [Pool.H, Pool.W], stride = [Stride.H, Stride.W];
        var pads = Windows.TorchPads(x, Pool, Stride, Padding);
        if (pads is null)
            return Max ? nn.functional.max_pool2d(x, kernel, stride) : nn.functional.avg_pool2d(x, kernel, stride);
        using var scope = NewDisposeScope();
        if (Max)
            return nn.functional.max_pool2d(nn.functional.pad(x, pads, value: double.NegativeInfinity), kernel, stride).MoveToOuterDisposeScope();
        // Window sums over window counts of real pixels: both as averages over the same padded window, so the sizes cancel.
        var sums = nn.functional.avg_pool2d(nn.functional.pad(x, pads), kernel, stride);
        var counts = nn.functional.avg_pool2d(nn.functional.pad(ones(1, 1, x.shape[2], x.shape[3], dtype: x.dtype, device: x.device), pads), kernel, stride);
        return sums.div_(counts).MoveToOuterDisposeScope();
    }
}

/// <summary>Keras GlobalAveragePooling2D: [N,C,H,W] → [N,C], or [N,C,1,1] with keepdims (MobileNet's top).</summary>
internal sealed class GlobalAveragePooling2D(string name, bool keepDims = false) : Layer(name)
{
    public bool KeepDims { get; } = keepDims;
    public override string KerasClass => "GlobalAveragePooling2D";
    public override int OutputSize(int input) => KeepDims ? 1 : 0;
    public override Tensor forward(Tensor[] inputs) => inputs[0].mean([2, 3], keepdim: KeepDims);
}

/// <summary>Keras ZeroPadding2D with explicit ((top, bottom), (left, right)).</summary>
internal sealed class ZeroPadding2D(string name, int top, int bottom, int left, int right) : Layer(name)
{
    public (int Top, int Bottom, int Left, int Right) Pads { get; } = (top, bottom, left, right);
    public override string KerasClass => "ZeroPadding2D";
    public override int OutputSize(int input) => input + Pads.Top + Pads.Bottom; // square inputs: top/bottom = left/right in every Keras network
    public override Tensor forward(Tensor[] inputs) => nn.functional.pad(inputs[0], [Pads.Left, Pads.Right, Pads.Top, Pads.Bottom]);
}
