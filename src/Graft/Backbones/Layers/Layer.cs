using Graft.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Graft.Backbones.Layers;

/// <summary>TensorFlow's two padding rules for convolution and pooling windows.</summary>
internal enum Padding { Valid, Same }

/// <summary>
/// The activations Keras applications use, inside a layer or as a layer of their own: swish (x·σ(x), EfficientNets),
/// sigmoid (their squeeze-excitation gates), hard swish (x·ReLU6(x+3)/6, MobileNetV3) and GELU (exact, with erf:
/// Keras's default, ConvNeXt).
/// </summary>
internal enum Activation { Linear, Relu, Relu6, Softmax, Sigmoid, Swish, HardSwish, Gelu }

/// <summary>
/// One Keras layer: its Keras name (the module name), its Keras class, the arrays Keras stores for it and how
/// they map onto this module, and its forward pass over the tensors of its inbound layers (NCHW). Networks are
/// graphs of these primitives only, so every walker (ONNX export, summary, weight loading, freezing) knows
/// this closed set and never an architecture.
/// </summary>
public abstract class Layer(string name) : nn.Module<Tensor[], Tensor>(name)
{
    public string Name => GetName();

    /// <summary>The Keras class name, as <c>model.summary()</c> prints it.</summary>
    public abstract string KerasClass { get; }

    /// <summary>The arrays Keras stores for this layer, in Keras's order, with their Keras-layout shapes.</summary>
    public virtual IReadOnlyList<(string Name, long[] Shape)> KerasWeights => [];

    /// <summary>Copies arrays given in Keras layout (shapes already checked against <see cref="KerasWeights"/>).</summary>
    public virtual void Load(IReadOnlyList<WeightArray> arrays) { }

    /// <summary>Weights Keras counts that are buffers here, never trained (batch norm's moving statistics).</summary>
    public virtual long StatisticsCount => 0;

    /// <summary>The output's channels (a vector's length) for the inbound layers' channels and height/width.</summary>
    public virtual int OutputChannels(int[] inputs, int size) => inputs[0];

    /// <summary>The output's height or width for an input's (inbound layers agree on it).</summary>
    public virtual int OutputSize(int input) => input;

    /// <summary>Copies a Keras-layout array into a parameter or buffer, reordering axes as <paramref name="order"/> says.</summary>
    protected static void Copy(Tensor target, WeightArray array, params long[] order)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var source = tensor(array.Values, array.Shape.Select(d => (long)d).ToArray(), device: target.device);
        if (order.Length > 0) source = source.permute(order);
        target.copy_(source.reshape(target.shape).contiguous());
    }

    /// <summary>Applies the activation to a layer's own fresh output (in place where autograd allows, else replacing it).</summary>
    private protected static Tensor Activate(Tensor x, Activation activation) => activation switch
    {
        Activation.Relu => x.relu_(),
        Activation.Relu6 => x.clamp_(0, 6),
        Activation.Sigmoid => x.sigmoid_(),
        Activation.Linear => x,
        _ => Replaced(x, Apply(x, activation)),
    };

    /// <summary>The activation of <paramref name="x"/> as a new tensor (the input is left as it is).</summary>
    internal static Tensor Apply(Tensor x, Activation activation) => activation switch
    {
        Activation.Relu => x.relu(),
        Activation.Relu6 => x.clamp(0, 6),
        Activation.Softmax => x.softmax(1),
        Activation.Sigmoid => x.sigmoid(),
        Activation.Swish => nn.functional.silu(x),
        Activation.HardSwish => nn.functional.hardswish(x),
        Activation.Gelu => nn.functional.gelu(x),
        _ => x.alias(),
    };

    static Tensor Replaced(Tensor old, Tensor result)
    {
        old.Dispose();
        return result;
    }
}

/// <summary>TensorFlow's window arithmetic; SAME puts the odd extra pixel of padding after (bottom/right).</summary>
internal static class Windows
{
    public static (int Before, int After) SamePadding(int size, int kernel, int stride)
    {
        int outSize = (size + stride - 1) / stride;
        int total = Math.Max((outSize - 1) * stride + kernel - size, 0);
        return (total / 2, total - total / 2);
    }

    public static int OutputSize(int size, int kernel, int stride, Padding padding) =>
        padding == Padding.Same ? (size + stride - 1) / stride : (size - kernel) / stride + 1;

    /// <summary>[left, right, top, bottom] for <c>nn.functional.pad</c> on a [N,C,H,W] map, or null when none is needed.</summary>
    public static long[]? TorchPads(Tensor x, (int H, int W) kernel, (int H, int W) stride, Padding padding)
    {
        if (padding == Padding.Valid) return null;
        var (top, bottom) = SamePadding((int)x.shape[2], kernel.H, stride.H);
        var (left, right) = SamePadding((int)x.shape[3], kernel.W, stride.W);
        return top + bottom + left + right == 0 ? null : [left, right, top, bottom];
    }
}
