using Graft.Backbones.Layers;

namespace Graft.Backbones.Architectures;

/// <summary>
/// Xception (Chollet 2016) exactly as keras.applications.xception builds it. Its four residual projections
/// (Conv2D + BatchNormalization) and the adds are unnamed in Keras and carry Keras's automatic names.
/// </summary>
internal static class Xception
{
    public static Graph Build(ArchitectureOptions o)
    {
        var b = new GraphBuilder("xception", o.InputSize, o.FoldedBatchNorm);
        b.Block = "block1";
        int x = b.Conv2D("block1_conv1", b.Input, 32, 3, strides: 2, useBias: false);
        x = b.BatchNormalization("block1_conv1_bn", x);
        x = b.Activation("block1_conv1_act", x, Activation.Relu);
        x = b.Conv2D("block1_conv2", x, 64, 3, useBias: false);
        x = b.BatchNormalization("block1_conv2_bn", x);
        x = b.Activation("block1_conv2_act", x, Activation.Relu);

        // Entry flow: blocks 2-4 halve the map, with a strided 1x1 projection as the residual.
        foreach (var (block, filters) in new[] { (2, 128), (3, 256), (4, 728) })
            x = DownBlock(b, x, block, filters, filters, activateFirst: block != 2);

        // Middle flow: eight blocks of three separable convolutions with an identity residual.
        for (int block = 5; block <= 12; block++)
        {
            b.Block = $"block{block}";
            int residual = x;
            for (int i = 1; i <= 3; i++)
            {
                x = b.Activation($"block{block}_sepconv{i}_act", x, Activation.Relu);
                x = SepConvBn(b, x, $"block{block}_sepconv{i}", 728);
            }
            x = b.Sum(b.AutoName("add"), x, residual);
        }

        x = DownBlock(b, x, 13, 728, 1024, activateFirst: true);

        b.Block = "block14";
        x = SepConvBn(b, x, "block14_sepconv1", 1536);
        x = b.Activation("block14_sepconv1_act", x, Activation.Relu);
        x = SepConvBn(b, x, "block14_sepconv2", 2048);
        x = b.Activation("block14_sepconv2_act", x, Activation.Relu);

        if (o.IncludeTop) b.PooledClassifier("avg_pool", x, o.Classes);
        return b.Build();
    }

    /// <summary>Two separable convolutions and a strided max pool, added to a strided 1x1 projection of the input.</summary>
    static int DownBlock(GraphBuilder b, int x, int block, int filters1, int filters2, bool activateFirst)
    {
        b.Block = $"block{block}";
        int residual = b.Conv2D(b.AutoName("conv2d"), x, filters2, 1, strides: 2, padding: Padding.Same, useBias: false);
        residual = b.BatchNormalization(b.AutoName("batch_normalization"), residual);
        if (activateFirst) x = b.Activation($"block{block}_sepconv1_act", x, Activation.Relu);
        x = SepConvBn(b, x, $"block{block}_sepconv1", filters1);
        x = b.Activation($"block{block}_sepconv2_act", x, Activation.Relu);
        x = SepConvBn(b, x, $"block{block}_sepconv2", filters2);
        x = b.MaxPooling2D($"block{block}_pool", x, 3, 2, Padding.Same);
        return b.Sum(b.AutoName("add"), x, residual);
    }

    static int SepConvBn(GraphBuilder b, int x, string name, int filters) =>
        b.BatchNormalization($"{name}_bn", b.SeparableConv2D(name, x, filters, 3, Padding.Same, useBias: false));
}
