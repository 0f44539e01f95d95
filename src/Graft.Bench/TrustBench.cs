using Graft.Evaluation;
using Graft.Heads;
using Graft.Imaging;
using Graft.Training;
using Spectre.Console;

namespace Graft.Bench;

/// <summary>
/// Calibrated confidence and "none of these", measured (option <see cref="BenchOptions.Trust"/>): on each dataset, models
/// trained as `graft train DATA --test-split 0.2 --seed S` trains them (feature extraction, three seeds). On each model's
/// test images, the expected calibration error before and after its temperature scaling, the seeds' reliability bins
/// added up; and for every out-of-distribution score (statistics from the training images, threshold from the validation
/// images at 95% acceptance) its AUROC and false acceptance against photos of every other dataset and the shared
/// ImageNet photos, averaged over the seeds. The issue's targets: calibration error at most 0.03 and never worse than
/// before; AUROC at least 0.95 at the default score.
/// </summary>
static class TrustBench
{
    /// <summary>Seeds of the training runs: each splits the images its own way.</summary>
    static readonly int[] Seeds = [42, 1, 2];

    /// <summary>At most this many photos of another set (a seeded sample, the same for every model).</summary>
    const int MaxOthers = 400;

    sealed record ScoreResult(string Other, int Photos, string Score, bool Default, double Auroc, double FalseAcceptance, double Acceptance);

    sealed record DatasetResult(string Dataset, int TestImages, double EceBefore, double Ece, IReadOnlyList<double?> Temperatures,
        IReadOnlyList<ScoreResult> Scores)
    {
        public bool Met => Ece <= 0.03 && Ece <= EceBefore && Scores.Where(s => s.Default).All(s => s.Auroc >= 0.95);
    }

    public static async Task RunAsync(BenchOptions options, BenchHost host, CancellationToken cancel)
    {
        var machine = Machine.Here();
        host.Log(machine.StartLine);
        var names = options.Datasets.Where(n => n != BenchOptions.PhoneDataset).ToList();
        var folders = names.ToDictionary(n => n, n => host.Mirrored("data", n, "The trust bench"));
        var photos = names.ToDictionary(n => n, n => Sample(folders[n]));
        photos["imagenet"] = Sample(host.Mirrored("images", "imagenet", "The trust bench"));
        var quiet = host.Progress with { Log = null, Epochs = null };
        var trust = new TrustOptions();
        var results = new List<DatasetResult>();
        foreach (var name in names)
        {
            var others = photos.Where(p => p.Key != name).ToDictionary(p => p.Key, p => p.Value);
            var measured = new List<TrustMeasurement>();
            foreach (int seed in Seeds)
            {
                host.Log($"{name}: training with --test-split 0.2 --seed {seed}, then measuring against {string.Join(", ", others.Keys)}...");
                var train = new TrainOptions { TestSplit = 0.2, Fit = new FitOptions(Seed: seed), CacheRoot = host.Assets.CacheRoot };
                var trained = await Learner.TrainAsync(folders[name], train, host.Assets, quiet, cancel);
                using var model = trained.Model;
                measured.Add(await Trust.MeasureAsync(model, trained.Dataset, others, trust, host.Assets.CacheRoot, quiet, cancel));
            }
            var scores = others.Keys.SelectMany(other => Enum.GetValues<OodScore>().Select(score =>
            {
                var rows = measured.Select(m => m.Scores[other].First(s => s.Score == score)).ToList();
                return new ScoreResult(other, rows[0].Out, Names(score), score == trust.Score, rows.Average(r => r.Auroc), rows.Average(r => r.FalseAcceptance),
                    rows.Average(r => r.Acceptance));
            })).ToList();
            results.Add(new DatasetResult(name, measured.Sum(m => m.TestImages), Calibration.Ece(Pool(measured.Select(m => m.Calibration.BinsBefore))),
                Calibration.Ece(Pool(measured.Select(m => m.Calibration.Bins))), measured.Select(m => m.Calibration.Temperature).ToList(), scores));
        }

        string loadAtEnd = Machine.LoadAverage();
        host.Out.WriteLine(machine.Summary(loadAtEnd));
        var calibration = new Table().Border(TableBorder.Rounded)
            .Title($"expected calibration error on the test images (--test-split 0.2, seeds {string.Join(", ", Seeds)}, pooled): target <= 0.03 and never worse")
            .AddColumns("data", "test images", "before", "after temperature scaling", "temperatures", "met");
        foreach (var r in results)
            calibration.AddRow(r.Dataset, $"{r.TestImages}", $"{r.EceBefore:0.000}", $"{r.Ece:0.000}",
                string.Join(", ", r.Temperatures.Select(t => t is { } v ? $"{v:0.###}" : "none")), Tables.Met(r.Ece <= 0.03 && r.Ece <= r.EceBefore));
        host.Out.Write(calibration);
        var unknown = new Table().Border(TableBorder.Rounded)
            .Title($"photos of other sets against the test images, threshold at {trust.Acceptance:0%} of the validation images (mean over the seeds); target AUROC >= 0.95 at the default score")
            .AddColumns("model's data", "other photos", "score", "AUROC", $"false acceptance at {trust.Acceptance:0%}", "test images accepted");
        foreach (var r in results)
            foreach (var s in r.Scores)
                unknown.AddRow(r.Dataset, $"{s.Other} ({s.Photos})", s.Default ? $"[bold]{s.Score}[/] (default)" : s.Score, $"{s.Auroc:0.000}",
                    $"{s.FalseAcceptance:0.000}", $"{s.Acceptance:0.000}");
        host.Out.Write(unknown);
        host.WriteJson?.Invoke(new
        {
            cpu = machine.Cpu, cores = machine.Cores, load_average_start = machine.LoadAtStart, load_average_end = loadAtEnd, seeds = Seeds,
            acceptance = trust.Acceptance, default_score = Names(trust.Score),
            datasets = results.Select(r => new { r.Dataset, r.TestImages, r.EceBefore, r.Ece, r.Temperatures, r.Scores, r.Met }),
        });
    }

    static string Names(OodScore score) => score.ToString().ToLowerInvariant();

    /// <summary>At most <see cref="MaxOthers"/> of a folder's images (searched recursively), a seeded sample in name order.</summary>
    static IReadOnlyList<string> Sample(string folder)
    {
        var files = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Where(ImageLoader.IsImageFile).Order(StringComparer.Ordinal).ToArray();
        new Random(1).Shuffle(files);
        return files.Take(MaxOthers).Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>The reliability bins of several models' test images added up (the calibration error of all their images together).</summary>
    static IReadOnlyList<ReliabilityBin> Pool(IEnumerable<IReadOnlyList<ReliabilityBin>> models) =>
        models.SelectMany(bins => bins.Select((bin, i) => (bin, i))).GroupBy(t => t.i).Select(g =>
        {
            int n = g.Sum(t => t.bin.Images);
            return new ReliabilityBin(g.First().bin.Low, g.First().bin.High, n, n == 0 ? 0 : g.Sum(t => t.bin.Images * t.bin.Confidence) / n,
                n == 0 ? 0 : g.Sum(t => t.bin.Images * t.bin.Accuracy) / n);
        }).ToList();
}
