namespace Graft.Audit;

/// <summary>An accuracy with its 95% Wilson score interval, on <see cref="Images"/> evaluated images.</summary>
internal sealed record Accuracy(double Value, double Low, double High, int Images)
{
    public static Accuracy Of(double value, int images)
    {
        var interval = Evaluation.Interval.Wilson(value, images);
        return new Accuracy(value, interval.Low, interval.High, images);
    }
}

/// <summary>A head trained on a fraction of the training images: accuracy overall and per class (mean of the repeats).</summary>
internal sealed record CurvePoint(double Fraction, int TrainImages, Accuracy Overall, IReadOnlyDictionary<string, Accuracy> PerClass);

/// <summary>Would more photos help: the curve, what it was evaluated on, and one sentence on what more data is likely to buy.</summary>
internal sealed record LearningCurveResult(string EvaluatedOn, int Repeats, IReadOnlyList<CurvePoint> Points, string Verdict);

/// <summary>
/// Accuracy of a linear head on cached features trained on 10, 25, 50 and 100% of the training images (stratified,
/// seeded repeats), on held-out images. The slope of the last doubling against its uncertainty says whether the
/// curve is still climbing.
/// </summary>
internal static class LearningCurve
{
    public static readonly double[] Fractions = [0.1, 0.25, 0.5, 1.0];

    /// <summary>
    /// The curve of heads on <paramref name="x"/>: training images drawn from the rows <paramref name="train"/>,
    /// evaluated on the rows <paramref name="held"/> (described by <paramref name="evaluatedOn"/>).
    /// </summary>
    public static LearningCurveResult Measure(float[][] x, int[] y, IReadOnlyList<string> classes, int[] train, int[] held, string evaluatedOn,
        int repeats, int seed, TorchSharp.torch.Device device)
    {
        var points = new List<CurvePoint>();
        foreach (var fraction in Fractions)
        {
            // The full set is the same images every time: repeats only vary the head's initialisation, so one suffices.
            int runs = fraction < 1 ? repeats : 1;
            var correct = new double[held.Length];
            int trainImages = 0;
            for (int r = 0; r < runs; r++)
            {
                var subset = Subsample(train, y, fraction, seed + r);
                trainImages = subset.Length;
                var p = Probes.FitPredict(x, y, classes.Count, subset, held, seed + r, device);
                for (int k = 0; k < held.Length; k++) correct[k] += ArgMax(p[k]) == y[held[k]] ? 1.0 / runs : 0;
            }
            var perClass = Enumerable.Range(0, classes.Count).Where(c => held.Any(i => y[i] == c)).ToDictionary(c => classes[c], c =>
            {
                var mine = Enumerable.Range(0, held.Length).Where(k => y[held[k]] == c).ToList();
                return Accuracy.Of(mine.Average(k => correct[k]), mine.Count);
            });
            points.Add(new CurvePoint(fraction, trainImages, Accuracy.Of(correct.Average(), held.Length), perClass));
        }
        return new LearningCurveResult(evaluatedOn, repeats, points, Verdict(points));
    }

    /// <summary>
    /// The last doubling's gain against the 95% uncertainty of a difference of two accuracies on these images
    /// (binomial; conservative, as both are measured on the same images).
    /// </summary>
    static string Verdict(IReadOnlyList<CurvePoint> points)
    {
        var (half, full) = (points[^2], points[^1]);
        double gain = full.Overall.Value - half.Overall.Value;
        int n = full.Overall.Images;
        double margin = 1.96 * Math.Sqrt((Variance(half.Overall.Value) + Variance(full.Overall.Value)) / Math.Max(1, n));
        string step = $"Going from {half.TrainImages} to {full.TrainImages} training images changed accuracy by {100 * gain:+0.0;-0.0} points (±{100 * margin:0.0} at 95%)";
        if (full.Overall.Value >= 0.995) return $"{step}; at {100 * full.Overall.Value:0.0}% there is little left for more photos to buy.";
        if (gain > margin)
        {
            var climbing = full.PerClass.OrderByDescending(c => c.Value.Value - half.PerClass[c.Key].Value).First().Key;
            return $"{step}: still climbing, so more photos are likely to help (most for {climbing}), though the next doubling usually buys less than this one.";
        }
        if (margin > 0.05)
            return $"{step}, within noise: {n} held-out images are too few to tell whether more photos would help; more validation images would tell.";
        return $"{step}, within noise: the curve has flattened, so more photos of the same kind are unlikely to buy much; fixing labels or adding harder, more varied photos may.";
    }

    static double Variance(double p) => p * (1 - p);

    /// <summary>round(fraction x n) images of every class (at least one), drawn with a seeded shuffle.</summary>
    static int[] Subsample(int[] rows, int[] y, double fraction, int seed)
    {
        var rng = new Random(seed);
        return rows.GroupBy(i => y[i]).OrderBy(g => g.Key).SelectMany(g =>
        {
            var members = g.ToArray();
            rng.Shuffle(members);
            return members.Take(Math.Max(1, (int)Math.Round(fraction * members.Length)));
        }).ToArray();
    }

    static int ArgMax(float[] p)
    {
        int best = 0;
        for (int j = 1; j < p.Length; j++) if (p[j] > p[best]) best = j;
        return best;
    }
}
