using Graft.Backbones.Layers;

namespace Graft.Backbones.Architectures;

/// <summary>
/// MobileNet v1 (Howard et al. 2017) exactly as keras.applications.mobilenet builds it: a strided 3x3 stem and
/// thirteen depthwise-separable blocks (<c>conv_dw_N</c> / <c>conv_pw_N</c>), strided blocks padded ((0,1),(0,1))
/// then VALID; every width times alpha.
/// </summary>
internal static class MobileNet
{
    public static Func<ArchitectureOptions, Graph> WithAlpha(double alpha) => o => Build(alpha, o);

    static Graph Build(double alpha, ArchitectureOptions o)
    {
        var b = new GraphBuilder("mobilenet", o.InputSize, o.FoldedBatchNorm);
        b.Block = "conv1";
        int x = b.Conv2D("conv1", b.Input, (int)(32 * alpha), 3, strides: 2, padding: Padding.Same, useBias: false);
        x = b.BatchNormalization("conv1_bn", x);
        x = b.ReLU("conv1_relu", x, six: true);
        (int Filters, int Stride)[] blocks =
            [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)];
        for (int id = 1; id <= blocks.Length; id++)
        {
            var (filters, stride) = blocks[id - 1];
            b.Block = $"block_{id}";
            if (stride == 2) x = b.ZeroPadding2D($"conv_pad_{id}", x, (0, 1), (0, 1));
            x = b.DepthwiseConv2D($"conv_dw_{id}", x, 3, stride, stride == 1 ? Padding.Same : Padding.Valid, useBias: false);
            x = b.BatchNormalization($"conv_dw_{id}_bn", x);
            x = b.ReLU($"conv_dw_{id}_relu", x, six: true);
            x = b.Conv2D($"conv_pw_{id}", x, (int)(filters * alpha), 1, padding: Padding.Same, useBias: false);
            x = b.BatchNormalization($"conv_pw_{id}_bn", x);
            x = b.ReLU($"conv_pw_{id}_relu", x, six: true);
        }
        if (o.IncludeTop)
        {
            b.Block = "top";
            x = b.GlobalAveragePooling2D("global_average_pooling2d", x, keepDims: true);
            x = b.Dropout("dropout", x, 1e-3);
            x = b.Conv2D("conv_preds", x, o.Classes, 1, padding: Padding.Same);
            x = b.Reshape("reshape_2", x, toMap: false);
            b.Activation("predictions", x, Activation.Linear);
        }
        return b.Build();
    }
}
