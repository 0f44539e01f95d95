using Graft.Heads;
namespace Graft.Training;

/// <summary>Where long work reports to; the library never prints.</summary>
public sealed record Callbacks(IProgress<ImageProgress>? Images = null, IProgress<EpochProgress>? Epochs = null, Action<string>? Log = null)
{
    /// <summary>Reports nothing.</summary>
    public static readonly Callbacks None = new();
}

/// <summary>What computing the bottleneck features cost: images in all, found in the cache, computed, and the seconds.</summary>
public sealed record FeatureStats(int Images, int CacheHits, int Computed, double Seconds)
{
    /// <summary>Computed images per second.</summary>
    public double ImagesPerSecond => Computed / Math.Max(Seconds, 1e-9);
}
