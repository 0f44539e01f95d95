using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Graft.Backbones;
using Graft.Backbones.Architectures;
using Graft.Data;
using Graft.Engine;
using Graft.Models;
using Graft.Training;
using Graft.Weights;
using Graft.Imaging;
using Graft.Runtime;
using Graft.Heads;
using Graft.Inference;
using Spectre.Console;
using static TorchSharp.torch;

namespace Graft.Cli.Commands;

/// <summary>
/// Speed and accuracy, measured and compared with their targets: each chosen backbone's trunk (forward in Graft's
/// runner, ONNX Runtime defaults and libtorch, a fine-tuning step, its GFLOPs against the machine's measured
/// convolution peak, peak memory; each in its own process), the input pipeline, head training on cached features,
/// and full `graft train` runs (cold and warm cache, each in its own process so wall time and peak memory are the
/// user's) on the sample datasets.
/// </summary>
public static class BenchCommand
{
    sealed record Row(string Benchmark, double Value, string Unit, string Target, bool? Met);

    static readonly Dictionary<string, double> AccuracyTargets = new() { ["hymenoptera"] = 0.95, ["cats_vs_dogs"] = 0.96 };

    public static Command Create()
    {
        var datasets = new Option<string>("--datasets") { Description = $"Comma-separated sample datasets to train on ('' for none); {PhoneDataset}: 4032x3024 JPEGs the bench makes from the shared photos (once, in Graft's cache).", DefaultValueFactory = _ => $"hymenoptera,cats_vs_dogs,{PhoneDataset}" };
        var backbones = new Option<string>("--backbones")
        {
            Description = "Backbones to measure, each in child processes of its own: forward in Graft's runner, ONNX Runtime defaults and libtorch; "
                + "a fine-tuning step; GFLOPs and the share of the machine's convolution peak; peak memory. 'available' (those whose weights are "
                + "on this machine), 'all' (every pretrained backbone, random weights where the file is missing: speed does not depend on them), "
                + "a comma list, or '' for none.",
            DefaultValueFactory = _ => "available",
        };
        var batches = new Option<int>("--batches") { Description = "At most this many timed batches (or training steps) per runner and round; a round also ends after about 1.5 s (2 s for training).", DefaultValueFactory = _ => 30 };
        var experiments = new Option<bool>("--experiments") { Description = "Instead: the Keras blog's three experiments on cats_vs_dogs (scratch, feature extraction, fine-tuning) and fine-tuning on hymenoptera, next to the published numbers (about an hour)." };
        var advisor = new Option<bool>("--advisor") { Description = "Instead: on each of --datasets, the advisor with three seeds, and every strategy it weighs trained in full, scored on held-out images it never saw: its regret (about 10 minutes)." };
        // One backbone's measurement, run by the bench in a child process so that its peak memory is its own.
        var measure = new Option<string?>("--measure-backbone") { Hidden = true };
        var part = new Option<string>("--measure-part") { Hidden = true, DefaultValueFactory = _ => "forward" };
        var batch = new Option<int>("--measure-batch") { Hidden = true, DefaultValueFactory = _ => 32 };
        var json = Cli.JsonOption();
        var command = new Command("bench", "Measure speed and accuracy against Graft's targets.") { datasets, backbones, batches, experiments, advisor, measure, part, batch, json };
        command.SetHandler(async (parse, cancel) =>
        {
            TorchRuntime.EnsureInitialized();
            int timed = Math.Max(1, parse.GetValue(batches));
            if (parse.GetValue(measure) is { } one)
            {
                var config = BackboneRegistry.Get(one);
                object result = parse.GetValue(part) == "train"
                    ? MeasureTraining(config, parse.GetValue(batch), timed)
                    : MeasureForward(config, parse.GetValue(batch), timed);
                Cli.WriteJson(result);
                return;
            }
            if (parse.GetValue(experiments))
            {
                Experiments(parse.GetValue(json));
                return;
            }
            if (parse.GetValue(advisor))
            {
                var names = parse.GetValue(datasets)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(n => n != PhoneDataset).ToList();
                await AdvisorBench(names, parse.GetValue(json), cancel);
                return;
            }
            var rows = new List<Row>();
            var progress = new ProgressLine();
            var machine = new Machine(CpuDescription(), Environment.ProcessorCount, Allocator.Describe(), get_num_threads());
            string loadAtStart = LoadAverage();
            progress.Log($"CPU: {machine.Cpu}; allocator: {machine.Allocator}; threads: {machine.Threads}; load average: {loadAtStart}");
            if (double.TryParse(loadAtStart.Split(' ')[0], CultureInfo.InvariantCulture, out var load) && load > machine.Cores)
                progress.Log($"warning: load average {load:0.0} on {machine.Cores} cores: other work is running, so speeds will be low and noisy.");

            var chosen = ChooseBackbones(parse.GetValue(backbones) ?? "");
            ConvPeak? peak = null;
            var measured = new List<BackboneResult>();
            if (chosen.Count > 0)
            {
                progress.Log("convolution peak:");
                peak = MeasureConvPeak(progress.Log);
                var clock = Stopwatch.StartNew();
                foreach (var config in chosen)
                {
                    cancel.ThrowIfCancellationRequested();
                    var r = MeasureBackbone(config, peak, timed, progress.Log);
                    measured.Add(r);
                    progress.Log(r.Error is { } error ? $"{r.Name}: failed: {error}"
                        : $"{r.Name} ({r.Weights} weights): Graft {r.GraftImagesPerSecond:0.0}, ORT defaults {r.OrtDefaultImagesPerSecond:0.0}, libtorch "
                          + $"{r.LibtorchImagesPerSecond:0.0} images/s (batch {r.ForwardBatch}); fine-tuning {r.TrainImagesPerSecond:0.0} images/s (batch {r.TrainBatch}); "
                          + $"{100 * r.FractionOfPeak:0}% of the conv peak; peak RSS {r.PeakRssForwardMb:0} / {r.PeakRssTrainMb:0} MB; {r.Seconds:0} s");
                }
                progress.Log($"{chosen.Count} backbone(s) measured in {clock.Elapsed.TotalSeconds:0} s");
                // Measured again after the networks: the better of the two is the peak (other work on the machine
                // lowers one of them), and each network's share is of that.
                progress.Log("convolution peak, again:");
                var again = MeasureConvPeak(progress.Log);
                if (Math.Abs(again.Gflops - peak.Gflops) > 0.15 * Math.Max(again.Gflops, peak.Gflops))
                    progress.Log($"warning: the convolution peak moved from {peak.Gflops:0} to {again.Gflops:0} GFLOP/s during the bench: other work on the machine makes these figures noisy.");
                if (again.Gflops > peak.Gflops) peak = again;
                measured = measured.Select(m => m with { FractionOfPeak = m.Gflops * m.GraftImagesPerSecond / peak.Gflops }).ToList();
            }

            // The default backbone's figures are held to Graft's targets; measured here when it was not above.
            var main = measured.FirstOrDefault(m => m.Name == BackboneRegistry.Default.Name && m.Error is null);
            if (main is not null) rows.AddRange(TargetRows(main));
            // The bare fine-tuning step (top 2 blocks), which the whole loop's row below stands beside.
            double? topTwoStep = main?.TrainImagesPerSecond;
            var steps = new List<(string, UnfreezeSpec)>();
            if (main is null) steps.Add(("fine-tuning the top 2 blocks", new UnfreezeSpec(TopBlocks: 2)));
            steps.Add(("training the full trunk", new UnfreezeSpec(FreezeFirstLayers: 0)));
            foreach (var (label, spec) in steps)
            {
                rows.Add(TrainingStep(label, spec, timed));
                if (spec.TopBlocks is not null) topTwoStep = rows[^1].Value;
                progress.Log($"{rows[^1].Benchmark}: {rows[^1].Value:0.0} images/s");
            }
            var sample = SampleImages(256);
            if (sample.Count > 0)
                foreach (var augmentation in new[] { Augmentation.None, Augmentation.Default })
                {
                    rows.Add(await InputPipeline(sample, augmentation, cancel));
                    progress.Log($"{rows[^1].Benchmark}: {rows[^1].Value:0} images/s");
                }
            rows.Add(HeadTraining());
            progress.Log($"head training: {rows[^1].Value:0} samples/s");

            foreach (var name in parse.GetValue(datasets)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (name == PhoneDataset)
                {
                    foreach (var row in PhonePhotoRows(progress)) { rows.Add(row); progress.Log($"{row.Benchmark}: {row.Value:0.0} {row.Unit}"); }
                    continue;
                }
                var path = SampleDatasets.Resolve(name, Cli.Assets);
                using var cache = new TempFolder();
                progress.Log($"{name}: graft train, cold cache...");
                var cold = TrainInChildProcess(path, cache.Path);
                progress.Log($"{name}: graft train, warm cache...");
                var warm = TrainInChildProcess(path, cache.Path);
                double accuracy = cold.GetProperty("accuracy").GetDouble();
                double target = AccuracyTargets.GetValueOrDefault(name, 0);
                rows.Add(new($"{name}: validation accuracy (feature extraction)", accuracy, "", $">= {target}", accuracy >= target));
                rows.Add(new($"{name}: feature extraction", cold.GetProperty("feature_images_per_second").GetDouble(), "images/s", ">= 80", cold.GetProperty("feature_images_per_second").GetDouble() >= 80));
                rows.Add(new($"{name}: graft train wall, cold cache", cold.GetProperty("wall_seconds").GetDouble(), "s", name == "cats_vs_dogs" ? "< 60" : "", name == "cats_vs_dogs" ? cold.GetProperty("wall_seconds").GetDouble() < 60 : null));
                rows.Add(new($"{name}: graft train wall, warm cache", warm.GetProperty("wall_seconds").GetDouble(), "s", name == "cats_vs_dogs" ? "< 10" : "", name == "cats_vs_dogs" ? warm.GetProperty("wall_seconds").GetDouble() < 10 : null));
                rows.Add(new($"{name}: peak RSS, cold cache", cold.GetProperty("peak_rss_mb").GetDouble(), "MB", name == "cats_vs_dogs" ? "< 1536" : "", name == "cats_vs_dogs" ? cold.GetProperty("peak_rss_mb").GetDouble() < 1536 : null));
                rows.Add(new($"{name}: warm accuracy equals cold", warm.GetProperty("accuracy").GetDouble(), "", $"= {accuracy:0.0000}", Math.Abs(warm.GetProperty("accuracy").GetDouble() - accuracy) < 1e-9));
                if (name == "cats_vs_dogs") rows.Add(FineTuningLoop(path, cache.Path, topTwoStep, progress));
                foreach (var row in Int8DatasetRows(name, path, cache.Path, cold, progress)) { rows.Add(row); progress.Log($"{row.Benchmark}: {row.Value:0.000} {row.Unit}"); }
            }
            rows.AddRange(await Int8TrunkRows(sample, timed, progress, cancel));

            string loadAtEnd = LoadAverage();
            Cli.Out.WriteLine($"{machine.Cpu}; allocator: {machine.Allocator}; threads: {machine.Threads}; load average (1, 5, 15 min) at start {loadAtStart}, at end {loadAtEnd}"
                + (peak is null ? "" : $"; convolution peak {peak.Gflops:0} GFLOP/s ({peak.Label})"));
            var table = new Table().Border(TableBorder.Rounded).AddColumns("benchmark", "value", "unit", "target", "met");
            foreach (var r in rows)
                table.AddRow(Cli.Escape(r.Benchmark), r.Value >= 100 ? $"{r.Value:0}" : $"{r.Value:0.000}", r.Unit, Cli.Escape(r.Target),
                    r.Met is null ? "" : r.Met.Value ? "[green]yes[/]" : "[red]no[/]");
            Cli.Out.Write(table);
            if (measured.Count > 0) Cli.Out.Write(BackboneTable(measured, machine, peak!));
            if (parse.GetValue(json))
                Cli.WriteJson(new
                {
                    cpu = machine.Cpu, cores = machine.Cores, allocator = machine.Allocator, threads = machine.Threads,
                    load_average_start = loadAtStart, load_average_end = loadAtEnd,
                    conv_peak_gflops = peak?.Gflops, conv_peak = peak?.Label, results = rows, backbones = measured,
                });
        });
        return command;
    }

