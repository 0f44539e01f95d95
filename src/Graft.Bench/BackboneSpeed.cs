using System.Diagnostics;
using Graft.Backbones;
using Graft.Backbones.Architectures;
using Graft.Engine;
using Graft.Heads;
using Graft.Runtime;
using Graft.Training;
using Graft.Weights;
using static TorchSharp.torch;

namespace Graft.Bench;

/// <summary>One backbone's figures (the entries of the JSON's <c>backbones</c>).</summary>
sealed record BackboneResult(string Name, string Weights, int InputSize, double Gmacs, double Gflops, string Runner,
    int ForwardBatch, int ForwardRounds, int TimedBatches, double GraftImagesPerSecond, double OrtDefaultImagesPerSecond, double GraftOverOrt,
    double LibtorchImagesPerSecond, int TrainBatch, int TrainSteps, string[] UnfrozenBlocks, double TrainImagesPerSecond,
    double FractionOfPeak, double PeakRssForwardMb, double PeakRssTrainMb, double Seconds, string? Error);

/// <summary>What the forward child reports.</summary>
sealed record ForwardMeasurement(bool Pretrained, string Runner, int Batch, int Rounds, int TimedBatches,
    double Graft, double OrtDefault, double Libtorch, double PeakRssMb);

/// <summary>What the fine-tuning child reports.</summary>
sealed record TrainingMeasurement(bool Pretrained, int Batch, int Steps, string[] UnfrozenBlocks, double ImagesPerSecond, double PeakRssMb);

/// <summary>
/// The backbones' trunks (option <see cref="BenchOptions.Backbones"/>): each chosen backbone's forward pass in Graft's
/// runner, ONNX Runtime defaults and libtorch, a fine-tuning step, its GFLOPs against the machine's measured
/// convolution peak and its peak memory, each part in a child process of its own; the default backbone's figures
/// are held to Graft's targets.
/// </summary>
static class BackboneSpeed
{
    /// <summary>Largest work per forward batch: Xception and VGG16 run at 16, VGG19 at 8; fixed by the network, so runs on any machine compare.</summary>
    const double MaxBatchGigaFlops = 512;

    public static Task RunAsync(BenchRun run, CancellationToken cancel)
    {
        var chosen = Choose(run.Options.Backbones, run.Assets);
        if (chosen.Count == 0) return Task.CompletedTask;
        run.Host.Log("convolution peak:");
        var peak = ConvPeak.Measure(run.Host.Log);
        var clock = Stopwatch.StartNew();
        var measured = new List<BackboneResult>();
        foreach (var config in chosen)
        {
            cancel.ThrowIfCancellationRequested();
            var r = Measure(run, config, peak);
            measured.Add(r);
            run.Host.Log(r.Error is { } error ? $"{r.Name}: failed: {error}"
                : $"{r.Name} ({r.Weights} weights): Graft {r.GraftImagesPerSecond:0.0}, ORT defaults {r.OrtDefaultImagesPerSecond:0.0}, libtorch "
                  + $"{r.LibtorchImagesPerSecond:0.0} images/s (batch {r.ForwardBatch}); fine-tuning {r.TrainImagesPerSecond:0.0} images/s (batch {r.TrainBatch}); "
                  + $"{100 * r.FractionOfPeak:0}% of the conv peak; peak RSS {r.PeakRssForwardMb:0} / {r.PeakRssTrainMb:0} MB; {r.Seconds:0} s");
        }
        run.Host.Log($"{chosen.Count} backbone(s) measured in {clock.Elapsed.TotalSeconds:0} s");
        // Measured again after the networks: the better of the two is the peak (other work on the machine lowers one
        // of them), and each network's share is of that.
        run.Host.Log("convolution peak, again:");
        var again = ConvPeak.Measure(run.Host.Log);
        if (Math.Abs(again.Gflops - peak.Gflops) > 0.15 * Math.Max(again.Gflops, peak.Gflops))
            run.Host.Log($"warning: the convolution peak moved from {peak.Gflops:0} to {again.Gflops:0} GFLOP/s during the bench: other work on the machine makes these figures noisy.");
        if (again.Gflops > peak.Gflops) peak = again;
        run.Peak = peak;
        run.Backbones = measured.Select(m => m with { FractionOfPeak = m.Gflops * m.GraftImagesPerSecond / peak.Gflops }).ToList();

        var main = run.Backbones.FirstOrDefault(m => m.Name == BackboneRegistry.Default.Name && m.Error is null);
        if (main is not null)
        {
            run.Rows.AddRange(TargetRows(main));
            run.TopTwoStep = main.TrainImagesPerSecond;
        }
        return Task.CompletedTask;
    }

