using Graft.Backbones.Layers;

namespace Graft.Backbones.Architectures;

/// <summary>
/// MobileNetV3 Small and Large (Howard et al. 2019) exactly as keras.applications.mobilenet_v3 builds them by default
/// (alpha 1.0, not minimalistic, preprocessing included): <c>rescaling</c> to [-1, 1], a strided 3x3 stem <c>conv</c>,
/// inverted-residual blocks <c>expanded_conv</c>, <c>expanded_conv_1</c> … (expand 1x1 → depthwise k x k → optional
/// squeeze-excitation with a hard-sigmoid gate → project 1x1), <c>conv_1</c> to six times the last width. ReLU layers
/// and hard-swish activations are unnamed in Keras, so they carry its automatic names (re_lu_N, activation_N); so do
/// the gate's x + 3 and x · 1/6, operator nodes that Keras 3 lists as add_N and multiply_N.
/// </summary>
internal static class MobileNetV3
{
    /// <summary>One block: expansion, output filters, kernel, stride, squeeze-excitation, hard swish (else ReLU).</summary>
    readonly record struct BlockSpec(double Expansion, int Filters, int Kernel, int Stride, bool Se, bool HardSwish);

    static readonly BlockSpec[] Large =
    [
        new(1, 16, 3, 1, false, false), new(4, 24, 3, 2, false, false), new(3, 24, 3, 1, false, false),
        new(3, 40, 5, 2, true, false), new(3, 40, 5, 1, true, false), new(3, 40, 5, 1, true, false),
        new(6, 80, 3, 2, false, true), new(2.5, 80, 3, 1, false, true), new(2.3, 80, 3, 1, false, true), new(2.3, 80, 3, 1, false, true),
        new(6, 112, 3, 1, true, true), new(6, 112, 3, 1, true, true),
        new(6, 160, 5, 2, true, true), new(6, 160, 5, 1, true, true), new(6, 160, 5, 1, true, true),
    ];

    static readonly BlockSpec[] Small =
    [
        new(1, 16, 3, 2, true, false), new(72.0 / 16, 24, 3, 2, false, false), new(88.0 / 24, 24, 3, 1, false, false),
        new(4, 40, 5, 2, true, true), new(6, 40, 5, 1, true, true), new(6, 40, 5, 1, true, true),
        new(3, 48, 5, 1, true, true), new(3, 48, 5, 1, true, true),
        new(6, 96, 5, 2, true, true), new(6, 96, 5, 1, true, true), new(6, 96, 5, 1, true, true),
    ];

    const double SeRatio = 0.25, Dropout = 0.2;

    public static Graph BuildLarge(ArchitectureOptions o) => Build("mobilenet_v3_large", Large, 1280, o);
    public static Graph BuildSmall(ArchitectureOptions o) => Build("mobilenet_v3_small", Small, 1024, o);

    /// <summary>
    /// The automatic name of the activation after <c>conv_1</c>, the last layer without the top: the stem's, two per
    /// hard-swish block, then this one (Large: activation_19, Small: activation_17).
    /// </summary>
    public static string FeatureLayer(bool large) => $"activation_{1 + 2 * (large ? Large : Small).Count(s => s.HardSwish)}";

    static Graph Build(string name, BlockSpec[] blocks, int lastPoint, ArchitectureOptions o)
    {
        var b = new GraphBuilder(name, o.InputSize, o.FoldedBatchNorm);
        b.Block = "conv";
        int x = b.Rescaling("rescaling", b.Input, [1 / 127.5f], [-1f]);
        x = b.Conv2D("conv", x, 16, 3, strides: 2, padding: Padding.Same, useBias: false);
        x = b.BatchNormalization("conv_bn", x);
        x = HardSwish(b, x);
        for (int id = 0; id < blocks.Length; id++) x = InvertedResidual(b, x, blocks[id], id);

        b.Block = "conv_1";
        x = b.Conv2D("conv_1", x, Depth(b.Channels(x) * 6), 1, padding: Padding.Same, useBias: false);
        x = b.BatchNormalization("conv_1_bn", x);
        x = HardSwish(b, x);
        if (o.IncludeTop)
        {
            b.Block = "top";
            x = b.GlobalAveragePooling2D(b.AutoName("global_average_pooling2d"), x, keepDims: true);
            x = b.Conv2D("conv_2", x, lastPoint, 1, padding: Padding.Same);
            x = HardSwish(b, x);
            x = b.Dropout(b.AutoName("dropout"), x, Dropout);
            x = b.Conv2D("logits", x, o.Classes, 1, padding: Padding.Same);
            x = b.Flatten(b.AutoName("flatten"), x);
            b.Activation("predictions", x, Activation.Linear);
        }
        return b.Build();
    }

