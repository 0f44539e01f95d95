using System.Globalization;
using System.Text.Json;
using Graft.Data;
using Spectre.Console;

namespace Graft.Bench;

/// <summary>
/// Which recipe is the default (option <see cref="BenchOptions.Accuracy"/>): every candidate trained as `graft train`
/// trains it, in a process of its own (its wall time and peak memory are its own), on each dataset with three seeds,
/// and scored on the same held-out images — the data's test or validation folder, else a fixed fifth of each class that
/// no seed trains on. A seed splits the rest into training and validation images and starts the network. Each run is
/// appended to a results file as it ends, so a stopped study continues where it was (the same candidates, seeds and
/// data are skipped), seed by seed. The table gives each candidate's mean ± sd test accuracy, its mean wall time and peak memory.
/// </summary>
static class AccuracyBench
{
    /// <summary>Seeds of every candidate's runs.</summary>
    public static readonly int[] Seeds = [1, 2, 3];

    /// <summary>The candidates: feature extraction, and fine-tuning by each recipe; more with <see cref="BenchOptions.Candidates"/>.</summary>
    static readonly (string Name, string[] Arguments)[] Standard =
    [
        ("feature extraction", ["--strategy", "feature-extraction"]),
        ("fine-tune, top-blocks", ["--strategy", "fine-tune", "--recipe", "top-blocks"]),
        ("fine-tune, deep", ["--strategy", "fine-tune", "--recipe", "deep"]),
    ];

    sealed record Run(string Dataset, string Candidate, string Arguments, int Seed, double Accuracy, int TestImages, double Seconds, double PeakMb, int Epochs)
    {
        /// <summary>Fine-tuning only: whether the fine-tuned trunk was kept (train's fine_tuning_kept); null otherwise or in older runs.</summary>
        public bool? FineTuningKept { get; init; }
    }

