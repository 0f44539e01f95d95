using Graft.Weights;

namespace Graft.Bench;

/// <summary>
/// One standard bench run as its families fill it: the rows, in the order they were measured, and what a later
/// family builds on (the backbones measured, the bare fine-tuning step, the sample images).
/// </summary>
sealed class BenchRun(BenchOptions options, BenchHost host)
{
    public BenchOptions Options => options;
    public BenchHost Host => host;
    public AssetResolver Assets => host.Assets;
    public Machine Machine { get; } = Machine.Here();
    public List<Row> Rows { get; } = [];

    /// <summary>The convolution peak, once the backbones were measured against it.</summary>
    public ConvPeak? Peak { get; set; }
    public List<BackboneResult> Backbones { get; set; } = [];

    /// <summary>Images/s of the default backbone's bare fine-tuning step (top 2 blocks), which the whole loop's row stands beside.</summary>
    public double? TopTwoStep { get; set; }

    /// <summary>Up to 256 of cats_vs_dogs' training JPEGs, in name order (none without the shared data).</summary>
    public IReadOnlyList<string> SampleImages => _sample ??= SampleImagesOf(host.Assets, 256);
    IReadOnlyList<string>? _sample;

    /// <summary>Adds a row and logs it as <paramref name="line"/> words it.</summary>
    public void Add(Row row, Func<Row, string> line)
    {
        Rows.Add(row);
        host.Log(line(row));
    }

    static IReadOnlyList<string> SampleImagesOf(AssetResolver assets, int count)
    {
        var root = assets.SearchRoots.Select(r => Path.Combine(r, "data", "cats_vs_dogs", "train")).FirstOrDefault(Directory.Exists);
        return root is null ? [] : Directory.EnumerateFiles(root, "*.jpg", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Take(count).ToList();
    }
}