    sealed record Experiment(string Data, string Strategy, string[] Options, double Target, string Published);

    /// <summary>The Keras blog's study (and the PyTorch tutorial's fine-tuning), each run as a user would run it.</summary>
    static readonly Experiment[] Study =
    [
        new("cats_vs_dogs", "scratch", ["--epochs", "200", "--patience", "40"], 0.80, "Keras blog small CNN (batch 16, 50 epochs): 0.79-0.81"),
        new("cats_vs_dogs", "feature-extraction", [], 0.96, "Keras blog VGG16 bottleneck: 0.9075"),
        new("cats_vs_dogs", "fine-tune", [], 0.975, "Keras blog VGG16 fine-tuned: 0.94; TF MobileNetV2 tutorial: ~0.98"),
        new("hymenoptera", "fine-tune", [], 0.96, "PyTorch tutorial ResNet18 fine-tuned: 0.935"),
    ];

    static void Experiments(bool json)
    {
        var progress = new ProgressLine();
        var results = new List<object>();
        var table = new Table().Border(TableBorder.Rounded).AddColumns("data", "strategy", "epochs", "wall", "validation accuracy", "target", "met", "published");
        foreach (var e in Study)
        {
            using var cache = new TempFolder();
            progress.Log($"{e.Data}: graft train --strategy {e.Strategy} {string.Join(" ", e.Options)} ...");
            var r = TrainInChildProcess(SampleDatasets.Resolve(e.Data, Cli.Assets), cache.Path, ["--strategy", e.Strategy, .. e.Options], progress.Log);
            double accuracy = r.GetProperty("accuracy").GetDouble(), wall = r.GetProperty("wall_seconds").GetDouble();
            int epochs = r.GetProperty("epochs").GetInt32();
            progress.Log($"  accuracy {accuracy:0.0000} after {epochs} epochs, {wall:0}s");
            table.AddRow(e.Data, e.Strategy, epochs.ToString(), $"{wall:0} s", $"{accuracy:0.0000}", $">= {e.Target}", accuracy >= e.Target ? "[green]yes[/]" : "[red]no[/]", Cli.Escape(e.Published));
            results.Add(new { data = e.Data, strategy = e.Strategy, epochs, wall_seconds = wall, accuracy, target = e.Target, met = accuracy >= e.Target, published = e.Published });
        }
        Cli.Out.Write(table);
        if (json) Cli.WriteJson(new { experiments = results });
    }

