using System.Text.Json.Serialization;

namespace Graft;

/// <summary>One class and the model's probability for it.</summary>
/// <param name="Label">The class name (its folder name in the training data).</param>
/// <param name="Probability">From 0 to 1; a single-label model's probabilities over all its classes sum to 1 (a multi-label model's are independent).</param>
public sealed record ClassProbability(string Label, float Probability)
{
    /// <summary>"bees 0.982": the label and its probability, three decimals.</summary>
    public override string ToString() => $"{Label} {Probability.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture)}";
}

/// <summary>What a model predicts for one image.</summary>
/// <param name="File">The image's path, or the name given for a stream or byte array.</param>
/// <param name="Label">The most probable class.</param>
/// <param name="Confidence">Its probability.</param>
/// <param name="Top">The most probable classes, best first (the first is <paramref name="Label"/>).</param>
public sealed record Prediction(string File, string Label, float Confidence, IReadOnlyList<ClassProbability> Top)
{
    /// <summary>
    /// The photo looks like none of the training images: its <see cref="OodScore"/> is above the threshold the model set
    /// on its validation images. <see cref="Label"/> is still the closest class. Always false for models without a
    /// threshold (trained before Graft had one, or on too few validation images) and when the classifier accepts all.
    /// </summary>
    public bool Unknown { get; init; }

    /// <summary>How unlike the training images the photo is (higher: less like them); null when the model has no detector.</summary>
    public float? OodScore { get; init; }

    /// <summary>
    /// A multi-label model's answer: every class whose probability reaches its threshold, most probable first (empty when
    /// none does); null for single-label models. <see cref="Label"/> is still the most probable class.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<ClassProbability>? Labels { get; init; }

    /// <summary>
    /// One line: "photo.jpg: bees 0.982 (top: bees 0.982, ants 0.018)", with ", unknown" inside the brackets when the photo
    /// looks like none of the training images; a multi-label model's: "photo.jpg: dog 0.931, beach 0.702 (top: ...)" (its
    /// <see cref="Labels"/>, or "no label").
    /// </summary>
    public override string ToString() =>
        $"{File}: {(Labels is null ? new ClassProbability(Label, Confidence).ToString() : Labels.Count == 0 ? "no label" : string.Join(", ", Labels))} " +
        $"(top: {string.Join(", ", Top)}{(Unknown ? ", unknown" : "")})";

    /// <summary>Where the network looked for <see cref="Label"/>: a heat map and its peak (null unless an explanation was asked for).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Explanation? Explanation { get; init; }

    /// <summary>
    /// The <paramref name="top"/> most probable classes of one image's probabilities, ties to the lower index; unknown when
    /// its <paramref name="oodScore"/> is above <paramref name="threshold"/> (null: every image is known); with a
    /// multi-label model's <paramref name="thresholds"/>, its <see cref="Labels"/>.
    /// </summary>
    internal static Prediction Rank(string file, ReadOnlySpan<float> row, IReadOnlyList<string> classes, int top, float? oodScore = null, double? threshold = null,
        IReadOnlyList<double>? thresholds = null)
    {
        var probabilities = row.ToArray();
        var ranked = Enumerable.Range(0, probabilities.Length).OrderByDescending(i => probabilities[i]).ThenBy(i => i)
            .Take(Math.Max(1, top)).Select(i => new ClassProbability(classes[i], probabilities[i])).ToList();
        return new Prediction(file, ranked[0].Label, ranked[0].Probability, ranked)
        {
            OodScore = oodScore,
            Unknown = oodScore is { } score && threshold is { } limit && score > limit,
            Labels = thresholds?.Select((t, i) => (t, i)).Where(x => probabilities[x.i] >= x.t).OrderByDescending(x => probabilities[x.i]).ThenBy(x => x.i)
                .Select(x => new ClassProbability(classes[x.i], probabilities[x.i])).ToList(),
        };
    }
}

/// <summary>An image that was not used, and why (undecodable, unreadable, not an image).</summary>
/// <param name="Path">The file.</param>
/// <param name="Reason">One line: what is wrong with it.</param>
public sealed record SkippedImage(string Path, string Reason);

/// <summary>The predictions for a batch of files, with the files that could not be predicted.</summary>
/// <param name="Predictions">One per readable image, in the order given.</param>
/// <param name="Skipped">The files that could not be read or decoded, with the reason.</param>
public sealed record PredictionBatch(IReadOnlyList<Prediction> Predictions, IReadOnlyList<SkippedImage> Skipped);

/// <summary>An image decoded and prepared for a model's network (<see cref="ImageClassifier.Prepare"/>), not yet predicted.</summary>
public sealed class PreparedImage
{
    internal PreparedImage(string name, Imaging.ImageSpec input, float[] pixels) => (Name, Input, Pixels) = (name, input, pixels);

    /// <summary>Names the image in its prediction.</summary>
    public string Name { get; }

    /// <summary>The input it was prepared for: its size and pixel mapping.</summary>
    public Imaging.ImageSpec Input { get; }

    /// <summary>The network's input: channels, rows, columns.</summary>
    internal float[] Pixels { get; }
}
