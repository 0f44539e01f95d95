using System.Diagnostics;
using Graft.Engine;
using Graft.Heads;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Graft.Training;

/// <summary>
/// One step's worth of an epoch: its number in the epoch, how many samples it holds, and its inputs and labels, made on
/// demand inside the step's dispose scope. <see cref="Tensors"/> is null for a batch that cannot be trained on (a lone
/// image, whose batch-norm variance would be 0/0): the loop counts it and moves on.
/// </summary>
internal sealed record TrainingBatch(int Index, int Count, Func<(Tensor Inputs, Tensor Labels)>? Tensors);

/// <summary>
/// What a fit trains and validates on: cached features (<see cref="FeatureBatches"/>) or live images
/// (<see cref="ImageBatches"/>). An epoch's order is a function of the seed and the epoch, so a run can resume mid-epoch.
/// </summary>
internal interface IBatchSource
{
    /// <summary>Training samples an epoch.</summary>
    int Count { get; }
    /// <summary>Training batches an epoch.</summary>
    int BatchesPerEpoch { get; }
    /// <summary>The training batches of <paramref name="epoch"/> (from 1), from batch <paramref name="firstBatch"/> on.</summary>
    IAsyncEnumerable<TrainingBatch> EpochAsync(int epoch, int firstBatch);
    /// <summary>Loss and accuracy on the validation samples, in inference mode; null when there are none.</summary>
    Task<(double Loss, double Accuracy)?> ValidateAsync(nn.Module<Tensor, Tensor> network);
}

/// <summary>
/// Behaviour the loop calls at fixed points, as Keras's callbacks and fastai's are: early stopping, checkpoints, progress,
/// schedules. A fit calls its callbacks in list order, so one that reads what another sets comes after it (a checkpoint
/// after early stopping). Override what is needed.
/// </summary>
internal abstract class FitCallback
{
    /// <summary>Before the first epoch (a resumed run restores its state here).</summary>
    public virtual void OnFitBegin(FitState state) { }
    /// <summary>Before a batch's forward pass, inside its dispose scope (seeds, learning rates).</summary>
    public virtual void OnBatchBegin(FitState state, TrainingBatch batch) { }
    /// <summary>After a batch, trained on or not; <see cref="TrainingProgress.NextBatch"/> already counts it.</summary>
    public virtual void OnBatchEnd(FitState state, TrainingBatch batch) { }
    /// <summary>After an epoch and its validation; <see cref="FitState.Progress"/> already points at the next epoch.</summary>
    public virtual void OnEpochEnd(FitState state, EpochRecord record) { }
    /// <summary>When the run stops on request, before the loop throws <see cref="TrainingStoppedException"/>.</summary>
    public virtual void OnStopped(FitState state) { }
    /// <summary>After the last epoch, an early stop or a divergence, before the result is made.</summary>
    public virtual void OnFitEnd(FitState state) { }
}

/// <summary>Where a fit stands: what the loop and its callbacks share.</summary>
internal sealed class FitState
{
    readonly Stopwatch _clock = Stopwatch.StartNew();
    Dictionary<string, Tensor>? _best, _averaged;

    internal FitState(nn.Module<Tensor, Tensor> network, OptimizerHelper optimizer, FitOptions options, IBatchSource source)
    {
        Network = network;
        Optimizer = optimizer;
        Options = options;
        Source = source;
        Epochs = options.Epochs;
        BaseRates = optimizer.ParamGroups.Select(g => g.LearningRate).ToArray();
    }

    public nn.Module<Tensor, Tensor> Network { get; }
    public OptimizerHelper Optimizer { get; }
    public FitOptions Options { get; }
    public IBatchSource Source { get; }
    /// <summary>The epochs the fit plans to run: the options' number, unless a callback shortens the plan (<see cref="TimeBudget"/>).</summary>
    public int Epochs { get; set; }
    /// <summary>Each parameter group's learning rate as created, before any schedule scales it.</summary>
    public IReadOnlyList<double> BaseRates { get; }
    /// <summary>Epoch, batch, the epoch's sums so far, history and best epoch: what a checkpoint saves.</summary>
    public TrainingProgress Progress { get; set; } = new("", 1, 0, 0, 0, 0, 0, [], 0, double.PositiveInfinity, 0);
    /// <summary>The best epoch's weights so far (null: none yet); the state owns them, and replacing them disposes the old ones.</summary>
    public Dictionary<string, Tensor>? Best
    {
        get => _best;
        set
        {
            if (!ReferenceEquals(_best, value)) Optimizers.Dispose(_best);
            _best = value;
        }
    }
    /// <summary>
    /// The moving average of the weights (<see cref="FitOptions.EmaDecay"/>; null: off, or no step yet); the state owns it.
    /// </summary>
    public Dictionary<string, Tensor>? Averaged
    {
        get => _averaged;
        set
        {
            if (!ReferenceEquals(_averaged, value)) Optimizers.Dispose(_averaged);
            _averaged = value;
        }
    }
    /// <summary>A copy of the weights an epoch is judged by: the moving average when there is one, else the network's.</summary>
    public Dictionary<string, Tensor> WeightsToKeep() => Averaged is { } averaged ? Optimizers.Snapshot(averaged) : Optimizers.Snapshot(Network);
    /// <summary>Why the fit stopped on a loss that was no longer finite (null: it did not).</summary>
    public string? Diverged { get; set; }
    /// <summary>Set by a callback to end the fit after this epoch (early stopping).</summary>
    public bool StopRequested { get; set; }
    /// <summary>Where a run stopped on request saved itself (null: nowhere); the exception names it.</summary>
    public string? SavedTo { get; set; }
    /// <summary>Samples trained on in this process (a resumed run counts from its resumption).</summary>
    public long Samples { get; internal set; }
    public double SamplesPerSecond => Samples / Math.Max(_clock.Elapsed.TotalSeconds, 1e-9);
}