    public static async Task RunAsync(BenchOptions options, BenchHost host, CancellationToken cancel)
    {
        var machine = Machine.Here();
        host.Log(machine.StartLine);
        var candidates = Standard.Concat(options.Candidates.Select(c => (c, c.Split(' ', StringSplitOptions.RemoveEmptyEntries)))).ToList();
        var datasets = options.Datasets.Where(n => n != BenchOptions.PhoneDataset).ToList();
        var folder = Path.Combine(host.Assets.CacheRoot, "bench-accuracy");
        Directory.CreateDirectory(folder);
        var resultsFile = Path.Combine(folder, "runs.jsonl");
        var runs = File.Exists(resultsFile) ? File.ReadLines(resultsFile).Select(l => JsonSerializer.Deserialize<Run>(l)!).ToList() : [];
        // Seed by seed: a study stopped early still has every candidate on every dataset.
        var layouts = datasets.ToDictionary(n => n, n => Layout(n, folder, host));
        foreach (int seed in Seeds)
            foreach (var name in datasets)
                foreach (var (candidate, arguments) in candidates)
                {
                    var layout = layouts[name];
                    cancel.ThrowIfCancellationRequested();
                    string args = string.Join(' ', arguments);
                    if (runs.Any(r => r.Dataset == name && r.Arguments == args && r.Seed == seed)) continue;
                    host.Log($"{name}: graft train {args} --seed {seed}...");
                    var json = ChildRuns.Train(host, layout, Path.Combine(folder, "cache"), [.. arguments, "--seed", seed.ToString(CultureInfo.InvariantCulture)],
                        epochLog: host.Log);
                    var test = json.GetProperty("test");
                    var run = new Run(name, candidate, args, seed, test.GetProperty("accuracy").GetDouble(), test.GetProperty("images").GetInt32(),
                        json.GetProperty("wall_seconds").GetDouble(), json.GetProperty("peak_rss_mb").GetDouble(), json.GetProperty("epochs").GetInt32())
                    {
                        FineTuningKept = json.TryGetProperty("fine_tuning_kept", out var kept) && kept.ValueKind != JsonValueKind.Null ? kept.GetBoolean() : null,
                    };
                    runs.Add(run);
                    File.AppendAllLines(resultsFile, [JsonSerializer.Serialize(run)]);
                    host.Log($"  test accuracy {run.Accuracy:0.0000} of {run.TestImages}, {run.Seconds:0} s, {run.PeakMb:0} MB" +
                        (run.FineTuningKept is false ? " (fine-tuning did not validate above the head alone: not kept)" : ""));
                }
        await Task.CompletedTask;

        string loadAtEnd = Machine.LoadAverage();
        host.Out.WriteLine(machine.Summary(loadAtEnd));
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"test accuracy, mean ± sd over seeds {string.Join(", ", Seeds)} (the same held-out images for every run); wall time and peak memory of `graft train`")
            .AddColumns("data", "candidate", "test accuracy", "vs feature extraction (points)", "wall s (mean)", "peak MB (max)", "runs");
        var summary = new List<object>();
        foreach (var name in datasets)
        {
            var ofData = runs.Where(r => r.Dataset == name).ToList();
            double? baseline = Mean(ofData.Where(r => r.Arguments == string.Join(' ', Standard[0].Arguments)));
            foreach (var (candidate, arguments) in candidates)
            {
                var mine = ofData.Where(r => r.Arguments == string.Join(' ', arguments)).ToList();
                if (mine.Count == 0) continue;
                double mean = mine.Average(r => r.Accuracy), sd = Sd(mine.Select(r => r.Accuracy).ToList());
                table.AddRow(name, host.Escape(candidate), $"{mean:0.000} ± {sd:0.000} of {mine[0].TestImages}",
                    baseline is { } b ? $"{100 * (mean - b):+0.0;-0.0;0.0}" : "-", $"{mine.Average(r => r.Seconds):0}", $"{mine.Max(r => r.PeakMb):0}", $"{mine.Count}");
                summary.Add(new { dataset = name, candidate, arguments = string.Join(' ', arguments), mean, sd, runs = mine.Count, test_images = mine[0].TestImages,
                    seconds = mine.Average(r => r.Seconds), peak_mb = mine.Max(r => r.PeakMb), seeds = mine.Select(r => new { r.Seed, r.Accuracy, r.Seconds, r.Epochs }) });
            }
        }
        host.Out.Write(table);
        host.Out.WriteLine($"runs are kept in {resultsFile}: delete it to measure again");
        host.WriteJson?.Invoke(new
        {
            cpu = machine.Cpu, cores = machine.Cores, allocator = machine.Allocator, threads = machine.Threads,
            load_average_start = machine.LoadAtStart, load_average_end = loadAtEnd, seeds = Seeds, results = summary,
        });
    }

    static double? Mean(IEnumerable<Run> runs) => runs.Any() ? runs.Average(r => r.Accuracy) : null;

    static double Sd(IReadOnlyList<double> values)
    {
        if (values.Count < 2) return 0;
        double mean = values.Average();
        return Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1));
    }

    /// <summary>
    /// The dataset as train/ (what the seeds split into training and validation) and test/ (held out from every run), as
    /// links to its files: the data's test or validation folder is the test set, else a fixed fifth of each class.
    /// </summary>
    static string Layout(string name, string folder, BenchHost host)
    {
        var path = SampleDatasets.Resolve(name, host.Assets);
        var opened = ImageFolder.OpenForTraining(path, validationSplit: 0.2, seed: 42);
        var (pool, test) = opened.Test.Count > 0 ? (opened.Train.Concat(opened.Validation).ToList(), opened.Test) : (opened.Train, opened.Validation);
        var root = Path.Combine(folder, Path.GetFileName(Path.TrimEndingDirectorySeparator(name)));
        if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        foreach (var (role, images) in new[] { ("train", pool), ("test", test) })
            foreach (var image in images)
            {
                var target = Path.Combine(root, role, opened.Classes[image.Label], Path.GetFileName(image.Path));
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.CreateSymbolicLink(target, Path.GetFullPath(image.Path));
            }
        return root;
    }
}
