using Graft.Data;
using Spectre.Console;

namespace Graft.Bench;

/// <summary>
/// The Keras blog's study (option <see cref="BenchOptions.Experiments"/>): its three experiments on cats_vs_dogs
/// (scratch, feature extraction, fine-tuning) and the PyTorch tutorial's fine-tuning on hymenoptera, each run as a
/// user would run it, next to the published numbers.
/// </summary>
static class KerasBlogExperiments
{
    sealed record Experiment(string Data, string Strategy, string[] Options, double Target, string Published);

    static readonly Experiment[] Study =
    [
        new("cats_vs_dogs", "scratch", ["--epochs", "200", "--patience", "40"], 0.80, "Keras blog small CNN (batch 16, 50 epochs): 0.79-0.81"),
        new("cats_vs_dogs", "feature-extraction", [], 0.96, "Keras blog VGG16 bottleneck: 0.9075"),
        new("cats_vs_dogs", "fine-tune", [], 0.975, "Keras blog VGG16 fine-tuned: 0.94; TF MobileNetV2 tutorial: ~0.98"),
        new("hymenoptera", "fine-tune", [], 0.96, "PyTorch tutorial ResNet18 fine-tuned: 0.935"),
    ];

    public static Task RunAsync(BenchOptions _, BenchHost host, CancellationToken cancel)
    {
        var results = new List<object>();
        var table = new Table().Border(TableBorder.Rounded).AddColumns("data", "strategy", "epochs", "wall", "validation accuracy", "target", "met", "published");
        foreach (var e in Study)
        {
            cancel.ThrowIfCancellationRequested();
            using var cache = new TempFolder();
            host.Log($"{e.Data}: graft train --strategy {e.Strategy} {string.Join(" ", e.Options)} ...");
            var r = ChildRuns.Train(host, SampleDatasets.Resolve(e.Data, host.Assets), cache.Path, ["--strategy", e.Strategy, .. e.Options], host.Log);
            double accuracy = r.GetProperty("accuracy").GetDouble(), wall = r.GetProperty("wall_seconds").GetDouble();
            int epochs = r.GetProperty("epochs").GetInt32();
            host.Log($"  accuracy {accuracy:0.0000} after {epochs} epochs, {wall:0}s");
            table.AddRow(e.Data, e.Strategy, epochs.ToString(), $"{wall:0} s", $"{accuracy:0.0000}", $">= {e.Target}", Tables.Met(accuracy >= e.Target), host.Escape(e.Published));
            results.Add(new { data = e.Data, strategy = e.Strategy, epochs, wall_seconds = wall, accuracy, target = e.Target, met = accuracy >= e.Target, published = e.Published });
        }
        host.Out.Write(table);
        host.WriteJson?.Invoke(new { experiments = results });
        return Task.CompletedTask;
    }
}
