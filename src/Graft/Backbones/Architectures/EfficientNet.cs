using Graft.Backbones.Layers;

namespace Graft.Backbones.Architectures;

/// <summary>
/// EfficientNet B0–B7 (Tan &amp; Le 2019) exactly as keras.applications.efficientnet builds them with ImageNet weights:
/// its preprocessing in the model (<c>rescaling</c> 1/255, <c>normalization</c> with the file's mean and variance, and
/// <c>rescaling_1</c>, which divides once more by √variance because the file stores the standard deviations as the
/// variance), a strided 3x3 stem, mobile inverted-bottleneck blocks <c>block1a</c> … (expand 1x1 → depthwise k x k →
/// squeeze-excitation → project 1x1, plus the input when shapes allow, behind a per-image dropout: stochastic depth)
/// and <c>top_conv</c> to 1280 channels times the width. Widths and repeats scale by the variant's coefficients.
/// </summary>
internal static class EfficientNet
{
    /// <summary>One stage of the B0 baseline: kernel, repeats, input and output filters, expansion, stride.</summary>
    readonly record struct Stage(int Kernel, int Repeats, int FiltersIn, int FiltersOut, int Expand, int Stride);

    static readonly Stage[] Stages =
    [
        new(3, 1, 32, 16, 1, 1), new(3, 2, 16, 24, 6, 2), new(5, 2, 24, 40, 6, 2), new(3, 3, 40, 80, 6, 2),
        new(5, 3, 80, 112, 6, 1), new(5, 4, 112, 192, 6, 2), new(3, 1, 192, 320, 6, 1),
    ];

    const double SeRatio = 0.25, DropConnectRate = 0.2;

    /// <summary>ImageNet's per-channel mean and standard deviation over 0..1 pixels (Keras computes with them in double).</summary>
    internal static readonly double[] ImageNetMean = [0.485, 0.456, 0.406], ImageNetStd = [0.229, 0.224, 0.225];

    /// <summary>Each value through <paramref name="f"/> in double, then to float32 as Keras casts its constants.</summary>
    internal static float[] Map(double[] values, Func<double, double> f) => [.. values.Select(v => (float)f(v))];

    /// <summary>A variant: width and depth coefficients and the dropout before its classifier (B0: 1.0, 1.0, 0.2).</summary>
    public static Func<ArchitectureOptions, Graph> Variant(string name, double width, double depth, double dropout) =>
        o => Build(name, width, depth, dropout, o);

    static Graph Build(string name, double width, double depth, double dropout, ArchitectureOptions o)
    {
        var b = new GraphBuilder(name, o.InputSize, o.FoldedBatchNorm);
        b.Block = "stem";
        int x = b.Rescaling("rescaling", b.Input, [1 / 255f], [0f]);
        x = b.Normalization("normalization", x, Map(ImageNetMean, m => m), Map(ImageNetStd, s => s), stored: true);
        x = b.Rescaling("rescaling_1", x, Map(ImageNetStd, s => 1 / Math.Sqrt(s)), [0f]);
        x = b.CorrectPad("stem_conv_pad", x, 3);
        x = b.Conv2D("stem_conv", x, RoundFilters(32, width), 3, strides: 2, useBias: false);
        x = b.BatchNormalization("stem_bn", x);
        x = b.Activation("stem_activation", x, Activation.Swish);

        int total = Stages.Sum(s => RoundRepeats(s.Repeats, depth)), index = 0;
        for (int i = 0; i < Stages.Length; i++)
        {
            var stage = Stages[i];
            int filtersIn = RoundFilters(stage.FiltersIn, width), filtersOut = RoundFilters(stage.FiltersOut, width);
            for (int j = 0; j < RoundRepeats(stage.Repeats, depth); j++, index++)
                x = Block(b, x, $"block{i + 1}{(char)('a' + j)}", j == 0 ? filtersIn : filtersOut, filtersOut, stage.Kernel,
                    j == 0 ? stage.Stride : 1, stage.Expand, DropConnectRate * index / total);
        }

        b.Block = "top_conv";
        x = b.Conv2D("top_conv", x, RoundFilters(1280, width), 1, padding: Padding.Same, useBias: false);
        x = b.BatchNormalization("top_bn", x);
        x = b.Activation("top_activation", x, Activation.Swish);
        if (o.IncludeTop) DropoutClassifier(b, x, dropout, o.Classes);
        return b.Build();
    }

