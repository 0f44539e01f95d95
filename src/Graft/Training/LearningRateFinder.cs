using System.ComponentModel;
using static TorchSharp.torch;

namespace Graft.Training;

/// <summary>
/// A learning-rate range test (Smith; fastai's <c>lr_find</c>): the rate grows exponentially from <see cref="Start"/> to
/// <see cref="End"/> over the steps, and the smoothed training loss is recorded at each; the suggestion is in the longest
/// stretch where the loss keeps falling (fastai's "valley").
/// </summary>
/// <param name="Phase">What was trained: "head" (on cached features) or "fine-tune"/"scratch" (on live images).</param>
/// <param name="Rates">The learning rate of each step.</param>
/// <param name="Losses">The training loss after each step, smoothed (exponential average, bias-corrected).</param>
/// <param name="Suggested">The suggested learning rate.</param>
public sealed record LearningRateSearch(string Phase, IReadOnlyList<double> Rates, IReadOnlyList<double> Losses, double Suggested)
{
    /// <summary>The first rate tried.</summary>
    public const double Start = 1e-7;
    /// <summary>The last rate tried, unless the loss blew up before.</summary>
    public const double End = 10;
    /// <summary>Steps of the test (fewer when the loss blows up).</summary>
    public const int Steps = 100;
}

/// <summary>Runs the range test on a network and its batches, then puts the network's weights back as they were.</summary>
internal static class LearningRateFinder
{
    public static async Task<LearningRateSearch> FindAsync(string phase, nn.Module<Tensor, Tensor> network, IReadOnlyList<ParameterGroup> groups,
        IBatchSource source, FitOptions options, CancellationToken cancel = default)
    {
        var before = Optimizers.Snapshot(network);
        try
        {
            var test = new RangeTest();
            int epochs = (LearningRateSearch.Steps + source.BatchesPerEpoch - 1) / Math.Max(1, source.BatchesPerEpoch);
            // The rate the groups are built with is 1: the test sets each group's rate (times its multiplier) itself.
            await FitLoop.FitAsync(network, groups, source, options with { Epochs = epochs, LearningRate = 1, WarmupEpochs = 0 }, [test], cancel: cancel);
            return new LearningRateSearch(phase, test.Rates, test.Losses, Valley(test.Rates, test.Losses));
        }
        finally
        {
            network.load_state_dict(before);
            Optimizers.Dispose(before);
        }
    }

    /// <summary>Sets the rate of each step and records the smoothed loss; stops at the last step or when the loss has blown up.</summary>
    sealed class RangeTest : FitCallback
    {
        const double Smoothing = 0.98;
        public readonly List<double> Rates = [], Losses = [];
        double _average, _best = double.PositiveInfinity, _lossSumBefore;
        long _seenBefore;

        static double RateAt(long step) =>
            LearningRateSearch.Start * Math.Pow(LearningRateSearch.End / LearningRateSearch.Start, step / (double)(LearningRateSearch.Steps - 1));

        public override void OnBatchBegin(FitState state, TrainingBatch batch)
        {
            double rate = RateAt(state.Progress.Step);
            foreach (var (group, multiplier) in state.Optimizer.ParamGroups.Zip(state.BaseRates)) group.LearningRate = rate * multiplier;
            (_lossSumBefore, _seenBefore) = (state.Progress.LossSum, state.Progress.Seen);
        }

        public override void OnBatchEnd(FitState state, TrainingBatch batch)
        {
            var p = state.Progress;
            if (p.Seen == _seenBefore) return; // a batch that was not trained on
            double loss = (p.LossSum - _lossSumBefore) / (p.Seen - _seenBefore);
            _average = Smoothing * _average + (1 - Smoothing) * loss;
            double smoothed = _average / (1 - Math.Pow(Smoothing, Rates.Count + 1));
            Rates.Add(RateAt(p.Step - 1));
            Losses.Add(smoothed);
            _best = Math.Min(_best, smoothed);
            if (Rates.Count >= LearningRateSearch.Steps || smoothed > 4 * _best || !double.IsFinite(smoothed)) state.StopRequested = true;
        }
    }

    /// <summary>
    /// fastai's "valley": the longest run of steps over which the loss keeps falling (a longest decreasing subsequence),
    /// and a rate two thirds of the way down it, where the loss falls fastest and is still stable.
    /// </summary>
    internal static double Valley(IReadOnlyList<double> rates, IReadOnlyList<double> losses)
    {
        int n = losses.Count;
        if (n == 0) return 1e-3;
        var run = Enumerable.Repeat(1, n).ToArray();
        int start = 0, end = 0;
        for (int i = 1; i < n; i++)
            for (int j = 0; j < i; j++)
            {
                if (losses[i] < losses[j] && run[i] < run[j] + 1) run[i] = run[j] + 1;
                if (run[end] < run[i]) (end, start) = (i, i - run[i]);
            }
        double third = (end - start) / 3.0;
        return rates[Math.Clamp(start + (int)third + (int)(third / 2), 0, n - 1)];
    }
}