    /// <summary>In the child: one backbone's measurement, as the JSON object the parent reads.</summary>
    public static object MeasureInChild(MeasureRequest request, AssetResolver assets, int timedBatches)
    {
        var config = BackboneRegistry.Get(request.Backbone);
        return request.Part == MeasurePart.Train
            ? MeasureTraining(config, assets, request.Batch, timedBatches)
            : MeasureForward(config, assets, request.Batch, timedBatches);
    }

    /// <summary>'available' (weights on this machine), 'all' (every pretrained row), '' (none) or a comma list of names.</summary>
    static IReadOnlyList<BackboneConfig> Choose(string text, AssetResolver assets) => text.Trim().ToLowerInvariant() switch
    {
        "" or "none" => [],
        "available" => BackboneRegistry.All.Where(b => WeightsHere(b, assets)).ToList(),
        "all" => BackboneRegistry.All.Where(b => b.Pretrained).ToList(),
        _ => text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(BackboneRegistry.Get).DistinctBy(b => b.Name).ToList(),
    };

    static bool WeightsHere(BackboneConfig config, AssetResolver assets) => config.Weights.Any(w => assets.FindLocal(w.File) is not null);

    /// <summary>
    /// Measures one backbone at its default input size, in two child processes so that each peak RSS is that
    /// work's own: the frozen trunk's forward pass (Graft's runner, ONNX Runtime with default options, libtorch)
    /// and a fine-tuning step (batch 32, or 16 where the forward batch is smaller).
    /// </summary>
    static BackboneResult Measure(BenchRun run, BackboneConfig config, ConvPeak peak)
    {
        var clock = Stopwatch.StartNew();
        GraphCost cost;
        using (var graph = config.Build(new ArchitectureOptions(config.InputSize))) cost = GraphCost.Of(graph);
        int batch = new[] { 32, 16, 8 }.FirstOrDefault(b => b * cost.GigaFlops <= MaxBatchGigaFlops, 8);
        int trainBatch = batch == 32 ? 32 : 16;
        run.Host.Log($"{config.Name}: {cost.GigaMacs:0.000} GMACs ({cost.GigaFlops:0.00} GFLOPs) per image at {config.InputSize}; forward at batch {batch}, fine-tuning at batch {trainBatch}...");
        int timed = run.Options.TimedBatches;
        var (forward, forwardError) = ChildRuns.Measure<ForwardMeasurement>(run.Host, new MeasureRequest(config.Name, MeasurePart.Forward, batch).Arguments(timed));
        var (train, trainError) = ChildRuns.Measure<TrainingMeasurement>(run.Host, new MeasureRequest(config.Name, MeasurePart.Train, trainBatch).Arguments(timed));
        string? error = forwardError is null && trainError is null ? null
            : string.Join("; ", new[] { forwardError is null ? null : $"forward: {forwardError}", trainError is null ? null : $"training: {trainError}" }.OfType<string>());
        bool pretrained = forward?.Pretrained ?? train?.Pretrained ?? WeightsHere(config, run.Assets);
        double graft = forward?.Graft ?? double.NaN, ort = forward?.OrtDefault ?? double.NaN;
        return new BackboneResult(config.Name, pretrained ? "pretrained" : "random", config.InputSize, cost.GigaMacs, cost.GigaFlops,
            forward?.Runner ?? "", forward?.Batch ?? batch, forward?.Rounds ?? 0, forward?.TimedBatches ?? 0, graft, ort, graft / ort, forward?.Libtorch ?? double.NaN,
            train?.Batch ?? trainBatch, train?.Steps ?? 0, train?.UnfrozenBlocks ?? [], train?.ImagesPerSecond ?? double.NaN,
            cost.GigaFlops * graft / peak.Gflops, forward?.PeakRssMb ?? double.NaN, train?.PeakRssMb ?? double.NaN, clock.Elapsed.TotalSeconds, error);
    }