    static int InvertedResidual(GraphBuilder b, int input, BlockSpec s, int id)
    {
        string prefix = id == 0 ? "expanded_conv_" : $"expanded_conv_{id}_";
        b.Block = id == 0 ? "expanded_conv" : $"expanded_conv_{id}";
        int inChannels = b.Channels(input), expanded = Depth(inChannels * s.Expansion), x = input;
        if (id != 0)
        {
            x = b.Conv2D(prefix + "expand", x, expanded, 1, padding: Padding.Same, useBias: false);
            x = b.BatchNormalization(prefix + "expand_bn", x);
            x = Activate(b, x, s.HardSwish);
        }
        if (s.Stride == 2) x = b.CorrectPad(prefix + "depthwise_pad", x, s.Kernel);
        x = b.DepthwiseConv2D(prefix + "depthwise", x, s.Kernel, s.Stride, s.Stride == 1 ? Padding.Same : Padding.Valid, useBias: false);
        x = b.BatchNormalization(prefix + "depthwise_bn", x);
        x = Activate(b, x, s.HardSwish);
        if (s.Se) x = SqueezeExcite(b, x, Depth(inChannels * s.Expansion), prefix);
        x = b.Conv2D(prefix + "project", x, s.Filters, 1, padding: Padding.Same, useBias: false);
        x = b.BatchNormalization(prefix + "project_bn", x);
        return s.Stride == 1 && inChannels == s.Filters ? b.Sum(prefix + "add", input, x) : x;
    }

    /// <summary>
    /// Keras's _se_block: global average (kept 1x1) → 1x1 conv to a quarter → ReLU → 1x1 conv back → hard sigmoid
    /// (ReLU6(x + 3) · 1/6, three nodes as Keras records them) → the map times the gate.
    /// </summary>
    static int SqueezeExcite(GraphBuilder b, int input, int filters, string prefix)
    {
        int x = b.GlobalAveragePooling2D(prefix + "squeeze_excite_avg_pool", input, keepDims: true);
        x = b.Conv2D(prefix + "squeeze_excite_conv", x, Depth(filters * SeRatio), 1, padding: Padding.Same);
        x = b.ReLU(prefix + "squeeze_excite_relu", x, six: false);
        x = b.Conv2D(prefix + "squeeze_excite_conv_1", x, filters, 1, padding: Padding.Same);
        string relu6 = b.AutoName("re_lu"); // Keras builds ReLU(6.) before evaluating its argument x + 3
        x = b.Add(Rescaling.AddConstant(b.AutoName("add"), 3), x);
        x = b.Add(new ActivationLayer(relu6, Activation.Relu6, "ReLU"), x);
        x = b.Add(Rescaling.MultiplyConstant(b.AutoName("multiply"), 1 / 6f), x);
        return b.Multiply(prefix + "squeeze_excite_mul", input, x);
    }

    static int Activate(GraphBuilder b, int x, bool hardSwish) => hardSwish ? HardSwish(b, x) : b.ReLU(b.AutoName("re_lu"), x, six: false);

    static int HardSwish(GraphBuilder b, int x) => b.Activation(b.AutoName("activation"), x, Activation.HardSwish);

    /// <summary>Keras's _depth: to a multiple of 8 (at least 8), never more than 10% down.</summary>
    static int Depth(double value)
    {
        int rounded = Math.Max(8, (int)(value + 4) / 8 * 8);
        return rounded < 0.9 * value ? rounded + 8 : rounded;
    }
}
