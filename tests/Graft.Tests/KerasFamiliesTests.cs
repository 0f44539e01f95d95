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
        var pads = Windows.TorchPads(x64, (kernel, kernel), (stride, stride), Padding.Same);
        var y64 = nn.functional.conv2d(pads is null ? x64 : nn.functional.pad(x64, pads), conv.weight.detach().to(float64), conv.bias!.detach().to(float64), [stride, stride]);
        y64.backward([upstream.to(float64)]);
        Assert.True(Relative(y, y64) < 1e-5, $"output differs by {Relative(y, y64)}");
        Assert.True(Relative(x.grad!, x64.grad!) < 1e-5, $"input gradient differs by {Relative(x.grad!, x64.grad!)}");
    }

    static double Relative(Tensor actual, Tensor expected) =>
        (actual.detach().to(float64) - expected.detach()).abs().max().item<double>() / expected.detach().abs().max().item<double>();

    sealed class Tolerance(float epsilon) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= epsilon * Math.Max(1, Math.Abs(b));
        public int GetHashCode(float value) => 0;
    }
}
