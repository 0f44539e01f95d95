using Graft.Backbones;
using Graft.Backbones.Architectures;
using Graft.Backbones.Layers;

namespace Graft.Tests;

public class GraphCostTests
{
    /// <summary>
    /// 8x8x3 → Conv2D 4, 3x3/2 SAME (4x4) → BN → ReLU → DepthwiseConv2D 3x3 SAME (4x4) → SeparableConv2D 8, 3x3
    /// VALID (2x2) → MaxPool 2/2 (1x1) → Add with itself → GAP → Dense 5.
    /// </summary>
    static Graph Tiny(int inputSize = 8)
    {
        Engine.TorchRuntime.EnsureInitialized();
        var b = new GraphBuilder("tiny", inputSize, foldedBatchNorm: false);
        int x = b.Conv2D("conv", b.Input, 4, 3, strides: 2, padding: Padding.Same, useBias: false);
        x = b.BatchNormalization("bn", x);
        x = b.Activation("relu", x, Activation.Relu);
        x = b.DepthwiseConv2D("dw", x, 3, padding: Padding.Same);
        x = b.SeparableConv2D("sep", x, 8, 3);
        x = b.MaxPooling2D("pool", x, 2, 2);
        x = b.Sum("add", x, x);
        x = b.GlobalAveragePooling2D("gap", x);
        b.Dense("fc", x, 5, Activation.Relu);
        return b.Build();
    }

    [Fact]
    public void Tiny_graph_counts_by_hand()
    {
        using var graph = Tiny();
        var cost = GraphCost.Of(graph);
        long conv = 3 * 3 * 3 * 4 * (4 * 4);          // 1728
        long depthwise = 3 * 3 * 4 * (4 * 4);         // 576
        long separable = 3 * 3 * 4 * (2 * 2) + 4 * 8 * (2 * 2); // 144 + 128
        long dense = 8 * 5;                           // 40
        Assert.Equal(conv + depthwise + separable + dense, cost.MultiplyAccumulates); // 2616
        Assert.Equal(2 * 2616L, cost.Flops);
        long other =
            2 * 4 * 16          // batch norm: scale and shift
            + 4 * 16            // ReLU
            + 4 * 16            // depthwise bias
            + 8 * 4             // separable bias
            + 4 * 8 * 1         // 2x2 max pooling, one 1x1x8 output
            + 8                 // add
            + 8                 // global average pooling over 1x1x8
            + 5 + 5;            // dense bias and ReLU
        Assert.Equal(other, cost.OtherOperations);
        Assert.Equal(new[] { "conv", "bn", "relu", "dw", "sep", "pool", "add", "gap", "fc" }, cost.Layers.Select(l => l.Name));
        Assert.Equal(1728, cost.Layers[0].MultiplyAccumulates);
        Assert.Equal((8, 4), (cost.Layers[0].InputSize, cost.Layers[0].OutputSize));
    }

    [Fact]
    public void Another_input_size_is_recomputed_through_the_layers()
    {
        using var graph = Tiny();
        var cost = GraphCost.Of(graph, 16); // conv 8x8, depthwise 8x8, separable 6x6, pool 3x3
        long expected = 3 * 3 * 3 * 4 * 64 + 3 * 3 * 4 * 64 + (3 * 3 * 4 + 4 * 8) * 36 + 8 * 5;
        Assert.Equal(expected, cost.MultiplyAccumulates);
        using var built = Tiny(16);
        Assert.Equal(GraphCost.Of(built), cost, new CostComparer());
    }

    [Fact]
    public void Flatten_then_dense_counts_every_input_feature()
    {
        Engine.TorchRuntime.EnsureInitialized();
        var b = new GraphBuilder("flat", 4, foldedBatchNorm: false);
        int x = b.Conv2D("conv", b.Input, 2, 1);
        x = b.Flatten("flatten", x);
        b.Dense("fc", x, 3);
        using var graph = b.Build();
        Assert.Equal(3 * 2 * 16 + 4 * 4 * 2 * 3, GraphCost.Of(graph).MultiplyAccumulates);
    }

    // Published multiply-accumulates per image (the "FLOPs" of the papers; see GraphCost), within 2%.
    [Theory]
    [InlineData("vgg16", 224, 15.3e9)]        // He et al. 2015: VGG-16 15.3 billion (conv layers; 15.47 with the dense top)
    [InlineData("vgg19", 224, 19.6e9)]        // He et al. 2015: VGG-19 19.6 billion
    [InlineData("resnet50", 224, 3.8e9)]      // He et al. 2015, Table 1: 3.8 x 10^9
    [InlineData("resnet101", 224, 7.6e9)]     // ibid.: 7.6 x 10^9
    [InlineData("resnet152", 224, 11.3e9)]    // ibid.: 11.3 x 10^9
    [InlineData("nasnet_mobile", 224, 564e6)] // Zoph et al. 2018, Table 2: NASNet-A (4 @ 1056) 564 M mult-adds
    [InlineData("nasnet_large", 331, 23.8e9)] // ibid.: NASNet-A (6 @ 4032) 23.8 B
    [InlineData("mobilenet_v2", 224, 300e6)]  // Sandler et al. 2018 / TF-slim: 300 M multiply-adds
    [InlineData("mobilenet_v2_1.4", 224, 582e6)] // TF-slim table: 582 M
    [InlineData("mobilenet", 224, 569e6)]     // Howard et al. 2017, Table 8: 569 M mult-adds
    public void Published_multiply_accumulates(string name, int size, double published)
    {
        var macs = NetworkFacts.Inspect(BackboneRegistry.Get(name), new ArchitectureOptions(size), n => GraphCost.Of(n).MultiplyAccumulates);
        Assert.InRange(macs / published, 0.98, 1.02);
    }

    [Fact]
    public void Vgg16_without_its_top_is_15_35_gmacs_and_its_dense_layers_add_the_rest()
    {
        Engine.TorchRuntime.EnsureInitialized();
        using var trunk = Vgg.Vgg16(new ArchitectureOptions(224));
        using var full = Vgg.Vgg16(new ArchitectureOptions(224, IncludeTop: true));
        long conv = GraphCost.Of(trunk).MultiplyAccumulates;
        Assert.Equal(15_346_630_656L, conv); // 224²·38592 + 112²·221184 + 56²·1474560 + 28²·5898240 + 14²·7077888
        Assert.Equal(conv + 25088L * 4096 + 4096L * 4096 + 4096L * 1000, GraphCost.Of(full).MultiplyAccumulates); // 15.47 G
    }

    sealed class CostComparer : IEqualityComparer<GraphCost>
    {
        public bool Equals(GraphCost? a, GraphCost? b) =>
            a!.MultiplyAccumulates == b!.MultiplyAccumulates && a.OtherOperations == b.OtherOperations && a.InputSize == b.InputSize
            && a.Layers.SequenceEqual(b.Layers);
        public int GetHashCode(GraphCost c) => c.MultiplyAccumulates.GetHashCode();
    }
}