    /// <summary>Seeds of the advisor's runs: each splits the training images differently; the advice must not change.</summary>
    static readonly int[] AdvisorSeeds = [42, 1, 2];

    sealed record StrategyRun(string Arguments, double Accuracy, double CiLow, double CiHigh, int Images, double Estimate,
        double EstimateCiLow, double EstimateCiHigh, double EstimatedSeconds, double Seconds);

    sealed record AdvisorRun(int Seed, string Arguments, double Seconds);

    sealed record AdvisorResult(string Dataset, int AdvisorImages, int TestImages, IReadOnlyList<StrategyRun> Strategies, IReadOnlyList<AdvisorRun> Advice,
        double RegretPoints, double LossVsFeatureExtractionPoints, bool SameAdvice)
    {
        public bool Met => RegretPoints <= 1 && LossVsFeatureExtractionPoints <= 2 && SameAdvice;
    }

    /// <summary>
    /// The advisor against the truth: on each dataset its advice (three seeds, each splitting the training images its
    /// own way; the first run with a cold bottleneck cache), then every strategy it weighed trained in full as `graft
    /// train` trains it, all scored on held-out images the advisor never saw (the test folder, else the validation
    /// folder or split). Regret is the best strategy's accuracy minus the chosen one's, in points.
    /// </summary>
    static async Task AdvisorBench(IReadOnlyList<string> names, bool json, CancellationToken cancel)
    {
        var progress = new ProgressLine();
        var machine = new Machine(CpuDescription(), Environment.ProcessorCount, Allocator.Describe(), get_num_threads());
        string loadAtStart = LoadAverage();
        progress.Log($"CPU: {machine.Cpu}; allocator: {machine.Allocator}; threads: {machine.Threads}; load average: {loadAtStart}");
        var quiet = progress.Callbacks with { Log = null };
        var results = new List<AdvisorResult>();
        foreach (var name in names)
        {
            var path = SampleDatasets.Resolve(name, Cli.Assets);
            var opened = ImageFolder.OpenForTraining(path);
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
            foreach (int seed in AdvisorSeeds)
            {
                progress.Log($"{name}: advising (seed {seed}, {(advice.Count == 0 ? "cold" : "warm")} cache) on {pool.Count} images...");
                var clock = Stopwatch.StartNew();
                var a = await StrategyAdvisor.AdviseAsync(Split(seed), options with { Fit = options.Fit with { Seed = seed } }, Cli.Assets, quiet, cancel);
                advice.Add((new AdvisorRun(seed, a.Arguments, clock.Elapsed.TotalSeconds), a));
                progress.Log($"  {a.Arguments} ({clock.Elapsed.TotalSeconds:0} s)");
            }
            var runs = new List<StrategyRun>();
            foreach (var e in advice[0].Advice.Estimates)
            {
                progress.Log($"{name}: graft train {e.Arguments}, scored on {test.Count} held-out images...");
                var r = await Learner.TrainAsync(Split(AdvisorSeeds[0]), options with { Strategy = e.Strategy, FeatureBlock = e.FeatureBlock, Unfreeze = e.Unfreeze },
                    Cli.Assets, quiet, cancel);
                r.Model.Dispose();
                var scored = r.Test!;
                var interval = scored.AccuracyInterval;
                runs.Add(new StrategyRun(e.Arguments, scored.Accuracy, interval.Low, interval.High, scored.Images, e.Accuracy, e.Interval.Low, e.Interval.High, e.Seconds, r.Seconds));
                progress.Log($"  {scored.Accuracy:0.0000} ({r.Seconds:0} s)");
            }
            double AccuracyOf(string arguments) => runs.First(r => r.Arguments == arguments).Accuracy;
            double best = runs.Max(r => r.Accuracy), plain = runs[0].Accuracy;
            // Over the seeds, the worst advice counts (they should all be the same).
            double chosen = advice.Min(a => AccuracyOf(a.Run.Arguments));
            results.Add(new AdvisorResult(name, pool.Count, test.Count, runs, advice.Select(a => a.Run).ToList(), 100 * (best - chosen), 100 * (plain - chosen),
                advice.Select(a => a.Run.Arguments).Distinct().Count() == 1));
        }

        string loadAtEnd = LoadAverage();
        Cli.Out.WriteLine($"{machine.Cpu}; allocator: {machine.Allocator}; threads: {machine.Threads}; load average (1, 5, 15 min) at start {loadAtStart}, at end {loadAtEnd}");
        var strategies = new Table().Border(TableBorder.Rounded).Title("every strategy trained in full, scored on held-out images the advisor never saw")
            .AddColumns("data", "strategy", "test accuracy (Wilson 95%)", "advisor's estimate (95%)", "train s: estimated / measured");
        foreach (var r in results)
            foreach (var s in r.Strategies)
                strategies.AddRow(r.Dataset, Cli.Escape(s.Arguments) + (s.Arguments == r.Advice[0].Arguments ? " [green](advised)[/]" : ""),
                    $"{s.Accuracy:0.000} ({s.CiLow:0.000}-{s.CiHigh:0.000}) of {s.Images}", $"{s.Estimate:0.000} ({s.EstimateCiLow:0.000}-{s.EstimateCiHigh:0.000})",
                    $"{s.EstimatedSeconds:0} / {s.Seconds:0}");
        Cli.Out.Write(strategies);
        var summary = new Table().Border(TableBorder.Rounded).Title("the advisor: target regret <= 1 point, loss against feature extraction <= 2, same advice for every seed")
            .AddColumns("data", "advisor images", $"advice (seeds {string.Join(", ", AdvisorSeeds)})", "regret (points)", "loss vs feature extraction (points)", "advisor s (cold, warm, warm)", "met");
        foreach (var r in results)
            summary.AddRow(r.Dataset, $"{r.AdvisorImages}", Cli.Escape(r.SameAdvice ? r.Advice[0].Arguments : string.Join(" | ", r.Advice.Select(a => a.Arguments))),
                $"{r.RegretPoints:0.0}", $"{r.LossVsFeatureExtractionPoints:0.0}", string.Join(", ", r.Advice.Select(a => $"{a.Seconds:0}")),
                r.Met ? "[green]yes[/]" : "[red]no[/]");
        Cli.Out.Write(summary);
        if (json)
            Cli.WriteJson(new
            {
                cpu = machine.Cpu, cores = machine.Cores, allocator = machine.Allocator, threads = machine.Threads,
                load_average_start = loadAtStart, load_average_end = loadAtEnd, datasets = results.Select(r => new { r.Dataset, r.AdvisorImages, r.TestImages,
                    r.Strategies, r.Advice, r.RegretPoints, r.LossVsFeatureExtractionPoints, r.SameAdvice, r.Met }),
            });
    }

