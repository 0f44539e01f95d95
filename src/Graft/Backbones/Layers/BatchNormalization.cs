using Graft.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Graft.Backbones.Layers;

/// <summary>
/// Keras BatchNormalization over channels: arrays gamma (unless scale=False, as in InceptionV3), beta (unless
/// center=False), moving_mean, moving_variance; its own epsilon (1e-3 by default, 1.001e-5 in ResNet50) and
/// Keras's momentum 0.99 (torch's 0.01). A frozen layer runs in inference mode (see Freezing).
/// </summary>
internal sealed class BatchNormalization : Layer
{
    public readonly Parameter? gamma, beta;
    public readonly Tensor running_mean, running_var;
    public double Epsilon { get; }
    const double Momentum = 0.01;

    public BatchNormalization(string name, int channels, double epsilon = 1e-3, bool center = true, bool scale = true) : base(name)
    {
        Epsilon = epsilon;
        if (scale) gamma = new Parameter(ones(channels));
        if (center) beta = new Parameter(zeros(channels));
        running_mean = zeros(channels);
        running_var = ones(channels);
        if (gamma is not null) register_parameter(nameof(gamma), gamma);
        if (beta is not null) register_parameter(nameof(beta), beta);
        register_buffer(nameof(running_mean), running_mean);
        register_buffer(nameof(running_var), running_var);
    }

    public int Channels => (int)running_mean.shape[0];
    public override string KerasClass => "BatchNormalization";
    public override long StatisticsCount => 2L * Channels;

    public override IReadOnlyList<(string, long[])> KerasWeights
    {
        get
        {
            var arrays = new List<(string, long[])>();
            if (gamma is not null) arrays.Add(("gamma", [Channels]));
            if (beta is not null) arrays.Add(("beta", [Channels]));
            arrays.Add(("moving_mean", [Channels]));
            arrays.Add(("moving_variance", [Channels]));
            return arrays;
        }
    }

    public override void Load(IReadOnlyList<WeightArray> arrays)
    {
        int i = 0;
        if (gamma is not null) Copy(gamma, arrays[i++]);
        if (beta is not null) Copy(beta, arrays[i++]);
        Copy(running_mean, arrays[i++]);
        Copy(running_var, arrays[i]);
    }

    public override Tensor forward(Tensor[] inputs) =>
        nn.functional.batch_norm(inputs[0], running_mean, running_var, gamma, beta, training, Momentum, Epsilon);
}
