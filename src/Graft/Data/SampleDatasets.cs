using System.Text.RegularExpressions;
using Graft.Weights;
using Graft.Imaging;

namespace Graft.Data;

/// <summary>
/// A sample dataset: where it comes from and what its files must be.
/// </summary>
/// <param name="Name">What users type: <c>graft train hymenoptera</c>.</param>
/// <param name="Page">Where it is published (for people).</param>
/// <param name="Url">Its zip's direct download, or null where upstream needs a login (the user downloads it and hands it over).</param>
/// <param name="ZipName">The zip's file name upstream.</param>
/// <param name="Layout">Maps a zip entry's name (forward slashes) to its path in the dataset, or to null to leave it out.</param>
/// <param name="ContentHash">The extracted dataset's <see cref="DatasetContent.Hash"/>, as in the offline mirror.</param>
internal sealed record SampleDataset(string Name, string Page, string? Url, string ZipName, Func<string, string?> Layout,
    string ContentHash, int Files, long Bytes);

/// <summary>
/// The sample datasets Graft's docs and benchmarks use, by name: `graft train hymenoptera` works wherever the offline
/// mirror (GRAFT_ASSETS or the checkout's shared/ folder) holds them, or once <see cref="Get"/> has put them into Graft's cache.
/// </summary>
internal static partial class SampleDatasets
{
    public static readonly IReadOnlyList<SampleDataset> All =
    [
        new("hymenoptera", "https://download.pytorch.org/tutorial/hymenoptera_data.zip", "https://download.pytorch.org/tutorial/hymenoptera_data.zip",
            "hymenoptera_data.zip", UnderFolder("hymenoptera_data"),
            "de482aeb9aa7e451514763b89460f2f6de607558d0b3b6c7490a6ae5b243ce8d", 398, 47_385_924),
        new("cats_vs_dogs", "https://www.kaggle.com/c/dogs-vs-cats/data", null, "train.zip", KaggleSubset(train: (1, 1000), validation: (4001, 4400)),
            "a45b346a4a6af6544fa903d61245edf7c4812bc397f6088f567ae1d298b5209c", 2800, 126_387_357),
    ];

    /// <summary>The sample dataset of this name, or null.</summary>
    public static SampleDataset? Named(string name) => All.FirstOrDefault(d => d.Name == name);

    /// <summary>The files under the zip's top folder, without it (<c>TOP/train/x.jpg</c> → <c>train/x.jpg</c>); the rest of the zip is left out.</summary>
    public static Func<string, string?> UnderFolder(string top) =>
        entry => entry.StartsWith(top + "/", StringComparison.Ordinal) ? entry[(top.Length + 1)..] : null;

    /// <summary>
    /// The Keras blog's "very little data" layout from Kaggle's train.zip (<c>train/cat.123.jpg</c>): images numbered in
    /// <paramref name="train"/> go to <c>train/{cats,dogs}</c>, those in <paramref name="validation"/> to
    /// <c>validation/{cats,dogs}</c>, keeping their names; the others are left out.
    /// </summary>
    public static Func<string, string?> KaggleSubset((int First, int Last) train, (int First, int Last) validation) => entry =>
    {
        var m = KaggleName().Match(entry);
        if (!m.Success || !int.TryParse(m.Groups[2].ValueSpan, out var number)) return null;
        var split = number >= train.First && number <= train.Last ? "train"
            : number >= validation.First && number <= validation.Last ? "validation" : null;
        return split is null ? null : $"{split}/{m.Groups[1].Value}s/{entry["train/".Length..]}";
    };

    [GeneratedRegex(@"^train/(cat|dog)\.([0-9]{1,9})\.jpg$")]
    private static partial Regex KaggleName();

    /// <summary>DATA as given when it exists or is no sample's name; otherwise the sample dataset's folder here.</summary>
    public static string Resolve(string data, AssetResolver resolver)
    {
        if (Directory.Exists(data) || File.Exists(data) || Named(data) is not { } dataset) return data;
        return Find(dataset, resolver) ?? throw new GraftException(
            $"The sample dataset '{data}' is not on this machine (looked in {string.Join(", ", Places(dataset, resolver))}).",
            [], CallerFix.GetDataset, dataset.Name);
    }

    /// <summary>
    /// Where the dataset is here: a mirror's <c>data/NAME</c> first (checked, as <see cref="CheckMirror"/> says), then
    /// Graft's cache (checked when it was put there); null if nowhere.
    /// </summary>
    public static string? Find(SampleDataset dataset, AssetResolver resolver)
    {
        var found = Places(dataset, resolver).FirstOrDefault(Directory.Exists);
        if (found is not null && found != CacheFolder(dataset, resolver)) CheckMirror(dataset, found, resolver);
        return found;
    }

