using System.Diagnostics;
using Graft.Data;
using Graft.Imaging;
using Graft.Heads;
using TorchSharp;
using TorchSharp.Modules;
using Graft.Runtime;
using static TorchSharp.torch;

namespace Graft.Training;

/// <summary>Parameters trained together at one learning rate (base rate x multiplier).</summary>
internal sealed record ParameterGroup(IReadOnlyList<Parameter> Parameters, double LrMultiplier);

/// <summary>How a network trains on live (decoded, augmented) images.</summary>
internal sealed record LiveFitOptions(
    FitOptions Fit,
    Augmentation Augmentation,
    LrSchedule Schedule = LrSchedule.Constant,
    float[]? ClassWeights = null,
    string? CheckpointPath = null,
    bool Resume = false,
    string Fingerprint = "")
{
    /// <summary>
    /// The frozen first part of the network, run as plain inference (ONNX Runtime) before the network trains on its
    /// output; null: the network takes the images.
    /// </summary>
    public ITrunkRunner? FrozenInput { get; init; }
    /// <summary>Each class's folder (by label), to name a class none of whose images could be read; null: "class N".</summary>
    public IReadOnlyList<string>? ClassFolders { get; init; }
    /// <summary>The learning-rate option a diverging run should lower (named in the error).</summary>
    public string LearningRateOption { get; init; } = "--lr";
}

