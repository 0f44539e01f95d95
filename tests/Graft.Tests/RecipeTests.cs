using Graft.Engine;
using Graft.Heads;
using Graft.Imaging;
using Graft.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Graft.Tests;

/// <summary>The parts of the fine-tuning recipes: each does what it says, and nothing changes when it is off.</summary>
public class RecipeTests
{
    [Fact]
    public void Warm_up_rises_linearly_then_the_schedule_spans_the_steps_after_it()
    {
        const long total = 110, warmup = 10;
        var rates = Enumerable.Range(0, (int)total).Select(s => Schedules.Multiplier(LrSchedule.Cosine, s, total, warmup)).ToList();
        Assert.All(Enumerable.Range(1, (int)warmup), s => Assert.True(rates[s] > rates[s - 1]));
        Assert.Equal(1.0 / 11, rates[0], 9);
        Assert.Equal(1.0, rates[(int)warmup], 9); // the cosine starts at its top after the warm-up...
        Assert.Equal(0.0, rates[^1], 9);          // ...and ends at 0 on the last step
        Assert.Equal(Schedules.Multiplier(LrSchedule.Cosine, 50, 100), Schedules.Multiplier(LrSchedule.Cosine, 50, 100, 0));
    }

    [Fact]
    public void Label_smoothing_moves_the_target_towards_uniform_and_zero_smoothing_is_the_plain_loss()
    {
        TorchRuntime.EnsureInitialized();
        using var logits = tensor(new float[] { 4, 0, 0, 0, 3, 1 }, [2, 3]);
        using var labels = tensor(new long[] { 0, 1 });
        using var plain = Objective.Loss(logits, labels);
        using var none = Objective.Loss(logits, labels, labelSmoothing: 0);
        using var smoothed = Objective.Loss(logits, labels, labelSmoothing: 0.3);
        Assert.Equal(plain.item<float>(), none.item<float>());
        // By hand: (1 - s) * CE(true class) + s * mean over classes of CE(class).
        using var logp = nn.functional.log_softmax(logits, 1);
        var l = logp.data<float>().ToArray();
        double expected = (0.7 * -l[0] + 0.3 * -(l[0] + l[1] + l[2]) / 3 + 0.7 * -l[4] + 0.3 * -(l[3] + l[4] + l[5]) / 3) / 2;
        Assert.Equal(expected, smoothed.item<float>(), 5);
    }

    [Fact]
    public void MixUp_and_CutMix_mix_inputs_and_targets_by_the_same_share_and_repeat_for_the_same_batch()
    {
        TorchRuntime.EnsureInitialized();
        manual_seed(3);
        using var x = rand(8, 3, 16, 16);
        using var y = tensor(Enumerable.Range(0, 8).Select(i => (long)(i % 4)).ToArray());
        foreach (var options in new[] { new FitOptions { MixUp = 0.4 }, new FitOptions { CutMix = 1.0 } })
        {
            var a = BatchMixing.Mix(x, y, options, epoch: 2, batch: 5);
            var b = BatchMixing.Mix(x, y, options, epoch: 2, batch: 5);
            Assert.True(a.Inputs.allclose(b.Inputs), "the same (seed, epoch, batch) mixes the same way");
            Assert.False(a.Inputs.allclose(x), "the batch was mixed");
            // The loss against one-hot logits of the own and the partner's class splits by the share the input got.
            using var own = nn.functional.one_hot(y, 4).to(ScalarType.Float32) * 50;
            using var loss = a.Loss(own, 0, 8, null, 0);
            Assert.InRange(loss.item<float>(), 0, 50 * 1.0001);
        }
        var off = BatchMixing.Mix(x, y, new FitOptions(), 1, 0);
        Assert.Same(x, off.Inputs);
    }

