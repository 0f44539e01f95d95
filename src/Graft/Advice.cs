using Graft.Evaluation;
using Graft.Training;

namespace Graft;

/// <summary>A candidate's accuracy gain over plain feature extraction, with its 95% interval.</summary>
public abstract record StrategyGain
{
    /// <summary>The accuracy difference, in [-1, 1].</summary>
    public abstract double Value { get; }
    /// <summary>Its 95% interval.</summary>
    public abstract Interval Interval { get; }
    /// <summary>Better beyond the noise: the whole interval is above 0.</summary>
    public bool Clear => Interval.Low > 0;
    /// <summary>For people: the gain in points with its interval and what it was measured on.</summary>
    public abstract string Describe();

    protected static string Points(double difference) => (100 * difference).ToString("+0.0;-0.0;0.0", System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>
/// How a candidate did against plain feature extraction on the same images: it was right where feature extraction
/// was wrong <see cref="Wins"/> times, and the reverse <see cref="Losses"/> times, out of <see cref="Images"/>.
/// </summary>
public sealed record PairedGain(int Wins, int Losses, int Images) : StrategyGain
{
    /// <summary>(wins - losses) / images.</summary>
    public override double Value => Images == 0 ? 0 : (double)(Wins - Losses) / Images;

    /// <summary>
    /// The 95% interval of the difference: Tango's score interval for paired proportions (Statistics in Medicine, 1998),
    /// the set of differences its score test does not reject. Only the disagreements carry information, but unlike an
    /// interval on their share it also weighs how many there are, so it is never empty: with no disagreement among
    /// a few dozen images it spans a few points either side of 0, and an estimate never sits on its own edge.
    /// </summary>
    public override Interval Interval =>
        Images == 0 ? new Interval(-1, 1) : new Interval(Bound(-1, Z), Bound(1, -Z));

    const double Z = 1.959964;

    /// <summary>Tango's score statistic of the difference <paramref name="delta"/>: (b - c - nΔ) over its standard error at the constrained maximum likelihood.</summary>
    double Score(double delta)
    {
        double n = Images, b = Wins, c = Losses;
        double a = 2 * n, bb = -b - c + (2 * n - b + c) * delta, cc = -c * delta * (1 - delta);
        double q = (Math.Sqrt(Math.Max(0, bb * bb - 4 * a * cc)) - bb) / (2 * a);
        double variance = n * (2 * q + delta * (1 - delta));
        double numerator = b - c - n * delta;
        return variance > 0 ? numerator / Math.Sqrt(variance) : numerator == 0 ? 0 : Math.Sign(numerator) * double.PositiveInfinity;
    }

    /// <summary>Between the estimate and <paramref name="limit"/> (-1 or 1), where the score crosses <paramref name="z"/> (Z below the estimate, -Z above): it falls as the difference grows.</summary>
    double Bound(double limit, double z)
    {
        double inside = Value, outside = limit;
        if (Math.Abs(Score(outside)) <= Z) return limit;
        for (int i = 0; i < 60; i++)
        {
            double middle = (inside + outside) / 2;
            if (z > 0 ? Score(middle) > z : Score(middle) < z) outside = middle; else inside = middle;
        }
        return (inside + outside) / 2;
    }

    /// <summary>"+1.4 points (95% CI +0.2 to +2.6; 9 better, 2 worse of 600)".</summary>
    public override string Describe() =>
        $"{Points(Value)} points (95% CI {Points(Interval.Low)} to {Points(Interval.High)}; {Wins} better, {Losses} worse of {Images})";
}

/// <summary>
/// A gain read off a learning curve: the candidate trained on two subsets (<see cref="SmallImages"/> and
/// <see cref="LargeImages"/> training images) and measured on held-out images, its error followed to <see cref="Images"/>
/// training images along a power law, against feature extraction measured at about that size; the interval from
/// resampling the measured images. <see cref="Measured"/> is the paired gain measured at the larger subset.
/// </summary>
public sealed record ExtrapolatedGain(double Estimate, Interval Range, PairedGain Measured, int SmallImages, int LargeImages, int Images) : StrategyGain
{
    /// <summary>The gain at <see cref="Images"/> training images.</summary>
    public override double Value => Estimate;
    /// <summary>Its 95% interval, from resampling the measured images.</summary>
    public override Interval Interval => Range;

    /// <summary>"+4.1 points (95% CI +1.0 to +7.5) at 1321 training images, by the learning curve through 200 and 400 (at 400: ...)".</summary>
    public override string Describe() =>
        $"{Points(Value)} points (95% CI {Points(Interval.Low)} to {Points(Interval.High)}) at {Images} training images, by the learning curve through " +
        $"{SmallImages} and {LargeImages} (at {LargeImages}: {Measured.Describe()})";
}

/// <summary>
/// One strategy the advisor weighed: the training it stands for, its estimated accuracy on unseen images with the
/// 95% interval, the expected seconds of `graft train` with it (feature extraction's with the bottleneck cache the
/// advisor filled), and its <see cref="Gain"/> over plain feature extraction (null for plain feature extraction itself).
/// </summary>
public sealed record StrategyEstimate(Strategy Strategy, string? FeatureBlock, UnfreezeSpec? Unfreeze, double Accuracy, Interval Interval,
    double Seconds, StrategyGain? Gain)
{
    /// <summary>The graft train flags, e.g. "--strategy fine-tune --unfreeze 2".</summary>
    public string Arguments => $"--strategy {Strategy.Name()}" + (Unfreeze is { } u ? $" {u.ToArguments()}" : "") + (FeatureBlock is { } b ? $" --features-from {b}" : "");

    /// <summary>For people: "fine-tuning the top 2 blocks", "feature extraction from block_12".</summary>
    public string Describe() => Strategy == Strategy.FineTune ? $"fine-tuning the {Unfreeze?.Describe()}"
        : FeatureBlock is { } block ? $"feature extraction from {block}" : "feature extraction";
}

/// <summary>A recommendation: the estimate chosen, every estimate weighed, and why, in plain sentences.</summary>
public sealed record Advice(StrategyEstimate Chosen, IReadOnlyList<StrategyEstimate> Estimates, IReadOnlyList<string> Reasons)
{
    /// <summary>What the estimates measure: <c>accuracy</c>, or for multi-label data <c>exact match</c> (an image is right when its predicted labels are exactly its labels).</summary>
    public string Measure { get; init; } = "accuracy";
    /// <summary>The chosen strategy.</summary>
    public Strategy Strategy => Chosen.Strategy;
    /// <summary>The block features come from (null: the trunk's top).</summary>
    public string? FeatureBlock => Chosen.FeatureBlock;
    /// <summary>What fine-tuning trains (null unless fine-tuning is chosen).</summary>
    public UnfreezeSpec? Unfreeze => Chosen.Unfreeze;
    /// <summary>The graft train flags of the choice.</summary>
    public string Arguments => Chosen.Arguments;
    /// <summary>Images that could not be read, with the reason: the advice was measured without them.</summary>
    public IReadOnlyList<SkippedImage> Skipped { get; init; } = [];
}

/// <summary>The decision rule, apart from the measurements so that it can be checked on made-up ones.</summary>
public static class AdviceRule
{
    /// <summary>
    /// Plain feature extraction (<paramref name="estimates"/>[0]; the rest follow in order of cost) unless a candidate
    /// beats it clearly on the same images; of those, the best gain, or a cheaper one whose gain lies inside the best
    /// one's interval. With <paramref name="secondsLeft"/> (a time budget), candidates whose estimated time exceeds it are
    /// left out (plain feature extraction, the quickest, stays). Returns the choice and the sentences that say why.
    /// </summary>
    public static (StrategyEstimate Chosen, string Reason) Decide(IReadOnlyList<StrategyEstimate> estimates, double? secondsLeft = null)
    {
        var plain = estimates[0];
        var tooSlow = estimates.Skip(1).Where(e => e.Seconds > secondsLeft).ToList();
        string budget = string.Concat(tooSlow.Select(e =>
            $"{Capitalized(e.Describe())} would take about {Duration(e.Seconds)}, more than the {Duration(secondsLeft!.Value)} the time budget leaves: left out. "));
        if (plain.Seconds > secondsLeft)
            budget += $"Even {plain.Describe()}, the quickest, is estimated at {Duration(plain.Seconds)}, more than the time budget leaves. ";
        var (chosen, reason) = Rule(plain, estimates.Skip(1).Except(tooSlow).ToList());
        return (chosen, budget + reason);
    }

    /// <summary>"42 s", "7 min", "1 h 05 min".</summary>
    public static string Duration(double seconds) =>
        seconds < 90 ? $"{seconds:0} s" : seconds < 5400 ? $"{seconds / 60:0} min" : $"{(int)(seconds / 3600)} h {seconds % 3600 / 60:00} min";

    static string Capitalized(string text) => text.Length == 0 ? text : char.ToUpperInvariant(text[0]) + text[1..];

    static (StrategyEstimate Chosen, string Reason) Rule(StrategyEstimate plain, IReadOnlyList<StrategyEstimate> candidates)
    {
        var others = candidates.Where(e => e.Gain is not null).ToList();
        var clear = others.Where(e => e.Gain!.Clear).ToList();
        if (clear.Count == 0)
        {
            var closest = others.MaxBy(e => e.Gain!.Value);
            return (plain, closest is null || closest.Gain!.Value <= 0
                ? $"→ {plain.Describe()}: no other strategy measured better."
                : $"→ {plain.Describe()}: {closest.Describe()} measured {closest.Gain!.Describe()}, inside the noise, so the cheaper strategy is chosen.");
        }
        var best = clear.MaxBy(e => e.Gain!.Value)!;
        var cheaper = clear.First(e => e.Gain!.Value >= best.Gain!.Interval.Low); // clear keeps the order of cost
        return cheaper == best
            ? (best, $"→ {best.Describe()}: it beats {plain.Describe()} by {best.Gain!.Describe()}, beyond the noise.")
            : (cheaper, $"→ {cheaper.Describe()}: it beats {plain.Describe()} by {cheaper.Gain!.Describe()}; {best.Describe()} measured " +
                $"{best.Gain!.Describe()}, a difference inside the noise, so the cheaper strategy is chosen.");
    }
}
