namespace Graft.Audit;

/// <summary>Where the heat map of one image of a class peaks, as fractions (0 to 1) of the square the network saw.</summary>
internal sealed record HeatMapPeak(string File, int Label, double X, double Y);

/// <summary>
/// A likely shortcut: the heat maps of <see cref="InRegion"/> of <see cref="Images"/> images of <see cref="Class"/> peak
/// within <see cref="Radius"/> of (<see cref="X"/>, <see cref="Y"/>) (fractions of the network's input square), where only
/// <see cref="OtherShare"/> of the other classes' images do: the model finds that class in one small place of the
/// picture (a watermark, a border, a background object, a ruler) rather than in the thing itself.
/// </summary>
internal sealed record ShortcutFinding(string Class, int Images, int InRegion, double X, double Y, double Radius, double OtherShare,
    IReadOnlyList<string> Examples)
{
    /// <summary>The share of the class's images that peak in the region.</summary>
    public double Share => InRegion / (double)Images;
}

/// <summary>When the heat maps of one class's images concentrate on one small region that other classes' do not.</summary>
internal sealed record ShortcutOptions
{
    /// <summary>Heat maps computed per class (the first images by file name): enough to see a pattern, cheap beside an evaluation.</summary>
    public int ImagesPerClass { get; init; } = 24;
    /// <summary>A class is judged on at least this many images.</summary>
    public int MinImages { get; init; } = 8;
    /// <summary>The region: a disc of this radius (a fraction of the input square's side) around the class's densest peak.</summary>
    public double Radius { get; init; } = 0.12;
    /// <summary>The share of the class's peaks in the region from which it counts as concentrated.</summary>
    public double MinShare { get; init; } = 0.6;
    /// <summary>How much larger that share must be than the other classes' share in the same region.</summary>
    public double MinMargin { get; init; } = 0.4;
    /// <summary>
    /// Photographers frame the subject in the middle, so heat maps of any class gather there: a region whose centre lies
    /// within this distance of the middle of the picture (a fraction of the side) is not taken for a shortcut.
    /// </summary>
    public double Middle { get; init; } = 0.2;
}

/// <summary>
/// The data problem heat maps reveal: per class, the densest small region of its images' heat-map peaks, flagged when it
/// holds most of the class's peaks and few of the other classes', away from the middle of the picture (where subjects are).
/// </summary>
internal static class Shortcuts
{
    public static IReadOnlyList<ShortcutFinding> Find(IReadOnlyList<HeatMapPeak> peaks, IReadOnlyList<string> classes, ShortcutOptions? options = null)
    {
        options ??= new ShortcutOptions();
        var findings = new List<ShortcutFinding>();
        double r2 = options.Radius * options.Radius;
        bool Near(HeatMapPeak p, HeatMapPeak centre) => (p.X - centre.X) * (p.X - centre.X) + (p.Y - centre.Y) * (p.Y - centre.Y) <= r2;
        for (int c = 0; c < classes.Count; c++)
        {
            var mine = peaks.Where(p => p.Label == c).ToList();
            var others = peaks.Where(p => p.Label != c).ToList();
            if (mine.Count < options.MinImages) continue;
            // The densest region: the disc around the peak that has the most of the class's peaks near it (ties: the first).
            var centre = mine.MaxBy(p => mine.Count(q => Near(q, p)))!;
            var inside = mine.Where(q => Near(q, centre)).ToList();
            double share = inside.Count / (double)mine.Count;
            double otherShare = others.Count == 0 ? 0 : others.Count(q => Near(q, centre)) / (double)others.Count;
            double x = inside.Average(p => p.X), y = inside.Average(p => p.Y);
            bool middle = Math.Sqrt((x - 0.5) * (x - 0.5) + (y - 0.5) * (y - 0.5)) < options.Middle;
            if (share >= options.MinShare && share - otherShare >= options.MinMargin && !middle)
                findings.Add(new ShortcutFinding(classes[c], mine.Count, inside.Count, x, y, options.Radius, otherShare, inside.Select(p => p.File).ToList()));
        }
        return findings.OrderByDescending(f => f.Share - f.OtherShare).ToList();
    }

    /// <summary>One sentence for a report or a log.</summary>
    public static string Describe(ShortcutFinding f) => FormattableString.Invariant(
        $"the heat maps of {f.InRegion} of {f.Images} {f.Class} images peak in the same small region (around {f.X:0%} across, {f.Y:0%} down what the network sees), ") +
        FormattableString.Invariant($"where {f.OtherShare:0%} of the other classes' do: the model may have learned something there (a watermark, a border, a background object) rather than {f.Class} itself");
}
