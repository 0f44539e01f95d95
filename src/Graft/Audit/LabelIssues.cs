namespace Graft.Audit;

/// <summary>
/// An image whose given label the other images contradict: <see cref="Confidence"/> is the calibrated out-of-fold
/// probability of <see cref="Suggested"/>, <see cref="SelfConfidence"/> that of <see cref="Given"/>, <see cref="Margin"/>
/// their difference; <see cref="Agreeing"/> of its <see cref="Nearest"/> nearest images carry the suggested label.
/// </summary>
internal sealed record LabelIssue(string File, string Given, string Suggested, double Confidence, double SelfConfidence, double Margin,
    int Agreeing, int Nearest);

/// <summary>The label check's findings, and the classes too small to judge (their images are neither flagged nor suggested).</summary>
internal sealed record LabelCheck(IReadOnlyList<LabelIssue> Issues, IReadOnlyList<string> Unjudged);

/// <summary>
/// Two witnesses must agree before a label is called wrong. The probes: confident learning (Northcutt et al.;
/// cleanlab's find_label_issues), where each class's threshold is the mean probability of that class over the images
/// labelled with it, and an image is a candidate when its given label's probability is below that label's threshold
/// while another class's probability reaches its own (per-class thresholds keep a hard or rare class from being
/// flagged wholesale). The neighbours: most of the image's nearest images in feature space carry the suggested label
/// and few carry the given one. A probe fitted on a few dozen images contradicts many correct labels of hard photos
/// on its own; a mislabelled photo sits among the photos of the class it shows, a hard but correct one does not.
/// </summary>
internal static class LabelIssues
{
    /// <summary>Classes with fewer readable images are not judged: their probes and neighbourhoods say too little.</summary>
    public const int MinimumPerClass = 10;
    /// <summary>How many nearest images are asked.</summary>
    public const int Asked = 10;
    /// <summary>The share of the nearest images that must carry the suggested label.</summary>
    const double Agree = 0.7;
    /// <summary>The largest share of the nearest images that may carry the given label.</summary>
    const double Same = 0.2;

    /// <summary>Issues from out-of-fold probabilities and feature-space neighbours (at least <see cref="Asked"/> per row where there are that many), least self-confident first.</summary>
    public static LabelCheck Find(IReadOnlyList<string> files, int[] labels, OutOfFoldScores scores, IReadOnlyList<string> classes, Neighbours near)
    {
        var thresholds = Thresholds(labels, scores.Raw, classes.Count);
        var judged = Enumerable.Range(0, classes.Count).Select(c => labels.Count(l => l == c) >= MinimumPerClass).ToArray();
        var issues = new List<LabelIssue>();
        for (int i = 0; i < files.Count; i++)
        {
            var p = scores.Raw[i];
            int given = labels[i];
            if (!judged[given] || p[given] >= thresholds[given]) continue;
            int suggested = -1;
            for (int j = 0; j < classes.Count; j++)
                if (j != given && judged[j] && p[j] >= thresholds[j] && (suggested < 0 || p[j] > p[suggested])) suggested = j;
            if (suggested < 0) continue;
            var nearest = near.Index[i].Take(Asked).ToArray();
            int agreeing = nearest.Count(n => labels[n] == suggested), same = nearest.Count(n => labels[n] == given);
            if (nearest.Length == 0 || agreeing < Agree * nearest.Length || same > Same * nearest.Length) continue;
            var q = scores.Calibrated[i];
            issues.Add(new LabelIssue(files[i], classes[given], classes[suggested], q[suggested], q[given], q[suggested] - q[given], agreeing, nearest.Length));
        }
        return new LabelCheck(issues.OrderBy(x => x.SelfConfidence).ThenBy(x => x.File, StringComparer.Ordinal).ToList(),
            classes.Where((_, c) => !judged[c]).ToList());
    }

    /// <summary>Per class, the mean probability of the class over the images labelled with it (1 where a class has none: never reached).</summary>
    static double[] Thresholds(int[] labels, float[][] probabilities, int classes) =>
        Enumerable.Range(0, classes).Select(j =>
        {
            var own = Enumerable.Range(0, labels.Length).Where(i => labels[i] == j).Select(i => (double)probabilities[i][j]).ToList();
            return own.Count == 0 ? 1.0 : own.Average();
        }).ToArray();
}
