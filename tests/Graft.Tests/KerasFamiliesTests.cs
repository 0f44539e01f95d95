using System.Globalization;
using Graft.Backbones;
using Graft.Backbones.Architectures;
using Graft.Backbones.Layers;
using Graft.Evaluation;
using Graft.Export;
using Graft.Heads;
using Graft.Runtime;
using static TorchSharp.torch;

namespace Graft.Tests;

/// <summary>
/// Keras's newer families (EfficientNet, EfficientNetV2, MobileNetV3, ConvNeXt): their sizes against Keras's and the
/// papers' figures, and their layer primitives against arithmetic done by hand. The tfjs reference
/// (<see cref="KerasReferenceTests"/>) checks their outputs.
/// </summary>
public class KerasFamiliesTests
{
    /// <summary>
    /// Multiply-accumulates with the top at the default size within the rounding of the published figure, where it
    /// agrees (counted on the meta device, without memory): the EfficientNet paper's 0.70 (B1), 4.2 (B4), 9.9 (B5) and
    /// 37 (B7) billion are 0.69, 4.39, 10.27 and 37.75 by this count, EfficientNetV2's 8.8 (S), 24 (M) and 53 (L) are
    /// 8.37, 24.58 and 56.08 (its B0–B3 agree), and MobileNetV3 Small's 56 M (Howard et al. 2019; TF-slim's table says
    /// 66 M) is 56.5 M. (Their parameter totals are in <see cref="ApplicationsTests"/>.)
    /// </summary>
    [Theory]
    [InlineData("efficientnet_b0", "0.39")] // Tan & Le 2019, Table 2
    [InlineData("efficientnet_b2", "1.0")]
    [InlineData("efficientnet_b3", "1.8")]
    [InlineData("efficientnet_b6", "19")]
    [InlineData("efficientnet_v2_b0", "0.72")] // Tan & Le 2021
    [InlineData("efficientnet_v2_b1", "1.2")]
    [InlineData("efficientnet_v2_b2", "1.7")]
    [InlineData("efficientnet_v2_b3", "3.0")]
    [InlineData("mobilenet_v3_large", "0.217")] // TF-slim's table (Keras's docstring): 217 M
    [InlineData("convnext_tiny", "4.5")] // Liu et al. 2022, Table 1 (FLOPs at 224)
    [InlineData("convnext_small", "8.7")]
    [InlineData("convnext_base", "15.4")]
    [InlineData("convnext_large", "34.4")]
    [InlineData("convnext_xlarge", "60.9")]
    public void Published_multiply_accumulates_with_the_top(string name, string publishedGmacs)
    {
        var config = BackboneRegistry.Get(name);
        double gmacs = NetworkFacts.Inspect(config, new ArchitectureOptions(config.InputSize, IncludeTop: true), network =>
        {
            Assert.Contains(network.Nodes, n => n.Name == (config.FeatureLayerWithTop ?? config.FeatureLayer));
            return GraphCost.Of(network).GigaMacs;
        });
        var published = decimal.Parse(publishedGmacs, CultureInfo.InvariantCulture);
        double halfUnit = 0.5 * Math.Pow(10, -BitConverter.GetBytes(decimal.GetBits(published)[3])[2]);
        Assert.InRange(gmacs, (double)published - halfUnit, (double)published + halfUnit);
    }

    [Theory]
    [InlineData("efficientnet_b0")]
    [InlineData("mobilenet_v3_small")]
    public void Summary_totals_what_the_layers_hold(string name)
    {
        var config = BackboneRegistry.Get(name);
        using var backbone = Backbone.Create(config, new ArchitectureOptions(config.InputSize, IncludeTop: true), config.Spec(config.InputSize));
        foreach (var p in backbone.Network.parameters()) p.requires_grad = true;
        var summary = ModelSummary.Of(name, backbone.Network, config.InputSize);
        Assert.Equal(backbone.Network.Layers.Sum(l => l.parameters().Sum(p => p.numel()) + l.StatisticsCount), summary.Total);
        Assert.Equal(backbone.Network.Layers.Sum(l => l.StatisticsCount), summary.NonTrainable);
    }

