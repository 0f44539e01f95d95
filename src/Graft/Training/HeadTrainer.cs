using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using TorchSharp;
using static TorchSharp.torch;
using Graft.Heads;

namespace Graft.Training;

/// <summary>The optimizers: Keras's Adam, SGD with momentum, RMSprop (Keras's rho and epsilon), and AdamW (decoupled weight decay).</summary>
public enum OptimizerKind { Adam, Sgd, RmsProp, AdamW }

/// <summary>
/// How one phase trains: epochs, batch, optimizer and learning rate, seed and early-stopping patience, and the
/// regularisers of deep fine-tuning (all off by default, so a head on cached features trains as it always has).
/// </summary>
public sealed record FitOptions(
    [property: Description("Most epochs to train (early stopping may end sooner)."), Range(1, int.MaxValue)] int Epochs = 30,
    [property: Description("Images per batch."), Range(1, int.MaxValue)] int BatchSize = 32,
    [property: Description("The learning rate."), Range(0, 10, MinimumIsExclusive = true, MaximumIsExclusive = true)] double LearningRate = 1e-3,
    [property: Description("adam, sgd (with momentum), rmsprop or adamw (decoupled weight decay).")] OptimizerKind Optimizer = OptimizerKind.Adam,
    [property: Description("Seed for the split, initialisation and batch order.")] int Seed = 42,
    [property: Description("Stop after this many epochs without a better validation loss."), Range(1, int.MaxValue)] int Patience = 5,
    [property: Description("Momentum of sgd and rmsprop.")] double Momentum = 0.9)
{
    /// <summary>Weight decay: decoupled from the gradient with AdamW (its usual 0.01-0.05), an L2 term with the others.</summary>
    [Description("Weight decay (decoupled with adamw).")]
    [Range(0, 1)]
    public double WeightDecay { get; init; }
    /// <summary>Epochs over which the learning rate rises linearly from nearly 0 before its schedule starts (0: none).</summary>
    [Description("Epochs of linear learning-rate warm-up before the schedule.")]
    [Range(0, 1000)]
    public double WarmupEpochs { get; init; }
    /// <summary>
    /// Label smoothing of the cross-entropy: the target puts this share on the other classes (0: none); for sigmoid outputs
    /// (binary and multi-label heads) each target moves this share towards 0.5.
    /// </summary>
    [Description("Label smoothing of the cross-entropy.")]
    [Range(0, 1, MaximumIsExclusive = true)]
    public double LabelSmoothing { get; init; }
    /// <summary>MixUp's Beta(a, a) parameter: each batch is blended with a shuffled copy of itself, and so are its targets (multi-hot ones too) (0: off).</summary>
    [Description("MixUp: blend each batch with a shuffled copy of itself; the Beta distribution's parameter (0: off).")]
    [Range(0, 100)]
    public double MixUp { get; init; }
    /// <summary>CutMix's Beta(a, a) parameter: a box of a shuffled copy is pasted into each image, targets mixed by area (0: off; with MixUp, each batch takes one of the two).</summary>
    [Description("CutMix: paste a box of another image into each; the Beta distribution's parameter (0: off).")]
    [Range(0, 100)]
    public double CutMix { get; init; }
    /// <summary>
    /// Every batch-norm layer runs in inference mode, its moving statistics kept, also where its scale and offset train
    /// (Keras's rule for fine-tuning); otherwise only frozen ones do and trained ones take batch statistics.
    /// </summary>
    [Description("Keep every batch-norm layer of the trunk in inference mode (its moving statistics), trained or not.")]
    public bool FreezeBatchNorm { get; init; }
    /// <summary>
    /// The most samples that go through the network at once: a larger batch is split and its gradients accumulated
    /// before one step, so memory stays bounded at any batch size (exact when batch norm is frozen). Null: the whole batch.
    /// </summary>
    [Description("The most images that go through the network at once: larger batches accumulate gradients over parts (bounded memory).")]
    [Range(1, int.MaxValue)]
    public int? MicroBatch { get; init; }
    /// <summary>
    /// Decay per step of an exponential moving average of the weights (timm's model EMA), which validation, the kept best
    /// epoch and the model use instead of the last step's weights; early steps average faster (0: off).
    /// </summary>
    [Description("Keep an exponential moving average of the weights with this decay per step, and use it (0: off).")]
    [Range(0, 1, MaximumIsExclusive = true)]
    public double EmaDecay { get; init; }
}

/// <summary>
/// One row of the training history (validation columns empty when there is no validation set). On multi-label data the
/// accuracy is the exact-match share: images whose every label is decided right at probability 0.5.
/// </summary>
public sealed record EpochRecord(int Epoch, double Loss, double Accuracy, double? ValLoss, double? ValAccuracy, double Seconds);

public sealed record EpochProgress(int Epoch, int Epochs, EpochRecord Record, double SamplesPerSecond);

public sealed record FitResult(IReadOnlyList<EpochRecord> History, int BestEpoch, bool StoppedEarly, double SamplesPerSecond)
{
    /// <summary>Why training stopped on a loss that was no longer finite (null: it did not); the best epoch's weights were kept.</summary>
    public string? Diverged { get; init; }
    /// <summary>Images live training could not read, in path order (they were left out).</summary>
    public IReadOnlyList<SkippedImage> Skipped { get; init; } = [];
    /// <summary>Where a time budget cut the plan: the epochs it left room for, of those asked (null: no cut).</summary>
    public (int Run, int Asked)? PlannedEpochs { get; init; }
}

/// <summary>Loss, accuracy and class probabilities of a classifier on a set of inputs.</summary>
internal sealed record Scored(double Loss, double Accuracy, float[,] Probabilities);

