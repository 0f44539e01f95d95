using Graft.Backbones;
using Graft.Data;
using Graft.Engine;
using Graft.Models;
using Graft.Training;
using Graft.Imaging;
using Graft.Runtime;
using Graft.Heads;
using Graft.Inference;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Graft.Tests;

public class FineTuneTests
{
    [Fact]
    public void Augmentation_is_reproducible_per_seed_epoch_and_image()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir.Path, perClass: 1, size: 64);
        var file = Directory.GetFiles(dir.Path, "*.png", SearchOption.AllDirectories)[0];
        var a = Augmentation.KerasBlog with { BrightnessRange = [0.7, 1.3] };
        byte[] Draw(int seed, int epoch, int index) => ImageLoader.LoadRgb(file, 48, ResizeMode.Squash, a, Augmentation.RandomFor(seed, epoch, index));
        Assert.Equal(Draw(1, 2, 3), Draw(1, 2, 3));
        Assert.NotEqual(Draw(1, 2, 3), Draw(1, 3, 3));
        Assert.NotEqual(Draw(1, 2, 3), Draw(2, 2, 3));
        Assert.NotEqual(Draw(1, 2, 3), ImageLoader.LoadRgb(file, 48, ResizeMode.Squash));
    }

    [Fact]
    public void Decoded_image_cache_gives_what_decoding_gives_within_its_budget()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir.Path, perClass: 2, size: 64, format: "jpg");
        var files = Directory.GetFiles(dir.Path, "*.jpg", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        var spec = ImageSpec.Uniform(40, 127.5f, 127.5f) with { Resize = ResizeMode.CenterCrop };
        var cache = new DecodedImageCache(spec);
        foreach (var augmentation in new Augmentation?[] { null, Augmentation.KerasBlog, Augmentation.Default with { RandomResizedCrop = true } })
            for (int epoch = 0; epoch < 2; epoch++)
                foreach (var (file, i) in files.Select((f, i) => (f, i)))
                {
                    var expected = new float[3 * 40 * 40];
                    var actual = new float[3 * 40 * 40];
                    ImageLoader.LoadInto(file, spec, expected, augmentation, Augmentation.RandomFor(7, epoch, i));
                    cache.LoadInto(file, actual, augmentation, Augmentation.RandomFor(7, epoch, i));
                    Assert.Equal(expected, actual);
                }
        Assert.Equal(files.Count, cache.Count);

        var tight = new DecodedImageCache(spec, budgetBytes: 40 * 40 * 3 * 2);
        foreach (var file in files) tight.LoadInto(file, new float[3 * 40 * 40]);
        Assert.Equal(2, tight.Count);
    }

    [Fact]
    public void Fill_modes_decide_what_comes_in_from_outside()
    {
        // A left-to-right gradient shifted by up to half its width.
        const int size = 16;
        var source = new byte[size * size * 3];
        for (int r = 0; r < size; r++)
            for (int c = 0; c < size; c++)
                for (int ch = 0; ch < 3; ch++) source[(r * size + c) * 3 + ch] = (byte)(100 + c);
        var shift = new Augmentation { WidthShiftRange = 0.5 };
        byte[] Shifted(FillMode mode)
        {
            var copy = (byte[])source.Clone();
            (shift with { FillMode = mode, FillValue = 7 }).Apply(copy, size, new Random(3));
            return copy;
        }
        var constant = Shifted(FillMode.Constant);
        Assert.Contains(constant, v => v == 7);
        Assert.Contains(constant, v => v >= 100);
        Assert.DoesNotContain(Shifted(FillMode.Nearest), v => v < 100);
        Assert.DoesNotContain(Shifted(FillMode.Wrap), v => v < 100);
        Assert.DoesNotContain(Shifted(FillMode.Reflect), v => v < 100);
        Assert.NotEqual(Shifted(FillMode.Nearest), Shifted(FillMode.Wrap));
    }

    [Fact]
    public void Unfreeze_specs_select_top_blocks_names_or_layers()
    {
        var trunk = Networks.Build("mobilenet_v2_0.35", 96);
        Assert.Equal(["Conv_1", "block_16"], Freezing.Apply(trunk, new UnfreezeSpec(TopBlocks: 2)).Select(b => b.Name));
        // Conv_1 (kernel) + Conv_1_bn (gamma, beta); block_16: expand, depthwise, project, each a kernel and a BN's gamma and beta.
        Assert.Equal(3 + 9, trunk.parameters().Count(p => p.requires_grad));

        Assert.Equal(["Conv_1", "block_16"], Freezing.Apply(trunk, new UnfreezeSpec(FromLayer: "block_16_depthwise")).Select(b => b.Name));
        Assert.Equal(3 + 6, trunk.parameters().Count(p => p.requires_grad)); // block_16's depthwise and project, Conv_1

        // Keras's model.layers order, the input layer first: all but the last three layers (Conv_1, Conv_1_bn, out_relu) frozen.
        var layers = trunk.KerasOrder();
        Assert.Equal("input_1", layers[0].Name);
        Assert.Equal(["Conv_1", "Conv_1_bn", "out_relu"], layers.TakeLast(3).Select(l => l.Name));
        Freezing.Apply(trunk, new UnfreezeSpec(FreezeFirstLayers: layers.Count - 3));
        Assert.Equal(3, trunk.parameters().Count(p => p.requires_grad));

        Assert.Contains("graft summary", Assert.Throws<GraftException>(() => Freezing.Apply(trunk, new UnfreezeSpec(FromLayer: "nope"))).Message);
        Assert.Throws<GraftException>(() => Freezing.Apply(trunk, new UnfreezeSpec(TopBlocks: 99)));
    }

    [Fact]
    public void A_fine_tuning_step_moves_only_unfrozen_weights_and_batch_norm_statistics()
    {
        var trunk = Networks.Build("mobilenet_v2_0.35", 96);
        manual_seed(5);
        var head = new HeadConfig(trunk.Output.Channels, 2).Build();
        var network = new GraftedNetwork(trunk, Pooling.Gap, head);
        Freezing.Apply(trunk, new UnfreezeSpec(TopBlocks: 1)); // Conv_1 only
        var before = network.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

        using var optimizer = optim.SGD(network.parameters().Where(p => p.requires_grad), 0.1, momentum: 0.9);
        for (int step = 0; step < 2; step++)
        {
            Freezing.SetTrainingMode(network);
            optimizer.zero_grad();
            Objective.Loss(network.call(randn(4, 3, 64, 64)), tensor(new long[] { 0, 1, 0, 1 })).backward();
            optimizer.step();
        }
        var after = network.state_dict();
        bool Changed(string key) => !before[key].allclose(after[key], rtol: 0, atol: 0);

        Assert.False(Changed("trunk.block_16_project.weight"));
        Assert.False(Changed("trunk.block_16_project_BN.running_mean")); // frozen BN stays in inference mode
        Assert.False(Changed("trunk.bn_Conv1.running_var"));
        Assert.True(Changed("trunk.Conv_1.weight"));
        Assert.True(Changed("trunk.Conv_1_bn.running_mean")); // unfrozen BN learns its statistics
        Assert.True(Changed("head.predictions.weight"));
    }

    [Fact]
    public void Binary_and_squeeze_excitation_heads()
    {
        TorchRuntime.EnsureInitialized();
        manual_seed(1);
        var binary = new HeadConfig(8, 2) { Binary = true }.Build();
        using var x = randn(5, 8);
        using var logits = binary.call(x);
        Assert.Equal([5L, 1], logits.shape);
        using var p = Objective.Probabilities(logits);
        Assert.Equal([5L, 2], p.shape);
        Assert.True(p.sum(1).allclose(ones(5)));
        Assert.True(Objective.Predicted(logits).eq(p.argmax(1)).all().item<bool>());
        Assert.Throws<GraftException>(() => new HeadConfig(8, 3) { Binary = true }.Build());

        // Squeeze-and-excitation on flattened [C * positions] features scales each channel's positions alike.
        var se = new SqueezeExcitation(channels: 4, positions: 3);
        using var flat = ones(2, 12);
        using var scaled = se.call(flat).reshape(2, 4, 3);
        Assert.True(scaled.std(dimensions: [2]).max().item<float>() < 1e-6);
        Assert.True(scaled.min().item<float>() > 0 && scaled.max().item<float>() < 1);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.9)] // with a moving average of the weights, which the checkpoint carries
    public async Task A_stopped_run_resumed_ends_like_an_uninterrupted_one(double emaDecay)
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 6, classes: 2, size: 40);
        var options = new TrainOptions
        {
            Strategy = Strategy.Scratch,
            ValidationSplit = 0.25,
            Fit = new FitOptions(Epochs: 3, BatchSize: 4, Seed: 3) { EmaDecay = emaDecay },
            CheckpointPath = dir["run.checkpoint"],
            CacheRoot = dir["cache"],
        };
        var whole = await Learner.TrainAsync(dir["data"], options with { CheckpointPath = null }, Assets.Resolver);

        // Stop during epoch 2 (after its first step), then resume.
        using var stop = new CancellationTokenSource();
        int reports = 0;
        var callbacks = new Callbacks(Images: new SyncProgress<ImageProgress>(p => { if (++reports == 4) stop.Cancel(); }));
        var stopped = await Assert.ThrowsAsync<TrainingStoppedException>(() => Learner.TrainAsync(dir["data"], options, Assets.Resolver, callbacks, stop.Token));
        Assert.True(File.Exists(stopped.CheckpointPath));

        var resumed = await Learner.TrainAsync(dir["data"], options with { Resume = true }, Assets.Resolver);
        Assert.False(File.Exists(dir["run.checkpoint"])); // removed once the run completes
        Assert.Equal(whole.Fit.History.Select(h => (h.Loss, h.Accuracy, h.ValLoss)), resumed.Fit.History.Select(h => (h.Loss, h.Accuracy, h.ValLoss)));
        Assert.Equal(whole.Validation!.Accuracy, resumed.Validation!.Accuracy);

        // A checkpoint is only resumed by the run that wrote it.
        await Assert.ThrowsAsync<TrainingStoppedException>(() => Learner.TrainAsync(dir["data"], options, Assets.Resolver, cancel: new CancellationToken(true)));
        var otherSeed = options with { Resume = true, Fit = options.Fit with { Seed = 4 } };
        var refused = await Assert.ThrowsAsync<GraftException>(() => Learner.TrainAsync(dir["data"], otherSeed, Assets.Resolver));
        Assert.Contains("different run", refused.Message);
    }

    [Fact]
    public async Task Fine_tuning_strategy_trains_head_then_top_blocks_and_round_trips()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 6, classes: 2, size: 40);
        var options = new TrainOptions
        {
            Strategy = Strategy.FineTune,
            ValidationSplit = 0, // without validation images fine-tuning is kept as it is (nothing to compare it with)
            Fit = new FitOptions(Epochs: 2, BatchSize: 4),
            FineTune = new FitOptions(Epochs: 1, BatchSize: 4, LearningRate: 1e-3, Optimizer: OptimizerKind.Sgd),
            Unfreeze = new UnfreezeSpec(TopBlocks: 1),
            CacheRoot = dir["cache"],
        };
        using var pretrained = Backbone.LoadPretrained(BackboneRegistry.Get("mobilenet_v2"), Assets.Resolver);
        var result = await Learner.TrainAsync(dir["data"], options, Assets.Resolver);
        Assert.Equal(3, result.Fit.History.Count); // 2 head epochs + 1 fine-tuning epoch
        var tuned = result.Model.Backbone.Trunk.state_dict();
        var original = pretrained.Trunk.state_dict();
        Assert.False(tuned["Conv_1.weight"].allclose(original["Conv_1.weight"], rtol: 0, atol: 0));
        Assert.True(tuned["block_16_project.weight"].allclose(original["block_16_project.weight"], rtol: 0, atol: 0));
        Assert.Equal(Strategy.FineTune.Name(), result.Model.Config.Strategy);

        result.Model.Save(dir["ft.graft"]);
        using var loaded = TrainableClassifier.Load(dir["ft.graft"]);
        var files = Directory.GetFiles(dir["data"], "*.png", SearchOption.AllDirectories).Order().ToList();
        var a = await result.Model.PredictAsync(files, 1, []);
        var b = await loaded.PredictAsync(files, 1, []);
        Assert.Equal(a.Select(p => p.Confidence), b.Select(p => p.Confidence));
        Assert.Equal(new UnfreezeSpec(TopBlocks: 1), loaded.Config.Unfreeze);
    }

    /// <summary>
    /// Fine-tuning that does not validate above the head alone leaves the pretrained trunk and the head's results: a
    /// rate that wrecks the trunk validates below it, a rate too small to change anything (batch norm frozen) ties.
    /// </summary>
    [Theory]
    [InlineData(3.0)]
    [InlineData(1e-12)]
    public async Task Fine_tuning_that_does_not_validate_above_the_head_alone_is_not_kept(double rate)
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 8, classes: 2, size: 40);
        var head = new TrainOptions { ValidationSplit = 0.25, TestSplit = 0.25, Fit = new FitOptions(Epochs: 6, BatchSize: 4, LearningRate: 0.01), CacheRoot = dir["cache"] };
        var options = head with
        {
            Strategy = Strategy.FineTune,
            FineTune = new FitOptions(Epochs: 2, BatchSize: 4, LearningRate: rate, Optimizer: OptimizerKind.Sgd, Patience: 5) { FreezeBatchNorm = true },
            Unfreeze = new UnfreezeSpec(All: true),
        };
        var alone = await Learner.TrainAsync(dir["data"], head, Assets.Resolver);
        var result = await Learner.TrainAsync(dir["data"], options, Assets.Resolver);

        Assert.Equal(1.0, alone.Validation!.Accuracy); // the colours separate on the pretrained trunk's features
        Assert.False(result.FineTuningKept);
        Assert.Equal(alone.Validation.Accuracy, result.Validation!.Accuracy);
        Assert.Equal(alone.Test!.Accuracy, result.Test!.Accuracy);
        using var pretrained = Backbone.LoadPretrained(BackboneRegistry.Get("mobilenet_v2"), Assets.Resolver);
        var trunk = result.Model.Backbone.Trunk.state_dict();
        foreach (var (name, weight) in pretrained.Trunk.state_dict())
            Assert.True(trunk[name].allclose(weight, rtol: 0, atol: 0), $"{name} is the pretrained weight again");
        Assert.Null(alone.FineTuningKept);
    }

    [Fact]
    public async Task Scratch_training_reports_files_it_could_not_read()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 4, classes: 2, size: 40);
        File.WriteAllText(dir["data/red/broken.jpg"], "not an image");
        var result = await Learner.TrainAsync(dir["data"], new TrainOptions
        {
            Strategy = Strategy.Scratch, ValidationSplit = 0, Fit = new FitOptions(Epochs: 1, BatchSize: 4), CacheRoot = dir["cache"],
        }, Assets.Resolver);
        Assert.EndsWith("broken.jpg", Assert.Single(result.Skipped).Path);
        Assert.Equal(8, result.Model.Config.Dataset!.TrainImages);
        Assert.Equal(Pooling.Flatten, result.Model.Config.Head.Pooling);
        Assert.Equal("small_cnn", result.Model.Config.Backbone);
    }

    /// <summary>Progress&lt;T&gt; posts to the thread pool; tests need the callback to run before the next step.</summary>
    sealed class SyncProgress<T>(Action<T> action) : IProgress<T>
    {
        public void Report(T value) => action(value);
    }

    /// <summary>
    /// Fine-tuning runs what stays frozen as inference: the trunk splits after the last node before the first trained
    /// layer that every later layer reaches only through it (a residual branch may not cross the cut).
    /// </summary>
    [Theory]
    [InlineData("mobilenet_v2_0.35", 96, 2, null, "block_15_add", "block_15_expand")]
    [InlineData("vgg16", 32, null, "block5_conv1", "block4_pool", "nope")]
    [InlineData("resnet50", 64, 1, null, "conv5_block2_out", "conv5_block2_1_conv")]
    [InlineData("inception_v3", 75, null, "mixed9", "mixed8", "mixed9_0")]
    public void The_frozen_part_splits_off_at_a_clean_cut(string backbone, int size, int? top, string? from, string expected, string notACut)
    {
        using var trunk = Networks.Build(backbone, size);
        Freezing.Apply(trunk, new UnfreezeSpec(TopBlocks: top, FromLayer: from));
        Assert.Equal(expected, Freezing.FrozenPrefixEnd(trunk));
        Assert.All(trunk.Through(expected).parameters(), p => Assert.False(p.requires_grad));

        using var scope = NewDisposeScope();
        using var _ = no_grad();
        trunk.eval();
        manual_seed(2);
        var images = randn(2, 3, size, size);
        var whole = trunk.forward(images);
        var split = trunk.From(expected).forward(trunk.Through(expected).forward(images));
        Assert.True((whole - split).abs().max().item<float>() < 1e-5);
        Assert.Throws<ArgumentException>(() => trunk.From(notACut)); // a residual or parallel branch crosses it
    }
}