    static int Block(GraphBuilder b, int input, string name, int filtersIn, int filtersOut, int kernel, int stride, int expand, double dropRate)
    {
        b.Block = name;
        string prefix = name + "_";
        int filters = filtersIn * expand, x = input;
        if (expand != 1)
        {
            x = b.Conv2D(prefix + "expand_conv", x, filters, 1, padding: Padding.Same, useBias: false);
            x = b.BatchNormalization(prefix + "expand_bn", x);
            x = b.Activation(prefix + "expand_activation", x, Activation.Swish);
        }
        if (stride == 2) x = b.CorrectPad(prefix + "dwconv_pad", x, kernel);
        x = b.DepthwiseConv2D(prefix + "dwconv", x, kernel, stride, stride == 2 ? Padding.Valid : Padding.Same, useBias: false);
        x = b.BatchNormalization(prefix + "bn", x);
        x = b.Activation(prefix + "activation", x, Activation.Swish);
        x = SqueezeExcite(b, x, prefix, Math.Max(1, (int)(filtersIn * SeRatio)), Activation.Swish);
        x = b.Conv2D(prefix + "project_conv", x, filtersOut, 1, padding: Padding.Same, useBias: false);
        x = b.BatchNormalization(prefix + "project_bn", x);
        if (stride != 1 || filtersIn != filtersOut) return x;
        if (dropRate > 0) x = b.Dropout(prefix + "drop", x, dropRate, perSample: true);
        return b.Sum(prefix + "add", x, input);
    }

    /// <summary>
    /// The EfficientNets' squeeze-excitation: <c>se_squeeze</c> (global average) → <c>se_reshape</c> to 1x1 →
    /// <c>se_reduce</c> 1x1 with the block's activation → <c>se_expand</c> 1x1 sigmoid → <c>se_excite</c>, the map times the gate.
    /// </summary>
    internal static int SqueezeExcite(GraphBuilder b, int x, string prefix, int squeezed, Activation activation)
    {
        int se = b.GlobalAveragePooling2D(prefix + "se_squeeze", x);
        se = b.Reshape(prefix + "se_reshape", se, toMap: true);
        se = b.Conv2D(prefix + "se_reduce", se, squeezed, 1, padding: Padding.Same, activation: activation);
        se = b.Conv2D(prefix + "se_expand", se, b.Channels(x), 1, padding: Padding.Same, activation: Activation.Sigmoid);
        return b.Multiply(prefix + "se_excite", x, se);
    }

    /// <summary>The EfficientNets' ImageNet top: <c>avg_pool</c>, <c>top_dropout</c>, the classifier <c>predictions</c>.</summary>
    internal static void DropoutClassifier(GraphBuilder b, int x, double dropout, int classes)
    {
        b.Block = "top";
        x = b.GlobalAveragePooling2D("avg_pool", x);
        if (dropout > 0) x = b.Dropout("top_dropout", x, dropout);
        b.Dense("predictions", x, classes);
    }

    /// <summary>Keras's round_filters: the width times the coefficient, to a multiple of 8, never more than 10% down.</summary>
    static int RoundFilters(int filters, double width)
    {
        double scaled = filters * width;
        int rounded = Math.Max(8, (int)(scaled + 4) / 8 * 8);
        return rounded < 0.9 * scaled ? rounded + 8 : rounded;
    }

    static int RoundRepeats(int repeats, double depth) => (int)Math.Ceiling(depth * repeats);

    /// <summary>The name of stage <paramref name="stage"/>'s last block at a depth coefficient (B0's stage 5: block5c).</summary>
    public static string LastBlock(int stage, double depth) => $"block{stage}{(char)('a' + RoundRepeats(Stages[stage - 1].Repeats, depth) - 1)}";
}