/// <summary>
/// Trains a head on cached features: the fit loop over <see cref="FeatureBatches"/>, the chosen optimizer, and early
/// stopping on validation loss that restores the best epoch's weights.
/// </summary>
internal static class HeadTrainer
{
    public static FitResult Fit(nn.Module<Tensor, Tensor> head, Tensor trainX, Tensor trainY, Tensor? valX, Tensor? valY,
        FitOptions options, IProgress<EpochProgress>? progress = null, CancellationToken cancel = default, float[]? classWeights = null)
    {
        using var source = new FeatureBatches(trainX, trainY, valX, valY, options.BatchSize, options.Seed);
        return FitLoop.Fit(head, [new ParameterGroup(head.parameters().ToList(), 1.0)], source, options,
            [new ProgressReports(new Callbacks(Epochs: progress)), new EarlyStopping(options.Patience), new Divergence()], classWeights, cancel);
    }

    /// <summary>The learning-rate range test of a head on cached features (<see cref="LearningRateFinder"/>); the head is left as it was.</summary>
    public static LearningRateSearch FindLearningRate(nn.Module<Tensor, Tensor> head, Tensor trainX, Tensor trainY, FitOptions options,
        CancellationToken cancel = default)
    {
        using var source = new FeatureBatches(trainX, trainY, null, null, options.BatchSize, options.Seed);
        return LearningRateFinder.FindAsync("head", head, [new ParameterGroup(head.parameters().ToList(), 1.0)], source, options, cancel)
            .GetAwaiter().GetResult();
    }

    /// <summary>
    /// Scores a classifier in inference mode; <paramref name="y"/> null when labels are unknown (class indices, or
    /// multi-hot rows for a <paramref name="multiLabel"/> head, whose probabilities are each output's sigmoid).
    /// </summary>
    public static Scored Score(nn.Module<Tensor, Tensor> model, Tensor x, Tensor? y, bool withProbabilities = true, int batchSize = 1024,
        bool multiLabel = false)
    {
        model.eval();
        using var _ = no_grad();
        double lossSum = 0; long correct = 0;
        long n = x.shape[0];
        float[,]? probabilities = null;
        for (long start = 0; start < n; start += batchSize)
        {
            using var scope = NewDisposeScope();
            long count = Math.Min(batchSize, n - start);
            var logits = model.forward(x.narrow(0, start, count));
            if (y is not null)
            {
                var labels = y.narrow(0, start, count);
                lossSum += Objective.Loss(logits, labels).item<float>() * count;
                correct += Objective.Correct(logits, labels);
            }
            if (withProbabilities)
            {
                var probs = Objective.Probabilities(logits, multiLabel);
                var p = probs.cpu().data<float>().ToArray();
                int classes = (int)probs.shape[1];
                probabilities ??= new float[n, classes];
                for (int i = 0; i < count; i++)
                    for (int c = 0; c < classes; c++) probabilities[start + i, c] = p[i * classes + c];
            }
        }
        return new Scored(n == 0 ? 0 : lossSum / n, n == 0 ? 0 : (double)correct / n, probabilities ?? new float[0, 0]);
    }
}

/// <summary>
/// Cached features in memory as a batch source: each epoch a permutation drawn from one seeded generator (as
/// <c>torch.randperm</c> draws it), in batches whose lone last sample joins the batch before it (batch norm cannot take
/// statistics of one). The order depends on the epochs drawn before, so a fit on it does not resume mid-run.
/// </summary>
internal sealed class FeatureBatches : IBatchSource, IDisposable
{
    readonly Tensor _x, _y;
    readonly Tensor? _valX, _valY;
    readonly long[] _sizes;
    readonly Generator _generator;

    public FeatureBatches(Tensor x, Tensor y, Tensor? valX, Tensor? valY, int batchSize, int seed)
    {
        (_x, _y) = (x, y);
        (_valX, _valY) = valX is not null && valY is not null && valX.shape[0] > 0 ? (valX, valY) : (null, null);
        var sizes = new List<long>();
        for (long start = 0, n = x.shape[0], count; start < n; start += count)
            sizes.Add(count = n - start <= batchSize + 1 ? n - start : batchSize);
        _sizes = [.. sizes];
        _generator = new Generator().manual_seed(seed);
    }

    public int Count => (int)_x.shape[0];
    public int BatchesPerEpoch => _sizes.Length;

    public IAsyncEnumerable<TrainingBatch> EpochAsync(int epoch, int firstBatch) => Batches(firstBatch).ToAsyncEnumerable();

    IEnumerable<TrainingBatch> Batches(int firstBatch)
    {
        // Drawn by the seeded host generator, so the order is the same on every device; then moved to the features.
        using var drawn = randperm(_x.shape[0], generator: _generator, device: CPU);
        using var order = drawn.to(_x.device);
        long start = 0;
        for (int index = 0; index < _sizes.Length; start += _sizes[index++])
        {
            if (index < firstBatch) continue;
            var (from, count) = (start, _sizes[index]);
            yield return new TrainingBatch(index, (int)count, () =>
            {
                var rows = order.narrow(0, from, count);
                return (_x.index_select(0, rows), _y.index_select(0, rows));
            });
        }
    }

    public Task<(double Loss, double Accuracy)?> ValidateAsync(nn.Module<Tensor, Tensor> network)
    {
        if (_valX is null || _valY is null) return Task.FromResult<(double, double)?>(null);
        var scored = HeadTrainer.Score(network, _valX, _valY, withProbabilities: false);
        return Task.FromResult<(double, double)?>((scored.Loss, scored.Accuracy));
    }

    public void Dispose() => _generator.Dispose();
}