/// <summary>
/// The training loop every fit runs (heads on cached features, fine-tuning and scratch on live images, the advisor's and
/// the audit's probes): epochs of mini-batches from an <see cref="IBatchSource"/>, one optimizer over parameter groups,
/// validation after each epoch, and <see cref="FitCallback"/>s for the rest. A loss that is not finite is never stepped
/// on: the fit stops there (<see cref="Divergence"/> says what is kept). Stopped on request, it finishes the batch it
/// is on, lets the callbacks save, and throws <see cref="TrainingStoppedException"/>.
/// </summary>
internal static class FitLoop
{
    public static async Task<FitResult> FitAsync(nn.Module<Tensor, Tensor> network, IReadOnlyList<ParameterGroup> groups, IBatchSource source,
        FitOptions options, IReadOnlyList<FitCallback> callbacks, float[]? classWeights = null, CancellationToken cancel = default)
    {
        using var optimizer = Optimizers.Create(groups, options);
        using var weights = classWeights is null ? null : tensor(classWeights, device: TorchDevices.Of(network));
        var state = new FitState(network, optimizer, options, source);
        try
        {
            foreach (var c in callbacks) c.OnFitBegin(state);
            bool stopped = false;
            while (state.Progress.Epoch <= state.Epochs && !stopped)
            {
                var clock = Stopwatch.StartNew();
                Freezing.SetTrainingMode(network, options.FreezeBatchNorm);
                await foreach (var batch in source.EpochAsync(state.Progress.Epoch, state.Progress.NextBatch))
                {
                    if (batch.Tensors is not null) Step(state, batch, weights, callbacks);
                    if (state.Diverged is not null) break;
                    state.Progress = state.Progress with { NextBatch = batch.Index + 1 };
                    foreach (var c in callbacks) c.OnBatchEnd(state, batch);
                    if (state.StopRequested) break; // a callback ends the fit mid-epoch (the learning-rate range test)
                    // The epoch's last batch is followed by its validation and checkpoint: a stop then waits for them.
                    stopped = cancel.IsCancellationRequested && batch.Index + 1 < source.BatchesPerEpoch;
                    if (stopped) break;
                }
                if (stopped || state.Diverged is not null || await EndEpochAsync(state, clock) is not { } record) break;
                foreach (var c in callbacks) c.OnEpochEnd(state, record);
                if (state.StopRequested) break;
                stopped = cancel.IsCancellationRequested;
            }
            if (stopped)
            {
                foreach (var c in callbacks) c.OnStopped(state);
                throw new TrainingStoppedException(state.SavedTo);
            }
            // The moving average is the fit's result, unless a callback keeps a best epoch's (of the average) instead.
            if (state.Averaged is { } averaged) network.load_state_dict(averaged);
            foreach (var c in callbacks) c.OnFitEnd(state);
            network.eval();
            var history = state.Progress.History;
            return new FitResult(history, state.Progress.BestEpoch, history.Count < state.Epochs, state.SamplesPerSecond)
            {
                Diverged = state.Diverged, PlannedEpochs = state.Epochs < options.Epochs ? (state.Epochs, options.Epochs) : null,
            };
        }
        finally
        {
            state.Best = null;
            state.Averaged = null;
        }
    }

    /// <summary>
    /// <see cref="FitAsync"/> for sources that never wait (cached features): it runs on the calling thread, where
    /// TorchSharp's per-thread state (grad mode, dispose scopes) stays put.
    /// </summary>
    public static FitResult Fit(nn.Module<Tensor, Tensor> network, IReadOnlyList<ParameterGroup> groups, IBatchSource source,
        FitOptions options, IReadOnlyList<FitCallback> callbacks, float[]? classWeights = null, CancellationToken cancel = default) =>
        FitAsync(network, groups, source, options, callbacks, classWeights, cancel).GetAwaiter().GetResult();

