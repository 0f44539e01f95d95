using Graft.Imaging;
namespace Graft.Data;

/// <summary>Where a model's images came from and how they were split into training, validation and test images.</summary>
public sealed record DatasetInfo(string Root, string Layout, int TrainImages, int ValidationImages, int SkippedImages)
{
    public int TestImages { get; init; }
    /// <summary>How the images were split (the shares apply where DATA had no val/ or test/ folder), so evaluation can find the held-out ones again.</summary>
    public double ValidationSplit { get; init; }
    public double TestSplit { get; init; }
    public int Seed { get; init; }
    /// <summary>The label file the images and labels were read from, relative to <see cref="Root"/>; null for class folders.</summary>
    public string? LabelsFile { get; init; }
    /// <summary>
    /// The test images, as paths relative to <see cref="Root"/> ('/'-separated): they stay test images when the model grows
    /// on DATA with new photos, and evaluating DATA measures them. Null in files written before it.
    /// </summary>
    public IReadOnlyList<string>? TestFiles { get; init; }
    /// <summary>The model this one grew from (its file, as given); null: trained from its backbone.</summary>
    public string? GrewFrom { get; init; }
}
