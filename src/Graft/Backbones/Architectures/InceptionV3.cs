using Graft.Backbones.Layers;

namespace Graft.Backbones.Architectures;

/// <summary>
/// InceptionV3 (Szegedy et al. 2015) exactly as keras.applications.inception_v3 builds it. Its convolutions inside
/// the mixed blocks are unnamed in Keras, so they carry Keras's automatic names (conv2d_5, batch_normalization_5, …)
/// as a fresh session gives them; files saved by Keras 2.0 count from _1 and load by Keras's layer order instead.
/// </summary>
internal static class InceptionV3
{
    public static Graph Build(ArchitectureOptions o)
    {
        var b = new GraphBuilder("inception_v3", o.InputSize, o.FoldedBatchNorm);
        b.Block = "stem";
        int x = ConvBn(b, b.Input, 32, 3, 3, (2, 2), Padding.Valid);
        x = ConvBn(b, x, 32, 3, 3, padding: Padding.Valid);
        x = ConvBn(b, x, 64, 3, 3);
        x = b.MaxPooling2D(b.AutoName("max_pooling2d"), x, 3, 2);
        x = ConvBn(b, x, 80, 1, 1, padding: Padding.Valid);
        x = ConvBn(b, x, 192, 3, 3, padding: Padding.Valid);
        x = b.MaxPooling2D(b.AutoName("max_pooling2d"), x, 3, 2);

        foreach (var (i, pool) in new[] { (0, 32), (1, 64), (2, 64) })
        {
            b.Block = $"mixed{i}";
            int branch1x1 = ConvBn(b, x, 64, 1, 1);
            int branch5x5 = ConvBn(b, ConvBn(b, x, 48, 1, 1), 64, 5, 5);
            int branch3x3dbl = ConvBn(b, ConvBn(b, ConvBn(b, x, 64, 1, 1), 96, 3, 3), 96, 3, 3);
            int branchPool = ConvBn(b, AveragePool(b, x), pool, 1, 1);
            x = b.Concatenate($"mixed{i}", branch1x1, branch5x5, branch3x3dbl, branchPool);
        }

        b.Block = "mixed3";
        {
            int branch3x3 = ConvBn(b, x, 384, 3, 3, (2, 2), Padding.Valid);
            int branch3x3dbl = ConvBn(b, ConvBn(b, ConvBn(b, x, 64, 1, 1), 96, 3, 3), 96, 3, 3, (2, 2), Padding.Valid);
            int branchPool = b.MaxPooling2D(b.AutoName("max_pooling2d"), x, 3, 2);
            x = b.Concatenate("mixed3", branch3x3, branch3x3dbl, branchPool);
        }

        foreach (var (i, width) in new[] { (4, 128), (5, 160), (6, 160), (7, 192) })
        {
            b.Block = $"mixed{i}";
            int branch1x1 = ConvBn(b, x, 192, 1, 1);
            int branch7x7 = ConvBn(b, ConvBn(b, ConvBn(b, x, width, 1, 1), width, 1, 7), 192, 7, 1);
            int branch7x7dbl = ConvBn(b, x, width, 1, 1);
            branch7x7dbl = ConvBn(b, branch7x7dbl, width, 7, 1);
            branch7x7dbl = ConvBn(b, branch7x7dbl, width, 1, 7);
            branch7x7dbl = ConvBn(b, branch7x7dbl, width, 7, 1);
            branch7x7dbl = ConvBn(b, branch7x7dbl, 192, 1, 7);
            int branchPool = ConvBn(b, AveragePool(b, x), 192, 1, 1);
            x = b.Concatenate($"mixed{i}", branch1x1, branch7x7, branch7x7dbl, branchPool);
        }

        b.Block = "mixed8";
        {
            int branch3x3 = ConvBn(b, ConvBn(b, x, 192, 1, 1), 320, 3, 3, (2, 2), Padding.Valid);
            int branch7x7x3 = ConvBn(b, ConvBn(b, ConvBn(b, x, 192, 1, 1), 192, 1, 7), 192, 7, 1);
            branch7x7x3 = ConvBn(b, branch7x7x3, 192, 3, 3, (2, 2), Padding.Valid);
            int branchPool = b.MaxPooling2D(b.AutoName("max_pooling2d"), x, 3, 2);
            x = b.Concatenate("mixed8", branch3x3, branch7x7x3, branchPool);
        }

        for (int i = 0; i < 2; i++)
        {
            b.Block = $"mixed{9 + i}";
            int branch1x1 = ConvBn(b, x, 320, 1, 1);
            int branch3x3 = ConvBn(b, x, 384, 1, 1);
            int branch3x3a = ConvBn(b, branch3x3, 384, 1, 3);
            int branch3x3b = ConvBn(b, branch3x3, 384, 3, 1);
            branch3x3 = b.Concatenate($"mixed9_{i}", branch3x3a, branch3x3b);
            int branch3x3dbl = ConvBn(b, ConvBn(b, x, 448, 1, 1), 384, 3, 3);
            int branch3x3dblA = ConvBn(b, branch3x3dbl, 384, 1, 3);
            int branch3x3dblB = ConvBn(b, branch3x3dbl, 384, 3, 1);
            branch3x3dbl = b.Concatenate(b.AutoName("concatenate"), branch3x3dblA, branch3x3dblB);
            int branchPool = ConvBn(b, AveragePool(b, x), 192, 1, 1);
            x = b.Concatenate($"mixed{9 + i}", branch1x1, branch3x3, branch3x3dbl, branchPool);
        }

        if (o.IncludeTop) b.PooledClassifier("avg_pool", x, o.Classes);
        return b.Build();
    }

    /// <summary>Keras's conv2d_bn: convolution without bias, batch norm without scale, ReLU.</summary>
    static int ConvBn(GraphBuilder b, int x, int filters, int rows, int columns, (int, int)? strides = null, Padding padding = Padding.Same)
    {
        x = b.Conv2D(b.AutoName("conv2d"), x, filters, (rows, columns), strides, padding, useBias: false);
        x = b.BatchNormalization(b.AutoName("batch_normalization"), x, scale: false);
        return b.Activation(b.AutoName("activation"), x, Activation.Relu);
    }

    static int AveragePool(GraphBuilder b, int x) => b.AveragePooling2D(b.AutoName("average_pooling2d"), x, 3, 1, Padding.Same);
}
