using Graft.Weights;

namespace Graft.Data;

/// <summary>
/// The sample datasets Graft's docs and benchmarks use, by name: `graft train hymenoptera` works
/// wherever the offline mirror (GRAFT_ASSETS or a shared/ folder) holds them.
/// </summary>
public static class SampleDatasets
{
    public static readonly IReadOnlyDictionary<string, string> Upstream = new Dictionary<string, string>
    {
        ["hymenoptera"] = "https://download.pytorch.org/tutorial/hymenoptera_data.zip",
        ["cats_vs_dogs"] = "https://www.kaggle.com/c/dogs-vs-cats/data (the Keras blog's 1000+1000 / 400+400 subset)",
    };

    /// <summary>DATA as given when it exists; otherwise a sample dataset's folder in the mirror.</summary>
    public static string Resolve(string data, AssetResolver resolver)
    {
        if (Directory.Exists(data) || File.Exists(data) || !Upstream.TryGetValue(data, out var url)) return data;
        var found = resolver.SearchRoots.Select(r => Path.Combine(r, "data", data)).FirstOrDefault(Directory.Exists);
        return found ?? throw new GraftException($"The sample dataset '{data}' is not in any mirror ({string.Join(", ", resolver.SearchRoots)}).",
            $"Download {url} and unpack it into a folder, then pass that folder.");
    }
}
