using Graft.Backbones.Layers;

namespace Graft.Backbones.Architectures;

/// <summary>
/// Inception-ResNet-v2 (Szegedy et al. 2016) exactly as keras.applications.inception_resnet_v2 builds it: the stem,
/// <c>mixed_5b</c>, ten <c>block35_N</c>, <c>mixed_6a</c>, twenty <c>block17_N</c>, <c>mixed_7a</c>, ten <c>block8_N</c>
/// (the last without its activation) and <c>conv_7b</c>. Each residual block concatenates its branches
/// (<c>_mixed</c>), projects them back with a biased 1x1 (<c>_conv</c>) and adds them scaled to its input
/// (<see cref="CustomScaleLayer"/>). The stem's and branches' convolutions are unnamed in Keras and carry its
/// automatic names, as the scale layers do; files saved by older Keras load by Keras's layer order.
/// </summary>
internal static class InceptionResNetV2
{
    public static Graph Build(ArchitectureOptions o)
    {
        var b = new GraphBuilder("inception_resnet_v2", o.InputSize, o.FoldedBatchNorm);
        b.Block = "stem";
        int x = ConvBn(b, b.Input, 32, 3, strides: 2, padding: Padding.Valid);
        x = ConvBn(b, x, 32, 3, padding: Padding.Valid);
        x = ConvBn(b, x, 64, 3);
        x = b.MaxPooling2D(b.AutoName("max_pooling2d"), x, 3, 2);
        x = ConvBn(b, x, 80, 1, padding: Padding.Valid);
        x = ConvBn(b, x, 192, 3, padding: Padding.Valid);
        x = b.MaxPooling2D(b.AutoName("max_pooling2d"), x, 3, 2);

        b.Block = "mixed_5b";
        {
            int branch0 = ConvBn(b, x, 96, 1);
            int branch1 = ConvBn(b, ConvBn(b, x, 48, 1), 64, 5);
            int branch2 = ConvBn(b, ConvBn(b, ConvBn(b, x, 64, 1), 96, 3), 96, 3);
            int branchPool = ConvBn(b, b.AveragePooling2D(b.AutoName("average_pooling2d"), x, 3, 1, Padding.Same), 64, 1);
            x = b.Concatenate("mixed_5b", branch0, branch1, branch2, branchPool);
        }
        for (int i = 1; i <= 10; i++) x = Block35(b, x, i);

        b.Block = "mixed_6a";
        {
            int branch0 = ConvBn(b, x, 384, 3, strides: 2, padding: Padding.Valid);
            int branch1 = ConvBn(b, ConvBn(b, ConvBn(b, x, 256, 1), 256, 3), 384, 3, strides: 2, padding: Padding.Valid);
            int branchPool = b.MaxPooling2D(b.AutoName("max_pooling2d"), x, 3, 2);
            x = b.Concatenate("mixed_6a", branch0, branch1, branchPool);
        }
        for (int i = 1; i <= 20; i++) x = Block17(b, x, i);

        b.Block = "mixed_7a";
        {
            int branch0 = ConvBn(b, ConvBn(b, x, 256, 1), 384, 3, strides: 2, padding: Padding.Valid);
            int branch1 = ConvBn(b, ConvBn(b, x, 256, 1), 288, 3, strides: 2, padding: Padding.Valid);
            int branch2 = ConvBn(b, ConvBn(b, ConvBn(b, x, 256, 1), 288, 3), 320, 3, strides: 2, padding: Padding.Valid);
            int branchPool = b.MaxPooling2D(b.AutoName("max_pooling2d"), x, 3, 2);
            x = b.Concatenate("mixed_7a", branch0, branch1, branch2, branchPool);
        }
        for (int i = 1; i <= 10; i++) x = Block8(b, x, i, activate: i < 10);

        b.Block = "conv_7b";
        x = ConvBn(b, x, 1536, 1, name: "conv_7b");
        if (o.IncludeTop) b.PooledClassifier("avg_pool", x, o.Classes);
        return b.Build();
    }

    static int Block35(GraphBuilder b, int x, int index)
    {
        b.Block = $"block35_{index}";
        int branch0 = ConvBn(b, x, 32, 1);
        int branch1 = ConvBn(b, ConvBn(b, x, 32, 1), 32, 3);
        int branch2 = ConvBn(b, ConvBn(b, ConvBn(b, x, 32, 1), 48, 3), 64, 3);
        return Residual(b, x, b.Block, 0.17, true, branch0, branch1, branch2);
    }

    static int Block17(GraphBuilder b, int x, int index)
    {
        b.Block = $"block17_{index}";
        int branch0 = ConvBn(b, x, 192, 1);
        int branch1 = ConvBn(b, ConvBn(b, ConvBn(b, x, 128, 1), 160, (1, 7)), 192, (7, 1));
        return Residual(b, x, b.Block, 0.1, true, branch0, branch1);
    }

    static int Block8(GraphBuilder b, int x, int index, bool activate)
    {
        b.Block = $"block8_{index}";
        int branch0 = ConvBn(b, x, 192, 1);
        int branch1 = ConvBn(b, ConvBn(b, ConvBn(b, x, 192, 1), 224, (1, 3)), 256, (3, 1));
        return Residual(b, x, b.Block, activate ? 0.2 : 1.0, activate, branch0, branch1);
    }

    /// <summary>The branches concatenated, projected to the input's channels by a biased 1x1, scaled and added to the input.</summary>
    static int Residual(GraphBuilder b, int x, string name, double scale, bool activate, params int[] branches)
    {
        int mixed = b.Concatenate($"{name}_mixed", branches);
        int up = b.Conv2D($"{name}_conv", mixed, b.Channels(x), 1, padding: Padding.Same);
        int sum = b.ScaledSum(b.AutoName("custom_scale_layer"), x, up, scale);
        return activate ? b.Activation($"{name}_ac", sum, Activation.Relu) : sum;
    }

    static int ConvBn(GraphBuilder b, int x, int filters, int kernel, int strides = 1, Padding padding = Padding.Same, string? name = null) =>
        ConvBn(b, x, filters, (kernel, kernel), strides, padding, name);

    /// <summary>Keras's conv2d_bn: convolution without bias, batch norm without scale, ReLU; named <c>name</c>, <c>name_bn</c>, <c>name_ac</c> or automatically.</summary>
    static int ConvBn(GraphBuilder b, int x, int filters, (int, int) kernel, int strides = 1, Padding padding = Padding.Same, string? name = null)
    {
        x = b.Conv2D(name ?? b.AutoName("conv2d"), x, filters, kernel, (strides, strides), padding, useBias: false);
        x = b.BatchNormalization(name is null ? b.AutoName("batch_normalization") : $"{name}_bn", x, scale: false);
        return b.Activation(name is null ? b.AutoName("activation") : $"{name}_ac", x, Activation.Relu);
    }
}
