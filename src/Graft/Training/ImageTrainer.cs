using Graft.Data;
using Graft.Engine;
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
    /// <summary>When training must end (UTC; <see cref="TimeBudget"/>); null: it runs its epochs.</summary>
    public DateTime? Deadline { get; init; }
    /// <summary>The learning-rate option a diverging run should lower (named in the error).</summary>
    public string LearningRateOption { get; init; } = "--lr";
    /// <summary>The images' targets: class indices, or multi-hot rows over the classes for multi-label data.</summary>
    public Targets Targets { get; init; } = Targets.SingleLabel;
}

/// <summary>
/// Trains a whole network on images decoded and augmented on the fly (<see cref="ImageBatches"/>). Seeded and resumable:
/// the batch order, each image's augmentation and dropout depend only on (seed, epoch, batch), and a checkpoint after
/// every epoch (and on cancellation, after the current step) lets <c>--resume</c> continue to the same result as an
/// uninterrupted run.
/// </summary>
internal static class ImageTrainer
{
    public static async Task<FitResult> FitAsync(nn.Module<Tensor, Tensor> network, IReadOnlyList<ParameterGroup> groups,
        IReadOnlyList<LabeledImage> train, IReadOnlyList<LabeledImage> validation, ImageSpec spec, LiveFitOptions options,
        Callbacks callbacks, CancellationToken cancel)
    {
        var source = new ImageBatches(train, validation, spec, options, TorchDevices.Of(network));
        List<FitCallback> steps =
        [
            .. options.Deadline is { } deadline ? [new TimeBudget(deadline)] : Array.Empty<FitCallback>(),
            new ReproducibleDropout(options.Fit.Seed), new LearningRateScheduler(options.Schedule), new ProgressReports(callbacks),
            new EarlyStopping(options.Fit.Patience), new Divergence(options.LearningRateOption),
        ];
        if (options.CheckpointPath is { } path) steps.Add(new Checkpointing(path, options.Fingerprint, options.Resume, callbacks.Log));
        var fit = await FitLoop.FitAsync(network, groups, source, options.Fit, steps, options.ClassWeights, cancel);
        return fit with { Skipped = source.Skipped };
    }

    /// <summary>The learning-rate range test of a network on live, augmented images (<see cref="LearningRateFinder"/>); its weights are left as they were.</summary>
    public static Task<LearningRateSearch> FindLearningRateAsync(string phase, nn.Module<Tensor, Tensor> network, IReadOnlyList<ParameterGroup> groups,
        IReadOnlyList<LabeledImage> train, ImageSpec spec, LiveFitOptions options, CancellationToken cancel) =>
        LearningRateFinder.FindAsync(phase, network, groups, new ImageBatches(train, [], spec, options, TorchDevices.Of(network)), options.Fit, cancel);

    /// <summary>Loss and accuracy on images without augmentation, in inference mode.</summary>
    public static async Task<(double Loss, double Accuracy)> EvaluateAsync(nn.Module<Tensor, Tensor> network, IReadOnlyList<LabeledImage> images,
        ImageSpec spec, int batchSize, Targets targets, DecodedImageCache? decoded = null, FrozenOutputs? frozenInput = null)
    {
        network.eval();
        var device = TorchDevices.Of(network);
        double lossSum = 0;
        long correct = 0, seen = 0;
        await foreach (var batch in BatchPipeline.Batches(images.Select(i => i.Path).ToList(), spec, batchSize, decoded: decoded))
        {
            if (batch.Count == 0) continue;
            // Grad mode is per thread and an await may resume on another: never hold the guard across one.
            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            var pixels = TorchDevices.Images(batch.Pixels, batch.Count, spec.Size, device);
            var x = frozenInput?.For(pixels, batch.Indices.Select(i => images[i].Path).ToList()) ?? pixels;
            var y = targets.Of(batch.Indices.Select(i => images[i]).ToList(), device);
            var logits = network.call(x);
            lossSum += Objective.Loss(logits, y).item<float>() * batch.Count;
            correct += Objective.Correct(logits, y);
            seen += batch.Count;
        }
        return (lossSum / Math.Max(1, seen), (double)correct / Math.Max(1, seen));
    }

}

/// <summary>
/// Live images as a batch source: each epoch a seeded shuffle, decoded and augmented on the fly (both cores: the pipeline
/// decodes the next batch while this one trains; each image is decoded once, not once per epoch), through the frozen
/// first part of the network when there is one. An image that cannot be read is left out (<see cref="Skipped"/>); a
/// batch it leaves with one image is not trained on (batch norm's variance would be 0/0); and once an epoch has tried
/// every image, a class none of whose images could be read is an error: it cannot be learned.
/// </summary>
internal sealed class ImageBatches : IBatchSource
{
    readonly IReadOnlyList<LabeledImage> _train, _validation;
    readonly ImageSpec _spec;
    readonly LiveFitOptions _options;
    readonly DecodedImageCache _decoded;
    readonly Device _device;
    readonly FrozenOutputs? _frozenValidation; // validation is not augmented: its frozen outputs are the same every epoch
    readonly Dictionary<string, string> _unreadable = []; // file -> why it could not be read
    readonly HashSet<int> _readableLabels = []; // classes with at least one image decoded
    bool _classesChecked;