    /// <summary>
    /// A mirror's copy must hold the published content, as a download must: its content hash (every file read) is
    /// computed the first time and remembered in Graft's cache with the folder's listing (paths, sizes and times), so
    /// later runs only list the folder, and hash it again when the listing changed. A copy that differs is refused.
    /// </summary>
    static void CheckMirror(SampleDataset dataset, string folder, AssetResolver resolver)
    {
        var record = Path.Combine(resolver.CacheRoot, "datasets", $"{dataset.Name}.mirror-checked");
        var checkedAs = $"{Path.GetFullPath(folder)}\n{DatasetArchive.Listing(folder)}\n{dataset.ContentHash}";
        if (File.Exists(record) && File.ReadAllText(record) == checkedAs) return;
        var content = DatasetArchive.Content(folder);
        if (content.Hash != dataset.ContentHash)
            throw new GraftException($"{folder}: the mirror's {dataset.Name} has content hash {content.Hash} ({content.Files} files), " +
                $"expected {dataset.ContentHash} ({dataset.Files} files).",
                $"Replace it with the unmodified {dataset.ZipName} from {dataset.Url ?? dataset.Page} unpacked, or delete it from the mirror.");
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(record)!);
            var temp = $"{record}.{Environment.ProcessId}-{Guid.NewGuid():N}.part";
            File.WriteAllText(temp, checkedAs);
            File.Move(temp, record, overwrite: true); // atomic: a concurrent run reads the old record or the new one
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // a cache that cannot be written: checked again next time
    }

    static IEnumerable<string> Places(SampleDataset dataset, AssetResolver resolver) =>
        resolver.SearchRoots.Select(r => Path.Combine(r, "data", dataset.Name)).Append(CacheFolder(dataset, resolver));

    /// <summary>Where <see cref="Get"/> puts the dataset: <c>CACHE/datasets/NAME</c> (GRAFT_CACHE, else ~/.cache/graft).</summary>
    public static string CacheFolder(SampleDataset dataset, AssetResolver resolver) => Path.Combine(resolver.CacheRoot, "datasets", dataset.Name);

    /// <summary>
    /// The dataset's folder: where <see cref="Find"/> finds it, else extracted into <see cref="CacheFolder"/> from
    /// <paramref name="zip"/> (the upstream zip the user downloaded) or from a download of <see cref="SampleDataset.Url"/>
    /// (the resolver's downloader: progress, stalls, truncation, offline mode). The extraction goes to a temporary
    /// folder beside the target, is checked against the content hash, and only then renamed into place; a failure
    /// leaves neither that folder nor the downloaded zip behind.
    /// </summary>
    public static string Get(SampleDataset dataset, AssetResolver resolver, string? zip = null)
    {
        if (Find(dataset, resolver) is { } found) return found;
        if (zip is not null && !File.Exists(zip))
            throw new GraftException($"{zip} does not exist.", $"Pass the path of {dataset.ZipName} downloaded from {dataset.Url ?? dataset.Page}.");
        var asset = zip is null ? ZipAsset(dataset, resolver) : null;
        string source;
        try { source = zip ?? resolver.Resolve(asset!); }
        catch (GraftException e) when (e.CallerFix == CallerFix.None) { throw new GraftException(e.Problem, e.Fixes, CallerFix.DatasetZip, dataset.Name); }
        try { return Install(dataset, resolver, source, zip ?? dataset.Url!); }
        finally
        {
            // Downloaded only to be extracted: the dataset folder is what stays (a mirror's copy is not ours to delete).
            if (asset is not null && source == resolver.CachePath(asset)) File.Delete(source);
        }
    }

    /// <summary>The zip's asset, once it is known that it can be downloaded (else the user hands the zip over: <see cref="CallerFix.DatasetZip"/>).</summary>
    static Asset ZipAsset(SampleDataset dataset, AssetResolver resolver)
    {
        if (dataset.Url is null)
            throw new GraftException($"{dataset.Name} has no direct download ({dataset.Page} needs a login).",
                [$"Download {dataset.ZipName} from {dataset.Page}."], CallerFix.DatasetZip, dataset.Name);
        if (!resolver.AllowDownload)
            throw new GraftException($"The sample dataset '{dataset.Name}' is not on this machine and downloads are disabled (GRAFT_OFFLINE).",
                ["Unset GRAFT_OFFLINE to download it.", $"Or download {dataset.Url} elsewhere."], CallerFix.DatasetZip, dataset.Name);
        // Upstream publishes no hash of the zip: the content hash of what it extracts to is the check.
        return new Asset($"datasets/{dataset.ZipName}", dataset.Url, Hash: null);
    }

    static string Install(SampleDataset dataset, AssetResolver resolver, string zip, string source)
    {
        var target = CacheFolder(dataset, resolver);
        var parent = Path.GetDirectoryName(target)!;
        Directory.CreateDirectory(parent);
        RemoveAbandoned(parent, dataset.Name);
        var temp = $"{target}.{Environment.ProcessId}-{Guid.NewGuid():N}.part";
        try
        {
            DatasetArchive.Extract(zip, temp, dataset.Layout);
            var content = DatasetArchive.Content(temp);
            if (content.Hash != dataset.ContentHash)
                throw new GraftException($"{source}: the extracted {dataset.Name} has content hash {content.Hash} ({content.Files} files), " +
                    $"expected {dataset.ContentHash} ({dataset.Files} files).", $"Use an unmodified {dataset.ZipName} from {dataset.Url ?? dataset.Page}.");
            try { Directory.Move(temp, target); } // rename(2): the folder appears whole or not at all
            catch (IOException) when (Directory.Exists(target)) { } // another process installed the same verified content first
            return target;
        }
        finally
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        }
    }

    /// <summary>Deletes temporary folders that killed runs left beside the target (a live extraction takes seconds, not an hour).</summary>
    static void RemoveAbandoned(string parent, string name)
    {
        foreach (var part in Directory.EnumerateDirectories(parent, name + ".*.part"))
            if (DateTime.UtcNow - Directory.GetLastWriteTimeUtc(part) > TimeSpan.FromHours(1))
                try { Directory.Delete(part, recursive: true); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
