using Graft.Heads;
using static TorchSharp.torch;

namespace Graft.Evaluation;

/// <summary>
/// How training makes confidence a probability and sets the "none of these" threshold (both on the validation images).
/// The default score is the one that separated the shared data sets' photos from each other best (docs/benchmarks.md).
/// </summary>
public sealed record TrustOptions
{
    /// <summary>Fit temperature scaling and the unknown threshold only on at least this many readable validation images.</summary>
    public int MinValidationImages { get; init; } = 20;
    /// <summary>The out-of-distribution score the model carries.</summary>
    public OodScore Score { get; init; } = OodScore.Knn;
    /// <summary>The share of the validation images (photos like the training ones) that must stay known: it sets the threshold.</summary>
    public double Acceptance { get; init; } = 0.95;
    /// <summary>kNN: the k-th most similar training image is compared.</summary>
    public int Neighbours { get; init; } = 5;
    /// <summary>kNN: at most this many training images are kept as references (a seeded sample of more).</summary>
    public int MaxReferences { get; init; } = 1000;
    /// <summary>Mahalanobis: principal directions of the covariance kept (the rest of the spectrum is averaged).</summary>
    public int Rank { get; init; } = 64;
    /// <summary>Seeds the sample of kNN references.</summary>
    public int Seed { get; init; } = 42;
}

/// <summary>How one score separates photos like the training ones (in) from photos of something else (out).</summary>
/// <param name="Auroc">The probability that an out photo scores above an in photo (ties count half): 1 separates perfectly, 0.5 is chance.</param>
/// <param name="FalseAcceptance">The share of out photos at or below the threshold: given a class although they belong to none.</param>
/// <param name="Acceptance">The share of in photos at or below the threshold (set for the validation images; measured here on others).</param>
internal sealed record OodMeasurement(OodScore Score, double Auroc, double FalseAcceptance, double Acceptance, double Threshold, int In, int Out);

/// <summary>
/// "None of these": the statistics of each <see cref="OodScore"/> from the training images' features, the threshold from
/// the validation images' scores, and the measures of how well a score separates two sets of photos.
/// </summary>
internal static class OutOfDistribution
{
    /// <summary>
    /// A detector with <paramref name="score"/>'s statistics of the training images (their per-channel trunk features
    /// <paramref name="features"/> and classes); its threshold is set by <see cref="SetThreshold"/>.
    /// </summary>
    public static OodDetector Fit(OodScore score, float[][] features, int[] labels, int classes, TrustOptions options)
    {
        Engine.TorchRuntime.EnsureInitialized();
        int channels = features[0].Length;
        var config = new OodConfig(score, 0, options.Acceptance, 0) { Channels = score is OodScore.Knn or OodScore.Mahalanobis ? channels : 0 };
        switch (score)
        {
            case OodScore.Knn:
            {
                var order = Enumerable.Range(0, features.Length).ToArray();
                new Random(options.Seed).Shuffle(order);
                var kept = order.Take(Math.Min(options.MaxReferences, features.Length)).Order().ToArray();
                using var rows = tensor(kept.SelectMany(i => features[i]).ToArray(), [kept.Length, channels], device: CPU);
                using var unit = OodDetector.Unit(rows);
                return new OodDetector(config with { References = kept.Length, Neighbours = Math.Min(options.Neighbours, kept.Length) }, references: unit);
            }
            case OodScore.Mahalanobis:
                return FitMahalanobis(config, features, labels, classes, options.Rank);
            default:
                return new OodDetector(config);
        }
    }

