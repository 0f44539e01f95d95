using System.Diagnostics;
using Graft.Backbones;
using Graft.Heads;
using Graft.Imaging;
using Graft.Runtime;
using Graft.Training;
using static TorchSharp.torch;

namespace Graft.Bench;

/// <summary>
/// The fine-tuning loop and the input pipeline: bare training steps through the default backbone, decoding and
/// augmenting JPEGs, head training on cached features, and on cats_vs_dogs the whole fine-tuning loop as
/// `graft train --strategy fine-tune` runs it, next to the bare step.
/// </summary>
static class TrainingLoop
{
    public static async Task RunAsync(BenchRun run, CancellationToken cancel)
    {
        // The bare fine-tuning step of the top 2 blocks is measured here when the backbones' family did not.
        var steps = new List<(string, UnfreezeSpec)>();
        if (run.TopTwoStep is null) steps.Add(("fine-tuning the top 2 blocks", new UnfreezeSpec(TopBlocks: 2)));
        steps.Add(("training the full trunk", new UnfreezeSpec(FreezeFirstLayers: 0)));
        foreach (var (label, spec) in steps)
        {
            var row = Step(run, label, spec);
            if (spec.TopBlocks is not null) run.TopTwoStep = row.Value;
            run.Add(row, r => $"{r.Benchmark}: {r.Value:0.0} images/s");
        }
        if (run.SampleImages.Count > 0)
            foreach (var augmentation in new[] { Augmentation.None, Augmentation.Default })
                run.Add(await InputPipeline(run.SampleImages, augmentation, cancel), r => $"{r.Benchmark}: {r.Value:0} images/s");
        run.Add(HeadTraining(), r => $"head training: {r.Value:0} samples/s");
    }

    /// <summary>
    /// Images/s of the whole fine-tuning loop as `graft train --strategy fine-tune` runs it (decoding, augmentation, the
    /// frozen part, the steps, validation), next to the bare step: two fine-tuning epochs on the features the dataset's
    /// cold run cached. Measured on cats_vs_dogs.
    /// </summary>
    public static IEnumerable<Row> FineTuningLoop(BenchRun run, DatasetRun dataset)
    {
        if (dataset.Name != "cats_vs_dogs") yield break;
        run.Host.Log("cats_vs_dogs: graft train --strategy fine-tune, two fine-tuning epochs...");
        var result = ChildRuns.Train(run.Host, dataset.Path, dataset.Cache, ["--strategy", "fine-tune", "--epochs", "2", "--patience", "2", "--ft-epochs", "2"]);
        int images = result.GetProperty("train_images").GetInt32() + result.GetProperty("validation_images").GetInt32();
        var seconds = result.GetProperty("epoch_seconds").EnumerateArray().Select(e => e.GetDouble()).TakeLast(2).ToList();
        double rate = images / seconds.Average();
        run.Host.Log($"fine-tuning loop: {rate:0} images/s (epochs of {string.Join(" and ", seconds.Select(s => $"{s:0.0} s"))})");
        yield return new Row($"cats_vs_dogs: fine-tuning loop, top 2 blocks, per epoch ({images} images: augmented training + validation)", rate, "images/s",
            run.TopTwoStep is { } step ? $"bare step: {step:0}" : "", null);
    }

    /// <summary>
    /// Images/s of full training steps (forward, backward, SGD with momentum) through the trunk and a new head with
    /// the given part unfrozen, run as fine-tuning runs them: the frozen part up to a clean cut as inference in
    /// Graft's trunk runner, the rest in libtorch with autograd.
    /// </summary>
    public static (double Rate, int Steps, string[] Blocks) StepRate(Backbone backbone, UnfreezeSpec unfreeze, int batch, int maxSteps, double seconds = 2)
    {
        int size = backbone.Trunk.InputSize;
        var blocks = Freezing.Apply(backbone.Trunk, unfreeze).Select(b => b.Name).ToArray();
        var frozenEnd = Freezing.FrozenPrefixEnd(backbone.Trunk);
        using var frozen = frozenEnd is null ? null : TrunkRunners.Create(backbone.Trunk.Through(frozenEnd), size, pooling: null);
        var trained = frozenEnd is null ? backbone.Trunk : backbone.Trunk.From(frozenEnd);
        var head = new HeadConfig(backbone.Trunk.Output.Channels, 2).Build();
        var network = new GraftedNetwork(trained, Pooling.Gap, head);
        using var optimizer = optim.SGD(network.parameters().Where(p => p.requires_grad), 1e-4, momentum: 0.9);
        using var images = randn(batch, 3, size, size, device: CPU);
        using var labels = randint(0, 2, batch, device: CPU);
        void Step()
        {
            using var scope = NewDisposeScope();
            Freezing.SetTrainingMode(network);
            optimizer.zero_grad();
            var x = frozen?.Features(images) ?? images;
            Objective.Loss(network.call(x), labels).backward();
            optimizer.step();
        }
        Timing.WarmUp(Step);
        int steps = 0;
        var clock = Stopwatch.StartNew();
        do { Step(); steps++; } while (steps < maxSteps && clock.Elapsed.TotalSeconds < seconds);
        return (batch * (double)steps / clock.Elapsed.TotalSeconds, steps, blocks);
    }

    /// <summary>Images/s of a full training step through the default backbone (MobileNetV2) with the given part unfrozen, batch 32.</summary>
    static Row Step(BenchRun run, string label, UnfreezeSpec unfreeze)
    {
        using var backbone = Backbone.LoadPretrained(BackboneRegistry.Default, run.Assets);
        var (rate, _, _) = StepRate(backbone, unfreeze, 32, run.Options.TimedBatches);
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

    static Row HeadTraining()
    {
        manual_seed(0);
        using var x = randn(2000, 1280, device: CPU);
        using var y = (x[.., 0] > 0).to(int64);
        var head = new HeadConfig(1280, 2).Build();
        var fit = HeadTrainer.Fit(head, x, y, null, null, new FitOptions(Epochs: 10));
        return new Row("head training on cached features (1280 -> 2)", fit.SamplesPerSecond, "samples/s", ">= 20000", fit.SamplesPerSecond >= 20000);
    }
}
