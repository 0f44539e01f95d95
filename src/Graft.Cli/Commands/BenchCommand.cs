using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Graft.Backbones;
using Graft.Data;
using Graft.Engine;
using Graft.Training;
using Graft.Weights;
using Spectre.Console;
using static TorchSharp.torch;

namespace Graft.Cli.Commands;

/// <summary>
/// Speed and accuracy, measured and compared with their targets: the trunk's forward pass, the input
/// pipeline, head training on cached features, and full `graft train` runs (cold and warm cache, each
/// in its own process so wall time and peak memory are the user's) on the sample datasets.
/// </summary>
public static class BenchCommand
{
    sealed record Row(string Benchmark, double Value, string Unit, string Target, bool? Met);

    static readonly Dictionary<string, double> AccuracyTargets = new() { ["hymenoptera"] = 0.95, ["cats_vs_dogs"] = 0.96 };

    public static Command Create()
    {
        var datasets = new Option<string>("--datasets") { Description = "Comma-separated sample datasets to train on ('' for none).", DefaultValueFactory = _ => "hymenoptera,cats_vs_dogs" };
        var batches = new Option<int>("--batches") { Description = "Timed batches of 32 for the forward-pass benchmark.", DefaultValueFactory = _ => 10 };
        var experiments = new Option<bool>("--experiments") { Description = "Instead: the Keras blog's three experiments on cats_vs_dogs (scratch, feature extraction, fine-tuning) and fine-tuning on hymenoptera, next to the published numbers (about an hour)." };
        var json = Cli.JsonOption();
        var command = new Command("bench", "Measure speed and accuracy against Graft's targets.") { datasets, batches, experiments, json };
        command.SetHandler(async (parse, cancel) =>
        {
            TorchRuntime.EnsureInitialized();
            if (parse.GetValue(experiments))
            {
                Experiments(parse.GetValue(json));
                return;
            }
            var rows = new List<Row>();
            var progress = new ProgressLine();
            progress.Log($"allocator: {Allocator.Describe()}; threads: {get_num_threads()}");

            int timed = Math.Max(1, parse.GetValue(batches));
            foreach (var backbone in BackboneRegistry.All.Where(b => b.Weights.Any(w => AssetResolver.Default.FindLocal(w.File) is not null)))
                foreach (var row in Forward(backbone, timed)) { rows.Add(row); progress.Log($"{row.Benchmark}: {row.Value:0.00} {row.Unit}"); }
            foreach (var (label, spec) in new[] { ("fine-tuning the top 2 blocks", new UnfreezeSpec(TopBlocks: 2)), ("training the full trunk", new UnfreezeSpec(FreezeFirstLayers: 0)) })
            {
                rows.Add(TrainingStep(label, spec, Math.Max(2, timed / 2)));
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
                var path = SampleDatasets.Resolve(name, AssetResolver.Default);
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
            }

            var table = new Table().Border(TableBorder.Rounded).AddColumns("benchmark", "value", "unit", "target", "met");
            foreach (var r in rows)
                table.AddRow(Cli.Escape(r.Benchmark), r.Value >= 100 ? $"{r.Value:0}" : $"{r.Value:0.000}", r.Unit, Cli.Escape(r.Target),
                    r.Met is null ? "" : r.Met.Value ? "[green]yes[/]" : "[red]no[/]");
            Cli.Out.Write(table);
            if (parse.GetValue(json))
                Cli.WriteJson(new { allocator = Allocator.Describe(), threads = get_num_threads(), results = rows });
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
            var r = TrainInChildProcess(SampleDatasets.Resolve(e.Data, AssetResolver.Default), cache.Path, ["--strategy", e.Strategy, .. e.Options], progress.Log);
            double accuracy = r.GetProperty("accuracy").GetDouble(), wall = r.GetProperty("wall_seconds").GetDouble();
            int epochs = r.GetProperty("epochs").GetInt32();
            progress.Log($"  accuracy {accuracy:0.0000} after {epochs} epochs, {wall:0}s");
            table.AddRow(e.Data, e.Strategy, epochs.ToString(), $"{wall:0} s", $"{accuracy:0.0000}", $">= {e.Target}", accuracy >= e.Target ? "[green]yes[/]" : "[red]no[/]", Cli.Escape(e.Published));
            results.Add(new { data = e.Data, strategy = e.Strategy, epochs, wall_seconds = wall, accuracy, target = e.Target, met = accuracy >= e.Target, published = e.Published });
        }
        Cli.Out.Write(table);
        if (json) Cli.WriteJson(new { experiments = results });
    }

    /// <summary>
    /// Forward images/s of a backbone's trunk at batch 32: libtorch, Graft's frozen-trunk runner (what feature
    /// extraction uses), and a plain ONNX Runtime session with default options on the same weights, as a user
    /// deploying the exported model would run it.
    /// </summary>
    static IEnumerable<Row> Forward(BackboneConfig config, int batches)
    {
        using var backbone = Backbone.LoadPretrained(config, AssetResolver.Default);
        using var images = randn(32, 3, config.InputSize, config.InputSize);
        var torch = new TorchTrunkRunner(backbone.Trunk);
        var graft = TrunkRunners.Create(backbone.Trunk, config.InputSize, Pooling.Gap);
        using var reference = new OnnxTrunkRunner(backbone.Trunk, config.InputSize, Pooling.Gap, new Microsoft.ML.OnnxRuntime.SessionOptions());
        // Interleaved rounds, median of each: a passing load on the machine then hits every runner alike.
        var rounds = Enumerable.Range(0, 3).Select(_ =>
            (Torch: Throughput(torch, images, batches), Graft: Throughput(graft, images, batches), Ort: Throughput(reference, images, batches))).ToList();
        (graft as IDisposable)?.Dispose();
        double Median(Func<(double Torch, double Graft, double Ort), double> pick) => rounds.Select(pick).Order().ElementAt(1);
        double torchRate = Median(r => r.Torch), graftRate = Median(r => r.Graft), ortRate = Median(r => r.Ort);
        bool main = config.Name == "mobilenet_v2";
        string runner = TrunkRunners.UseOnnxRuntime ? "ONNX Runtime, tuned" : "libtorch";
        yield return new Row($"{config.Name} forward, libtorch, batch 32 at {config.InputSize}", torchRate, "images/s", "", null);
        yield return new Row($"{config.Name} forward, Graft's trunk runner ({runner})", graftRate, "images/s", main ? ">= 150" : "", main ? graftRate >= 150 : null);
        yield return new Row($"{config.Name} forward, ONNX Runtime defaults, same weights", ortRate, "images/s", "", null);
        yield return new Row($"{config.Name} forward, Graft / ONNX Runtime", graftRate / ortRate, "x", main ? ">= 1.0" : "", main ? graftRate / ortRate >= 1.0 : null);
    }

    static double Throughput(ITrunkRunner runner, Tensor images, int batches)
    {
        for (int i = 0; i < 2; i++) runner.Features(images).Dispose(); // warm-up: the first batches pick kernels
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < batches; i++) runner.Features(images).Dispose();
        return images.shape[0] * (double)batches / clock.Elapsed.TotalSeconds;
    }