    [Fact]
    public void Preprocessing_layers_compute_what_keras_does()
    {
        Engine.TorchRuntime.EnsureInitialized();
        using var x = tensor(new float[] { 0, 51, 255, 128 }).view(1, 1, 2, 2).expand(1, 3, 2, 2).contiguous();
        using var rescale = new Rescaling("r", [1 / 127.5f], [-1f]);
        Assert.Equal(new[] { -1f, 51 / 127.5f - 1, 1f, 128 / 127.5f - 1 }, rescale.call([x])[0, 0].flatten().data<float>().ToArray(), new Tolerance(1e-6f));
        using var normalize = new Normalization("n", [10, 20, 30], [4, 9, 0], stored: true);
        var y = normalize.call([x]);
        Assert.Equal((51 - 20) / 3f, y[0, 1, 0, 1].item<float>(), 5);
        Assert.Equal((255 - 30) / 1e-7f, y[0, 2, 1, 0].item<float>(), 0); // max(√variance, 1e-7)
        Assert.Equal(7, normalize.StatisticsCount);
        Assert.Equal(["mean", "variance", "count"], normalize.KerasWeights.Select(w => w.Item1));
        Assert.Empty(new Normalization("c", [0, 0, 0], [1, 1, 1], stored: false).KerasWeights);
    }

    [Fact]
    public void Layer_normalization_normalizes_each_position_over_its_channels()
    {
        Engine.TorchRuntime.EnsureInitialized();
        using var norm = new LayerNormalization("ln", 2, 1e-6);
        norm.Load([new("gamma", [2], [2, 3]), new("beta", [2], [1, 0])]);
        // At one position the channels are 1 and 3: mean 2, variance 1 → (-1, 1) → gamma, beta → (-1, 3).
        using var map = tensor(new float[] { 1, 10, 3, 20 }).view(1, 2, 1, 2);
        var y = norm.call([map]);
        Assert.Equal(new[] { -1f, 3f }, y[0, .., 0, 0].data<float>().ToArray(), new Tolerance(1e-5f));
        Assert.Equal(new[] { -1f, 3f }, y[0, .., 0, 1].data<float>().ToArray(), new Tolerance(1e-5f));
        using var vector = tensor(new float[] { 1, 3 }).view(1, 2);
        Assert.Equal(new[] { -1f, 3f }, norm.call([vector]).data<float>().ToArray(), new Tolerance(1e-5f));
    }

    [Fact]
    public void Squeeze_excitation_gates_and_hard_swish_compute_what_keras_does()
    {
        Engine.TorchRuntime.EnsureInitialized();
        using var map = arange(8, dtype: float32).view(1, 2, 2, 2);
        using var gate = tensor(new float[] { 0.5f, 2 }).view(1, 2, 1, 1);
        using var product = new Multiply("m").call([map, gate]);
        Assert.Equal(new[] { 0f, 0.5f, 1, 1.5f, 8, 10, 12, 14 }, product.flatten().data<float>().ToArray());
        using var swish = new ActivationLayer("a", Activation.HardSwish).call([tensor(new float[] { -4, -1, 0, 1, 4 })]);
        Assert.Equal(new[] { 0f, -1 / 3f, 0, 2 / 3f, 4 }, swish.data<float>().ToArray(), new Tolerance(1e-6f));
        using var scale = new LayerScale("s", 2);
        scale.Load([new("gamma", [2], [3, -1])]);
        Assert.Equal(new[] { 0f, 3, 6, 9, -4, -5, -6, -7 }, scale.call([map]).flatten().data<float>().ToArray());
    }

