using Graft.Data;
using Graft.Engine;
using Graft.Evaluation;
using Graft.Models;
using Graft.Training;
using Graft.Imaging;
using Graft.Runtime;
using Graft.Heads;
using Graft.Inference;
using Graft.Weights;
using static TorchSharp.torch;

namespace Graft.Tests;

public class TrainingTests
{
    /// <summary>A stand-in trunk that counts the images it sees; features = per-channel means.</summary>
    sealed class CountingTrunk : ITrunkRunner
    {
        public int Images;
        public Device Device => CPU;
        public Tensor Features(Tensor images)
        {
            Images += (int)images.shape[0];
            return images.mean([2, 3]);
        }

        public void Dispose() { }
    }

    [Fact]
    public async Task Bottleneck_cache_hits_on_content_and_misses_on_change()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 3, size: 16);
        var files = Directory.GetFiles(dir["data"], "*.png", SearchOption.AllDirectories).Order().ToList();
        var spec = ImageSpec.Uniform(8, 0, 255);
        var cache = new FeatureCache(dir["cache"], "test-trunk", channels: 3);
        var trunk = new CountingTrunk();

        var first = await BottleneckFeatures.ExtractAsync(files, trunk, spec, 3, cache);
        Assert.Equal((6, 0, 6), (first.Stats.Computed, first.Stats.CacheHits, trunk.Images));

        var second = await BottleneckFeatures.ExtractAsync(files, trunk, spec, 3, cache);
        Assert.Equal((0, 6, 6), (second.Stats.Computed, second.Stats.CacheHits, trunk.Images));
        for (int i = 0; i < files.Count; i++) Assert.Equal(first.Rows[i], second.Rows[i]);

        // A moved file still hits (content key); an edited file misses.
        File.Move(files[0], files[0] + ".moved.png");
        files[0] += ".moved.png";
        TinyImages.WriteImage(files[1], SkiaSharp.SKColors.Yellow, 16, new Random(5));
        var third = await BottleneckFeatures.ExtractAsync(files, trunk, spec, 3, cache);
        Assert.Equal((1, 5, 7), (third.Stats.Computed, third.Stats.CacheHits, trunk.Images));

        // Another trunk configuration has its own folder.
        var otherTrunk = await BottleneckFeatures.ExtractAsync(files, trunk, spec, 3, new FeatureCache(dir["cache"], "other-trunk", 3));
        Assert.Equal(6, otherTrunk.Stats.Computed);
    }

    [Fact]
    public void Strategies_keep_their_names_in_json_flags_and_model_files()
    {
        Assert.Equal(["feature-extraction", "fine-tune", "scratch", "auto"], StrategyNames.All);
        // Checkpoint fingerprints hash the options' JSON: the names must be the ones earlier versions wrote.
        var json = System.Text.Json.JsonSerializer.Serialize(new TrainOptions { Strategy = Strategy.FineTune }, TrainableClassifier.Json);
        Assert.Contains("\"strategy\": \"fine-tune\"", json);
        Assert.Equal(Strategy.FineTune, System.Text.Json.JsonSerializer.Deserialize<TrainOptions>(json, TrainableClassifier.Json)!.Strategy);
        Assert.Equal(Strategy.Scratch, StrategyNames.Parse("scratch"));
        Assert.Contains("feature-extraction, fine-tune, scratch, auto", Assert.Throws<GraftException>(() => StrategyNames.Parse("Scratch")).Fix);
    }

    [Fact]
    public void Early_stopping_restores_the_best_epoch()
    {
        TorchRuntime.EnsureInitialized();
        manual_seed(3);
        // Few noisy samples and many epochs: validation loss turns up, so training must stop and roll back.
        using var x = randn(40, 8);
        using var y = (x[.., 0] > 0).to(int64);
        using var valX = randn(40, 8);
        using var valY = (valX[.., 0] + 0.8 * randn(40) > 0).to(int64);
        var head = new HeadConfig(8, 2, Hidden: 64, Dropout: 0).Build();
        var result = HeadTrainer.Fit(head, x, y, valX, valY, new FitOptions(Epochs: 200, BatchSize: 8, LearningRate: 0.05, Patience: 3));
        Assert.True(result.StoppedEarly);
        Assert.True(result.History.Count < 200);
        var best = result.History.Single(r => r.Epoch == result.BestEpoch);
        Assert.Equal(result.History.Min(r => r.ValLoss!.Value), best.ValLoss!.Value, 6);
        var now = HeadTrainer.Score(head, valX, valY);
        Assert.Equal(best.ValLoss!.Value, now.Loss, 4);
    }

    [Fact]
    public void A_lone_last_sample_does_not_poison_batch_norm()
    {
        // 17 samples in batches of 8: a last batch of one would give batch norm a variance of 0/0.
        TorchRuntime.EnsureInitialized();
        manual_seed(2);
        using var x = randn(17, 6);
        using var y = (x[.., 0] > 0).to(int64);
        var head = new HeadConfig(6, 2, Hidden: 8, Dropout: 0, BatchNorm: true).Build();
        HeadTrainer.Fit(head, x, y, null, null, new FitOptions(Epochs: 3, BatchSize: 8));
        Assert.All(head.state_dict().Values, t => Assert.False(t.isnan().any().item<bool>()));
        Assert.DoesNotContain(HeadTrainer.Score(head, x, y).Probabilities.Cast<float>(), float.IsNaN);
    }

    [Fact]
    public void Optimizers_all_learn_a_separable_problem()
    {
        TorchRuntime.EnsureInitialized();
        foreach (var kind in Enum.GetValues<OptimizerKind>())
        {
            manual_seed(1);
            using var x = randn(64, 4);
            using var y = (x[.., 1] > 0).to(int64);
            var head = new HeadConfig(4, 2, Dropout: 0).Build();
            double lr = kind == OptimizerKind.Sgd ? 0.1 : 0.01;
            var fit = HeadTrainer.Fit(head, x, y, null, null, new FitOptions(Epochs: 40, LearningRate: lr, Optimizer: kind));
            Assert.True(fit.History[^1].Accuracy > 0.9, $"{kind}: {fit.History[^1].Accuracy}");
            Assert.True(fit.History[^1].Loss < fit.History[0].Loss, kind.ToString());
        }
    }

    [Fact]
    public void Metrics_match_a_hand_count()
    {
        // truth:      a a a b b c
        // predicted:  a a b b c c
        float[,] p = { { .9f, .1f, 0 }, { .6f, .3f, .1f }, { .2f, .7f, .1f }, { 0, 1, 0 }, { .1f, .2f, .7f }, { 0, .4f, .6f } };
        var r = EvaluationResult.From(["1", "2", "3", "4", "5", "6"], p, [0, 0, 0, 1, 1, 2], ["a", "b", "c"]);
        Assert.Equal(4.0 / 6, r.Accuracy, 9);
        Assert.Equal([2, 1, 0], r.ConfusionMatrix[0]);
        Assert.Equal([0, 1, 1], r.ConfusionMatrix[1]);
        Assert.Equal(1.0, r.PerClass[0].Precision);
        Assert.Equal(2.0 / 3, r.PerClass[0].Recall, 9);
        Assert.Equal(0.5, r.PerClass[1].Precision);
        Assert.Equal(0.5, r.PerClass[2].Precision);
        Assert.Equal(1.0, r.PerClass[2].Recall);
        Assert.Equal(-(Math.Log(.9) + Math.Log(.6) + Math.Log(.2) + Math.Log(1) + Math.Log(.2) + Math.Log(.6)) / 6, r.Loss, 5);
        Assert.Equal(2, r.Items.Count(i => !i.Correct));
    }

    [Fact]
    public void Safetensors_round_trip_keeps_values_and_types()
    {
        TorchRuntime.EnsureInitialized();
        using var a = randn(3, 5);
        using var b = tensor(new long[] { 7, -2 });
        var bytes = Safetensors.Write(new Dictionary<string, Tensor> { ["w"] = a, ["n"] = b });
        Assert.Equal(0, (8 + (int)BitConverter.ToUInt64(bytes, 0)) % 8);
        var back = Safetensors.Read(bytes, "mem");
        Assert.True(back["w"].allclose(a, rtol: 0, atol: 0));
        Assert.Equal(ScalarType.Int64, back["n"].dtype);
        Assert.Equal([7L, -2], back["n"].data<long>().ToArray());
    }

    [Fact]
    public void Frozen_outputs_of_validation_images_are_computed_once()
    {
        Engine.TorchRuntime.EnsureInitialized();
        var trunk = new CountingTrunk();
        var outputs = new FrozenOutputs(trunk);
        using var scope = NewDisposeScope();
        var images = rand(3, 3, 4, 4);
        string[] paths = ["a.jpg", "b.jpg", "c.jpg"];
        var first = outputs.For(images, paths);
        var again = outputs.For(images, paths);
        Assert.Equal(3, trunk.Images); // the second epoch reused the first's outputs
        Assert.Equal(0f, (first - again).abs().max().item<float>());
        outputs.For(images, ["a.jpg", "b.jpg", "new.jpg"]); // one not seen: the batch runs
        Assert.Equal(6, trunk.Images);

        var tight = new FrozenOutputs(trunk, budgetBytes: 8); // 3 floats an image do not fit: nothing kept
        tight.For(images, paths);
        tight.For(images, paths);
        Assert.Equal(12, trunk.Images);
    }
}