    /// <summary>Images/s of a full training step (forward, backward, SGD) through MobileNetV2 with the given part unfrozen.</summary>
    static Row TrainingStep(string label, UnfreezeSpec unfreeze, int steps)
    {
        using var backbone = Backbone.LoadPretrained(BackboneRegistry.Default, AssetResolver.Default);
        var head = new HeadConfig(backbone.Trunk.Output.Channels, 2).Build();
        var network = new GraftedNetwork(backbone.Trunk, Pooling.Gap, head);
        Freezing.Apply(backbone.Trunk, unfreeze);
        using var optimizer = optim.SGD(network.parameters().Where(p => p.requires_grad), 1e-4, momentum: 0.9);
        using var images = randn(32, 3, 224, 224);
        using var labels = randint(0, 2, 32);
        void Step()
        {
            using var scope = NewDisposeScope();
            Freezing.SetTrainingMode(network);
            optimizer.zero_grad();
            Objective.Loss(network.call(images), labels).backward();
            optimizer.step();
        }
        Step(); Step();
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++) Step();
        double rate = 32.0 * steps / clock.Elapsed.TotalSeconds;
        bool top = unfreeze.TopBlocks is not null;
        return new Row($"mobilenet_v2 training step, {label}, batch 32", rate, "images/s", top ? ">= 40" : "", top ? rate >= 40 : null);
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
        var root = AssetResolver.Default.SearchRoots.Select(r => Path.Combine(r, "data", "cats_vs_dogs", "train")).FirstOrDefault(Directory.Exists);
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

    sealed class TempFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("graft-bench-").FullName;
        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