    sealed record Machine(string Cpu, int Cores, string Allocator, int Threads);

    /// <summary>The machine's convolution throughput, against which each network's is put.</summary>
    sealed record ConvPeak(double Gflops, string Label);

    /// <summary>One backbone's figures (the entries of the JSON's <c>backbones</c>).</summary>
    sealed record BackboneResult(string Name, string Weights, int InputSize, double Gmacs, double Gflops, string Runner,
        int ForwardBatch, int ForwardRounds, int TimedBatches, double GraftImagesPerSecond, double OrtDefaultImagesPerSecond, double GraftOverOrt,
        double LibtorchImagesPerSecond, int TrainBatch, int TrainSteps, string[] UnfrozenBlocks, double TrainImagesPerSecond,
        double FractionOfPeak, double PeakRssForwardMb, double PeakRssTrainMb, double Seconds, string? Error);

    sealed record ForwardMeasurement(bool Pretrained, string Runner, int Batch, int Rounds, int TimedBatches,
        double Graft, double OrtDefault, double Libtorch, double PeakRssMb);

    sealed record TrainingMeasurement(bool Pretrained, int Batch, int Steps, string[] UnfrozenBlocks, double ImagesPerSecond, double PeakRssMb);

    /// <summary>'available' (weights on this machine), 'all' (every pretrained row), '' (none) or a comma list of names.</summary>
    static IReadOnlyList<BackboneConfig> ChooseBackbones(string text) => text.Trim().ToLowerInvariant() switch
    {
        "" or "none" => [],
        "available" => BackboneRegistry.All.Where(WeightsHere).ToList(),
        "all" => BackboneRegistry.All.Where(b => b.Pretrained).ToList(),
        _ => text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(BackboneRegistry.Get).DistinctBy(b => b.Name).ToList(),
    };

    const double MaxBatchGigaFlops = 512;

    static bool WeightsHere(BackboneConfig config) => config.Weights.Any(w => Cli.Assets.FindLocal(w.File) is not null);

