namespace Graft.Audit;

/// <summary>
/// An image far from every other: <see cref="Distance"/> is its mean cosine distance to its nearest neighbours,
/// <see cref="Score"/> how unusual that is for this dataset (robust z-score: distance above the median in MADs).
/// </summary>
internal sealed record Outlier(string File, string Label, double Distance, double Score);

/// <summary>
/// Not a photo of any class (a placeholder, a screenshot, a blank frame): an image whose nearest neighbours in
/// feature space are all far away. Scored against the dataset's own distribution of that distance, so the
/// threshold means the same for tight and for varied datasets.
/// </summary>
internal static class Outliers
{
    /// <summary>Images whose mean distance to their <paramref name="k"/> nearest neighbours scores at least <paramref name="minimumScore"/>, most unusual first.</summary>
    public static IReadOnlyList<Outlier> Find(IReadOnlyList<AuditImage> images, Neighbours neighbours, int[] rowImage, int k, double minimumScore)
    {
        int n = rowImage.Length;
        if (n < 3) return [];
        var distance = Enumerable.Range(0, n).Select(r => 1 - neighbours.Similarity[r].Take(k).Average(s => (double)s)).ToArray();
        double median = Median(distance);
        double spread = 1.4826 * Median(distance.Select(d => Math.Abs(d - median)).ToArray()); // MAD, as a standard deviation
        if (spread <= 0) return [];
        return Enumerable.Range(0, n)
            .Select(r => new Outlier(images[rowImage[r]].File, images[rowImage[r]].Label, distance[r], (distance[r] - median) / spread))
            .Where(o => o.Score >= minimumScore)
            .OrderByDescending(o => o.Score).ThenBy(o => o.File, StringComparer.Ordinal).ToList();
    }

    static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        int m = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
    }
}
