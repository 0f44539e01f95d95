using Graft.Evaluation;
using Graft.Training;
using Graft.Weights;
using Graft.Heads;

namespace Graft;

/// <summary>Where a training run is: a pass over images (done of total), an epoch, or a sentence worth showing.</summary>
/// <param name="Stage">"features", "train", "validate", "epoch" (Done/Total are epochs) or "note" (see <paramref name="Message"/>).</param>
/// <param name="Done">Images or epochs done.</param>
/// <param name="Total">Of how many.</param>
/// <param name="Message">A line for people: the epoch's loss and accuracy, or the note.</param>
public sealed record LearnerProgress(string Stage, int Done, int Total, string Message)
{
    /// <summary>The message, e.g. "epoch 3/10: loss 0.21, accuracy 0.93, validation 0.95".</summary>
    public override string ToString() => Message;
}

/// <summary>A trained classifier and how well it does.</summary>
/// <param name="Model">The classifier, ready to predict and to save (runs in ONNX Runtime).</param>
/// <param name="Validation">Accuracy on the validation images; they picked the best epoch, so it is optimistic. Null without validation images.</param>
/// <param name="Test">Accuracy on test images training never looked at (a test/ folder or a test split); null without them.</param>
/// <param name="Skipped">Images that could not be read, with the reason.</param>
/// <param name="Duration">Wall time of the run.</param>
/// <param name="Details">Everything the run measured, including the trainable network (advanced use: TorchSharp types; dispose its Model when done).</param>
public sealed record LearnerResult(ImageClassifier Model, EvaluationResult? Validation, EvaluationResult? Test,
    IReadOnlyList<SkippedImage> Skipped, TimeSpan Duration, TrainingResult Details);

/// <summary>
/// The common path in a few lines: a folder of photos (one sub-folder per class) in, a trained and measured classifier out.
/// </summary>
/// <example>
/// <code>
/// var learner = ImageClassifierLearner.FromFolder("photos/", testSplit: 0.2);
/// var result = await learner.FitAsync(new Progress&lt;LearnerProgress&gt;(Console.WriteLine));
/// Console.WriteLine($"test accuracy {result.Test!.Accuracy:P1}");
/// result.Model.Save("photos.graft");
/// </code>
/// </example>
public sealed class ImageClassifierLearner
{
    /// <summary>The data folder: class folders, or train/ with val/ and/or test/.</summary>
    public string Folder { get; }

    /// <summary>Every setting of the run (backbone, strategy, head, epochs, augmentation...).</summary>
    public TrainOptions Options { get; }

    /// <summary>Where pretrained weights are found (mirror, Keras's cache, Graft's cache, download).</summary>
    public AssetResolver Assets { get; init; } = AssetResolver.Default;

    ImageClassifierLearner(string folder, TrainOptions options) => (Folder, Options) = (folder, options);

    /// <summary>A learner for a folder of labelled photos.</summary>
    /// <param name="folder">One sub-folder of images per class, or train/ plus val/ and/or test/.</param>
    /// <param name="backbone">The pretrained network (see <c>graft models</c>); null for the default (MobileNetV2).</param>
    /// <param name="strategy">Feature extraction (fast; the default), fine-tuning, training from scratch, or auto (measure and choose).</param>
    /// <param name="testSplit">Share of each class held out as a test set when the folder has no test/ folder (0: none).</param>
    /// <param name="options">Further settings; <paramref name="backbone"/>, <paramref name="strategy"/> and <paramref name="testSplit"/> override its own.</param>
    public static ImageClassifierLearner FromFolder(string folder, string? backbone = null, Strategy strategy = Strategy.FeatureExtraction,
        double testSplit = 0, TrainOptions? options = null) =>
        new(folder, (options ?? new TrainOptions()) with { Backbone = backbone ?? options?.Backbone, Strategy = strategy, TestSplit = testSplit });

    /// <summary>Trains, measures on the validation and test images, and returns the classifier.</summary>
    /// <param name="progress">Receives passes over images, epochs and notes.</param>
    /// <param name="cancel">Stops the run (between batches).</param>
    /// <exception cref="GraftException">The data or a setting cannot be used (the message names it and the fix).</exception>
    public async Task<LearnerResult> FitAsync(IProgress<LearnerProgress>? progress = null, CancellationToken cancel = default)
    {
        var callbacks = progress is null ? Callbacks.None : new Callbacks(
            new Progress<ImageProgress>(p => progress.Report(new LearnerProgress(p.Phase, p.Done, p.Total, $"{p.Phase}: {p.Done}/{p.Total} images, {p.ImagesPerSecond:0} images/s"))),
            new Progress<EpochProgress>(p => progress.Report(new LearnerProgress("epoch", p.Epoch, p.Epochs,
                $"epoch {p.Epoch}/{p.Epochs}: loss {p.Record.Loss:0.000}, accuracy {p.Record.Accuracy:0.000}" +
                (p.Record.ValAccuracy is { } v ? $", validation {v:0.000}" : "")))),
            message => progress.Report(new LearnerProgress("note", 0, 0, message)));
        var run = await Learner.TrainAsync(Folder, Options, Assets, callbacks, cancel);
        var model = ImageClassifier.FromBytes(run.Model.ToBytes(), Path.GetFileName(Path.TrimEndingDirectorySeparator(Folder)) + ".graft");
        return new LearnerResult(model, run.Validation, run.Test, run.Skipped, TimeSpan.FromSeconds(run.Seconds), run);
    }
}