    /// <summary>
    /// Measures one backbone at its default input size, in two child processes so that each peak RSS is that
    /// work's own: the frozen trunk's forward pass (Graft's runner, ONNX Runtime with default options, libtorch)
    /// and a fine-tuning step (batch 32, or 16 where the forward batch is smaller).
    /// </summary>
    static BackboneResult MeasureBackbone(BackboneConfig config, ConvPeak peak, int maxBatches, Action<string> log)
    {
        var clock = Stopwatch.StartNew();
        GraphCost cost;
        using (var graph = config.Build(new ArchitectureOptions(config.InputSize))) cost = GraphCost.Of(graph);
        // Batch 32 unless a batch would exceed 512 GFLOPs (about a second at a 2-core AVX-512 machine's peak):
        // Xception and VGG16 run at 16, VGG19 at 8. Fixed by the network, so runs on any machine compare.
        int batch = new[] { 32, 16, 8 }.FirstOrDefault(b => b * cost.GigaFlops <= MaxBatchGigaFlops, 8);
        int trainBatch = batch == 32 ? 32 : 16;
        log($"{config.Name}: {cost.GigaMacs:0.000} GMACs ({cost.GigaFlops:0.00} GFLOPs) per image at {config.InputSize}; forward at batch {batch}, fine-tuning at batch {trainBatch}...");
        string[] common = ["--measure-backbone", config.Name, "--batches", maxBatches.ToString(CultureInfo.InvariantCulture)];
        var (forward, forwardError) = RunChild<ForwardMeasurement>([.. common, "--measure-part", "forward", "--measure-batch", batch.ToString(CultureInfo.InvariantCulture)]);
        var (train, trainError) = RunChild<TrainingMeasurement>([.. common, "--measure-part", "train", "--measure-batch", trainBatch.ToString(CultureInfo.InvariantCulture)]);
        string? error = forwardError is null && trainError is null ? null
            : string.Join("; ", new[] { forwardError is null ? null : $"forward: {forwardError}", trainError is null ? null : $"training: {trainError}" }.OfType<string>());
        bool pretrained = forward?.Pretrained ?? train?.Pretrained ?? WeightsHere(config);
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
    static (Backbone Backbone, bool Pretrained) Open(BackboneConfig config)
    {
        if (config.Pretrained && WeightsHere(config))
            return (Backbone.LoadPretrained(config, Cli.Assets, inputSize: config.InputSize), true);
        var backbone = Backbone.Create(config, new ArchitectureOptions(config.InputSize), config.Spec(config.InputSize));
        HeInitialize(backbone.Network);
        return (backbone, false);
    }

    /// <summary>
    /// Random weights that keep activations at their scale through any depth (He normal: std sqrt(2 / fan-in)),
    /// so that random-weight timings never run into denormal numbers, which are slow on CPUs.
    /// </summary>
    static void HeInitialize(Graph network)
    {
        using var _ = no_grad();
        foreach (var p in network.parameters().Where(p => p.dim() >= 2))
            p.normal_(0, Math.Sqrt(2.0 / (p.numel() / p.shape[0])));
    }

    /// <summary>
    /// In the child: forward images/s of the trunk (with the head's pooling) in Graft's frozen-trunk runner (what
    /// feature extraction uses), in a plain ONNX Runtime session with default options on the same weights (as a
    /// user deploying the exported model would run it) and in libtorch. Peak RSS is read after Graft's runner has
    /// run alone: the weights plus what feature extraction needs.
    /// </summary>
    static ForwardMeasurement MeasureForward(BackboneConfig config, int batch, int maxBatches)
    {
        var (backbone, pretrained) = Open(config);
        using var _ = backbone;
        int size = config.InputSize;
        using var images = randn(batch, 3, size, size);
        using var graft = TrunkRunners.Create(backbone.Trunk, size, Pooling.Gap);
        WarmUp(() => graft.Features(images).Dispose());
        double rss = ProcessStats.PeakRssMb();
        using var torch = new TorchTrunkRunner(backbone.Trunk);
        using var reference = new OnnxTrunkRunner(backbone.Trunk, size, Pooling.Gap, new Microsoft.ML.OnnxRuntime.SessionOptions());
        WarmUp(() => reference.Features(images).Dispose());
        WarmUp(() => torch.Features(images).Dispose());
        // Interleaved rounds, median of each: a passing load on the machine then hits every runner alike.
        var rounds = Enumerable.Range(0, 3).Select(_ =>
            (Torch: Throughput(torch, images, maxBatches), Graft: Throughput(graft, images, maxBatches), Ort: Throughput(reference, images, maxBatches))).ToList();
        double Median(Func<((double Rate, int Batches) Torch, (double Rate, int Batches) Graft, (double Rate, int Batches) Ort), double> pick) =>
            rounds.Select(pick).Order().ElementAt(rounds.Count / 2);
        return new ForwardMeasurement(pretrained, TrunkRunners.UseOnnxRuntime ? "ONNX Runtime, tuned" : "libtorch", batch, rounds.Count,
            rounds.Sum(r => r.Graft.Batches), Median(r => r.Graft.Rate), Median(r => r.Ort.Rate), Median(r => r.Torch.Rate), rss);
    }

    /// <summary>Images/s over timed batches: until about <paramref name="seconds"/> have passed, at least one, at most <paramref name="maxBatches"/>.</summary>
    static (double Rate, int Batches) Throughput(ITrunkRunner runner, Tensor images, int maxBatches, double seconds = 1.5)
    {
        int n = 0;
        var clock = Stopwatch.StartNew();
        do { runner.Features(images).Dispose(); n++; } while (n < maxBatches && clock.Elapsed.TotalSeconds < seconds);
        return (images.shape[0] * (double)n / clock.Elapsed.TotalSeconds, n);
    }

    /// <summary>The first batches pick kernels and allocate: two of them, or one when it takes seconds.</summary>
    static void WarmUp(Action step)
    {
        var clock = Stopwatch.StartNew();
        step();
        if (clock.Elapsed.TotalSeconds < 2) step();
    }

    /// <summary>In the child: fine-tuning steps (top 2 blocks unfrozen, a new head) on random images; peak RSS after them.</summary>
    static TrainingMeasurement MeasureTraining(BackboneConfig config, int batch, int maxSteps)
    {
        var (backbone, pretrained) = Open(config);
        using var _ = backbone;
        var (rate, steps, blocks) = TrainingRate(backbone, new UnfreezeSpec(TopBlocks: 2), batch, maxSteps);
        return new TrainingMeasurement(pretrained, batch, steps, blocks, rate, ProcessStats.PeakRssMb());
    }

    /// <summary>
    /// Images/s of full training steps (forward, backward, SGD with momentum) through the trunk and a new head with
    /// the given part unfrozen, run as fine-tuning runs them: the frozen part up to a clean cut as inference in
    /// Graft's trunk runner, the rest in libtorch with autograd.
    /// </summary>
    static (double Rate, int Steps, string[] Blocks) TrainingRate(Backbone backbone, UnfreezeSpec unfreeze, int batch, int maxSteps, double seconds = 2)
    {
        int size = backbone.Trunk.InputSize;
        var blocks = Freezing.Apply(backbone.Trunk, unfreeze).Select(b => b.Name).ToArray();
        var frozenEnd = Freezing.FrozenPrefixEnd(backbone.Trunk);
        using var frozen = frozenEnd is null ? null : TrunkRunners.Create(backbone.Trunk.Through(frozenEnd), size, pooling: null);
        var trained = frozenEnd is null ? backbone.Trunk : backbone.Trunk.From(frozenEnd);
        var head = new HeadConfig(backbone.Trunk.Output.Channels, 2).Build();
        var network = new GraftedNetwork(trained, Pooling.Gap, head);
        using var optimizer = optim.SGD(network.parameters().Where(p => p.requires_grad), 1e-4, momentum: 0.9);
        using var images = randn(batch, 3, size, size);
        using var labels = randint(0, 2, batch);
        void Step()
        {
            using var scope = NewDisposeScope();
            Freezing.SetTrainingMode(network);
            optimizer.zero_grad();
            var x = frozen?.Features(images) ?? images;
            Objective.Loss(network.call(x), labels).backward();
            optimizer.step();
        }
        WarmUp(Step);
        int steps = 0;
        var clock = Stopwatch.StartNew();
        do { Step(); steps++; } while (steps < maxSteps && clock.Elapsed.TotalSeconds < seconds);
        return (batch * (double)steps / clock.Elapsed.TotalSeconds, steps, blocks);
    }

    /// <summary>
    /// The machine's convolution throughput as Graft runs convolutions: stacks of large 3x3 convolutions (the
    /// shapes of VGG's and ResNet's middle layers) in Graft's tuned ONNX Runtime session, GFLOP/s = 2·MACs
    /// (<see cref="GraphCost"/>) / time; the better shape's best of three rounds. (Smaller maps, 14x14, measured
    /// about half as fast.)
    /// </summary>
    static ConvPeak MeasureConvPeak(Action<string>? log = null)
    {
        ConvPeak? best = null;
        foreach (var (size, channels, batch) in new[] { (56, 256, 16), (28, 512, 16) })
        {
            const int layers = 5;
            var b = new GraphBuilder("conv_peak", size, foldedBatchNorm: false);
            int x = b.Input;
            for (int i = 0; i < layers; i++) x = b.Conv2D($"conv{i}", x, channels, 3, padding: Backbones.Layers.Padding.Same);
            using var graph = b.Build();
            HeInitialize(graph);
            var cost = GraphCost.Of(graph);
            using var runner = new OnnxTrunkRunner(graph, size, Pooling.Gap);
            using var images = randn(batch, 3, size, size);
            WarmUp(() => runner.Features(images).Dispose());
            double rate = Enumerable.Range(0, 3).Max(_ => Throughput(runner, images, 1000, 1.5).Rate);
            var peak = new ConvPeak(cost.GigaFlops * rate,
                $"{layers - 1} 3x3 convolutions {channels}->{channels} at {size}x{size} after a 3->{channels} one, batch {batch}, Graft's ONNX Runtime session");
            log?.Invoke($"  {peak.Gflops:0} GFLOP/s: {peak.Label}");
            if (best is null || peak.Gflops > best.Gflops) best = peak;
        }
        return best!;
    }

    /// <summary>Runs `graft bench --measure-backbone ...` as its own process; its JSON result, or why there is none.</summary>
    static (T? Result, string? Error) RunChild<T>(string[] arguments) where T : class
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Graft.Cli.dll"));
        start.ArgumentList.Add("bench");
        foreach (var a in arguments) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        var last = stdout.Result.TrimEnd().Split('\n')[^1];
        if (process.ExitCode == 0 && last.StartsWith('{'))
            return (JsonSerializer.Deserialize<T>(last, TrainableClassifier.Json), null);
        var reason = stderr.Result.Split('\n').Select(l => l.Trim()).LastOrDefault(l => l.StartsWith("graft: "))?["graft: ".Length..];
        return (null, reason ?? $"exit code {process.ExitCode}{(process.ExitCode == 137 ? " (killed: out of memory?)" : "")}");
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

    static Table BackboneTable(IReadOnlyList<BackboneResult> results, Machine machine, ConvPeak peak)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .Title(Cli.Escape($"backbones at their default input size; {machine.Cpu}; {machine.Allocator}; convolution peak {peak.Gflops:0} GFLOP/s"))
            .AddColumns("backbone", "weights", "input", "GMACs", "GFLOPs", "forward batch", "Graft images/s", "ORT defaults images/s", "Graft / ORT",
                "libtorch images/s", "fine-tune top 2: images/s (batch)", "% of conv peak", "peak RSS MB: forward / fine-tune");
        static string Rate(double x) => double.IsNaN(x) ? "-" : x >= 100 ? $"{x:0}" : $"{x:0.0}";
        foreach (var r in results)
            table.AddRow(Cli.Escape(r.Name), r.Weights, $"{r.InputSize}", $"{r.Gmacs:0.000}", $"{r.Gflops:0.00}", $"{r.ForwardBatch}",
                Rate(r.GraftImagesPerSecond), Rate(r.OrtDefaultImagesPerSecond),
                double.IsNaN(r.GraftOverOrt) ? "-" : r.GraftOverOrt >= 1.0 ? $"[green]{r.GraftOverOrt:0.00}x[/]" : $"[red]{r.GraftOverOrt:0.00}x[/]",
                Rate(r.LibtorchImagesPerSecond), $"{Rate(r.TrainImagesPerSecond)} ({r.TrainBatch})",
                double.IsNaN(r.FractionOfPeak) ? "-" : $"{100 * r.FractionOfPeak:0}%", $"{r.PeakRssForwardMb:0} / {r.PeakRssTrainMb:0}"
                    + (r.Error is null ? "" : $" [red]{Cli.Escape(r.Error)}[/]"));
        return table;
    }

