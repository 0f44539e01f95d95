namespace Graft.Imaging;

/// <summary>
/// What a network expects of an image: square size and the per-channel mapping of 0..255 RGB pixels,
/// x = (p - mean) / std. Saved with every model so prediction preprocesses exactly as training did.
/// </summary>
public sealed record ImageSpec(int Size, float[] Mean, float[] Std, ResizeMode Resize = ResizeMode.Squash)
{
    /// <summary>Channels go to the network as B, G, R (Keras's caffe preprocessing); mean and std are in that order.</summary>
    public bool Bgr { get; init; }

    /// <summary>The same mean and std for all three channels.</summary>
    public static ImageSpec Uniform(int size, float mean, float std) => new(size, [mean, mean, mean], [std, std, std]);

    /// <summary>For people: "224x224 BGR, (pixel - [103.939, …]) / [1, 1, 1]".</summary>
    public string Describe() => FormattableString.Invariant(
        $"{Size}x{Size} {(Bgr ? "BGR" : "RGB")}, (pixel - [{string.Join(", ", Mean.Select(m => m.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)))}]) / [{string.Join(", ", Std.Select(d => d.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)))}]");

    /// <summary>A stable text form, part of the feature-cache key.</summary>
    public string Key => FormattableString.Invariant($"{Size}|{string.Join(",", Mean)}|{string.Join(",", Std)}|{Resize}|{(Bgr ? "bgr|" : "")}{ImageLoader.ResizeVersion}");
}

/// <summary>
/// How a photo becomes a square: squash the whole image (how the pretrained ImageNet classifiers are
/// evaluated), or crop its centred square first (keeps proportions, and measured better for transfer learning on
/// both sample datasets: docs/benchmarks.md).
/// </summary>
public enum ResizeMode
{
    /// <summary>Resize the whole image to the square, changing its proportions.</summary>
    Squash,
    /// <summary>Take the centred square (the shorter side), then resize it.</summary>
    CenterCrop,
}