/// <summary>
/// Trains a whole network on images decoded and augmented on the fly (both cores: the pipeline decodes the
/// next batch while this one trains). Seeded and resumable: the batch order, each image's augmentation and
/// dropout depend only on (seed, epoch, batch), and a checkpoint after every epoch (and on cancellation,
/// after the current step) lets <c>--resume</c> continue to the same result as an uninterrupted run.
/// </summary>
internal static class ImageTrainer
{
    public static async Task<FitResult> FitAsync(nn.Module<Tensor, Tensor> network, IReadOnlyList<ParameterGroup> groups,
        IReadOnlyList<LabeledImage> train, IReadOnlyList<LabeledImage> validation, ImageSpec spec, LiveFitOptions options,
        Callbacks callbacks, CancellationToken cancel, IDictionary<string, string>? unreadable = null)
    {
        unreadable ??= new Dictionary<string, string>(); // file -> why it could not be read
        var fit = options.Fit;
        using var optimizer = Optimizers.Create(groups, fit);
        var baseRates = optimizer.ParamGroups.Select(g => g.LearningRate).ToArray();
        int batchesPerEpoch = (train.Count + fit.BatchSize - 1) / fit.BatchSize;
        long totalSteps = (long)batchesPerEpoch * fit.Epochs;
        using var weights = options.ClassWeights is null ? null : tensor(options.ClassWeights);
        var decoded = new DecodedImageCache(spec); // each image is decoded once, not once per epoch
        var frozenValidation = options.FrozenInput is { } frozen ? new FrozenOutputs(frozen) : null; // validation is not augmented

        var progress = new TrainingProgress(options.Fingerprint, 1, 0, 0, 0, 0, 0, [], 0, double.PositiveInfinity, 0);
        Dictionary<string, Tensor>? best = null;
        if (options.Resume && options.CheckpointPath is { } resumeFrom)
        {
            if (File.Exists(resumeFrom))
            {
                (progress, best) = Checkpoint.Load(resumeFrom, options.Fingerprint, network, optimizer);
                callbacks.Log?.Invoke($"resuming from {resumeFrom}: epoch {progress.Epoch}, batch {progress.NextBatch}");
            }
            else callbacks.Log?.Invoke($"no checkpoint at {resumeFrom} (a finished run deletes it): starting from the beginning");
        }

        var clock = Stopwatch.StartNew();
        long samples = 0;
        bool stopped = false, classesChecked = false;
        string? diverged = null;
        var readableLabels = new HashSet<int>(); // classes with at least one image decoded
        for (int epoch = progress.Epoch; epoch <= fit.Epochs && !stopped; epoch++)
        {
            if (progress.Epoch != epoch) progress = progress with { Epoch = epoch, NextBatch = 0, LossSum = 0, Correct = 0, Seen = 0 };
            var epochClock = Stopwatch.StartNew();
            var order = ShuffledOrder(train.Count, fit.Seed, epoch);
            var paths = order.Select(i => train[i].Path).ToList();
            int skipFirst = progress.NextBatch * fit.BatchSize;
            int batchIndex = progress.NextBatch;
            Freezing.SetTrainingMode(network);
            await foreach (var batch in BatchPipeline.Batches(paths.Skip(skipFirst).ToList(), spec, fit.BatchSize,
                               augment: new EpochAugmentation(options.Augmentation, fit.Seed, epoch, skipFirst), decoded: decoded, cancel: CancellationToken.None))
            {
                foreach (var failure in batch.Failures) unreadable[failure.Path] = failure.Reason;
                foreach (var i in batch.Indices) readableLabels.Add(train[order[skipFirst + i]].Label);
                // A lone image (an epoch's last, or what unreadable files left of a batch) would give batch norm a variance of 0/0.
                if (batch.Count >= Math.Min(2, fit.BatchSize))
                {
                    using var scope = NewDisposeScope();
                    manual_seed(fit.Seed * 7919L + epoch * 104_729L + batchIndex); // dropout masks: a function of (seed, epoch, batch)
                    foreach (var (group, i) in optimizer.ParamGroups.Select((g, i) => (g, i)))
                        group.LearningRate = baseRates[i] * Schedules.Multiplier(options.Schedule, progress.Step, totalSteps);
                    var x = Input(options.FrozenInput, tensor(batch.Pixels, [batch.Count, 3, spec.Size, spec.Size]));
                    var y = tensor(batch.Indices.Select(i => (long)train[order[skipFirst + i]].Label).ToArray());
                    optimizer.zero_grad();
                    var logits = network.call(x);
                    var loss = Objective.Loss(logits, y, weights);
                    float value = loss.item<float>();
                    if (!float.IsFinite(value))
                    {
                        diverged = Divergence.Describe("training", value, epoch); // no step on it: the weights stay the last good ones
                        break;
                    }
                    loss.backward();
                    optimizer.step();
                    progress = progress with
                    {
                        LossSum = progress.LossSum + value * batch.Count,
                        Correct = progress.Correct + Objective.Predicted(logits).eq(y).sum().item<long>(),
                        Seen = progress.Seen + batch.Count,
                        Step = progress.Step + 1,
                    };
                    samples += batch.Count;
                }
                batchIndex++;
                progress = progress with { NextBatch = batchIndex };
                callbacks.Images?.Report(new ImageProgress($"epoch {epoch}/{fit.Epochs}", (int)Math.Min(train.Count, batchIndex * (long)fit.BatchSize),
                    train.Count, samples / Math.Max(clock.Elapsed.TotalSeconds, 1e-9)));
                if (cancel.IsCancellationRequested && batchIndex < batchesPerEpoch)
                {
                    stopped = true;
                    break;
                }
            }
            if (stopped || diverged is not null) break;
            if (skipFirst == 0 && !classesChecked)
            {
                // Every image of the epoch was tried: a class none of whose images could be read cannot be learned.
                classesChecked = true;
                if (train.Select(i => i.Label).Distinct().Order().FirstOrDefault(l => !readableLabels.Contains(l), -1) is var missing and >= 0)
                {
                    string folder = options.ClassFolders is { } folders ? folders[missing] : $"class {missing}";
                    var reason = train.Where(i => i.Label == missing && unreadable.ContainsKey(i.Path)).Select(i => $" ({Path.GetFileName(i.Path)}: {unreadable[i.Path]})").FirstOrDefault() ?? "";
                    Optimizers.Dispose(best);
                    throw new GraftException($"None of the images of {folder} could be read{reason}; a class needs at least one readable image.",
                        "Replace the damaged images, or remove the class folder.");
                }
            }

            var (valLoss, valAccuracy) = validation.Count > 0 ? await EvaluateAsync(network, validation, spec, fit.BatchSize, decoded, frozenValidation) : (double.NaN, double.NaN);
            double? vl = validation.Count > 0 ? valLoss : null, va = validation.Count > 0 ? valAccuracy : null;
            var record = new EpochRecord(epoch, progress.LossSum / Math.Max(1, progress.Seen), (double)progress.Correct / Math.Max(1, progress.Seen),
                vl, va, epochClock.Elapsed.TotalSeconds);
            if (vl is { } lossNow && !double.IsFinite(lossNow))
            {
                diverged = Divergence.Describe("validation", lossNow, epoch);
                break;
            }
            var history = progress.History.Append(record).ToList();
            callbacks.Epochs?.Report(new EpochProgress(epoch, fit.Epochs, record, samples / Math.Max(clock.Elapsed.TotalSeconds, 1e-9)));

            double monitored = vl ?? record.Loss;
            int bestEpoch = progress.BestEpoch, sinceBest = progress.SinceBest;
            double bestLoss = progress.BestLoss;
            if (monitored < bestLoss - 1e-6)
            {
                (bestLoss, bestEpoch, sinceBest) = (monitored, epoch, 0);
                Optimizers.Dispose(best);
                best = Optimizers.Snapshot(network);
            }
            else sinceBest++;
            bool patienceOut = vl is not null && sinceBest >= fit.Patience;
            progress = progress with { Epoch = epoch + 1, NextBatch = 0, LossSum = 0, Correct = 0, Seen = 0, History = history,
                BestEpoch = bestEpoch, BestLoss = bestLoss, SinceBest = sinceBest };
            if (options.CheckpointPath is { } path) Checkpoint.Save(path, progress, network, best, optimizer);
            if (patienceOut) break;
            if (cancel.IsCancellationRequested) stopped = true;
        }

        if (stopped)
        {
            if (options.CheckpointPath is { } path) Checkpoint.Save(path, progress, network, best, optimizer);
            Optimizers.Dispose(best);
            throw new TrainingStoppedException(options.CheckpointPath);
        }
        if (diverged is not null)
        {
            if (best is null) throw Divergence.NothingToKeep(diverged, options.LearningRateOption);
            diverged = Divergence.KeptBest(diverged, progress.BestEpoch);
        }
        if (best is not null) network.load_state_dict(best);
        Optimizers.Dispose(best);
        network.eval();
        bool early = progress.History.Count < fit.Epochs;
        return new FitResult(progress.History, progress.BestEpoch, early, samples / Math.Max(clock.Elapsed.TotalSeconds, 1e-9)) { Diverged = diverged };
    }