    /// <param name="device">Where the batches are made: the network's device.</param>
    public ImageBatches(IReadOnlyList<LabeledImage> train, IReadOnlyList<LabeledImage> validation, ImageSpec spec, LiveFitOptions options, Device device)
    {
        (_train, _validation, _spec, _options, _device) = (train, validation, spec, options, device);
        _decoded = new DecodedImageCache(spec);
        _frozenValidation = options.FrozenInput is { } frozen ? new FrozenOutputs(frozen) : null;
    }

    int BatchSize => _options.Fit.BatchSize;
    public int Count => _train.Count;
    public int BatchesPerEpoch => (_train.Count + BatchSize - 1) / BatchSize;

    /// <summary>The images that could not be read so far, in path order.</summary>
    public IReadOnlyList<SkippedImage> Skipped =>
        _unreadable.OrderBy(u => u.Key, StringComparer.Ordinal).Select(u => new SkippedImage(u.Key, u.Value)).ToList();

    public async IAsyncEnumerable<TrainingBatch> EpochAsync(int epoch, int firstBatch)
    {
        int seed = _options.Fit.Seed;
        var order = ShuffledOrder(_train.Count, seed, epoch);
        int skipFirst = firstBatch * BatchSize, index = firstBatch;
        await foreach (var batch in BatchPipeline.Batches(order.Skip(skipFirst).Select(i => _train[i].Path).ToList(), _spec, BatchSize,
                           augment: new EpochAugmentation(_options.Augmentation, seed, epoch, skipFirst), decoded: _decoded, cancel: CancellationToken.None))
        {
            foreach (var failure in batch.Failures) _unreadable[failure.Path] = failure.Reason;
            var images = batch.Indices.Select(i => _train[order[skipFirst + i]]).ToList();
            foreach (var image in images) _readableLabels.UnionWith(image.Labels);
            yield return new TrainingBatch(index++, batch.Count, batch.Count < Math.Min(2, BatchSize) ? null
                : () => (Input(_options.FrozenInput, TorchDevices.Images(batch.Pixels, batch.Count, _spec.Size, _device)), _options.Targets.Of(images, _device)));
        }
        if (skipFirst == 0 && !_classesChecked)
        {
            _classesChecked = true;
            CheckEveryClassWasRead();
        }
    }

    public async Task<(double Loss, double Accuracy)?> ValidateAsync(nn.Module<Tensor, Tensor> network) =>
        _validation.Count > 0 ? await ImageTrainer.EvaluateAsync(network, _validation, _spec, BatchSize, _options.Targets, _decoded, _frozenValidation) : null;

    void CheckEveryClassWasRead()
    {
        if (_train.SelectMany(i => i.Labels).Distinct().Order().FirstOrDefault(l => !_readableLabels.Contains(l), -1) is not (var missing and >= 0)) return;
        string folder = _options.ClassFolders is { } folders ? folders[missing] : $"class {missing}";
        var reason = _train.Where(i => i.Labels.Contains(missing) && _unreadable.ContainsKey(i.Path))
            .Select(i => $" ({Path.GetFileName(i.Path)}: {_unreadable[i.Path]})").FirstOrDefault() ?? "";
        throw new GraftException($"None of the images of {folder} could be read{reason}; a class needs at least one readable image.",
            "Replace the damaged images, or remove the class folder.");
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
            return tensor(flat, [paths.Count, .. _shape], device: runner.Device);
        }
        var output = runner.Features(images);
        _shape = output.shape[1..];
        int size = (int)(output.numel() / paths.Count);
        if (_bytes + 4L * size * paths.Count <= budgetBytes)
        {
            var values = output.cpu().contiguous().data<float>().ToArray();
            for (int i = 0; i < paths.Count; i++) _saved[paths[i]] = values[(i * size)..((i + 1) * size)];
            _bytes += 4L * size * paths.Count;
        }
        return output;
    }
}

/// <summary>A run stopped on request (Ctrl-C), after saving its checkpoint when it has one.</summary>
internal sealed class TrainingStoppedException(string? checkpoint) : OperationCanceledException(
    checkpoint is null ? "Training stopped before finishing; no model was written." : $"Training stopped; the checkpoint {checkpoint} was saved: run the same command with --resume to continue.")
{
    public string? CheckpointPath { get; } = checkpoint;
}
