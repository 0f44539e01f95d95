namespace Graft.Audit;

/// <summary>
/// A label of a multi-label image the other images question: likely <em>missing</em> (the image lacks
/// <see cref="Label"/> though its out-of-fold <see cref="Probability"/> reaches the label's <see cref="Threshold"/>) or
/// likely <em>extra</em> (it carries the label though the probability is below the threshold); <see cref="Agreeing"/>
/// of its <see cref="Nearest"/> nearest images side with the change (carry the label for a missing one, lack it for an
/// extra one).
/// </summary>
internal sealed record LabelChange(string File, string Label, double Probability, double Threshold, int Agreeing, int Nearest);

/// <summary>The multi-label check's findings, and the labels too rare or too common to judge.</summary>
internal sealed record LabelChangeCheck(IReadOnlyList<LabelChange> Missing, IReadOnlyList<LabelChange> Extra, IReadOnlyList<string> Unjudged);

/// <summary>
/// Confident learning per label, for multi-label data: each label is a yes/no question of its own, judged on
/// out-of-fold sigmoid probabilities. A label is likely missing where an image lacks it but its probability reaches the
/// mean probability of the label over the images that carry it, and likely extra where an image carries it but its
/// probability is below the mean over the images that lack it. As in <see cref="LabelIssues"/>, the neighbours are a
/// second witness: most of the nearest images must side with the change (for a missing label, carry it more often than
/// the dataset does; for an extra one, carry it less often).
/// </summary>
internal static class LabelChanges
{
    public static LabelChangeCheck Find(IReadOnlyList<string> files, IReadOnlyList<IReadOnlyList<int>> labels, float[][] probabilities,
        IReadOnlyList<string> classes, Neighbours near)
    {
        var missing = new List<LabelChange>();
        var extra = new List<LabelChange>();
        var unjudged = new List<string>();
        for (int c = 0; c < classes.Count; c++)
        {
            var carries = labels.Select(l => l.Contains(c)).ToArray();
            int with = carries.Count(b => b), without = carries.Length - with;
            if (with < LabelIssues.MinimumPerClass || without < LabelIssues.MinimumPerClass) { unjudged.Add(classes[c]); continue; }
            double withMean = Enumerable.Range(0, files.Count).Where(i => carries[i]).Average(i => (double)probabilities[i][c]);
            double withoutMean = Enumerable.Range(0, files.Count).Where(i => !carries[i]).Average(i => (double)probabilities[i][c]);
            double rate = with / (double)carries.Length;
            for (int i = 0; i < files.Count; i++)
            {
                double p = probabilities[i][c];
                var nearest = near.Index[i].Take(LabelIssues.Asked).ToArray();
                if (nearest.Length == 0) continue;
                int carrying = nearest.Count(n => carries[n]);
                if (!carries[i] && p >= withMean && carrying > rate * nearest.Length)
                    missing.Add(new LabelChange(files[i], classes[c], p, withMean, carrying, nearest.Length));
                else if (carries[i] && p < withoutMean && carrying < rate * nearest.Length)
                    extra.Add(new LabelChange(files[i], classes[c], p, withoutMean, nearest.Length - carrying, nearest.Length));
            }
        }
        return new LabelChangeCheck(missing.OrderByDescending(m => m.Probability).ThenBy(m => m.File, StringComparer.Ordinal).ToList(),
            extra.OrderBy(e => e.Probability).ThenBy(e => e.File, StringComparer.Ordinal).ToList(), unjudged);
    }
}
