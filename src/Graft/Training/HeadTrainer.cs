using TorchSharp;
using static TorchSharp.torch;
using Graft.Heads;

namespace Graft.Training;

public enum OptimizerKind { Adam, Sgd, RmsProp }

public sealed record FitOptions(
    int Epochs = 30,
    int BatchSize = 32,
    double LearningRate = 1e-3,
    OptimizerKind Optimizer = OptimizerKind.Adam,
    int Seed = 42,
    int Patience = 5,
    double Momentum = 0.9);

/// <summary>One row of the training history (validation columns empty when there is no validation set).</summary>
public sealed record EpochRecord(int Epoch, double Loss, double Accuracy, double? ValLoss, double? ValAccuracy, double Seconds);

public sealed record EpochProgress(int Epoch, int Epochs, EpochRecord Record, double SamplesPerSecond);

public sealed record FitResult(IReadOnlyList<EpochRecord> History, int BestEpoch, bool StoppedEarly, double SamplesPerSecond)
{
    /// <summary>Why training stopped on a loss that was no longer finite (null: it did not); the best epoch's weights were kept.</summary>
    public string? Diverged { get; init; }
    /// <summary>Images live training could not read, in path order (they were left out).</summary>
    public IReadOnlyList<SkippedImage> Skipped { get; init; } = [];
}

/// <summary>Loss, accuracy and class probabilities of a classifier on a set of inputs.</summary>
public sealed record Scored(double Loss, double Accuracy, float[,] Probabilities);

/// <summary>
/// Trains a head on cached features: the fit loop over <see cref="FeatureBatches"/>, the chosen optimizer, and early
/// stopping on validation loss that restores the best epoch's weights.
/// </summary>
public static class HeadTrainer
{
    public static FitResult Fit(nn.Module<Tensor, Tensor> head, Tensor trainX, Tensor trainY, Tensor? valX, Tensor? valY,
        FitOptions options, IProgress<EpochProgress>? progress = null, CancellationToken cancel = default, float[]? classWeights = null)
    {
        using var source = new FeatureBatches(trainX, trainY, valX, valY, options.BatchSize, options.Seed);
        return FitLoop.Fit(head, [new ParameterGroup(head.parameters().ToList(), 1.0)], source, options,
            [new ProgressReports(new Callbacks(Epochs: progress)), new EarlyStopping(options.Patience), new Divergence()], classWeights, cancel);
    }

    /// <summary>Scores a classifier in inference mode; <paramref name="y"/> null when labels are unknown.</summary>
    public static Scored Score(nn.Module<Tensor, Tensor> model, Tensor x, Tensor? y, bool withProbabilities = true, int batchSize = 1024)
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
                correct += Objective.Predicted(logits).eq(labels).sum().item<long>();
            }
            if (withProbabilities)
            {
                var probs = Objective.Probabilities(logits);
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
public sealed class FeatureBatches : IBatchSource, IDisposable
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
