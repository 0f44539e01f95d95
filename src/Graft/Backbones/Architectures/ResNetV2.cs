using Graft.Backbones.Layers;

namespace Graft.Backbones.Architectures;

/// <summary>
/// ResNet50V2/101V2/152V2 (He et al. 2016, identity mappings) exactly as keras.applications.resnet_v2 builds them:
/// pre-activation blocks (<c>_preact_bn</c>, <c>_preact_relu</c> before the convolutions, the shortcut projection
/// <c>_0_conv</c> reading the pre-activation, no batch norm after the last 1x1), the stride on the 3x3 of each stage's
/// last block (its identity shortcut a 1x1 max pooling at stride 2, unnamed in Keras), and <c>post_bn</c>,
/// <c>post_relu</c> after the last stage; the stem convolution has a bias and no batch norm.
/// </summary>
internal static class ResNetV2
{
    public static Graph ResNet50V2(ArchitectureOptions o) => Build("resnet50v2", [3, 4, 6, 3], o);
    public static Graph ResNet101V2(ArchitectureOptions o) => Build("resnet101v2", [3, 4, 23, 3], o);
    public static Graph ResNet152V2(ArchitectureOptions o) => Build("resnet152v2", [3, 8, 36, 3], o);

    static Graph Build(string network, int[] blocks, ArchitectureOptions o)
    {
        var b = new GraphBuilder(network, o.InputSize, o.FoldedBatchNorm);
        b.Block = "conv1";
        int x = b.ZeroPadding2D("conv1_pad", b.Input, (3, 3), (3, 3));
        x = b.Conv2D("conv1_conv", x, 64, 7, strides: 2);
        x = b.ZeroPadding2D("pool1_pad", x, (1, 1), (1, 1));
        x = b.MaxPooling2D("pool1_pool", x, 3, 2);
        for (int stage = 0; stage < blocks.Length; stage++)
            for (int i = 1; i <= blocks[stage]; i++)
            {
                // Keras's stack_residual_blocks_v2: every stage but the last ends at stride 2.
                int stride = i == blocks[stage] && stage < blocks.Length - 1 ? 2 : 1;
                x = Block(b, x, 64 << stage, stride, shortcut: i == 1, $"conv{stage + 2}_block{i}");
            }
        b.Block = "post";
        x = b.BatchNormalization("post_bn", x, ResNet.Epsilon);
        x = b.Activation("post_relu", x, Activation.Relu);
        if (o.IncludeTop) b.PooledClassifier("avg_pool", x, o.Classes);
        return b.Build();
    }

    static int Block(GraphBuilder b, int input, int filters, int stride, bool shortcut, string name)
    {
        b.Block = name;
        int preact = b.BatchNormalization($"{name}_preact_bn", input, ResNet.Epsilon);
        preact = b.Activation($"{name}_preact_relu", preact, Activation.Relu);
        int residual = shortcut ? b.Conv2D($"{name}_0_conv", preact, 4 * filters, 1, strides: stride)
            : stride > 1 ? b.MaxPooling2D(b.AutoName("max_pooling2d"), input, 1, stride)
            : input;
        int x = b.Conv2D($"{name}_1_conv", preact, filters, 1, useBias: false);
        x = b.BatchNormalization($"{name}_1_bn", x, ResNet.Epsilon);
        x = b.Activation($"{name}_1_relu", x, Activation.Relu);
        x = b.ZeroPadding2D($"{name}_2_pad", x, (1, 1), (1, 1));
        x = b.Conv2D($"{name}_2_conv", x, filters, 3, strides: stride, useBias: false);
        x = b.BatchNormalization($"{name}_2_bn", x, ResNet.Epsilon);
        x = b.Activation($"{name}_2_relu", x, Activation.Relu);
        x = b.Conv2D($"{name}_3_conv", x, 4 * filters, 1);
        return b.Sum($"{name}_out", residual, x);
    }
}
