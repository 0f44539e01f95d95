using Graft.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Graft.Backbones.Layers;

/// <summary>Keras Activation('relu'|'softmax'|…) or ReLU(max_value=6): <see cref="KerasClass"/> says which.</summary>
internal sealed class ActivationLayer(string name, Activation activation, string kerasClass = "Activation") : Layer(name)
{
    public Activation Activation { get; } = activation;
    public override string KerasClass { get; } = kerasClass;
    public override Tensor forward(Tensor[] inputs) => Apply(inputs[0], Activation);
}

/// <summary>Keras Add: the element-wise sum of its inputs (residual connections).</summary>
internal sealed class Add(string name) : Layer(name)
{
    public override string KerasClass => "Add";
    public override Tensor forward(Tensor[] inputs)
    {
        var sum = inputs[0].add(inputs[1]);
        foreach (var more in inputs.Skip(2)) sum.add_(more);
        return sum;
    }
}

/// <summary>Keras Concatenate on the channel axis (Keras's axis -1 in NHWC is axis 1 here).</summary>
internal sealed class Concatenate(string name) : Layer(name)
{
    public override string KerasClass => "Concatenate";
    public override int OutputChannels(int[] inputs, int size) => inputs.Sum();
    public override Tensor forward(Tensor[] inputs) => cat(inputs, 1);
}

/// <summary>Keras Flatten of an NHWC map: positions first, channels fastest (what a Keras Dense after it was trained on).</summary>
internal sealed class Flatten(string name) : Layer(name)
{
    public override string KerasClass => "Flatten";
    public override int OutputSize(int input) => 0;
    public override int OutputChannels(int[] inputs, int size) => inputs[0] * size * size;
    public override Tensor forward(Tensor[] inputs) => inputs[0].permute(0, 2, 3, 1).flatten(1);
}

/// <summary>
/// Keras Dense: kernel In x Out ([Out, In] here), bias, activation. On a feature map it applies to the channels at
/// every position (Keras's last axis; ConvNeXt's pointwise layers), which in NCHW is a 1x1 convolution.
/// </summary>
internal sealed class Dense : Layer
{
    public readonly Parameter weight, bias;
    public Activation Activation { get; }

    public Dense(string name, int inFeatures, int units, Activation activation) : base(name)
    {
        Activation = activation;
        weight = new Parameter(empty(units, inFeatures));
        nn.init.kaiming_uniform_(weight, Math.Sqrt(5)); // libtorch's initialisation of linear layers
        bias = new Parameter(empty(units).uniform_(-1 / Math.Sqrt(inFeatures), 1 / Math.Sqrt(inFeatures)));
        RegisterComponents();
    }

    public int Units => (int)weight.shape[0];
    public override string KerasClass => "Dense";
    public override IReadOnlyList<(string, long[])> KerasWeights => [("kernel", [weight.shape[1], Units]), ("bias", [Units])];
    public override int OutputChannels(int[] inputs, int size) => Units;

    public override void Load(IReadOnlyList<WeightArray> arrays)
    {
        Copy(weight, arrays[0], 1, 0);
        Copy(bias, arrays[1]);
    }

    public override Tensor forward(Tensor[] inputs) => Activate(inputs[0].dim() == 4
        ? nn.functional.conv2d(inputs[0], weight.view(Units, -1, 1, 1), bias)
        : nn.functional.linear(inputs[0], weight, bias), Activation);
}

/// <summary>
/// Keras Dropout: identity at inference. With <paramref name="perSample"/> it is Keras's Dropout with noise_shape
/// (None, 1, 1, 1), the EfficientNets' stochastic depth (whole residual branches dropped per image): Graft keeps that
/// one off in training too, as Keras's transfer-learning guide runs a pretrained base with training=False.
/// </summary>
internal sealed class Dropout(string name, double rate, bool perSample = false) : Layer(name)
{
    public double Rate { get; } = rate;
    public bool PerSample { get; } = perSample;
    public override string KerasClass => "Dropout";
    public override Tensor forward(Tensor[] inputs) =>
        training && Rate > 0 && !PerSample ? nn.functional.dropout(inputs[0], Rate, true) : inputs[0].alias();
}

/// <summary>Keras Reshape between a vector (C) and a 1x1 map (1, 1, C), the only reshapes Keras applications use (MobileNet's top).</summary>
internal sealed class Reshape(string name, bool toMap) : Layer(name)
{
    public bool ToMap { get; } = toMap;
    public override string KerasClass => "Reshape";
    public override int OutputSize(int input) => ToMap ? 1 : 0;
    public override Tensor forward(Tensor[] inputs) => ToMap
        ? inputs[0].reshape(inputs[0].shape[0], -1, 1, 1)
        : inputs[0].reshape(inputs[0].shape[0], -1);
}