    /// <summary>The 1, 5 and 15 minute load averages: other work on the machine during the bench shows here (Linux; "" elsewhere).</summary>
    static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "";

    /// <summary>The CPU as /proc/cpuinfo names it (a hypervisor may hide the exact model: family and model numbers say more), its cores and vector width.</summary>
    static string CpuDescription()
    {
        if (!File.Exists("/proc/cpuinfo")) return $"{System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture}, {Environment.ProcessorCount} cores";
        var fields = File.ReadLines("/proc/cpuinfo").TakeWhile(l => l.Trim().Length > 0).Select(l => l.Split(':', 2)).Where(f => f.Length == 2)
            .GroupBy(f => f[0].Trim()).ToDictionary(g => g.Key, g => g.First()[1].Trim());
        var flags = fields.GetValueOrDefault("flags", "").Split(' ').ToHashSet();
        string vector = flags.Contains("avx512f") ? "AVX-512" : flags.Contains("avx2") ? "AVX2" : flags.Contains("asimd") ? "NEON" : "no AVX2";
        string model = fields.GetValueOrDefault("model name") ?? fields.GetValueOrDefault("Model") ?? "unknown CPU";
        string family = fields.TryGetValue("cpu family", out var f) && fields.TryGetValue("model", out var m) ? $" (family {f}, model {m})" : "";
        return $"{model}{family}, {Environment.ProcessorCount} cores, {vector}";
    }

