using Graft.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Graft.Backbones.Layers;

/// <summary>
/// Keras Rescaling: x · scale + offset, one value for every channel or one per channel. The same arithmetic is what
/// Keras 3 records for an operator between a tensor and a constant (MobileNetV3's hard sigmoid: x + 3, then · 1/6),
/// which its summary lists as an Add or Multiply node: <see cref="KerasClass"/> says which.
/// </summary>
internal sealed class Rescaling : Layer
{
    public IReadOnlyList<float> Scale { get; }
    public IReadOnlyList<float> Offset { get; }
    public override string KerasClass { get; }
    readonly Tensor _scale, _offset;

    public Rescaling(string name, float[] scale, float[] offset, string kerasClass = "Rescaling") : base(name)
    {
        Scale = scale;
        Offset = offset;
        KerasClass = kerasClass;
        _scale = PerChannel(scale);
        _offset = PerChannel(offset);
        register_buffer("scale", _scale, persistent: false);
        register_buffer("offset", _offset, persistent: false);
    }

    /// <summary>Keras 3's x + c node (class Add).</summary>
    public static Rescaling AddConstant(string name, float value) => new(name, [1f], [value], "Add");

    /// <summary>Keras 3's x · c node (class Multiply).</summary>
    public static Rescaling MultiplyConstant(string name, float value) => new(name, [value], [0f], "Multiply");

    /// <summary>Values for [N, C, H, W] (one or C of them), broadcast over the batch and the positions.</summary>
    internal static Tensor PerChannel(float[] values) => tensor(values).view(1, -1, 1, 1);

    public override Tensor forward(Tensor[] inputs) => inputs[0].mul(_scale).add_(_offset);
}

/// <summary>
/// Keras Normalization on the channel axis: (x − mean) / max(√variance, 1e-7). EfficientNet's stores mean, variance
/// and count as weights (its ImageNet file holds the standard deviations as the variance, which Keras makes up for
/// with a Rescaling after it); EfficientNetV2's and ConvNeXt's are given their mean and variance and store nothing.
/// </summary>
internal sealed class Normalization : Layer
{
    public readonly Tensor mean, variance;
    public bool Stored { get; }
    const double Epsilon = 1e-7; // Keras's backend.epsilon()

    /// <summary>A normalization whose statistics come from the weight file (<paramref name="stored"/>), or constants.</summary>
    public Normalization(string name, float[] mean, float[] variance, bool stored) : base(name)
    {
        Stored = stored;
        this.mean = tensor(mean);
        this.variance = tensor(variance);
        register_buffer(nameof(mean), this.mean, persistent: stored);
        register_buffer(nameof(variance), this.variance, persistent: stored);
    }

    public int Channels => (int)mean.shape[0];
    public override string KerasClass => "Normalization";
    public override long StatisticsCount => Stored ? 2L * Channels + 1 : 0;
    public override IReadOnlyList<(string, long[])> KerasWeights => Stored ? [("mean", [Channels]), ("variance", [Channels]), ("count", [])] : [];

    /// <summary>Mean and variance; the count of images they were adapted on is not needed.</summary>
    public override void Load(IReadOnlyList<WeightArray> arrays)
    {
        Copy(mean, arrays[0]);
        Copy(variance, arrays[1]);
    }

    /// <summary>The divisor per channel, max(√variance, 1e-7).</summary>
    public Tensor Std() => variance.sqrt().clamp_min(Epsilon);

    public override Tensor forward(Tensor[] inputs)
    {
        using var std = Std();
        return inputs[0].sub(mean.view(1, -1, 1, 1)).div_(std.view(1, -1, 1, 1));
    }
}

/// <summary>
/// Keras Multiply of two inputs, broadcast: squeeze-excitation scales a map by a [C, 1, 1] gate (the only use in
/// Keras applications).
/// </summary>
internal sealed class Multiply(string name) : Layer(name)
{
    public override string KerasClass => "Multiply";
    public override Tensor forward(Tensor[] inputs) => inputs[0].mul(inputs[1]);
}

/// <summary>ConvNeXt's LayerScale: each channel times a trained factor gamma (Keras stores one array of C).</summary>
internal sealed class LayerScale : Layer
{
    public readonly Parameter gamma;

    public LayerScale(string name, int channels, double initValue = 1e-6) : base(name)
    {
        gamma = new Parameter(full(channels, initValue));
        RegisterComponents();
    }

    public int Channels => (int)gamma.shape[0];
    public override string KerasClass => "LayerScale";
    public override IReadOnlyList<(string, long[])> KerasWeights => [("gamma", [Channels])];
    public override void Load(IReadOnlyList<WeightArray> arrays) => Copy(gamma, arrays[0]);

    public override Tensor forward(Tensor[] inputs) =>
        inputs[0].mul(inputs[0].dim() == 4 ? gamma.view(1, -1, 1, 1) : gamma);
}

/// <summary>
/// Keras LayerNormalization over the channel axis (Keras's last axis: at every position of a map, or of a vector):
/// (x − mean) / √(variance + ε) · gamma + beta, statistics over the channels. ConvNeXt's ε is 1e-6.
/// </summary>
internal sealed class LayerNormalization : Layer
{
    public readonly Parameter gamma, beta;
    public double Epsilon { get; }

    public LayerNormalization(string name, int channels, double epsilon) : base(name)
    {
        Epsilon = epsilon;
        gamma = new Parameter(ones(channels));
        beta = new Parameter(zeros(channels));
        RegisterComponents();
    }

    public int Channels => (int)gamma.shape[0];
    public override string KerasClass => "LayerNormalization";
    public override IReadOnlyList<(string, long[])> KerasWeights => [("gamma", [Channels]), ("beta", [Channels])];

    public override void Load(IReadOnlyList<WeightArray> arrays)
    {
        Copy(gamma, arrays[0]);
        Copy(beta, arrays[1]);
    }

    public override Tensor forward(Tensor[] inputs)
    {
        var x = inputs[0];
        if (x.dim() == 2) return nn.functional.layer_norm(x, [Channels], gamma, beta, Epsilon);
        using var scope = NewDisposeScope();
        var (variance, mean) = var_mean(x, 1, unbiased: false, keepdim: true);
        var normalized = x.sub(mean).mul(variance.add(Epsilon).rsqrt()); // out of place: fine-tuning differentiates through it
        return normalized.mul(gamma.view(1, -1, 1, 1)).add(beta.view(1, -1, 1, 1)).MoveToOuterDisposeScope();
    }
}
