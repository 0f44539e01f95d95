using Graft.Audit;
using Graft.Data;
using Spectre.Console;

namespace Graft.Bench;

/// <summary>
/// The audit's label check, measured (option <see cref="BenchOptions.Audit"/>): how many correct labels it flags on
/// clean data (the shared sets whole, and seeded draws of 20, 50 and 100 photos per class of sign_digits, three draws
/// each), and how many planted label flips it finds (5% of the photos moved to a wrong class, in cats_vs_dogs and
/// sign_digits). The issue's targets: at most 1 flag per 100 clean images at every size, and the planted flips found
/// as before. The shared sets may hold a few real label errors, so their flags are an upper bound on false flags.
/// </summary>
static class AuditBench
{
    static readonly int[] Sizes = [20, 50, 100];
    static readonly int[] Draws = [1, 2, 3];
    const double FlippedShare = 0.05;

    sealed record CleanResult(string Data, int PerClass, int Draws, int Images, int Flags, IReadOnlyList<string> Examples)
    {
        public double FlagsPer100 => 100.0 * Flags / Images;
        public bool Met => FlagsPer100 <= 1;
    }

    sealed record PlantedResult(string Data, int Images, int Flipped, int Found, int Flags)
    {
        public double Recall => (double)Found / Flipped;
        public double Precision => Flags == 0 ? 0 : (double)Found / Flags;
    }

    public static async Task RunAsync(BenchOptions options, BenchHost host, CancellationToken cancel)
    {
        var machine = Machine.Here();
        host.Log(machine.StartLine);
        var audit = new AuditOptions { CacheRoot = host.Assets.CacheRoot, LearningCurve = false };
        var names = options.Datasets.Where(n => n != BenchOptions.PhoneDataset).ToList();
        var clean = new List<CleanResult>();
        var planted = new List<PlantedResult>();
        using var scratch = new TempFolder();
        foreach (var name in names)
        {
            var folder = host.Mirrored("data", name, "The audit bench");
            host.Log($"{name}: auditing every photo...");
            var whole = await DataAudit.RunAsync(folder, audit, host.Assets, host.Progress with { Log = null }, cancel);
            clean.Add(new CleanResult(name, 0, 1, whole.Classes.Sum(c => c.Total), whole.LabelIssues.Count, Examples(whole, folder).ToList()));
            var photos = Photos(folder);
            foreach (int size in Sizes.Where(s => photos.Values.All(p => p.Count >= 2 * s)))
            {
                int images = 0, flags = 0;
                var examples = new List<string>();
                foreach (int draw in Draws)
                {
                    var root = Path.Combine(scratch.Path, $"{name}-{size}-{draw}");
                    Plant(root, photos, size, 0, draw);
                    var result = await DataAudit.RunAsync(root, audit, host.Assets, host.Progress with { Log = null }, cancel);
                    images += result.Classes.Sum(c => c.Total);
                    flags += result.LabelIssues.Count;
                    examples.AddRange(Examples(result, root));
                }
                host.Log($"  {size} per class: {flags} flags on {images} clean photos");
                clean.Add(new CleanResult(name, size, Draws.Length, images, flags, examples.Take(3).ToList()));
            }
            int plantSize = Math.Min(300, photos.Values.Min(p => p.Count));
            var plantRoot = Path.Combine(scratch.Path, $"{name}-planted");
            var flipped = Plant(plantRoot, photos, plantSize, FlippedShare, 7);
            var found = await DataAudit.RunAsync(plantRoot, audit, host.Assets, host.Progress with { Log = null }, cancel);
            var reported = found.LabelIssues.Select(i => i.File).ToHashSet();
            planted.Add(new PlantedResult(name, found.Classes.Sum(c => c.Total), flipped.Count, flipped.Count(reported.Contains), reported.Count));
            host.Log($"  planted: {planted[^1].Found} of {flipped.Count} flips found, {reported.Count} flags");
        }

        string loadAtEnd = Machine.LoadAverage();
        host.Out.WriteLine(machine.Summary(loadAtEnd));
        var cleanTable = new Table().Border(TableBorder.Rounded)
            .Title($"label issues flagged on clean data (draws of N photos per class: seeds {string.Join(", ", Draws)}); target <= 1 per 100 images")
            .AddColumns("data", "photos per class", "images audited", "flags", "per 100 images", "examples", "met");
        foreach (var r in clean)
            cleanTable.AddRow(r.Data, r.PerClass == 0 ? "all" : $"{r.PerClass} (x{r.Draws})", $"{r.Images}", $"{r.Flags}", $"{r.FlagsPer100:0.00}",
                host.Escape(string.Join("; ", r.Examples)), r.PerClass == 0 ? "" : Tables.Met(r.Met));
        host.Out.Write(cleanTable);
        var plantedTable = new Table().Border(TableBorder.Rounded)
            .Title($"planted label flips ({FlippedShare:0%} of up to 300 photos per class moved to a wrong class)")
            .AddColumns("data", "images", "flipped", "found", "recall", "flags", "precision");
        foreach (var r in planted)
            plantedTable.AddRow(r.Data, $"{r.Images}", $"{r.Flipped}", $"{r.Found}", $"{r.Recall:0.000}", $"{r.Flags}", $"{r.Precision:0.000}");
        host.Out.Write(plantedTable);
        host.WriteJson?.Invoke(new
        {
            cpu = machine.Cpu, cores = machine.Cores, load_average_start = machine.LoadAtStart, load_average_end = loadAtEnd,
            clean = clean.Select(r => new { r.Data, r.PerClass, r.Draws, r.Images, r.Flags, r.FlagsPer100, r.Met, r.Examples }),
            planted = planted.Select(r => new { r.Data, r.Images, r.Flipped, r.Found, r.Recall, r.Flags, r.Precision }),
        });
    }