    /// <summary>
    /// Images/s of the whole fine-tuning loop as `graft train --strategy fine-tune` runs it (decoding, augmentation, the
    /// frozen part, the steps, validation), next to the bare step: two fine-tuning epochs on the features cached above.
    /// </summary>
    static Row FineTuningLoop(string path, string cache, double? step, ProgressLine progress)
    {
        progress.Log("cats_vs_dogs: graft train --strategy fine-tune, two fine-tuning epochs...");
        var run = TrainInChildProcess(path, cache, ["--strategy", "fine-tune", "--epochs", "2", "--patience", "2", "--ft-epochs", "2"]);
        int images = run.GetProperty("train_images").GetInt32() + run.GetProperty("validation_images").GetInt32();
        var seconds = run.GetProperty("epoch_seconds").EnumerateArray().Select(e => e.GetDouble()).TakeLast(2).ToList();
        double rate = images / seconds.Average();
        progress.Log($"fine-tuning loop: {rate:0} images/s (epochs of {string.Join(" and ", seconds.Select(s => $"{s:0.0} s"))})");
        return new Row($"cats_vs_dogs: fine-tuning loop, top 2 blocks, per epoch ({images} images: augmented training + validation)", rate, "images/s",
            step is null ? "" : $"bare step: {step:0}", null);
    }

    /// <summary>Images/s of a full training step through the default backbone (MobileNetV2) with the given part unfrozen, batch 32.</summary>
    static Row TrainingStep(string label, UnfreezeSpec unfreeze, int maxSteps)
    {
        using var backbone = Backbone.LoadPretrained(BackboneRegistry.Default, Cli.Assets);
        var (rate, _, _) = TrainingRate(backbone, unfreeze, 32, maxSteps);
        bool top = unfreeze.TopBlocks is not null;
        return new Row($"{backbone.Config.Name} training step, {label}, batch 32", rate, "images/s", top ? ">= 40" : "", top ? rate >= 40 : null);
    }

    static async Task<Row> InputPipeline(IReadOnlyList<string> files, Augmentation augmentation, CancellationToken cancel)
    {
        var spec = ImageSpec.Uniform(224, 127, 127.5f) with { Resize = ResizeMode.CenterCrop };
        var clock = Stopwatch.StartNew();
        int n = 0;
        var augment = augmentation.IsIdentity ? null : new EpochAugmentation(augmentation, 1, 1);
        await foreach (var batch in BatchPipeline.Batches(files, spec, 32, augment: augment, cancel: cancel)) n += batch.Count;
        return new Row($"decode + resize{(augment is null ? "" : " + augment")} ({n} JPEGs, all cores)", n / clock.Elapsed.TotalSeconds, "images/s", "", null);
    }

    const string PhoneDataset = "phone_photos";

    /// <summary>
    /// Phone-camera photos: 2 x 64 JPEGs of 4032x3024 (quality 90, camera-like noise) made from the shared photos and
    /// kept in Graft's cache. Decoding at reduced DCT scale against full decoding of the same files, then a cold
    /// `graft train` on them (feature extraction images/s, peak memory) in its own process.
    /// </summary>
    static IReadOnlyList<Row> PhonePhotoRows(ProgressLine progress)
    {
        var root = Path.Combine(Cli.Assets.CacheRoot, "bench", PhoneDataset);
        progress.Log($"{PhoneDataset}: making 128 photos of 4032x3024 in {root} (once)...");
        var files = new[] { "a", "b" }.SelectMany((c, i) => PhonePhotos.Generate(Path.Combine(root, c), 64, seed: 11 + i)).ToList();
        var sample = files.Take(64).ToList();
        double Decode(bool full)
        {
            var clock = Stopwatch.StartNew();
            Parallel.ForEach(sample, f => ImageLoader.LoadRgb(f, 224, ResizeMode.CenterCrop, fullDecode: full));
            return sample.Count / clock.Elapsed.TotalSeconds;
        }
        Decode(false); // warm-up
        double full = Decode(true), scaled = Decode(false);
        using var cache = new TempFolder();
        progress.Log($"{PhoneDataset}: graft train, cold cache...");
        var run = TrainInChildProcess(root, cache.Path);
        double rate = run.GetProperty("feature_images_per_second").GetDouble();
        return
        [
            new($"{PhoneDataset}: decode + resize 12 MP JPEGs, full decoding (peer)", full, "images/s", "", null),
            new($"{PhoneDataset}: decode + resize 12 MP JPEGs, reduced DCT scale (Graft)", scaled, "images/s", "", null),
            new($"{PhoneDataset}: reduced / full decoding", scaled / full, "x", "", null),
            new($"{PhoneDataset}: feature extraction (graft train, 128 photos)", rate, "images/s", ">= 80", rate >= 80),
            new($"{PhoneDataset}: peak RSS, graft train", run.GetProperty("peak_rss_mb").GetDouble(), "MB", "", null),
        ];
    }