    /// <summary>
    /// The backbone at its default input size: pretrained when a weight file is on this machine, else random
    /// (the same arithmetic, so the same speed; TFLite files fold batch norm into the convolutions, which spares
    /// libtorch those layers, while ONNX Runtime folds them itself).
    /// </summary>
    static (Backbone Backbone, bool Pretrained) Open(BackboneConfig config, AssetResolver assets)
    {
        if (config.Pretrained && WeightsHere(config, assets))
            return (Backbone.LoadPretrained(config, assets, inputSize: config.InputSize), true);
        var backbone = Backbone.Create(config, new ArchitectureOptions(config.InputSize), config.Spec(config.InputSize));
        Timing.HeInitialize(backbone.Network);
        return (backbone, false);
    }

    /// <summary>
    /// In the child: forward images/s of the trunk (with the head's pooling) in Graft's frozen-trunk runner (what
    /// feature extraction uses), in a plain ONNX Runtime session with default options on the same weights (as a
    /// user deploying the exported model would run it) and in libtorch. Peak RSS is read after Graft's runner has
    /// run alone: the weights plus what feature extraction needs.
    /// </summary>
    static ForwardMeasurement MeasureForward(BackboneConfig config, AssetResolver assets, int batch, int maxBatches)
    {
        var (backbone, pretrained) = Open(config, assets);
        using var _ = backbone;
        int size = config.InputSize;
        using var images = randn(batch, 3, size, size, device: CPU);
        using var graft = TrunkRunners.Create(backbone.Trunk, size, Pooling.Gap);
        Timing.WarmUp(() => graft.Features(images).Dispose());
        double rss = ProcessStats.PeakRssMb();
        using var torch = new TorchTrunkRunner(backbone.Trunk);
        using var reference = new OnnxTrunkRunner(backbone.Trunk, size, Pooling.Gap, new Microsoft.ML.OnnxRuntime.SessionOptions());
        Timing.WarmUp(() => reference.Features(images).Dispose());
        Timing.WarmUp(() => torch.Features(images).Dispose());
        // Interleaved rounds, median of each: a passing load on the machine then hits every runner alike.
        var rounds = Enumerable.Range(0, 3).Select(_ =>
            (Torch: Timing.Throughput(torch, images, maxBatches), Graft: Timing.Throughput(graft, images, maxBatches), Ort: Timing.Throughput(reference, images, maxBatches))).ToList();
        double Median(Func<((double Rate, int Batches) Torch, (double Rate, int Batches) Graft, (double Rate, int Batches) Ort), double> pick) =>
            rounds.Select(pick).Order().ElementAt(rounds.Count / 2);
        return new ForwardMeasurement(pretrained, TrunkRunners.UseOnnxRuntime ? "ONNX Runtime, tuned" : "libtorch", batch, rounds.Count,
            rounds.Sum(r => r.Graft.Batches), Median(r => r.Graft.Rate), Median(r => r.Ort.Rate), Median(r => r.Torch.Rate), rss);
    }

    /// <summary>In the child: fine-tuning steps (top 2 blocks unfrozen, a new head) on random images; peak RSS after them.</summary>
    static TrainingMeasurement MeasureTraining(BackboneConfig config, AssetResolver assets, int batch, int maxSteps)
    {
        var (backbone, pretrained) = Open(config, assets);
        using var _ = backbone;
        var (rate, steps, blocks) = TrainingLoop.StepRate(backbone, new UnfreezeSpec(TopBlocks: 2), batch, maxSteps);
        return new TrainingMeasurement(pretrained, batch, steps, blocks, rate, ProcessStats.PeakRssMb());
    }

    /// <summary>The default backbone's figures next to Graft's targets.</summary>
    static IEnumerable<Row> TargetRows(BackboneResult r)
    {
        yield return new Row($"{r.Name} forward, libtorch, batch {r.ForwardBatch} at {r.InputSize}", r.LibtorchImagesPerSecond, "images/s", "", null);
        yield return new Row($"{r.Name} forward, Graft's trunk runner ({r.Runner})", r.GraftImagesPerSecond, "images/s", ">= 150", r.GraftImagesPerSecond >= 150);
        yield return new Row($"{r.Name} forward, ONNX Runtime defaults, same weights", r.OrtDefaultImagesPerSecond, "images/s", "", null);
        yield return new Row($"{r.Name} forward, Graft / ONNX Runtime", r.GraftOverOrt, "x", ">= 1.0", r.GraftOverOrt >= 1.0);
        yield return new Row($"{r.Name} training step, fine-tuning the top 2 blocks, batch {r.TrainBatch}", r.TrainImagesPerSecond, "images/s", ">= 40", r.TrainImagesPerSecond >= 40);
    }
}
