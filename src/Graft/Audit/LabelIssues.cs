namespace Graft.Audit;

/// <summary>
/// An image whose given label the other images contradict: <see cref="Confidence"/> is the out-of-fold probability
/// of <see cref="Suggested"/>, <see cref="SelfConfidence"/> that of <see cref="Given"/>, <see cref="Margin"/> their difference.
/// </summary>
internal sealed record LabelIssue(string File, string Given, string Suggested, double Confidence, double SelfConfidence, double Margin);

/// <summary>
/// Confident learning (Northcutt et al.; cleanlab's find_label_issues): each class's threshold is the mean
/// probability of that class over the images labelled with it (the model's self-confidence there). An image is
/// an issue when its given label's probability is below that label's threshold while another class's probability
/// reaches its own threshold; per-class thresholds keep a hard or rare class from being flagged wholesale.
/// </summary>
internal static class LabelIssues
{
    /// <summary>Issues from out-of-fold probabilities, least self-confident first.</summary>
    public static IReadOnlyList<LabelIssue> Find(IReadOnlyList<string> files, int[] labels, float[][] probabilities, IReadOnlyList<string> classes)
    {
        var thresholds = Thresholds(labels, probabilities, classes.Count);
        var issues = new List<LabelIssue>();
        for (int i = 0; i < files.Count; i++)
        {
            var p = probabilities[i];
            int given = labels[i];
            if (p[given] >= thresholds[given]) continue;
            int suggested = -1;
            for (int j = 0; j < classes.Count; j++)
                if (j != given && p[j] >= thresholds[j] && (suggested < 0 || p[j] > p[suggested])) suggested = j;
            if (suggested < 0) continue;
            issues.Add(new LabelIssue(files[i], classes[given], classes[suggested], p[suggested], p[given], p[suggested] - p[given]));
        }
        return issues.OrderBy(x => x.SelfConfidence).ThenBy(x => x.File, StringComparer.Ordinal).ToList();
    }

    /// <summary>Per class, the mean probability of the class over the images labelled with it (1 where a class has none: never reached).</summary>
    public static double[] Thresholds(int[] labels, float[][] probabilities, int classes) =>
        Enumerable.Range(0, classes).Select(j =>
        {
            var own = Enumerable.Range(0, labels.Length).Where(i => labels[i] == j).Select(i => (double)probabilities[i][j]).ToList();
            return own.Count == 0 ? 1.0 : own.Average();
        }).ToArray();
}
