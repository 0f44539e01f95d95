using Spectre.Console;
using System.CommandLine;
using Graft.Data;
using Graft.Training;
using Graft.Weights;

namespace Graft.Cli.Commands;

public static class TrainCommand
{
    public static Command Create()
    {
        var data = new Argument<string>("DATA") { Description = "Folder with one sub-folder per class, or with train/ and val/ (or validation/, test/) folders; or a sample dataset name (hymenoptera, cats_vs_dogs)." };
        var backbone = new Option<string>("--backbone") { Description = "Pretrained backbone (see graft models).", DefaultValueFactory = _ => "mobilenet_v2" };
        var strategy = new Option<string>("--strategy") { Description = "How to use the backbone.", DefaultValueFactory = _ => Strategies.FeatureExtraction };
        strategy.AcceptOnlyFromAmong(Strategies.All);
        var epochs = new Option<int>("--epochs") { Description = "Most epochs to train (early stopping may end sooner).", DefaultValueFactory = _ => 30 };
        var batchSize = new Option<int>("--batch-size") { Description = "Images per batch.", DefaultValueFactory = _ => 32 };
        var lr = new Option<double>("--lr") { Description = "Learning rate.", DefaultValueFactory = _ => 1e-3 };
        var optimizer = new Option<string>("--optimizer") { Description = "adam, sgd (momentum 0.9) or rmsprop.", DefaultValueFactory = _ => "adam" };
        optimizer.AcceptOnlyFromAmong("adam", "sgd", "rmsprop");
        var valSplit = new Option<double>("--val-split") { Description = "Fraction of each class held out for validation when DATA has no validation folder.", DefaultValueFactory = _ => 0.2 };
        var seed = new Option<int>("--seed") { Description = "Seed for the split, initialisation and batch order.", DefaultValueFactory = _ => 42 };
        var patience = new Option<int>("--patience") { Description = "Stop after this many epochs without a better validation loss.", DefaultValueFactory = _ => 5 };
        var hidden = new Option<int>("--hidden") { Description = "Units of a hidden dense ReLU layer in the head (0: none).", DefaultValueFactory = _ => 0 };
        var dropout = new Option<double>("--dropout") { Description = "Dropout rate in the head.", DefaultValueFactory = _ => 0.2 };
        var batchNorm = new Option<bool>("--batchnorm") { Description = "Batch normalisation in the head." };
        var resize = new Option<string>("--resize") { Description = "crop: centred square, then resize (default); squash: the whole image.", DefaultValueFactory = _ => "crop" };
        resize.AcceptOnlyFromAmong("crop", "squash");
        var noCache = new Option<bool>("--no-cache") { Description = "Do not read or write the bottleneck feature cache." };
        var output = new Option<string?>("--out") { Description = "Model file to write (default: DATA's folder name + .graft, in the current folder)." };
        var json = Cli.JsonOption();

        var command = new Command("train", "Train a classifier on a folder of photos.")
        {
            data, backbone, strategy, epochs, batchSize, lr, optimizer, valSplit, seed, patience, hidden, dropout, batchNorm, resize, noCache, output, json,
        };
        command.SetHandler(async (parse, cancel) =>
        {
            var path = SampleDatasets.Resolve(parse.GetValue(data)!, AssetResolver.Default);
            var options = new TrainOptions
            {
                Backbone = parse.GetValue(backbone)!,
                Strategy = parse.GetValue(strategy)!,
                Hidden = Positive(parse.GetValue(hidden), "--hidden", allowZero: true),
                Dropout = InRange(parse.GetValue(dropout), "--dropout", 0, 1),
                BatchNorm = parse.GetValue(batchNorm),
                Resize = parse.GetValue(resize) == "squash" ? ResizeMode.Squash : ResizeMode.CenterCrop,
                ValidationSplit = parse.GetValue(valSplit),
                UseCache = !parse.GetValue(noCache),
                Fit = new FitOptions(
                    Epochs: Positive(parse.GetValue(epochs), "--epochs"),
                    BatchSize: Positive(parse.GetValue(batchSize), "--batch-size"),
                    LearningRate: InRange(parse.GetValue(lr), "--lr", 0, 10, lowerInclusive: false),
                    Optimizer: Enum.Parse<OptimizerKind>(parse.GetValue(optimizer)!, ignoreCase: true),
                    Seed: parse.GetValue(seed),
                    Patience: Positive(parse.GetValue(patience), "--patience")),
            };
            var outPath = parse.GetValue(output) ?? DefaultModelPath(path);
            var progress = new ProgressLine();
            var result = await Learner.TrainAsync(path, options, AssetResolver.Default, progress.Callbacks, cancel);
            result.Model.Save(outPath);

            Cli.ReportSkipped(result.Skipped);
            var fit = result.Fit;
            Cli.Out.MarkupLine($"trained {fit.History.Count} epoch(s), best epoch {fit.BestEpoch}{(fit.StoppedEarly ? " (early stopping)" : "")}, " +
                $"{result.Seconds:0.0}s in all; head training {fit.SamplesPerSecond:0} samples/s");
            if (result.Validation is { } v) ResultsView.Show(v, "validation");
            Cli.Out.MarkupLine($"saved [green]{Cli.Escape(Path.GetFullPath(outPath))}[/]");

            if (parse.GetValue(json))
                Cli.WriteJson(new
                {
                    model = Path.GetFullPath(outPath),
                    accuracy = result.Validation?.Accuracy,
                    loss = result.Validation?.Loss,
                    images = result.Validation?.Images ?? 0,
                    classes = result.Dataset.Classes,
                    seconds = result.Seconds,
                    train_images = result.Model.Config.Dataset!.TrainImages,
                    validation_images = result.Model.Config.Dataset.ValidationImages,
                    epochs = fit.History.Count,
                    best_epoch = fit.BestEpoch,
                    feature_images_per_second = result.Features.ImagesPerSecond,
                    features_computed = result.Features.Computed,
                    features_cached = result.Features.CacheHits,
                    head_samples_per_second = fit.SamplesPerSecond,
                    per_class = result.Validation?.PerClass,
                    confusion_matrix = result.Validation?.ConfusionMatrix,
                    skipped = result.Skipped,
                    peak_rss_mb = Graft.Engine.ProcessStats.PeakRssMb(),
                });
        });
        return command;
    }

    static string DefaultModelPath(string data) =>
        Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(data))) + ".graft";

    static double InRange(double value, string option, double low, double high, bool lowerInclusive = true) =>
        (lowerInclusive ? value >= low : value > low) && value < high ? value
            : throw new GraftException($"{option} {value} is out of range.", $"Pass a value {(lowerInclusive ? "from" : "above")} {low} and below {high}.");

    static int Positive(int value, string option, bool allowZero = false) =>
        value > 0 || (allowZero && value == 0) ? value
            : throw new GraftException($"{option} {value} must be {(allowZero ? "zero or more" : "positive")}.", $"Pass a whole number to {option}.");
}
