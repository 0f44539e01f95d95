using TorchSharp;
using static TorchSharp.torch;

namespace Graft.Heads;

/// <summary>
/// How unlike the training images a photo is (higher: less like them). <see cref="Msp"/> and <see cref="Energy"/> read
/// the head's logits; <see cref="Knn"/> and <see cref="Mahalanobis"/> the trunk's pooled features, compared with
/// statistics of the training images that the model file carries.
/// </summary>
public enum OodScore
{
    /// <summary>1 - the largest (calibrated) class probability (Hendrycks and Gimpel, 2017).</summary>
    Msp,
    /// <summary>The free energy -T log sum exp(logits / T) with the calibration's temperature (Liu et al., 2020).</summary>
    Energy,
    /// <summary>1 - the cosine similarity to the k-th most similar training image, in the trunk's pooled features (Sun et al., 2022).</summary>
    Knn,
    /// <summary>The squared Mahalanobis distance to the nearest class mean, per feature, with a shared shrunk covariance (Lee et al., 2018).</summary>
    Mahalanobis,
}

/// <summary>
/// "None of these": a score and the threshold above which a photo is called unknown, set on the validation images so
/// that <see cref="Acceptance"/> of them stay below it; the sizes of the statistics the model file carries for it.
/// </summary>
/// <param name="Score">Which score.</param>
/// <param name="Threshold">Scores above it are unknown.</param>
/// <param name="Acceptance">The share of the validation images at or below the threshold it was set for.</param>
/// <param name="Images">The validation images it was set on.</param>
public sealed record OodConfig(OodScore Score, double Threshold, double Acceptance, int Images)
{
    /// <summary>The trunk's channels: the features are the per-channel means of its feature map (0 for the logit scores).</summary>
    public int Channels { get; init; }
    /// <summary>Mahalanobis: the class means.</summary>
    public int Classes { get; init; }
    /// <summary>kNN: the training images kept as references (a seeded sample when there were more).</summary>
    public int References { get; init; }
    /// <summary>kNN: the k of the k-th nearest reference.</summary>
    public int Neighbours { get; init; }
    /// <summary>Mahalanobis: the principal directions of the covariance kept; the rest of its spectrum is one average variance.</summary>
    public int Rank { get; init; }

    /// <summary>Whether the score compares features with statistics of the training images (stored as tensors).</summary>
    public bool UsesFeatures => Score is OodScore.Knn or OodScore.Mahalanobis;

    /// <summary>Numbers the model file stores for it.</summary>
    public long StoredValues => Score switch
    {
        OodScore.Knn => (long)References * Channels,
        OodScore.Mahalanobis => (long)(Classes + Rank) * Channels + Rank + 1,
        _ => 0,
    };
}

/// <summary>
/// Computes an <see cref="OodConfig"/>'s score from the head's input and logits. Its statistics are buffers (saved with
/// the model's weights as "ood.*", and exported into the ONNX network): kNN's unit-length reference features [M, C], in
/// half precision (a model keeps up to a thousand: half the bytes, and cosine similarities within 1e-3);
/// Mahalanobis's class means [K, C], principal directions [r, C] (unit rows), their precision weights [r]
/// (1/variance - 1/rest) and the precision of the rest of the spectrum [1].
/// </summary>
public sealed class OodDetector : nn.Module
{
    /// <summary>The score and its threshold (set once the statistics have scored the validation images).</summary>
    public OodConfig Config { get; internal set; }
    public readonly Tensor? references, means, directions, weights, isotropic;

    /// <summary>A detector of this config: with the given statistics, or zeros of the declared shapes (to load into).</summary>
    public OodDetector(OodConfig config, Tensor? references = null, Tensor? means = null, Tensor? directions = null,
        Tensor? weights = null, Tensor? isotropic = null) : base("ood")
    {
        Config = config;
        switch (config.Score)
        {
            case OodScore.Knn:
                this.references = references?.to(float16) ?? zeros(config.References, config.Channels, dtype: float16);
                register_buffer(nameof(this.references), this.references);
                break;
            case OodScore.Mahalanobis:
                this.means = means ?? zeros(config.Classes, config.Channels);
                this.directions = directions ?? zeros(config.Rank, config.Channels);
                this.weights = weights ?? zeros(config.Rank);
                this.isotropic = isotropic ?? ones(1);
                register_buffer(nameof(this.means), this.means);
                register_buffer(nameof(this.directions), this.directions);
                register_buffer(nameof(this.weights), this.weights);
                register_buffer(nameof(this.isotropic), this.isotropic);
                break;
        }
    }

    /// <summary>
    /// The features the scores compare: the per-channel means of the trunk's map, from the head's input [N, C*P] (P
    /// positions per channel: 1 after global average pooling, H*W after flattening, channels outermost as torch flattens).
    /// </summary>
    public static Tensor ChannelMeans(Tensor headInput, int channels) =>
        headInput.shape[1] == channels ? headInput.alias() : headInput.reshape(headInput.shape[0], channels, -1).mean([2]);

    /// <summary>Each image's score [N] from the head's input [N, C*P] and its logits [N, outputs].</summary>
    public Tensor Score(Tensor headInput, Tensor logits, TemperatureScaling? temperature)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var z = TemperatureScaling.Apply(logits, temperature);
        if (z.shape[1] == 1) z = cat([zeros_like(z), z], 1); // a binary head's one logit is the two classes' [0, z]
        double t = temperature?.Temperature ?? 1;
        var score = Config.Score switch
        {
            OodScore.Msp => 1 - nn.functional.softmax(z, 1).max(1).values,
            OodScore.Energy => z.logsumexp(1).mul(-t),
            OodScore.Knn => Knn(Unit(ChannelMeans(headInput, Config.Channels))),
            _ => Mahalanobis(ChannelMeans(headInput, Config.Channels)),
        };
        return score.MoveToOuterDisposeScope();
    }

    /// <summary>Rows scaled to unit length (a zero row stays zero).</summary>
    public static Tensor Unit(Tensor rows) => rows.div(rows.norm(1, keepdim: true).clamp_min(1e-12));

    Tensor Knn(Tensor unit)
    {
        int k = Math.Min(Config.Neighbours, (int)references!.shape[0]);
        var similarity = unit.matmul(references.to(float32).t()).topk(k, dim: 1).values;
        return 1 - similarity.select(1, k - 1);
    }

    Tensor Mahalanobis(Tensor f)
    {
        var squared = f.square().sum(1, keepdim: true) - 2 * f.matmul(means!.t()) + means.square().sum(1).unsqueeze(0); // [N, K]
        var projected = f.matmul(directions!.t()).unsqueeze(1) - means.matmul(directions.t()).unsqueeze(0);      // [N, K, r]
        var distance = squared * isotropic! + projected.square().matmul(weights!);                                  // [N, K]
        return distance.min(1).values.div(Config.Channels);
    }
}