    /// <summary>Every photo of a dataset by class, whatever its part, in name order.</summary>
    static Dictionary<string, List<string>> Photos(string folder)
    {
        var dataset = ImageFolder.OpenForTraining(folder);
        return dataset.All.GroupBy(i => dataset.Classes[i.Label])
            .ToDictionary(g => g.Key, g => g.Select(i => i.Path).Order(StringComparer.Ordinal).ToList());
    }

    /// <summary>
    /// A folder of <paramref name="perClass"/> seeded photos per class (symbolic links), with <paramref name="flip"/> of them
    /// linked into a wrong class instead; returns the flipped links.
    /// </summary>
    static HashSet<string> Plant(string root, Dictionary<string, List<string>> photos, int perClass, double flip, int seed)
    {
        var rng = new Random(seed);
        var classes = photos.Keys.Order(StringComparer.Ordinal).ToArray();
        var chosen = classes.SelectMany(c =>
        {
            var files = photos[c].ToArray();
            rng.Shuffle(files);
            return files.Take(perClass).Select(f => (File: f, Class: c));
        }).ToArray();
        rng.Shuffle(chosen);
        int flips = (int)Math.Round(flip * chosen.Length);
        var flipped = new HashSet<string>();
        for (int k = 0; k < chosen.Length; k++)
        {
            var (file, label) = chosen[k];
            var placed = k < flips ? classes.Where(c => c != label).ElementAt(rng.Next(classes.Length - 1)) : label;
            var link = Path.Combine(root, placed, $"{k:00000}-{Path.GetFileName(file)}");
            Directory.CreateDirectory(Path.GetDirectoryName(link)!);
            File.CreateSymbolicLink(link, file);
            if (placed != label) flipped.Add(link);
        }
        return flipped;
    }

    static IEnumerable<string> Examples(AuditResult result, string root) =>
        result.LabelIssues.Take(3).Select(i => $"{Path.GetRelativePath(root, i.File)}: {i.Given} -> {i.Suggested} ({i.Confidence:0.00})");
}
