using System.Text.Json;
using Graft.Data;

namespace Graft.Bench;

/// <summary>A sample dataset's cold `graft train` run, which the per-dataset families build on (its cache is still there).</summary>
sealed record DatasetRun(string Name, string Path, string Cache, JsonElement Cold);

/// <summary>
/// Full `graft train` runs on the sample datasets (option <see cref="BenchOptions.Datasets"/>), each in its own process
/// so that wall time and peak memory are the user's: cold and warm bottleneck cache, validation accuracy against its
/// target; then each per-dataset family's rows on the same data and cache.
/// </summary>
static class DatasetRuns
{
    static readonly Dictionary<string, double> AccuracyTargets = new() { ["hymenoptera"] = 0.95, ["cats_vs_dogs"] = 0.96 };

    /// <summary>What else is measured on each sample dataset, in this order.</summary>
    static readonly Func<BenchRun, DatasetRun, IEnumerable<Row>>[] PerDataset = [TrainingLoop.FineTuningLoop, Int8Bench.DatasetRows];

    public static Task RunAsync(BenchRun run, CancellationToken cancel)
    {
        foreach (var name in run.Options.Datasets)
        {
            cancel.ThrowIfCancellationRequested();
            if (name == BenchOptions.PhoneDataset)
            {
                foreach (var row in PhonePhotoBench.Rows(run)) run.Add(row, r => $"{r.Benchmark}: {r.Value:0.0} {r.Unit}");
                continue;
            }
            var path = SampleDatasets.Resolve(name, run.Assets);
            using var cache = new TempFolder();
            run.Host.Log($"{name}: graft train, cold cache...");
            var cold = ChildRuns.Train(run.Host, path, cache.Path);
            run.Host.Log($"{name}: graft train, warm cache...");
            var warm = ChildRuns.Train(run.Host, path, cache.Path);
            run.Rows.AddRange(TrainRows(name, cold, warm));
            var dataset = new DatasetRun(name, path, cache.Path, cold);
            foreach (var family in PerDataset) run.Rows.AddRange(family(run, dataset));
        }
        return Task.CompletedTask;
    }

    static IEnumerable<Row> TrainRows(string name, JsonElement cold, JsonElement warm)
    {
        double Cold(string field) => cold.GetProperty(field).GetDouble();
        double Warm(string field) => warm.GetProperty(field).GetDouble();
        double accuracy = Cold("accuracy");
        double target = AccuracyTargets.GetValueOrDefault(name, 0);
        bool catsVsDogs = name == "cats_vs_dogs";
        yield return new($"{name}: validation accuracy (feature extraction)", accuracy, "", $">= {target}", accuracy >= target);
        yield return new($"{name}: feature extraction", Cold("feature_images_per_second"), "images/s", ">= 80", Cold("feature_images_per_second") >= 80);
        yield return new($"{name}: graft train wall, cold cache", Cold("wall_seconds"), "s", catsVsDogs ? "< 60" : "", catsVsDogs ? Cold("wall_seconds") < 60 : null);
        yield return new($"{name}: graft train wall, warm cache", Warm("wall_seconds"), "s", catsVsDogs ? "< 10" : "", catsVsDogs ? Warm("wall_seconds") < 10 : null);
        yield return new($"{name}: peak RSS, cold cache", Cold("peak_rss_mb"), "MB", catsVsDogs ? "< 1536" : "", catsVsDogs ? Cold("peak_rss_mb") < 1536 : null);
        yield return new($"{name}: warm accuracy equals cold", Warm("accuracy"), "", $"= {accuracy:0.0000}", Math.Abs(Warm("accuracy") - accuracy) < 1e-9);
    }
}