    /// <summary>
    /// libtorch's float32 convolution gets windows over 17+ channels that are not a multiple of 16 wrong on some CPUs
    /// (this project's): Conv2D widens them with zero channels. Its outputs and input gradients equal float64's.
    /// </summary>
    [Theory]
    [InlineData(24, 24, 3, 1)] // EfficientNetV2-S's first fused blocks
    [InlineData(56, 32, 3, 2)]
    [InlineData(32, 40, 3, 1)] // 40 outputs: the input gradient is a convolution over 40 channels
    [InlineData(3, 24, 3, 2)]
    public void Convolutions_over_uneven_channel_counts_are_exact(int inChannels, int filters, int kernel, int stride)
    {
        Engine.TorchRuntime.EnsureInitialized();
        manual_seed(11);
        using var conv = new Conv2D("c", inChannels, filters, (kernel, kernel), (stride, stride), Padding.Same, useBias: true, Activation.Linear);
        using var x = randn(2, inChannels, 33, 33).requires_grad_(true);
        using var upstream = randn(conv.call([x.detach()]).shape);
        var y = conv.call([x]);
        y.backward([upstream]);

        using var x64 = x.detach().to(float64).requires_grad_(true);
        var pads = Graft.Backbones.Layers.Windows.TorchPads(x64, (kernel, kernel), (stride, stride), Padding.Same);
        var y64 = nn.functional.conv2d(pads is null ? x64 : nn.functional.pad(x64, pads), conv.weight.detach().to(float64), conv.bias!.detach().to(float64), [stride, stride]);
        y64.backward([upstream.to(float64)]);
        Assert.True(Relative(y, y64) < 1e-5, $"output differs by {Relative(y, y64)}");
        Assert.True(Relative(x.grad!, x64.grad!) < 1e-5, $"input gradient differs by {Relative(x.grad!, x64.grad!)}");
    }

    /// <summary>
    /// Their trunks quantize: convolutions (grouped ones and ConvNeXt's pointwise dense layers too) in int8, the
    /// preprocessing, squeeze-excitation and normalization layers as float islands. Calibrated on the fixtures' two
    /// images, the int8 trunk's pooled features stay close to the float trunk's (random weights: a check of the
    /// mapping, not of accuracy).
    /// </summary>
    [Theory]
    [InlineData("efficientnet_b0_top", 0.99)]
    [InlineData("efficientnet_v2_b0_top", 0.99)]
    [InlineData("mobilenet_v3_small_top", 0.99)]
    [InlineData("convnext_tiny_67", 0.99)]
    public void Trunks_quantize_to_int8(string testCase, double minimum)
    {
        using var backbone = KerasReferenceTests.Load(testCase, "keras_legacy");
        using var scope = NewDisposeScope();
        var images = KerasReference.Read(testCase, "input");
        int size = (int)images.shape[2];
        Int8Quantization.CheckSupported(backbone.Trunk, testCase);
        var observer = new Int8Calibration.Observer();
        observer.Observe(backbone.Trunk, images);
        using var plain = new OnnxTrunkRunner(backbone.Trunk, size);
        using var int8 = TrunkRunners.CreateInt8(backbone.Trunk, size, Pooling.Gap, observer.Result());
        var expected = plain.Features(images);
        var actual = int8.Features(images);
        for (int i = 0; i < 2; i++)
        {
            double cosine = nn.functional.cosine_similarity(expected[i].unsqueeze(0), actual[i].unsqueeze(0)).item<float>();
            Assert.True(cosine > minimum, $"image {i}: cosine similarity {cosine:0.0000}");
        }
    }

    static double Relative(Tensor actual, Tensor expected) =>
        (actual.detach().to(float64) - expected.detach()).abs().max().item<double>() / expected.detach().abs().max().item<double>();

    sealed class Tolerance(float epsilon) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= epsilon * Math.Max(1, Math.Abs(b));
        public int GetHashCode(float value) => 0;
    }
}