    /// <summary>
    /// One optimizer step on a batch, unless its loss is not finite (then the fit has diverged and the weights stay). The
    /// batch may be mixed (<see cref="BatchMixing"/>) and goes through the network in parts of at most
    /// <see cref="FitOptions.MicroBatch"/> samples, their gradients summed, each part's loss weighted by its share.
    /// </summary>
    static void Step(FitState state, TrainingBatch batch, Tensor? classWeights, IReadOnlyList<FitCallback> callbacks)
    {
        using var scope = NewDisposeScope();
        foreach (var c in callbacks) c.OnBatchBegin(state, batch);
        var (x, y) = batch.Tensors!();
        var o = state.Options;
        var mixed = BatchMixing.Mix(x, y, o, state.Progress.Epoch, batch.Index);
        state.Optimizer.zero_grad();
        long n = x.shape[0], part = Math.Max(1, o.MicroBatch ?? n);
        double lossSum = 0;
        long correct = 0;
        for (long start = 0; start < n; start += part)
        {
            using var partScope = NewDisposeScope();
            long count = Math.Min(part, n - start);
            var logits = state.Network.call(mixed.Inputs.narrow(0, start, count));
            var loss = mixed.Loss(logits, start, count, classWeights, o.LabelSmoothing);
            float value = loss.item<float>();
            if (!float.IsFinite(value))
            {
                state.Diverged = Divergence.Describe("training", value, state.Progress.Epoch);
                return;
            }
            (count == n ? loss : loss * ((double)count / n)).backward();
            lossSum += value * count;
            correct += Objective.Correct(logits, y.narrow(0, start, count));
        }
        state.Optimizer.step();
        if (o.EmaDecay > 0) Average(state, o.EmaDecay);
        var p = state.Progress;
        state.Progress = p with
        {
            LossSum = p.LossSum + lossSum,
            Correct = p.Correct + correct,
            Seen = p.Seen + batch.Count,
            Step = p.Step + 1,
        };
        state.Samples += batch.Count;
    }

    /// <summary>
    /// Moves the average of the weights towards the step's: average = d x average + (1 - d) x weights, with
    /// d = min(decay, (1 + steps) / (10 + steps)) as TensorFlow's moving average with a step count, so the starting
    /// weights fade fast; integer buffers are copied.
    /// </summary>
    static void Average(FitState state, double decay)
    {
        using var noGrad = no_grad();
        if (state.Averaged is not { } averaged)
        {
            // Made inside the step's dispose scope, the copies must outlive it.
            state.Averaged = Optimizers.Snapshot(state.Network).ToDictionary(kv => kv.Key, kv => kv.Value.DetachFromDisposeScope());
            return;
        }
        long steps = state.Progress.Step + 1;
        double d = Math.Min(decay, (1.0 + steps) / (10.0 + steps));
        foreach (var (name, weights) in state.Network.state_dict())
        {
            var average = averaged[name];
            if (average.is_floating_point()) average.mul_(d).add_(weights, alpha: 1 - d);
            else average.copy_(weights);
        }
    }

    /// <summary>Validates the network, or with a moving average of its weights the average (swapped in and out again).</summary>
    static async Task<(double Loss, double Accuracy)?> ValidateAsync(FitState state)
    {
        if (state.Averaged is not { } averaged) return await state.Source.ValidateAsync(state.Network);
        var live = Optimizers.Snapshot(state.Network);
        try
        {
            state.Network.load_state_dict(averaged);
            return await state.Source.ValidateAsync(state.Network);
        }
        finally
        {
            state.Network.load_state_dict(live);
            Optimizers.Dispose(live);
        }
    }

    /// <summary>Validates, records the epoch and moves the progress on to the next; null when the validation loss is not finite.</summary>
    static async Task<EpochRecord?> EndEpochAsync(FitState state, Stopwatch clock)
    {
        int epoch = state.Progress.Epoch;
        var validation = await ValidateAsync(state);
        if (validation is { Loss: var loss } && !double.IsFinite(loss))
        {
            state.Diverged = Divergence.Describe("validation", loss, epoch);
            return null;
        }
        var p = state.Progress;
        var record = new EpochRecord(epoch, p.LossSum / Math.Max(1, p.Seen), (double)p.Correct / Math.Max(1, p.Seen),
            validation?.Loss, validation?.Accuracy, clock.Elapsed.TotalSeconds);
        state.Progress = p with { Epoch = epoch + 1, NextBatch = 0, LossSum = 0, Correct = 0, Seen = 0, History = [.. p.History, record] };
        return record;
    }
}