    static Row HeadTraining()
    {
        manual_seed(0);
        using var x = randn(2000, 1280);
        using var y = (x[.., 0] > 0).to(int64);
        var head = new HeadConfig(1280, 2).Build();
        var fit = HeadTrainer.Fit(head, x, y, null, null, new FitOptions(Epochs: 10));
        return new Row("head training on cached features (1280 -> 2)", fit.SamplesPerSecond, "samples/s", ">= 20000", fit.SamplesPerSecond >= 20000);
    }

    static IReadOnlyList<string> SampleImages(int count)
    {
        var root = Cli.Assets.SearchRoots.Select(r => Path.Combine(r, "data", "cats_vs_dogs", "train")).FirstOrDefault(Directory.Exists);
        return root is null ? [] : Directory.EnumerateFiles(root, "*.jpg", SearchOption.AllDirectories).Order().Take(count).ToList();
    }

    /// <summary>
    /// Runs `graft train DATA --json` as its own process; returns its JSON result plus wall_seconds.
    /// The child's end-of-epoch lines go to <paramref name="epochLog"/> (the experiments run for most of an hour).
    /// </summary>
    static JsonElement TrainInChildProcess(string data, string cacheRoot, string[]? options = null, Action<string>? epochLog = null)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Graft.Cli.dll"));
        foreach (var a in new[] { "train", data, "--json", "--out", Path.Combine(cacheRoot, "bench.graft") }.Concat(options ?? [])) start.ArgumentList.Add(a);
        start.Environment[AssetResolver.CacheVariable] = cacheRoot;
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        string lastError = "";
        var stderr = Task.Run(async () =>
        {
            while (await process.StandardError.ReadLineAsync() is { } line)
            {
                if (line.StartsWith("epoch ") && line.Contains(" loss ")) epochLog?.Invoke("  " + line);
                if (line.StartsWith("graft: ")) lastError = line["graft: ".Length..];
            }
        });
        process.WaitForExit();
        stderr.Wait();
        double wall = clock.Elapsed.TotalSeconds;
        if (process.ExitCode != 0)
            throw new GraftException($"graft train {data} failed during the benchmark (exit {process.ExitCode}): {lastError}", "Run it alone to see the problem.");
        var last = stdout.Result.TrimEnd().Split('\n')[^1];
        var node = System.Text.Json.Nodes.JsonNode.Parse(last)!.AsObject();
        node["wall_seconds"] = wall;
        return JsonDocument.Parse(node.ToJsonString()).RootElement;
    }

    /// <summary>
    /// The int8 trunk against the float one: images/s of the default backbone's two trunks on the same batch of 32, in
    /// alternating rounds (each one's median; the ratio is held to 1.5x).
    /// </summary>
    static async Task<IReadOnlyList<Row>> Int8TrunkRows(IReadOnlyList<string> sample, int maxBatches, ProgressLine progress, CancellationToken cancel)
    {
        var rows = new List<Row>();
        void Add(Row row)
        {
            rows.Add(row);
            progress.Log($"{row.Benchmark}: {row.Value:0.000} {row.Unit}");
        }
        if (sample.Count >= 32)
        {
            using var backbone = Backbone.LoadPretrained(BackboneRegistry.Default, Cli.Assets);
            var spec = backbone.Input;
            var calibration = await Int8Trunk.CalibrateAsync(backbone.Trunk, backbone.Config.Name, spec, sample.Select(p => new LabeledImage(p, 0)).ToList(), cancel: cancel);
            var pixels = new List<float>();
            await foreach (var batch in BatchPipeline.Batches(sample.Take(32).ToList(), spec, 32, cancel: cancel)) pixels.AddRange(batch.Pixels);
            using var images = tensor(pixels.ToArray(), [pixels.Count / (3 * spec.Size * spec.Size), 3, spec.Size, spec.Size]);
            using var plain = new OnnxTrunkRunner(backbone.Trunk, spec.Size);
            using var int8 = TrunkRunners.CreateInt8(backbone.Trunk, spec.Size, Pooling.Gap, calibration);
            WarmUp(() => plain.Features(images).Dispose());
            WarmUp(() => int8.Features(images).Dispose());
            var rounds = Enumerable.Range(0, 5).Select(_ => (Float: Throughput(plain, images, maxBatches).Rate, Int8: Throughput(int8, images, maxBatches).Rate)).ToList();
            double Median(IEnumerable<double> values) => values.Order().ElementAt(rounds.Count / 2);
            double floatRate = Median(rounds.Select(r => r.Float)), int8Rate = Median(rounds.Select(r => r.Int8));
            string what = $"{backbone.Config.Name} trunk, batch {images.shape[0]}";
            Add(new($"{what}: float (ONNX Runtime)", floatRate, "images/s", "", null));
            Add(new($"{what}: int8 (calibrated on {calibration.Images} images)", int8Rate, "images/s", "", null));
            Add(new($"{what}: int8 / float speed", int8Rate / floatRate, "x", ">= 1.5", int8Rate / floatRate >= 1.5));
        }
        return rows;
    }

    /// <summary>
    /// On a dataset, `graft train --precision int8` (its own process; int8 features are cached apart, so computed cold)
    /// against the float run above: validation accuracy, whose difference is held to -0.3 points, and the feature
    /// extraction rates (decoding included).
    /// </summary>
    static IEnumerable<Row> Int8DatasetRows(string name, string path, string cache, JsonElement plain, ProgressLine progress)
    {
        progress.Log($"{name}: graft train --precision int8...");
        var int8 = TrainInChildProcess(path, cache, ["--precision", "int8"]);
        double floatAccuracy = plain.GetProperty("accuracy").GetDouble(), int8Accuracy = int8.GetProperty("accuracy").GetDouble();
        double points = 100 * (int8Accuracy - floatAccuracy);
        yield return new($"{name}: validation accuracy, int8 trunk (float: above)", int8Accuracy, "", "", null);
        yield return new($"{name}: int8 minus float accuracy", points, "points", ">= -0.3", points >= -0.3);
        yield return new($"{name}: feature extraction int8 / float (decoding included)",
            int8.GetProperty("feature_images_per_second").GetDouble() / plain.GetProperty("feature_images_per_second").GetDouble(), "x", "", null);
    }

    sealed class TempFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("graft-bench-").FullName;
        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
