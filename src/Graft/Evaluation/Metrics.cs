namespace Graft.Evaluation;

/// <summary>A 95% confidence interval of a proportion.</summary>
public sealed record Interval(double Low, double High)
{
    /// <summary>
    /// Wilson's score interval for <paramref name="successes"/> of <paramref name="trials"/>: unlike the normal
    /// approximation it stays inside [0, 1] and is honest at 0 or n successes and for small n.
    /// </summary>
    public static Interval Wilson(int successes, int trials, double z = 1.959964) =>
        trials == 0 ? new Interval(0, 1) : Wilson((double)successes / trials, trials, z);

    /// <summary>Wilson's interval for a proportion <paramref name="p"/> observed on <paramref name="trials"/> (e.g. a mean over repeats).</summary>
    public static Interval Wilson(double p, int trials, double z = 1.959964)
    {
        if (trials == 0) return new Interval(0, 1);
        double n = trials, z2 = z * z;
        double centre = (p + z2 / (2 * n)) / (1 + z2 / n);
        double half = z / (1 + z2 / n) * Math.Sqrt(p * (1 - p) / n + z2 / (4 * n * n));
        // At p = 0 or 1 the bound is exactly 0 or 1 (rounding would leave the estimate outside its interval).
        return new Interval(p <= 0 ? 0 : Math.Max(0, centre - half), p >= 1 ? 1 : Math.Min(1, centre + half));
    }

    /// <summary>"0.967 (95% CI 0.927-0.986)".</summary>
    public string Describe(double value) => $"{value:0.000} (95% CI {Low:0.000}-{High:0.000})";
}

/// <summary>A class's precision and recall with their Wilson intervals (precision over the images predicted as it, recall over its images).</summary>
public sealed record ClassMetrics(string Class, double Precision, double Recall, double F1, int Support, Interval PrecisionInterval, Interval RecallInterval);

/// <summary>One evaluated image: its true class, the predicted ones (best first) and their probabilities.</summary>
public sealed record ScoredImage(string File, int Truth, int[] TopClasses, float[] TopProbabilities)
{
    public int Predicted => TopClasses[0];
    public float Confidence => TopProbabilities[0];
    public bool Correct => Truth == Predicted;
}

/// <summary>A pair of classes the model mixes up: how many images of <see cref="Truth"/> it called <see cref="PredictedAs"/>.</summary>
public sealed record ConfusedPair(string Truth, string PredictedAs, int Count);

/// <summary>Accuracy, loss, per-class precision/recall/F1 and the confusion matrix (rows: true class, columns: predicted).</summary>
public sealed record EvaluationResult(
    double Accuracy,
    double Loss,
    int Images,
    IReadOnlyList<string> Classes,
    int[][] ConfusionMatrix,
    IReadOnlyList<ClassMetrics> PerClass,
    IReadOnlyList<ScoredImage> Items)
{
    /// <summary>How well the confidences match the accuracy, before and after the model's temperature scaling (null: not measured).</summary>
    public CalibrationResult? Calibration { get; init; }

    /// <summary>The accuracy's 95% Wilson interval over <see cref="Images"/>.</summary>
    public Interval AccuracyInterval => Interval.Wilson(Items.Count(i => i.Correct), Images);

    /// <summary>Top-k accuracy with k = 3 (or the number of classes when fewer).</summary>
    public int TopK => Math.Min(3, Classes.Count);
    public double TopKAccuracy => Items.Count == 0 ? 0 : Items.Count(i => i.TopClasses.Contains(i.Truth)) / (double)Items.Count;

    /// <summary>Off-diagonal cells of the confusion matrix, most frequent first.</summary>
    public IReadOnlyList<ConfusedPair> MostConfused =>
        Enumerable.Range(0, Classes.Count).SelectMany(t => Enumerable.Range(0, Classes.Count).Where(p => p != t && ConfusionMatrix[t][p] > 0)
            .Select(p => new ConfusedPair(Classes[t], Classes[p], ConfusionMatrix[t][p])))
            .OrderByDescending(c => c.Count).ThenBy(c => c.Truth, StringComparer.Ordinal).ToList();

    /// <summary>One row per image: file, true, predicted, confidence, correct (RFC 4180 quoting).</summary>
    public void WriteCsv(string path)
    {
        static string Q(string s) => s.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? $"\"{s.Replace("\"", "\"\"")}\"" : s;
        var lines = Items.Select(i => string.Join(",", Q(i.File), Q(Classes[i.Truth]), Q(Classes[i.Predicted]),
            i.Confidence.ToString("0.######", System.Globalization.CultureInfo.InvariantCulture), i.Correct ? "true" : "false"));
        var temp = path + ".tmp";
        File.WriteAllLines(temp, lines.Prepend("file,true,predicted,confidence,correct"));
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>Images per true class (the support), in class order.</summary>
    public IReadOnlyList<int> Support => ConfusionMatrix.Select(row => row.Sum()).ToList();

    /// <summary>Computes every metric from the probabilities of each image and its true label.</summary>
    public static EvaluationResult From(IReadOnlyList<string> files, float[,] probabilities, IReadOnlyList<int> truth, IReadOnlyList<string> classes)
    {
        int n = truth.Count, k = classes.Count;
        var matrix = Enumerable.Range(0, k).Select(_ => new int[k]).ToArray();
        var items = new List<ScoredImage>(n);
        double loss = 0;
        int top = Math.Min(3, k);
        for (int i = 0; i < n; i++)
        {
            int row = i;
            var ranked = Enumerable.Range(0, k).OrderByDescending(c => probabilities[row, c]).ThenBy(c => c).Take(top).ToArray();
            matrix[truth[i]][ranked[0]]++;
            loss -= Math.Log(Math.Max(probabilities[i, truth[i]], 1e-12f));
            items.Add(new ScoredImage(files[i], truth[i], ranked, ranked.Select(c => probabilities[row, c]).ToArray()));
        }
        var perClass = Enumerable.Range(0, k).Select(c =>
        {
            int tp = matrix[c][c];
            int predicted = matrix.Sum(row => row[c]);
            int support = matrix[c].Sum();
            double precision = predicted == 0 ? 0 : (double)tp / predicted;
            double recall = support == 0 ? 0 : (double)tp / support;
            double f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
            return new ClassMetrics(classes[c], precision, recall, f1, support, Interval.Wilson(tp, predicted), Interval.Wilson(tp, support));
        }).ToList();
        int correct = Enumerable.Range(0, k).Sum(c => matrix[c][c]);
        return new EvaluationResult(n == 0 ? 0 : (double)correct / n, n == 0 ? 0 : loss / n, n, classes, matrix, perClass, items);
    }
}
