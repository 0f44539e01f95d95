using Graft.Backbones.Layers;

namespace Graft.Backbones.Architectures;

/// <summary>
/// DenseNet121/169/201 (Huang et al. 2017) exactly as keras.applications.densenet builds them: stem <c>conv1</c>, four
/// dense blocks of <c>convN_blockM</c> (BN → ReLU → 1x1 conv to 128 → BN → ReLU → 3x3 conv to 32, concatenated onto
/// the input), transitions <c>pool2</c>…<c>pool4</c> (BN → ReLU → 1x1 conv halving the channels → 2x2 average pooling),
/// and a final <c>bn</c>, <c>relu</c>. The two stem paddings are unnamed in Keras and carry its automatic names.
/// </summary>
internal static class DenseNet
{
    public const double Epsilon = 1.001e-5;
    const int GrowthRate = 32;

    public static Graph DenseNet121(ArchitectureOptions o) => Build("densenet121", [6, 12, 24, 16], o);
    public static Graph DenseNet169(ArchitectureOptions o) => Build("densenet169", [6, 12, 32, 32], o);
    public static Graph DenseNet201(ArchitectureOptions o) => Build("densenet201", [6, 12, 48, 32], o);

    static Graph Build(string network, int[] blocks, ArchitectureOptions o)
    {
        var b = new GraphBuilder(network, o.InputSize, o.FoldedBatchNorm);
        b.Block = "conv1";
        int x = b.ZeroPadding2D(b.AutoName("zero_padding2d"), b.Input, (3, 3), (3, 3));
        x = b.Conv2D("conv1_conv", x, 64, 7, strides: 2, useBias: false);
        x = b.BatchNormalization("conv1_bn", x, Epsilon);
        x = b.Activation("conv1_relu", x, Activation.Relu);
        x = b.ZeroPadding2D(b.AutoName("zero_padding2d"), x, (1, 1), (1, 1));
        x = b.MaxPooling2D("pool1", x, 3, 2);
        for (int stage = 0; stage < blocks.Length; stage++)
        {
            for (int i = 1; i <= blocks[stage]; i++) x = ConvBlock(b, x, $"conv{stage + 2}_block{i}");
            if (stage < blocks.Length - 1) x = Transition(b, x, $"pool{stage + 2}");
        }
        b.Block = "bn";
        x = b.BatchNormalization("bn", x, Epsilon);
        x = b.Activation("relu", x, Activation.Relu);
        if (o.IncludeTop) b.PooledClassifier("avg_pool", x, o.Classes);
        return b.Build();
    }

    static int ConvBlock(GraphBuilder b, int input, string name)
    {
        b.Block = name;
        int x = b.BatchNormalization($"{name}_0_bn", input, Epsilon);
        x = b.Activation($"{name}_0_relu", x, Activation.Relu);
        x = b.Conv2D($"{name}_1_conv", x, 4 * GrowthRate, 1, useBias: false);
        x = b.BatchNormalization($"{name}_1_bn", x, Epsilon);
        x = b.Activation($"{name}_1_relu", x, Activation.Relu);
        x = b.Conv2D($"{name}_2_conv", x, GrowthRate, 3, padding: Padding.Same, useBias: false);
        return b.Concatenate($"{name}_concat", input, x);
    }

    static int Transition(GraphBuilder b, int input, string name)
    {
        b.Block = name;
        int x = b.BatchNormalization($"{name}_bn", input, Epsilon);
        x = b.Activation($"{name}_relu", x, Activation.Relu);
        x = b.Conv2D($"{name}_conv", x, b.Channels(x) / 2, 1, useBias: false);
        return b.AveragePooling2D($"{name}_pool", x, 2, 2);
    }
}
