using Graft.Backbones.Layers;

namespace Graft.Backbones.Architectures;

/// <summary>
/// EfficientNetV2 B0–B3, S, M and L (Tan &amp; Le 2021) exactly as keras.applications.efficientnet_v2 builds them:
/// preprocessing in the model (B variants: <c>rescaling</c> 1/255 and <c>normalization</c> with ImageNet's mean and
/// variance as constants; S, M, L: <c>rescaling</c> x/128 − 1), a strided 3x3 SAME stem, fused blocks (one k x k
/// convolution instead of expand + depthwise) in the early stages and mobile inverted bottlenecks with
/// squeeze-excitation later, each <c>block1a</c> …, then <c>top_conv</c>. Depthwise windows pad SAME (no correct_pad).
/// </summary>
internal static class EfficientNetV2
{
    /// <summary>One stage: kernel, repeats, input and output filters, expansion, squeeze-excitation ratio, stride, fused.</summary>
    public readonly record struct Stage(int Kernel, int Repeats, int FiltersIn, int FiltersOut, int Expand, double SeRatio, int Stride, bool Fused);

    static Stage Fused(int repeats, int filtersIn, int filtersOut, int expand, int stride) => new(3, repeats, filtersIn, filtersOut, expand, 0, stride, true);
    static Stage MbConv(int repeats, int filtersIn, int filtersOut, int expand, int stride) => new(3, repeats, filtersIn, filtersOut, expand, 0.25, stride, false);

    /// <summary>The B variants' stages (before width and depth scaling).</summary>
    public static readonly Stage[] B =
        [Fused(1, 32, 16, 1, 1), Fused(2, 16, 32, 4, 2), Fused(2, 32, 48, 4, 2), MbConv(3, 48, 96, 4, 2), MbConv(5, 96, 112, 6, 1), MbConv(8, 112, 192, 6, 2)];

    public static readonly Stage[] S =
        [Fused(2, 24, 24, 1, 1), Fused(4, 24, 48, 4, 2), Fused(4, 48, 64, 4, 2), MbConv(6, 64, 128, 4, 2), MbConv(9, 128, 160, 6, 1), MbConv(15, 160, 256, 6, 2)];

    public static readonly Stage[] M =
    [
        Fused(3, 24, 24, 1, 1), Fused(5, 24, 48, 4, 2), Fused(5, 48, 80, 4, 2), MbConv(7, 80, 160, 4, 2), MbConv(14, 160, 176, 6, 1),
        MbConv(18, 176, 304, 6, 2), MbConv(5, 304, 512, 6, 1),
    ];

    public static readonly Stage[] L =
    [
        Fused(4, 32, 32, 1, 1), Fused(7, 32, 64, 4, 2), Fused(7, 64, 96, 4, 2), MbConv(10, 96, 192, 4, 2), MbConv(19, 192, 224, 6, 1),
        MbConv(25, 224, 384, 6, 2), MbConv(7, 384, 640, 6, 1),
    ];

    const double Dropout = 0.2, DropConnectRate = 0.2;

    /// <summary>
    /// A variant: its stages, width and depth coefficients, and whether it normalizes as EfficientNet v1 did
    /// (the B variants) or scales to [-1, 1] (S, M, L).
    /// </summary>
    public static Func<ArchitectureOptions, Graph> Variant(string name, Stage[] stages, double width, double depth, bool imageNetNormalization) =>
        o => Build(name, stages, width, depth, imageNetNormalization, o);

