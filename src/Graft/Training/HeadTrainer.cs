using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;
using Graft.Heads;

namespace Graft.Training;

public enum OptimizerKind { Adam, Sgd, RmsProp }

public sealed record FitOptions(
    [property: Description("Most epochs to train (early stopping may end sooner)."), Range(1, int.MaxValue)] int Epochs = 30,
    [property: Description("Images per batch."), Range(1, int.MaxValue)] int BatchSize = 32,
    [property: Description("The learning rate."), Range(0, 10, MinimumIsExclusive = true, MaximumIsExclusive = true)] double LearningRate = 1e-3,
    [property: Description("adam, sgd (with momentum) or rmsprop.")] OptimizerKind Optimizer = OptimizerKind.Adam,
    [property: Description("Seed for the split, initialisation and batch order.")] int Seed = 42,
    [property: Description("Stop after this many epochs without a better validation loss."), Range(1, int.MaxValue)] int Patience = 5,
    [property: Description("Momentum of sgd and rmsprop.")] double Momentum = 0.9);

/// <summary>One row of the training history (validation columns empty when there is no validation set).</summary>
public sealed record EpochRecord(int Epoch, double Loss, double Accuracy, double? ValLoss, double? ValAccuracy, double Seconds);

public sealed record EpochProgress(int Epoch, int Epochs, EpochRecord Record, double SamplesPerSecond);

public sealed record FitResult(IReadOnlyList<EpochRecord> History, int BestEpoch, bool StoppedEarly, double SamplesPerSecond)
{
    /// <summary>Why training stopped on a loss that was no longer finite (null: it did not); the best epoch's weights were kept.</summary>
    public string? Diverged { get; init; }
}

/// <summary>What happens when a loss stops being finite: the run stops; the best epoch so far is kept, and without one it is an error.</summary>
internal static class Divergence
{
    public static string Describe(string what, double value, int epoch) => $"the {what} loss became {value} in epoch {epoch}";

    public static string KeptBest(string reason, int bestEpoch) => $"{reason}: training stopped there and kept the weights of epoch {bestEpoch}";

    public static GraftException NothingToKeep(string reason, string learningRateOption) =>
        new($"Training diverged: {reason}, before any epoch ended with a finite loss; no model was written.",
            $"Lower the learning rate ({learningRateOption}), or check the data for damaged images.");
}

/// <summary>Loss, accuracy and class probabilities of a classifier on a set of inputs.</summary>
internal sealed record Scored(double Loss, double Accuracy, float[,] Probabilities);

/// <summary>
/// Trains a head on cached features: mini-batches in a seeded order, the chosen optimizer, and early
/// stopping on validation loss that restores the best epoch's weights.
/// </summary>
internal static class HeadTrainer
{
    public static FitResult Fit(nn.Module<Tensor, Tensor> head, Tensor trainX, Tensor trainY, Tensor? valX, Tensor? valY,
        FitOptions options, IProgress<EpochProgress>? progress = null, CancellationToken cancel = default, float[]? classWeights = null)
    {
        string? diverged = null;
        using var weights = classWeights is null ? null : tensor(classWeights);
        using var generator = new Generator().manual_seed(options.Seed);
        using var optimizer = Optimizers.Create([new ParameterGroup(head.parameters().ToList(), 1.0)], options);
        var history = new List<EpochRecord>();
        double bestLoss = double.PositiveInfinity;
        int bestEpoch = 0, sinceBest = 0;
        Dictionary<string, Tensor>? bestState = null;
        long n = trainX.shape[0];
        var total = Stopwatch.StartNew();
        long samples = 0;

        for (int epoch = 1; epoch <= options.Epochs && !cancel.IsCancellationRequested; epoch++)
        {
            var clock = Stopwatch.StartNew();
            head.train();
            double lossSum = 0; long correct = 0;
            using (var order = randperm(n, generator: generator))
            {
                for (long start = 0, count; start < n; start += count)
                {
                    // A lone last sample joins the batch before it: batch norm cannot take statistics of one.
                    count = n - start <= options.BatchSize + 1 ? n - start : options.BatchSize;
                    using var scope = NewDisposeScope();
                    var idx = order.narrow(0, start, count);
                    var x = trainX.index_select(0, idx);
                    var y = trainY.index_select(0, idx);
                    optimizer.zero_grad();
                    var logits = head.forward(x);
                    var loss = Objective.Loss(logits, y, weights);
                    float value = loss.item<float>();
                    if (!float.IsFinite(value))
                    {
                        diverged = Divergence.Describe("training", value, epoch); // no step on it: the weights stay the last good ones
                        break;
                    }
                    loss.backward();
                    optimizer.step();
                    lossSum += value * idx.shape[0];
                    correct += Objective.Predicted(logits).eq(y).sum().item<long>();
                }
            }
            if (diverged is not null) break;
            samples += n;
            double? valLoss = null, valAcc = null;
            if (valX is not null && valY is not null && valX.shape[0] > 0)
            {
                var scored = Score(head, valX, valY, withProbabilities: false);
                (valLoss, valAcc) = (scored.Loss, scored.Accuracy);
                if (!double.IsFinite(scored.Loss))
                {
                    diverged = Divergence.Describe("validation", scored.Loss, epoch);
                    break;
                }
            }
            var record = new EpochRecord(epoch, lossSum / n, (double)correct / n, valLoss, valAcc, clock.Elapsed.TotalSeconds);
            history.Add(record);
            progress?.Report(new EpochProgress(epoch, options.Epochs, record, samples / total.Elapsed.TotalSeconds));

            double monitored = valLoss ?? record.Loss;
            if (monitored < bestLoss - 1e-6)
            {
                bestLoss = monitored; bestEpoch = epoch; sinceBest = 0;
                Optimizers.Dispose(bestState);
                bestState = Optimizers.Snapshot(head);
            }
            else if (valLoss is not null && ++sinceBest >= options.Patience)
                break;
        }
        if (diverged is not null)
        {
            if (bestState is null) throw Divergence.NothingToKeep(diverged, "--lr");
            diverged = Divergence.KeptBest(diverged, bestEpoch);
        }
        if (bestState is not null)
        {
            if (!cancel.IsCancellationRequested) head.load_state_dict(bestState);
            Optimizers.Dispose(bestState);
        }
        cancel.ThrowIfCancellationRequested(); // a head stopped half-way is not a result (it trains in seconds: run again)
        head.eval();
        bool stoppedEarly = history.Count < options.Epochs;
        return new FitResult(history, bestEpoch, stoppedEarly, samples / Math.Max(total.Elapsed.TotalSeconds, 1e-9)) { Diverged = diverged };
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
                var p = probs.data<float>().ToArray();
                int classes = (int)probs.shape[1];
                probabilities ??= new float[n, classes];
                for (int i = 0; i < count; i++)
                    for (int c = 0; c < classes; c++) probabilities[start + i, c] = p[i * classes + c];
            }
        }
        return new Scored(n == 0 ? 0 : lossSum / n, n == 0 ? 0 : (double)correct / n, probabilities ?? new float[0, 0]);
    }
}
