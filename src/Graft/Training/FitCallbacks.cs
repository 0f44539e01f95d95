using static TorchSharp.torch;

namespace Graft.Training;

/// <summary>
/// Keras's EarlyStopping with restore_best_weights: the epoch with the lowest validation loss (the training loss without
/// validation) is the best one, its weights (their moving average, when the fit keeps one) are kept, the fit ends after <paramref name="patience"/> epochs without a
/// better validation loss, and the best weights are restored at the end.
/// </summary>
internal sealed class EarlyStopping(int patience, double minDelta = 1e-6) : FitCallback
{
    public override void OnEpochEnd(FitState state, EpochRecord record)
    {
        double monitored = record.ValLoss ?? record.Loss;
        var p = state.Progress;
        if (monitored < p.BestLoss - minDelta)
        {
            state.Progress = p with { BestLoss = monitored, BestEpoch = record.Epoch, SinceBest = 0 };
            state.Best = state.WeightsToKeep();
        }
        else state.Progress = p with { SinceBest = p.SinceBest + 1 };
        // Without validation, patience has nothing to watch: the fit runs its epochs.
        if (record.ValLoss is not null && state.Progress.SinceBest >= patience) state.StopRequested = true;
    }

    public override void OnFitEnd(FitState state)
    {
        if (state.Best is { } best) state.Network.load_state_dict(best);
    }
}

/// <summary>
/// What happens when a loss stops being finite (the loop stops there, without a step on it): the best epoch so far is
/// kept, and without one it is an error naming the learning-rate option to lower.
/// </summary>
internal sealed class Divergence(string learningRateOption = "--lr") : FitCallback
{
    public static string Describe(string what, double value, int epoch) => $"the {what} loss became {value} in epoch {epoch}";

    public static string KeptBest(string reason, int bestEpoch) => $"{reason}: training stopped there and kept the weights of epoch {bestEpoch}";

    public static GraftException NothingToKeep(string reason, string learningRateOption) =>
        new($"Training diverged: {reason}, before any epoch ended with a finite loss; no model was written.",
            $"Lower the learning rate ({learningRateOption}), or check the data for damaged images.");

    public override void OnFitEnd(FitState state)
    {
        if (state.Diverged is not { } reason) return;
        if (state.Best is null) throw NothingToKeep(reason, learningRateOption);
        state.Diverged = KeptBest(reason, state.Progress.BestEpoch);
    }
}

/// <summary>
/// Seeds the random numbers before each batch from (seed, epoch, batch), so dropout masks do not depend on what ran
/// before: a resumed run draws the masks an uninterrupted one draws.
/// </summary>
internal sealed class ReproducibleDropout(int seed) : FitCallback
{
    public override void OnBatchBegin(FitState state, TrainingBatch batch) =>
        manual_seed(seed * 7919L + state.Progress.Epoch * 104_729L + batch.Index);
}

/// <summary>Scales each parameter group's learning rate by the schedule at every step (<see cref="Schedules"/>).</summary>
internal sealed class LearningRateScheduler(LrSchedule schedule) : FitCallback
{
    public override void OnBatchBegin(FitState state, TrainingBatch batch)
    {
        long totalSteps = (long)state.Source.BatchesPerEpoch * state.Epochs;
        long warmup = (long)Math.Round(state.Options.WarmupEpochs * state.Source.BatchesPerEpoch);
        double multiplier = Schedules.Multiplier(schedule, state.Progress.Step, totalSteps, warmup);
        foreach (var (group, rate) in state.Optimizer.ParamGroups.Zip(state.BaseRates)) group.LearningRate = rate * multiplier;
    }
}

/// <summary>Reports each batch (images done of the epoch's) and each epoch to the run's <see cref="Callbacks"/>.</summary>
internal sealed class ProgressReports(Callbacks callbacks) : FitCallback
{
    public override void OnBatchEnd(FitState state, TrainingBatch batch)
    {
        int count = state.Source.Count;
        callbacks.Images?.Report(new ImageProgress($"epoch {state.Progress.Epoch}/{state.Epochs}",
            (int)Math.Min(count, (batch.Index + 1) * (long)state.Options.BatchSize), count, state.SamplesPerSecond));
    }

    public override void OnEpochEnd(FitState state, EpochRecord record) =>
        callbacks.Epochs?.Report(new EpochProgress(record.Epoch, state.Epochs, record, state.SamplesPerSecond));
}

/// <summary>
/// Fits the epochs into the time left before <paramref name="deadline"/> (UTC): after each epoch, the plan is cut to the
/// epochs that fit at the slowest epoch's pace so far (never below the epochs run), and the learning-rate schedule,
/// which reads the plan, is compressed to end there. Comes first, so the other callbacks see the plan it leaves.
/// </summary>
internal sealed class TimeBudget(DateTime deadline, Func<DateTime>? clock = null) : FitCallback
{
    readonly Func<DateTime> _now = clock ?? (() => DateTime.UtcNow);
    DateTime _last;
    double _slowest;

    public override void OnFitBegin(FitState state) => _last = _now();

    public override void OnEpochEnd(FitState state, EpochRecord record)
    {
        var now = _now();
        _slowest = Math.Max(_slowest, (now - _last).TotalSeconds);
        _last = now;
        double left = Math.Max(0, (deadline - now).TotalSeconds);
        long fit = _slowest > 0 ? (long)Math.Floor(left / _slowest) : int.MaxValue;
        state.Epochs = (int)Math.Min(state.Epochs, record.Epoch + fit);
    }
}
