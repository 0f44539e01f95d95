namespace Graft.Audit;

/// <summary>Which part of the dataset an image is in: leakage is a copy crossing parts.</summary>
internal enum ImageRole { Train, Validation, Test }

/// <summary>An image the audit looked at: its file, class name and part.</summary>
internal sealed record AuditImage(string File, string Label, ImageRole Role);

/// <summary>
/// Two copies of one photo: byte for byte (<c>exact</c>, similarity 1) or nearly (<c>near</c>: feature cosine
/// similarity at or above the threshold). <see cref="Other"/> is the copy that comes first (training before
/// validation before test, then by path), <see cref="File"/> the later one.
/// </summary>
internal sealed record DuplicatePair(string File, string Other, string Match, double Similarity, string Label, string OtherLabel,
    ImageRole Role, ImageRole OtherRole)
{
    public bool ConflictingLabels => Label != OtherLabel;
}

/// <summary>How many images of a held-out part have a copy in an earlier part (validation in training; test in training or validation).</summary>
internal sealed record LeakedShare(ImageRole Role, int Images, int Leaked)
{
    public double Share => Images == 0 ? 0 : (double)Leaked / Images;
}

internal static class Duplicates
{
    /// <summary>
    /// Every pair of copies: images with equal content hashes, and neighbours at or above <paramref name="threshold"/>
    /// (<paramref name="rowImage"/> maps a neighbour row to its image). Conflicting labels first, then exact, then most similar.
    /// </summary>
    public static IReadOnlyList<DuplicatePair> Find(IReadOnlyList<AuditImage> images, IReadOnlyList<string> hashes,
        Neighbours neighbours, int[] rowImage, double threshold)
    {
        var pairs = new List<DuplicatePair>();
        foreach (var group in Enumerable.Range(0, images.Count).GroupBy(i => hashes[i]).Where(g => g.Count() > 1))
        {
            var ordered = group.OrderBy(i => images[i], FirstCopy).ToList();
            pairs.AddRange(ordered.Skip(1).Select(i => Pair(images[ordered[0]], images[i], "exact", 1)));
        }
        var seen = new HashSet<(int, int)>();
        for (int row = 0; row < rowImage.Length; row++)
            for (int k = 0; k < neighbours.Index[row].Length && neighbours.Similarity[row][k] >= threshold; k++)
            {
                int a = rowImage[row], b = rowImage[neighbours.Index[row][k]];
                if (hashes[a] == hashes[b] || !seen.Add((Math.Min(a, b), Math.Max(a, b)))) continue;
                var (first, second) = FirstCopy.Compare(images[a], images[b]) <= 0 ? (images[a], images[b]) : (images[b], images[a]);
                pairs.Add(Pair(first, second, "near", Math.Min(1.0, neighbours.Similarity[row][k])));
            }
        return pairs.OrderByDescending(p => p.ConflictingLabels).ThenByDescending(p => p.Match == "exact")
            .ThenByDescending(p => p.Similarity).ThenBy(p => p.File, StringComparer.Ordinal).ToList();
    }

    /// <summary>The share of the validation and test images (those the dataset has) with a copy in an earlier part.</summary>
    public static IReadOnlyList<LeakedShare> Leaked(IReadOnlyList<AuditImage> images, IEnumerable<DuplicatePair> pairs)
    {
        var leaked = pairs.Where(p => p.Role != p.OtherRole).Select(p => p.File).ToHashSet();
        return new[] { ImageRole.Validation, ImageRole.Test }
            .Select(role => new LeakedShare(role, images.Count(i => i.Role == role), images.Count(i => i.Role == role && leaked.Contains(i.File))))
            .Where(s => s.Images > 0).ToList();
    }

    static DuplicatePair Pair(AuditImage first, AuditImage second, string match, double similarity) =>
        new(second.File, first.File, match, similarity, second.Label, first.Label, second.Role, first.Role);

    static readonly Comparer<AuditImage> FirstCopy = Comparer<AuditImage>.Create((a, b) =>
        a.Role != b.Role ? a.Role.CompareTo(b.Role) : StringComparer.Ordinal.Compare(a.File, b.File));
}
