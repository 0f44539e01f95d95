using System.Text.RegularExpressions;
using Graft.Backbones.Layers;
using Graft.Weights;

namespace Graft.Backbones.Architectures;

/// <summary>
/// ResNet50/101/152 (He et al. 2015) exactly as keras.applications.resnet builds them (stacks of bottleneck blocks,
/// v1: stride on the first 1x1, batch norm after each convolution); the three differ only in blocks per stage.
/// </summary>
internal static partial class ResNet
{
    public const double Epsilon = 1.001e-5;

    public static Graph ResNet50(ArchitectureOptions o) => Build("resnet50", [3, 4, 6, 3], o);
    public static Graph ResNet101(ArchitectureOptions o) => Build("resnet101", [3, 4, 23, 3], o);
    public static Graph ResNet152(ArchitectureOptions o) => Build("resnet152", [3, 8, 36, 3], o);

    static Graph Build(string network, int[] blocks, ArchitectureOptions o)
    {
        var b = new GraphBuilder(network, o.InputSize, o.FoldedBatchNorm);
        double eps = o.BatchNormEpsilon ?? Epsilon;
        b.Block = "conv1";
        int x = b.ZeroPadding2D("conv1_pad", b.Input, (3, 3), (3, 3));
        x = b.Conv2D("conv1_conv", x, 64, 7, strides: 2);
        x = b.BatchNormalization("conv1_bn", x, eps);
        x = b.Activation("conv1_relu", x, Activation.Relu);
        x = b.ZeroPadding2D("pool1_pad", x, (1, 1), (1, 1));
        x = b.MaxPooling2D("pool1_pool", x, 3, 2);
        for (int stage = 0; stage < blocks.Length; stage++)
            for (int i = 1; i <= blocks[stage]; i++)
                x = Block(b, x, 64 << stage, i == 1 && stage > 0 ? 2 : 1, shortcut: i == 1, $"conv{stage + 2}_block{i}", eps);
        if (o.IncludeTop) b.PooledClassifier("avg_pool", x, o.Classes);
        return b.Build();
    }

    static int Block(GraphBuilder b, int input, int filters, int stride, bool shortcut, string name, double eps)
    {
        b.Block = name;
        int residual = input;
        if (shortcut)
        {
            residual = b.Conv2D($"{name}_0_conv", input, 4 * filters, 1, strides: stride);
            residual = b.BatchNormalization($"{name}_0_bn", residual, eps);
        }
        int x = b.Conv2D($"{name}_1_conv", input, filters, 1, strides: stride);
        x = b.BatchNormalization($"{name}_1_bn", x, eps);
        x = b.Activation($"{name}_1_relu", x, Activation.Relu);
        x = b.Conv2D($"{name}_2_conv", x, filters, 3, padding: Padding.Same);
        x = b.BatchNormalization($"{name}_2_bn", x, eps);
        x = b.Activation($"{name}_2_relu", x, Activation.Relu);
        x = b.Conv2D($"{name}_3_conv", x, 4 * filters, 1);
        x = b.BatchNormalization($"{name}_3_bn", x, eps);
        x = b.Sum($"{name}_add", residual, x);
        return b.Activation($"{name}_out", x, Activation.Relu);
    }

    /// <summary>
    /// The first ResNet50 file Keras published (converted from Caffe, still in old Keras caches) names layers
    /// <c>res2a_branch2a</c> / <c>bn2a_branch2a</c> / <c>conv1</c> / <c>bn_conv1</c> / <c>fc1000</c> and was used with
    /// Keras's default batch-norm epsilon 1e-3. Renames such a file to today's names and says so; others pass.
    /// </summary>
    public static (NamedWeights Weights, ArchitectureOptions Options) Filter(NamedWeights weights, ArchitectureOptions options)
    {
        if (weights.Find("bn_conv1") is null) return (weights, options);
        var renamed = weights.Layers.Select(l => l with { Layer = ModernName(l.Layer) }).ToList();
        return (weights with { Layers = renamed }, options with { BatchNormEpsilon = 1e-3 });
    }

    static string ModernName(string old)
    {
        if (old == "conv1") return "conv1_conv";
        if (old == "bn_conv1") return "conv1_bn";
        if (old == "fc1000") return "predictions";
        var m = OldBlockName().Match(old);
        if (!m.Success) return old;
        string block = $"conv{m.Groups[2].Value}_block{m.Groups[3].Value[0] - 'a' + 1}";
        string unit = m.Groups[4].Value switch { "1" => "0", "2a" => "1", "2b" => "2", _ => "3" };
        return $"{block}_{unit}_{(m.Groups[1].Value == "res" ? "conv" : "bn")}";
    }

    [GeneratedRegex("^(res|bn)([2-5])([a-f])_branch(1|2a|2b|2c)$")]
    private static partial Regex OldBlockName();
}
