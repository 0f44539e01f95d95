namespace Graft.Evaluation;

/// <summary>
/// One label of a multi-label evaluation: its average precision (null when no image carries it), the decision threshold,
/// and precision, recall and F1 at that threshold with their Wilson intervals (precision over the images predicted to
/// carry it, recall over the images that carry it).
/// </summary>
public sealed record LabelMetrics(string Label, double? AveragePrecision, double Threshold, double Precision, double Recall, double F1,
    int Support, int Predicted, Interval PrecisionInterval, Interval RecallInterval);

/// <summary>One image of a multi-label evaluation: the classes it carries, those predicted (at the thresholds), and every class's probability.</summary>
public sealed record MultiLabelImage(string File, int[] Truth, int[] Predicted, float[] Probabilities)
{
    public bool ExactMatch => Truth.SequenceEqual(Predicted);
    /// <summary>The classes it carries that were not predicted, and those predicted that it does not carry.</summary>
    public int Errors => Truth.Except(Predicted).Count() + Predicted.Except(Truth).Count();
}

/// <summary>
/// A multi-label evaluation: mean average precision (macro: the mean of the labels' APs, over labels some image carries;
/// micro: the AP of every (image, label) pair ranked together), and at the decision thresholds exact-match (subset)
/// accuracy, Hamming loss (the share of wrong (image, label) decisions), micro-F1 (pooled counts) and macro-F1 (the mean
/// of the labels' F1, over labels some image carries), with each label's figures. Loss: binary cross-entropy per decision.
/// </summary>
public sealed record MultiLabelResult(
    IReadOnlyList<string> Classes,
    int Images,
    double Loss,
    double MeanAveragePrecision,
    double MicroAveragePrecision,
    double SubsetAccuracy,
    double HammingLoss,
    double MicroF1,
    double MacroF1,
    IReadOnlyList<LabelMetrics> PerLabel,
    IReadOnlyList<MultiLabelImage> Items)
{
    /// <summary>The exact-match accuracy's 95% Wilson interval over <see cref="Images"/>.</summary>
    public Interval SubsetAccuracyInterval => Interval.Wilson(Items.Count(i => i.ExactMatch), Images);

    /// <summary>The decision thresholds the figures were taken at, in class order.</summary>
    public IReadOnlyList<double> Thresholds => PerLabel.Select(l => l.Threshold).ToList();

    /// <summary>Every metric from each image's probabilities (one per class, independent), the classes it carries, and each class's threshold.</summary>
    public static MultiLabelResult From(IReadOnlyList<string> files, float[,] probabilities, IReadOnlyList<IReadOnlyList<int>> truth,
        IReadOnlyList<string> classes, IReadOnlyList<double> thresholds)
    {
        int n = truth.Count, k = classes.Count;
        var items = new List<MultiLabelImage>(n);
        double loss = 0;
        for (int i = 0; i < n; i++)
        {
            var row = Enumerable.Range(0, k).Select(c => probabilities[i, c]).ToArray();
            var carried = truth[i].Distinct().Order().ToArray();
            for (int c = 0; c < k; c++)
                loss -= Math.Log(Math.Max(carried.Contains(c) ? row[c] : 1 - row[c], 1e-12));
            items.Add(new MultiLabelImage(files[i], carried, Enumerable.Range(0, k).Where(c => row[c] >= thresholds[c]).ToArray(), row));
        }
        var perLabel = Enumerable.Range(0, k).Select(c =>
        {
            var positive = items.Select(i => i.Truth.Contains(c)).ToArray();
            int tp = items.Count(i => i.Truth.Contains(c) && i.Predicted.Contains(c));
            int predicted = items.Count(i => i.Predicted.Contains(c)), support = positive.Count(p => p);
            double precision = predicted == 0 ? 0 : (double)tp / predicted, recall = support == 0 ? 0 : (double)tp / support;
            return new LabelMetrics(classes[c], support == 0 ? null : AveragePrecision(items.Select(i => i.Probabilities[c]).ToArray(), positive),
                thresholds[c], precision, recall, F1(tp, predicted, support), support, predicted, Interval.Wilson(tp, predicted), Interval.Wilson(tp, support));
        }).ToList();
        var carriedLabels = perLabel.Where(l => l.Support > 0).ToList();
        int truePositives = items.Sum(i => i.Truth.Intersect(i.Predicted).Count());
        return new MultiLabelResult(classes, n, n * k == 0 ? 0 : loss / (n * k),
            carriedLabels.Count == 0 ? 0 : carriedLabels.Average(l => l.AveragePrecision!.Value),
            n == 0 ? 0 : AveragePrecision(items.SelectMany(i => i.Probabilities).ToArray(), items.SelectMany(i => Enumerable.Range(0, k).Select(c => i.Truth.Contains(c))).ToArray()),
            n == 0 ? 0 : items.Count(i => i.ExactMatch) / (double)n,
            n * k == 0 ? 0 : items.Sum(i => i.Errors) / (double)(n * k),
            F1(truePositives, items.Sum(i => i.Predicted.Length), items.Sum(i => i.Truth.Length)),
            carriedLabels.Count == 0 ? 0 : carriedLabels.Average(l => l.F1),
            perLabel, items);
    }

    /// <summary>The same images measured at other thresholds (the probabilities stay).</summary>
    public MultiLabelResult At(IReadOnlyList<double> thresholds) =>
        From(Items.Select(i => i.File).ToList(), ProbabilityMatrix(), Items.Select(i => (IReadOnlyList<int>)i.Truth).ToList(), Classes, thresholds);

    /// <summary>
    /// Each label's threshold of maximum F1 on these images: halfway between the lowest probability it then calls positive
    /// and the next one below (the probability itself halved when none is below); <paramref name="fallback"/> for a label
    /// no image carries.
    /// </summary>
    public IReadOnlyList<double> MaxF1Thresholds(double fallback = 0.5) => Enumerable.Range(0, Classes.Count).Select(c =>
    {
        var ranked = Items.Select(i => (P: (double)i.Probabilities[c], Positive: i.Truth.Contains(c))).OrderByDescending(x => x.P).ToList();
        int support = ranked.Count(x => x.Positive);
        if (support == 0) return fallback;
        double best = -1, threshold = fallback;
        int tp = 0;
        for (int j = 0; j < ranked.Count; j++)
        {
            if (ranked[j].Positive) tp++;
            if (j + 1 < ranked.Count && ranked[j + 1].P == ranked[j].P) continue; // tied probabilities are decided together
            double f1 = F1(tp, j + 1, support);
            if (f1 <= best) continue;
            best = f1;
            threshold = j + 1 < ranked.Count ? (ranked[j].P + ranked[j + 1].P) / 2 : ranked[j].P / 2;
        }
        return threshold;
    }).ToList();

    /// <summary>
    /// Average precision of a ranking by <paramref name="scores"/> (higher first): the sum over the distinct scores, highest
    /// first, of the precision at that score times the recall it adds (scikit-learn's average_precision_score; tied scores
    /// are one step). 0 when nothing is positive.
    /// </summary>
    public static double AveragePrecision(IReadOnlyList<float> scores, IReadOnlyList<bool> positive)
    {
        int total = positive.Count(p => p);
        if (total == 0) return 0;
        var order = Enumerable.Range(0, scores.Count).OrderByDescending(i => scores[i]).ToArray();
        double ap = 0;
        int tp = 0, previous = 0;
        for (int j = 0; j < order.Length; j++)
        {
            if (positive[order[j]]) tp++;
            if (j + 1 < order.Length && scores[order[j + 1]] == scores[order[j]]) continue;
            ap += (double)tp / (j + 1) * (tp - previous) / total;
            previous = tp;
        }
        return ap;
    }

    static double F1(int truePositives, int predicted, int actual) =>
        predicted + actual == 0 ? 0 : 2.0 * truePositives / (predicted + actual);

    float[,] ProbabilityMatrix()
    {
        var p = new float[Items.Count, Classes.Count];
        for (int i = 0; i < Items.Count; i++)
            for (int c = 0; c < Classes.Count; c++) p[i, c] = Items[i].Probabilities[c];
        return p;
    }
}