    /// <summary>
    /// Class means and a shared covariance, shrunk towards its average variance by Ledoit and Wolf's estimate (there are
    /// usually fewer images than channels); its top <paramref name="rank"/> principal directions are kept exactly and the
    /// rest of the spectrum as one average variance, so the precision matrix is (rank + 1) numbers per channel, not C.
    /// </summary>
    static OodDetector FitMahalanobis(OodConfig config, float[][] features, int[] labels, int classes, int rank)
    {
        using var scope = NewDisposeScope();
        int n = features.Length, c = config.Channels;
        rank = Math.Clamp(rank, 1, c - 1);
        var x = tensor(features.SelectMany(r => r).ToArray(), [n, c], device: CPU).to(float64);
        var y = tensor(labels.Select(l => (long)l).ToArray(), device: CPU);
        var sums = zeros(classes, c, dtype: float64, device: CPU).index_add_(0, y, x, 1);
        var counts = zeros(classes, dtype: float64, device: CPU).index_add_(0, y, ones(n, dtype: float64, device: CPU), 1).clamp_min(1);
        var means = sums / counts.unsqueeze(1);
        var centred = x - means.index_select(0, y);
        var covariance = centred.t().matmul(centred) / n;

        // Ledoit and Wolf (2004), as scikit-learn's ledoit_wolf_shrinkage computes it.
        var squares = centred.square();
        var variances = squares.sum(0L) / n; // 0L: a literal 0 would be the ScalarType overload
        double mu = variances.sum().item<double>() / c;
        double betaSum = squares.t().matmul(squares).sum().item<double>();
        double deltaSum = covariance.square().sum().item<double>();
        double beta = (betaSum / n - deltaSum) / ((double)c * n);
        double delta = (deltaSum - 2 * mu * variances.sum().item<double>() + c * mu * mu) / c;
        double shrinkage = delta <= 0 ? 0 : Math.Clamp(Math.Min(beta, delta) / delta, 0, 1);

        var (eigenvalues, eigenvectors) = linalg.eigh(covariance); // ascending
        var spectrum = eigenvalues.clamp_min(0) * (1 - shrinkage) + shrinkage * mu;
        var top = spectrum.narrow(0, c - rank, rank);
        double rest = Math.Max((spectrum.sum().item<double>() - top.sum().item<double>()) / (c - rank), 1e-12 * Math.Max(mu, 1e-30));
        var directions = eigenvectors.narrow(1, c - rank, rank).t();
        var weights = top.reciprocal() - 1 / rest;
        var detector = new OodDetector(config with { Classes = classes, Rank = rank },
            means: means.to(float32).MoveToOuterDisposeScope(), directions: directions.to(float32).contiguous().MoveToOuterDisposeScope(),
            weights: weights.to(float32).MoveToOuterDisposeScope(), isotropic: tensor(new[] { (float)(1 / rest) }, device: CPU).MoveToOuterDisposeScope());
        return detector;
    }

    /// <summary>Sets the threshold so that <see cref="OodConfig.Acceptance"/> of the validation images' scores lie at or below it.</summary>
    public static void SetThreshold(OodDetector detector, IReadOnlyList<double> validationScores) =>
        detector.Config = detector.Config with { Threshold = Threshold(validationScores, detector.Config.Acceptance), Images = validationScores.Count };

    /// <summary>The smallest score with at least <paramref name="acceptance"/> of <paramref name="scores"/> at or below it.</summary>
    public static double Threshold(IReadOnlyList<double> scores, double acceptance)
    {
        var sorted = scores.Order().ToArray();
        int index = Math.Clamp((int)Math.Ceiling(acceptance * sorted.Length - 1e-9) - 1, 0, sorted.Length - 1);
        return sorted[index];
    }

    /// <summary>The area under the ROC curve of telling <paramref name="outside"/> (positives, higher scores) from <paramref name="inside"/>, by ranks (ties count half).</summary>
    public static double Auroc(IReadOnlyList<double> inside, IReadOnlyList<double> outside)
    {
        var all = inside.Select(s => (Score: s, Out: false)).Concat(outside.Select(s => (Score: s, Out: true))).OrderBy(t => t.Score).ToArray();
        double rankSum = 0;
        for (int i = 0; i < all.Length;)
        {
            int j = i;
            while (j < all.Length && all[j].Score == all[i].Score) j++;
            double rank = (i + 1 + j) / 2.0; // the mean of ranks i+1..j
            for (int t = i; t < j; t++) if (all[t].Out) rankSum += rank;
            i = j;
        }
        double m = outside.Count, n = inside.Count;
        return m == 0 || n == 0 ? double.NaN : (rankSum - m * (m + 1) / 2) / (m * n);
    }

    /// <summary>AUROC, false acceptance and acceptance of one score at its threshold.</summary>
    public static OodMeasurement Measure(OodConfig config, IReadOnlyList<double> inside, IReadOnlyList<double> outside) =>
        new(config.Score, Auroc(inside, outside), Share(outside, config.Threshold), Share(inside, config.Threshold), config.Threshold, inside.Count, outside.Count);

    static double Share(IReadOnlyList<double> scores, double threshold) => scores.Count == 0 ? double.NaN : scores.Count(s => s <= threshold) / (double)scores.Count;
}