    static Graph Build(string name, Stage[] stages, double width, double depth, bool imageNetNormalization, ArchitectureOptions o)
    {
        var b = new GraphBuilder(name, o.InputSize, o.FoldedBatchNorm);
        b.Block = "stem";
        int x;
        if (imageNetNormalization)
        {
            x = b.Rescaling("rescaling", b.Input, [1 / 255f], [0f]);
            x = b.Normalization("normalization", x, EfficientNet.Map(EfficientNet.ImageNetMean, m => m), EfficientNet.Map(EfficientNet.ImageNetStd, s => s * s), stored: false);
        }
        else x = b.Rescaling("rescaling", b.Input, [1 / 128f], [-1f]);
        x = b.Conv2D("stem_conv", x, RoundFilters(stages[0].FiltersIn, width), 3, strides: 2, padding: Padding.Same, useBias: false);
        x = b.BatchNormalization("stem_bn", x);
        x = b.Activation("stem_activation", x, Activation.Swish);

        // Keras's drop rates count blocks before depth scaling (EfficientNet v1 counted them after).
        double total = stages.Sum(s => s.Repeats);
        int index = 0;
        for (int i = 0; i < stages.Length; i++)
        {
            var stage = stages[i];
            int filtersIn = RoundFilters(stage.FiltersIn, width), filtersOut = RoundFilters(stage.FiltersOut, width);
            for (int j = 0; j < RoundRepeats(stage.Repeats, depth); j++, index++)
            {
                var block = stage with { FiltersIn = j == 0 ? filtersIn : filtersOut, FiltersOut = filtersOut, Stride = j == 0 ? stage.Stride : 1 };
                x = Block(b, x, $"block{i + 1}{(char)('a' + j)}", block, DropConnectRate * index / total);
            }
        }

        b.Block = "top_conv";
        x = b.Conv2D("top_conv", x, RoundFilters(1280, width), 1, padding: Padding.Same, useBias: false);
        x = b.BatchNormalization("top_bn", x);
        x = b.Activation("top_activation", x, Activation.Swish);
        if (o.IncludeTop) EfficientNet.DropoutClassifier(b, x, Dropout, o.Classes);
        return b.Build();
    }

    /// <summary>Keras's MBConvBlock, or FusedMBConvBlock for a fused stage.</summary>
    static int Block(GraphBuilder b, int input, string name, Stage s, double dropRate)
    {
        b.Block = name;
        string prefix = name + "_";
        int filters = s.FiltersIn * s.Expand, x = input;
        if (s.Expand != 1)
        {
            x = s.Fused
                ? b.Conv2D(prefix + "expand_conv", x, filters, s.Kernel, strides: s.Stride, padding: Padding.Same, useBias: false)
                : b.Conv2D(prefix + "expand_conv", x, filters, 1, padding: Padding.Same, useBias: false);
            x = b.BatchNormalization(prefix + "expand_bn", x);
            x = b.Activation(prefix + "expand_activation", x, Activation.Swish);
        }
        if (!s.Fused)
        {
            x = b.DepthwiseConv2D(prefix + "dwconv2", x, s.Kernel, s.Stride, Padding.Same, useBias: false);
            x = b.BatchNormalization(prefix + "bn", x);
            x = b.Activation(prefix + "activation", x, Activation.Swish);
        }
        if (s.SeRatio > 0) x = EfficientNet.SqueezeExcite(b, x, prefix, Math.Max(1, (int)(s.FiltersIn * s.SeRatio)), Activation.Swish);
        // A fused block without expansion has only this convolution: the block's window and stride, then an activation.
        bool single = s.Fused && s.Expand == 1;
        x = b.Conv2D(prefix + "project_conv", x, s.FiltersOut, single ? s.Kernel : 1, strides: single ? s.Stride : 1, padding: Padding.Same, useBias: false);
        x = b.BatchNormalization(prefix + "project_bn", x);
        if (single) x = b.Activation(prefix + "project_activation", x, Activation.Swish);
        if (s.Stride != 1 || s.FiltersIn != s.FiltersOut) return x;
        if (dropRate > 0) x = b.Dropout(prefix + "drop", x, dropRate, perSample: true);
        return b.Sum(prefix + "add", x, input);
    }

    /// <summary>Keras's round_filters for EfficientNetV2: to the nearest multiple of 8 (at least 8), without v1's 10% rule.</summary>
    static int RoundFilters(int filters, double width) => Math.Max(8, (int)(filters * width + 4) / 8 * 8);

    static int RoundRepeats(int repeats, double depth) => (int)Math.Ceiling(depth * repeats);

    /// <summary>The name of stage <paramref name="stage"/>'s last block at a depth coefficient.</summary>
    public static string LastBlock(Stage[] stages, int stage, double depth) => $"block{stage}{(char)('a' + RoundRepeats(stages[stage - 1].Repeats, depth) - 1)}";
}
