namespace Graft.Data;

/// <summary>
/// What a network expects of an image: square size and the per-channel mapping of 0..255 RGB pixels,
/// x = (p - mean) / std. Saved with every model so prediction preprocesses exactly as training did.
/// </summary>
public sealed record ImageSpec(int Size, float[] Mean, float[] Std)
{
    public static ImageSpec Uniform(int size, float mean, float std) => new(size, [mean, mean, mean], [std, std, std]);

    /// <summary>A stable text form, part of the feature-cache key.</summary>
    public string Key => FormattableString.Invariant($"{Size}|{string.Join(",", Mean)}|{string.Join(",", Std)}|{ImageLoader.ResizeVersion}");
}