    [Fact]
    public void Accumulating_gradients_over_parts_steps_as_the_whole_batch_does()
    {
        TorchRuntime.EnsureInitialized();
        Tensor[] Train(int? microBatch)
        {
            manual_seed(11);
            using var net = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3));
            manual_seed(12);
            using var x = randn(16, 6);
            using var y = randint(0, 3, [16]);
            using var source = new FeatureBatches(x, y, null, null, batchSize: 16, seed: 1);
            var options = new FitOptions(Epochs: 3, BatchSize: 16, LearningRate: 0.05, Optimizer: OptimizerKind.AdamW) { WeightDecay = 0.01, MicroBatch = microBatch };
            FitLoop.Fit(net, [new ParameterGroup([.. net.parameters()], 1.0)], source, options, []);
            return [.. net.parameters().Select(p => p.detach().clone())];
        }
        var whole = Train(null);
        var parts = Train(5); // 5 + 5 + 5 + 1
        foreach (var (a, b) in whole.Zip(parts)) Assert.True(a.allclose(b, rtol: 1e-4, atol: 1e-6), "accumulated gradients step as the whole batch's");
    }

    /// <summary>Records the network's weights after every step.</summary>
    sealed class WeightLog : FitCallback
    {
        public readonly List<Tensor[]> Steps = [];
        public override void OnBatchEnd(FitState state, TrainingBatch batch) => Steps.Add([.. state.Network.parameters().Select(p => p.detach().clone())]);
    }

    [Fact]
    public void A_moving_average_of_the_weights_is_validated_and_kept()
    {
        TorchRuntime.EnsureInitialized();
        manual_seed(5);
        using var net = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3));
        using var x = randn(24, 6);
        using var y = randint(0, 3, [24]);
        using var valX = randn(10, 6);
        using var valY = randint(0, 3, [10]);
        using var source = new FeatureBatches(x, y, valX, valY, batchSize: 8, seed: 1);
        var log = new WeightLog();
        const double decay = 0.9;
        var options = new FitOptions(Epochs: 3, BatchSize: 8, LearningRate: 0.1, Optimizer: OptimizerKind.Sgd) { EmaDecay = decay };
        var fit = FitLoop.Fit(net, [new ParameterGroup([.. net.parameters()], 1.0)], source, options, [log]);

        // The average, step by step: the first step's weights, then d = min(decay, (1 + t) / (10 + t)) after step t.
        Assert.Equal(9, log.Steps.Count);
        var expected = log.Steps[0].Select(t => t.clone()).ToArray();
        for (int t = 2; t <= log.Steps.Count; t++)
        {
            double d = Math.Min(decay, (1.0 + t) / (10.0 + t));
            for (int k = 0; k < expected.Length; k++) expected[k] = expected[k] * d + log.Steps[t - 1][k] * (1 - d);
        }
        var kept = net.parameters().ToArray();
        for (int k = 0; k < kept.Length; k++)
        {
            Assert.True(kept[k].allclose(expected[k], rtol: 1e-5, atol: 1e-6), $"parameter {k} is the moving average");
            Assert.False(kept[k].allclose(log.Steps[^1][k], rtol: 0, atol: 1e-6), $"parameter {k} is not the last step's");
        }
        // The last epoch was validated with the average: its validation loss is the kept weights'.
        using (no_grad())
        {
            using var loss = nn.functional.cross_entropy(net.call(valX), valY);
            Assert.Equal(loss.item<float>(), fit.History[^1].ValLoss!.Value, 5);
        }
    }

    /// <summary>Records each step's learning rate (of the first group) after the schedule has set it.</summary>
    sealed class RateLog : FitCallback
    {
        public readonly List<(int Epoch, double Rate)> Steps = [];
        public override void OnBatchBegin(FitState state, TrainingBatch batch) => Steps.Add((state.Progress.Epoch, state.Optimizer.ParamGroups.First().LearningRate));
    }

    [Fact]
    public void A_time_budget_plans_the_epochs_that_fit_and_ends_the_schedule_there()
    {
        TorchRuntime.EnsureInitialized();
        manual_seed(3);
        using var net = nn.Sequential(nn.Linear(4, 3));
        using var x = randn(32, 4);
        using var y = randint(0, 3, [32]);
        using var source = new FeatureBatches(x, y, null, null, batchSize: 8, seed: 1);
        // A fake clock that advances a fixed step per call; the deadline leaves room for three of the ten epochs.
        var start = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        int ticks = 0;
        var budget = new TimeBudget(start.AddSeconds(35), () => start.AddSeconds(10 * ticks++));
        var rates = new RateLog();
        var options = new FitOptions(Epochs: 10, BatchSize: 8, LearningRate: 0.1, Optimizer: OptimizerKind.Sgd);
        var fit = FitLoop.Fit(net, [new ParameterGroup([.. net.parameters()], 1.0)], source, options,
            [budget, new LearningRateScheduler(LrSchedule.Cosine), rates]);
        Assert.Equal(3, fit.History.Count);
        Assert.Equal((3, 10), fit.PlannedEpochs);
        // The cosine schedule was compressed: the last step runs near the end of the curve, not a third of the way along it.
        Assert.True(rates.Steps[^1].Rate < 0.01, $"last rate {rates.Steps[^1].Rate}");
        Assert.True(rates.Steps[0].Rate > 0.09);

        // A budget with room for every epoch changes nothing.
        ticks = 0;
        using var source2 = new FeatureBatches(x, y, null, null, batchSize: 8, seed: 1);
        var roomy = FitLoop.Fit(net, [new ParameterGroup([.. net.parameters()], 1.0)], source2, options with { Epochs = 4 },
            [new TimeBudget(start.AddHours(1), () => start.AddSeconds(10 * ticks++))]);
        Assert.Equal(4, roomy.History.Count);
        Assert.Null(roomy.PlannedEpochs);
    }

    [Fact]
    public void Recipes_resolve_with_the_run_and_every_override_wins()
    {
        var options = new TrainOptions { Strategy = Strategy.FineTune, Fit = new FitOptions(Seed: 7) };
        Assert.Equal(Recipes.Default.Name, options.Recipe);
        Assert.Equal(7, options.FineTuneOrDefault.Seed);
        Assert.Equal(Recipes.Default.Unfreeze, options.UnfreezeOrDefault);
        Assert.Equal(Recipes.Default.Schedule, options.ScheduleOrDefault);
        Assert.Equal(Recipes.Default.Augmentation, options.AugmentationOrDefault);

        var top = options with { Recipe = Recipes.TopBlocks.Name, Schedule = LrSchedule.Step, Unfreeze = new UnfreezeSpec(TopBlocks: 3) };
        Assert.Equal(OptimizerKind.Sgd, top.FineTuneOrDefault.Optimizer);
        Assert.Equal(LrSchedule.Step, top.ScheduleOrDefault);
        Assert.Equal(3, top.UnfreezeOrDefault.TopBlocks);
        Assert.Equal(LrSchedule.Constant, (options with { Strategy = Strategy.Scratch }).ScheduleOrDefault);
        Assert.Equal(Augmentation.KerasBlog, (options with { Strategy = Strategy.Scratch }).AugmentationOrDefault);
        Assert.Throws<GraftException>(() => (options with { Recipe = "no-such" }).RecipeOrDefault);
    }

    [Fact]
    public void Unfreezing_all_trains_every_layer_and_frozen_batch_norm_keeps_its_statistics()
    {
        TorchRuntime.EnsureInitialized();
        var config = Graft.Backbones.BackboneRegistry.Get("mobilenet_v2_0.35");
        using var backbone = Graft.Backbones.Backbone.Create(config, new(32), config.Spec(32));
        var trunk = backbone.Trunk;
        var blocks = Freezing.Apply(trunk, new UnfreezeSpec(All: true));
        Assert.All(trunk.parameters(), p => Assert.True(p.requires_grad));
        Assert.Equal(trunk.Blocks.Count, blocks.Count);
        var norms = trunk.modules().OfType<Graft.Backbones.Layers.BatchNormalization>().ToList();
        Assert.NotEmpty(norms);
        Freezing.SetTrainingMode(trunk, freezeTrunkBatchNorm: true);
        Assert.All(norms, n => Assert.False(n.training));
        Freezing.SetTrainingMode(trunk);
        Assert.All(norms, n => Assert.True(n.training));
        Assert.Equal("--unfreeze all", new UnfreezeSpec(All: true).ToArguments());
    }
}
