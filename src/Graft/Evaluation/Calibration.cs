using Graft.Heads;

namespace Graft.Evaluation;

/// <summary>One bin of a reliability diagram: the images whose confidence lies in (Low, High], their mean confidence and accuracy.</summary>
public sealed record ReliabilityBin(double Low, double High, int Images, double Confidence, double Accuracy);

/// <summary>
/// How well an evaluation's confidences match its accuracy: the expected calibration error (ECE) after and before the
/// model's temperature scaling, with the reliability diagrams behind them.
/// </summary>
/// <param name="Temperature">The model's temperature; null when it has none (files written before calibration, or too few validation images).</param>
public sealed record CalibrationResult(double Ece, double EceBefore, double? Temperature, IReadOnlyList<ReliabilityBin> Bins,
    IReadOnlyList<ReliabilityBin> BinsBefore);

/// <summary>
/// Confidence that is a probability: temperature scaling fitted on the validation images by likelihood, measured by the
/// expected calibration error over 15 equal-width confidence bins (Guo et al., 2017).
/// </summary>
internal static class Calibration
{
    public const int Bins = 15;

    /// <summary>The temperatures searched: a model more than 20 times over- or underconfident is not calibrated by one number.</summary>
    const double MinTemperature = 0.05, MaxTemperature = 20;

    /// <summary>The reliability diagram of top-1 confidences: equal-width bins over [0, 1] (the first includes 0).</summary>
    public static IReadOnlyList<ReliabilityBin> Reliability(float[,] probabilities, IReadOnlyList<int> truth, int bins = Bins)
    {
        var count = new int[bins];
        var confidence = new double[bins];
        var correct = new double[bins];
        for (int i = 0; i < truth.Count; i++)
        {
            var (best, p) = Top(probabilities, i);
            int b = Math.Clamp((int)Math.Ceiling(p * bins) - 1, 0, bins - 1);
            count[b]++;
            confidence[b] += p;
            if (best == truth[i]) correct[b]++;
        }
        return Enumerable.Range(0, bins).Select(b => new ReliabilityBin((double)b / bins, (double)(b + 1) / bins, count[b],
            count[b] == 0 ? 0 : confidence[b] / count[b], count[b] == 0 ? 0 : correct[b] / count[b])).ToList();
    }

    /// <summary>The expected calibration error: the mean over images of |accuracy - confidence| of their bin.</summary>
    public static double Ece(IReadOnlyList<ReliabilityBin> bins)
    {
        int n = bins.Sum(b => b.Images);
        return n == 0 ? 0 : bins.Sum(b => b.Images * Math.Abs(b.Accuracy - b.Confidence)) / n;
    }

    public static double Ece(float[,] probabilities, IReadOnlyList<int> truth) => Ece(Reliability(probabilities, truth));

    /// <summary>
    /// Probabilities as the logits divided by <paramref name="temperature"/> give them: softmax(log p / T), which for a
    /// binary head's [1 - p, p] is sigmoid(logit / T) too. T = 1 returns the probabilities unchanged.
    /// </summary>
    public static float[,] Scale(float[,] probabilities, double temperature)
    {
        int n = probabilities.GetLength(0), k = probabilities.GetLength(1);
        var scaled = (float[,])probabilities.Clone();
        if (temperature == 1) return scaled;
        var row = new double[k];
        for (int i = 0; i < n; i++)
        {
            double max = double.NegativeInfinity;
            for (int c = 0; c < k; c++) max = Math.Max(max, row[c] = LogProbability(probabilities[i, c]) / temperature);
            double sum = 0;
            for (int c = 0; c < k; c++) sum += row[c] = Math.Exp(row[c] - max);
            for (int c = 0; c < k; c++) scaled[i, c] = (float)(row[c] / sum);
        }
        return scaled;
    }

    /// <summary>
    /// The temperature that maximises the likelihood of the true classes. The negative log-likelihood is convex in 1/T,
    /// so a golden-section search over 1/T finds its minimum.
    /// </summary>
    public static double FitTemperature(float[,] probabilities, IReadOnlyList<int> truth)
    {
        int n = truth.Count, k = probabilities.GetLength(1);
        var logs = new double[n * k];
        for (int i = 0; i < n; i++)
            for (int c = 0; c < k; c++) logs[i * k + c] = LogProbability(probabilities[i, c]);
        double Nll(double beta)
        {
            double total = 0;
            for (int i = 0; i < n; i++)
            {
                var row = logs.AsSpan(i * k, k);
                double max = double.NegativeInfinity;
                foreach (var l in row) max = Math.Max(max, beta * l);
                double sum = 0;
                foreach (var l in row) sum += Math.Exp(beta * l - max);
                total += max + Math.Log(sum) - beta * row[truth[i]];
            }
            return total / Math.Max(n, 1);
        }
        double a = 1 / MaxTemperature, b = 1 / MinTemperature, ratio = (Math.Sqrt(5) - 1) / 2;
        double x1 = b - ratio * (b - a), x2 = a + ratio * (b - a), f1 = Nll(x1), f2 = Nll(x2);
        while (b - a > 1e-5)
        {
            if (f1 <= f2) { b = x2; x2 = x1; f2 = f1; x1 = b - ratio * (b - a); f1 = Nll(x1); }
            else { a = x1; x1 = x2; f1 = f2; x2 = a + ratio * (b - a); f2 = Nll(x2); }
        }
        return 1 / ((a + b) / 2);
    }

    /// <summary>
    /// Temperature scaling fitted on validation probabilities by likelihood, with their calibration error before and after.
    /// The likelihood decides, not the calibration error: with a few hundred images the binned error is too noisy to choose
    /// by (docs/benchmarks.md compares the two on the shared data sets).
    /// </summary>
    public static TemperatureScaling Fit(float[,] probabilities, IReadOnlyList<int> truth)
    {
        double t = FitTemperature(probabilities, truth);
        return new TemperatureScaling(t, truth.Count, Ece(probabilities, truth), Ece(Scale(probabilities, t), truth));
    }

    /// <summary>
    /// Every metric of the probabilities after the model's temperature scaling, with the calibration error before and after.
    /// <paramref name="probabilities"/> are the uncalibrated ones (the head's softmax).
    /// </summary>
    public static EvaluationResult Evaluate(IReadOnlyList<string> files, float[,] probabilities, IReadOnlyList<int> truth, IReadOnlyList<string> classes,
        TemperatureScaling? scaling)
    {
        var calibrated = scaling is null ? probabilities : Scale(probabilities, scaling.Temperature);
        var before = Reliability(probabilities, truth);
        var after = scaling is null ? before : Reliability(calibrated, truth);
        return EvaluationResult.From(files, calibrated, truth, classes) with
        {
            Calibration = new CalibrationResult(Ece(after), Ece(before), scaling?.Temperature, after, before),
        };
    }

    static (int Class, float Probability) Top(float[,] probabilities, int row)
    {
        int best = 0;
        for (int c = 1; c < probabilities.GetLength(1); c++) if (probabilities[row, c] > probabilities[row, best]) best = c;
        return (best, probabilities[row, best]);
    }

    /// <summary>log p, floored where a float probability underflowed to 0.</summary>
    static double LogProbability(float p) => Math.Log(Math.Max(p, 1e-40));
}