    /// <summary>Loss and accuracy on images without augmentation, in inference mode.</summary>
    public static async Task<(double Loss, double Accuracy)> EvaluateAsync(nn.Module<Tensor, Tensor> network, IReadOnlyList<LabeledImage> images,
        ImageSpec spec, int batchSize, DecodedImageCache? decoded = null, FrozenOutputs? frozenInput = null)
    {
        network.eval();
        double lossSum = 0;
        long correct = 0, seen = 0;
        await foreach (var batch in BatchPipeline.Batches(images.Select(i => i.Path).ToList(), spec, batchSize, decoded: decoded))
        {
            if (batch.Count == 0) continue;
            // Grad mode is per thread and an await may resume on another: never hold the guard across one.
            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            var pixels = tensor(batch.Pixels, [batch.Count, 3, spec.Size, spec.Size]);
            var x = frozenInput?.For(pixels, batch.Indices.Select(i => images[i].Path).ToList()) ?? pixels;
            var y = tensor(batch.Indices.Select(i => (long)images[i].Label).ToArray());
            var logits = network.call(x);
            lossSum += Objective.Loss(logits, y).item<float>() * batch.Count;
            correct += Objective.Predicted(logits).eq(y).sum().item<long>();
            seen += batch.Count;
        }
        return (lossSum / Math.Max(1, seen), (double)correct / Math.Max(1, seen));
    }

    /// <summary>What the network takes: the images, or the frozen first part's output for them.</summary>
    static Tensor Input(ITrunkRunner? frozen, Tensor images) => frozen?.Features(images) ?? images;

    /// <summary>The epoch's batch order: a seeded shuffle that depends on (seed, epoch) only.</summary>
    static int[] ShuffledOrder(int count, int seed, int epoch)
    {
        var order = Enumerable.Range(0, count).ToArray();
        Augmentation.RandomFor(seed, epoch, -1).Shuffle(order);
        return order;
    }
}

/// <summary>
/// The frozen first part's output for images that are not augmented (validation): the same every epoch, so computed
/// in the first and kept (up to a memory budget) for the others.
/// </summary>
internal sealed class FrozenOutputs(ITrunkRunner runner, long budgetBytes = 512L << 20)
{
    readonly Dictionary<string, float[]> _saved = [];
    long _bytes;
    long[] _shape = [];

    public Tensor For(Tensor images, IReadOnlyList<string> paths)
    {
        if (_shape.Length > 0 && paths.All(_saved.ContainsKey))
        {
            var flat = paths.SelectMany(p => _saved[p]).ToArray();
            return tensor(flat, [paths.Count, .. _shape]);
        }
        var output = runner.Features(images);
        _shape = output.shape[1..];
        int size = (int)(output.numel() / paths.Count);
        if (_bytes + 4L * size * paths.Count <= budgetBytes)
        {
            var values = output.contiguous().data<float>().ToArray();
            for (int i = 0; i < paths.Count; i++) _saved[paths[i]] = values[(i * size)..((i + 1) * size)];
            _bytes += 4L * size * paths.Count;
        }
        return output;
    }
}

/// <summary>A run stopped on request (Ctrl-C) after saving its checkpoint.</summary>
internal sealed class TrainingStoppedException(string? checkpoint) : OperationCanceledException(
    checkpoint is null ? "Training stopped." : $"Training stopped; the checkpoint {checkpoint} was saved: run the same command with --resume to continue.")
{
    public string? CheckpointPath { get; } = checkpoint;
}
