using Graft.Backbones;
using Graft.Data;
using Graft.Export;
using Graft.Heads;
using Graft.Imaging;
using Graft.Runtime;
using static TorchSharp.torch;

namespace Graft.Bench;

/// <summary>The int8 trunk against the float one: speed of the two trunks, and on each sample dataset accuracy and feature extraction.</summary>
static class Int8Bench
{
    /// <summary>
    /// Images/s of the default backbone's two trunks on the same batch of 32, in alternating rounds (each one's median;
    /// the ratio is held to 1.5x).
    /// </summary>
    public static async Task TrunkRowsAsync(BenchRun run, CancellationToken cancel)
    {
        var sample = run.SampleImages;
        if (sample.Count < 32) return;
        using var backbone = Backbone.LoadPretrained(BackboneRegistry.Default, run.Assets);
        var spec = backbone.Input;
        var calibration = await Int8Trunk.CalibrateAsync(backbone.Trunk, backbone.Config.Name, spec, sample.Select(p => new LabeledImage(p, 0)).ToList(), cancel: cancel);
        var pixels = new List<float>();
        await foreach (var batch in BatchPipeline.Batches(sample.Take(32).ToList(), spec, 32, cancel: cancel)) pixels.AddRange(batch.Pixels);
        using var images = tensor(pixels.ToArray(), [pixels.Count / (3 * spec.Size * spec.Size), 3, spec.Size, spec.Size], device: CPU);
        using var plain = new OnnxTrunkRunner(backbone.Trunk, spec.Size);
        using var int8 = TrunkRunners.CreateInt8(backbone.Trunk, spec.Size, Pooling.Gap, calibration);
        Timing.WarmUp(() => plain.Features(images).Dispose());
        Timing.WarmUp(() => int8.Features(images).Dispose());
        int maxBatches = run.Options.TimedBatches;
        var rounds = Enumerable.Range(0, 5).Select(_ => (Float: Timing.Throughput(plain, images, maxBatches).Rate, Int8: Timing.Throughput(int8, images, maxBatches).Rate)).ToList();
        double Median(IEnumerable<double> values) => values.Order().ElementAt(rounds.Count / 2);
        double floatRate = Median(rounds.Select(r => r.Float)), int8Rate = Median(rounds.Select(r => r.Int8));
        string what = $"{backbone.Config.Name} trunk, batch {images.shape[0]}";
        foreach (var row in new Row[]
        {
            new($"{what}: float (ONNX Runtime)", floatRate, "images/s", "", null),
            new($"{what}: int8 (calibrated on {calibration.Images} images)", int8Rate, "images/s", "", null),
            new($"{what}: int8 / float speed", int8Rate / floatRate, "x", ">= 1.5", int8Rate / floatRate >= 1.5),
        })
            run.Add(row, Logged);
    }

    /// <summary>
    /// On a dataset, `graft train --precision int8` (its own process; int8 features are cached apart, so computed cold)
    /// against the dataset's float run: validation accuracy, whose difference is held to -0.3 points, and the feature
    /// extraction rates (decoding included).
    /// </summary>
    public static IEnumerable<Row> DatasetRows(BenchRun run, DatasetRun dataset)
    {
        var (name, plain) = (dataset.Name, dataset.Cold);
        run.Host.Log($"{name}: graft train --precision int8...");
        var int8 = ChildRuns.Train(run.Host, dataset.Path, dataset.Cache, ["--precision", "int8"]);
        double floatAccuracy = plain.GetProperty("accuracy").GetDouble(), int8Accuracy = int8.GetProperty("accuracy").GetDouble();
        double points = 100 * (int8Accuracy - floatAccuracy);
        foreach (var row in new Row[]
        {
            new($"{name}: validation accuracy, int8 trunk (float: above)", int8Accuracy, "", "", null),
            new($"{name}: int8 minus float accuracy", points, "points", ">= -0.3", points >= -0.3),
            new($"{name}: feature extraction int8 / float (decoding included)",
                int8.GetProperty("feature_images_per_second").GetDouble() / plain.GetProperty("feature_images_per_second").GetDouble(), "x", "", null),
        })
        {
            run.Host.Log(Logged(row));
            yield return row;
        }
    }

    static string Logged(Row row) => $"{row.Benchmark}: {row.Value:0.000} {row.Unit}";
}
