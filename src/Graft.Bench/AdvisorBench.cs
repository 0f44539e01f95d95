using System.Diagnostics;
using Graft.Data;
using Spectre.Console;

namespace Graft.Bench;

/// <summary>
/// The advisor against the truth (option <see cref="BenchOptions.Advisor"/>): on each dataset its advice (three seeds,
/// each splitting the training images its own way; the first run with a cold bottleneck cache), then every strategy
/// it weighed trained in full as `graft train` trains it, all scored on held-out images the advisor never saw (the
/// test folder, else the validation folder or split). Regret is the best strategy's accuracy minus the chosen one's,
/// in points.
/// </summary>
static class AdvisorBench
{
    /// <summary>Seeds of the advisor's runs: each splits the training images differently; the advice must not change.</summary>
    static readonly int[] Seeds = [1, 2, 3];

    sealed record StrategyRun(string Arguments, double Accuracy, double CiLow, double CiHigh, int Images, double Estimate,
        double EstimateCiLow, double EstimateCiHigh, double EstimatedSeconds, double Seconds);

    sealed record AdvisorRun(int Seed, string Arguments, double Seconds);

    sealed record AdvisorResult(string Dataset, int AdvisorImages, int TestImages, IReadOnlyList<StrategyRun> Strategies, IReadOnlyList<AdvisorRun> Advice,
        double RegretPoints, double LossVsFeatureExtractionPoints, bool SameAdvice)
    {
        public bool Met => RegretPoints <= 1 && LossVsFeatureExtractionPoints <= 2 && SameAdvice;
    }

    public static async Task RunAsync(BenchOptions options, BenchHost host, CancellationToken cancel)
    {
        var machine = Machine.Here();
        host.Log(machine.StartLine);
        // Every dataset is opened before the first one's long measurement, so one that cannot be is refused at the start.
        var datasets = options.Datasets.Where(n => n != BenchOptions.PhoneDataset).Select(name =>
        {
            var path = SampleDatasets.Resolve(name, host.Assets);
            return (name, path, ImageFolder.OpenForTraining(path));
        }).ToList();
        var results = new List<AdvisorResult>();
        foreach (var (name, path, opened) in datasets)
            results.Add(await Measure(name, path, opened, host, cancel));

        string loadAtEnd = Machine.LoadAverage();
        host.Out.WriteLine(machine.Summary(loadAtEnd));
        var strategies = new Table().Border(TableBorder.Rounded).Title("every strategy trained in full, scored on held-out images the advisor never saw")
            .AddColumns("data", "strategy", "test accuracy (Wilson 95%)", "advisor's estimate (95%)", "train s: estimated / measured");
        foreach (var r in results)
            foreach (var s in r.Strategies)
                strategies.AddRow(r.Dataset, host.Escape(s.Arguments) + (s.Arguments == r.Advice[0].Arguments ? " [green](advised)[/]" : ""),
                    $"{s.Accuracy:0.000} ({s.CiLow:0.000}-{s.CiHigh:0.000}) of {s.Images}", $"{s.Estimate:0.000} ({s.EstimateCiLow:0.000}-{s.EstimateCiHigh:0.000})",
                    $"{s.EstimatedSeconds:0} / {s.Seconds:0}");
        host.Out.Write(strategies);
        var summary = new Table().Border(TableBorder.Rounded).Title("the advisor: target regret <= 1 point, loss against feature extraction <= 2, same advice for every seed")
            .AddColumns("data", "advisor images", $"advice (seeds {string.Join(", ", Seeds)})", "regret (points)", "loss vs feature extraction (points)", "advisor s (cold, warm, warm)", "met");
        foreach (var r in results)
            summary.AddRow(r.Dataset, $"{r.AdvisorImages}", host.Escape(r.SameAdvice ? r.Advice[0].Arguments : string.Join(" | ", r.Advice.Select(a => a.Arguments))),
                $"{r.RegretPoints:0.0}", $"{r.LossVsFeatureExtractionPoints:0.0}", string.Join(", ", r.Advice.Select(a => $"{a.Seconds:0}")), Tables.Met(r.Met));
        host.Out.Write(summary);
        host.WriteJson?.Invoke(new
        {
            cpu = machine.Cpu, cores = machine.Cores, allocator = machine.Allocator, threads = machine.Threads,
            load_average_start = machine.LoadAtStart, load_average_end = loadAtEnd, datasets = results.Select(r => new { r.Dataset, r.AdvisorImages, r.TestImages,
                r.Strategies, r.Advice, r.RegretPoints, r.LossVsFeatureExtractionPoints, r.SameAdvice, r.Met }),
        });
    }

    static async Task<AdvisorResult> Measure(string name, string path, ImageDataset opened, BenchHost host, CancellationToken cancel)
    {
        var quiet = host.Progress with { Log = null };
        var (pool, test) = opened.Test.Count > 0 ? (opened.Train.Concat(opened.Validation).ToList(), opened.Test) : (opened.Train, opened.Validation);
        ImageDataset Split(int seed)
        {
            var (train, validation) = ImageFolder.StratifiedSplit(pool, 0.2, seed);
            return new ImageDataset(path, opened.Classes, train, validation, $"advisor bench split (seed {seed})")
                { Test = test, ClassRoot = opened.ClassRoot, ClassFolderNames = opened.ClassFolderNames };
        }
        using var cache = new TempFolder();
        var options = new TrainOptions { CacheRoot = cache.Path };
        var advice = new List<(AdvisorRun Run, Advice Advice)>();
        foreach (int seed in Seeds)
        {
            host.Log($"{name}: advising (seed {seed}, {(advice.Count == 0 ? "cold" : "warm")} cache) on {pool.Count} images...");
            var clock = Stopwatch.StartNew();
            var a = await StrategyAdvisor.AdviseAsync(Split(seed), options with { Fit = options.Fit with { Seed = seed } }, host.Assets, quiet, cancel);
            advice.Add((new AdvisorRun(seed, a.Arguments, clock.Elapsed.TotalSeconds), a));
            host.Log($"  {a.Arguments} ({clock.Elapsed.TotalSeconds:0} s)");
        }
        var runs = new List<StrategyRun>();
        foreach (var e in advice[0].Advice.Estimates)
        {
            host.Log($"{name}: graft train {e.Arguments}, scored on {test.Count} held-out images...");
            var r = await Learner.TrainAsync(Split(Seeds[0]), options with { Strategy = e.Strategy, FeatureBlock = e.FeatureBlock, Unfreeze = e.Unfreeze },
                host.Assets, quiet, cancel);
            r.Model.Dispose();
            var scored = r.Test!;
            var interval = scored.AccuracyInterval;
            runs.Add(new StrategyRun(e.Arguments, scored.Accuracy, interval.Low, interval.High, scored.Images, e.Accuracy, e.Interval.Low, e.Interval.High, e.Seconds, r.Seconds));
            host.Log($"  {scored.Accuracy:0.0000} ({r.Seconds:0} s)");
        }
        double AccuracyOf(string arguments) => runs.First(r => r.Arguments == arguments).Accuracy;
        double best = runs.Max(r => r.Accuracy), plain = runs[0].Accuracy;
        // Over the seeds, the worst advice counts (they should all be the same).
        double chosen = advice.Min(a => AccuracyOf(a.Run.Arguments));
        return new AdvisorResult(name, pool.Count, test.Count, runs, advice.Select(a => a.Run).ToList(), 100 * (best - chosen), 100 * (plain - chosen),
            advice.Select(a => a.Run.Arguments).Distinct().Count() == 1);
    }
}
