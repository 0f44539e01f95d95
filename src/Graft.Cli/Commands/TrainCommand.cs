using Spectre.Console;
using System.CommandLine;
using Graft.Backbones;
using Graft.Data;
using Graft.Reports;
using Graft.Training;
using Graft.Weights;
using Graft.Imaging;
using Graft.Heads;

namespace Graft.Cli.Commands;

public static class TrainCommand
{
    public static Command Create()
    {
        var data = new Argument<string>("DATA") { Description = "Folder with one sub-folder per class, or with train/ and val/ (or validation/, test/) folders; or a sample dataset name (hymenoptera, cats_vs_dogs)." };
        var backbone = new Option<string?>("--backbone") { Description = $"Backbone (see graft models); default {BackboneRegistry.Default.Name}, or the from-scratch network for --strategy scratch." };
        var weights = new BackboneOptions();
        var strategy = new Option<string>("--strategy") { Description = "feature-extraction: train a head on cached features of the frozen trunk; fine-tune: then train the top of the trunk too, on augmented images; scratch: train a small CNN from random weights; auto: measure the data and choose (see graft advise).", DefaultValueFactory = _ => Strategy.FeatureExtraction.Name() };
        strategy.AcceptOnlyFromAmong([.. StrategyNames.All]);
        var epochs = new Option<int>("--epochs") { Description = "Most epochs to train (early stopping may end sooner).", DefaultValueFactory = _ => 30 };
        var batchSize = new Option<int>("--batch-size") { Description = "Images per batch.", DefaultValueFactory = _ => 32 };
        var lr = new Option<double>("--lr") { Description = "Learning rate.", DefaultValueFactory = _ => 1e-3 };
        var optimizer = new Option<string>("--optimizer") { Description = "adam, sgd (momentum 0.9) or rmsprop.", DefaultValueFactory = _ => "adam" };
        optimizer.AcceptOnlyFromAmong("adam", "sgd", "rmsprop");
        var valSplit = new Option<double>("--val-split") { Description = "Fraction of each class held out for validation when DATA has no validation folder.", DefaultValueFactory = _ => 0.2 };
        var exclude = new Option<string?>("--exclude") { Description = "An actions CSV from graft audit --actions: leave out or relabel the images it names (training and validation only; the test set stays as it is)." };
        var testSplit = new Option<double>("--test-split") { Description = "Fraction of each class held out as a test set, measured only after training (for the reported accuracy), when DATA has no test folder." };
        var seed = new Option<int>("--seed") { Description = "Seed for the split, initialisation and batch order.", DefaultValueFactory = _ => 42 };
        var patience = new Option<int>("--patience") { Description = "Stop after this many epochs without a better validation loss.", DefaultValueFactory = _ => 5 };
        var hidden = new Option<int?>("--hidden") { Description = "Units of a hidden dense ReLU layer in the head (0: none; default 0, scratch 64)." };
        var dropout = new Option<double?>("--dropout") { Description = "Dropout rate in the head (default 0.2, scratch 0.5)." };
        var head = new Option<string?>("--head") { Description = "gap: global average pooling (default); flatten: keep the spatial layout (default for scratch)." };
        head.AcceptOnlyFromAmong("gap", "flatten");
        var unfreeze = new Option<int?>("--unfreeze") { Description = "Fine-tuning: train the top N blocks of the trunk (default 2)." };
        var unfreezeFrom = new Option<string?>("--unfreeze-from") { Description = "Fine-tuning: train from this block or Keras layer on (e.g. block5_conv1, mixed9, conv5_block1_1_conv; names in graft summary)." };
        var freezeFirst = new Option<int?>("--freeze-first") { Description = "Fine-tuning: freeze the first N layers, train the rest (Keras: layers[:N].trainable = False; layers counted as graft summary and Keras list them, input layer first)." };
        var ftEpochs = new Option<int>("--ft-epochs") { Description = "Fine-tuning phase 2: most epochs.", DefaultValueFactory = _ => 10 };
        var ftLr = new Option<double>("--ft-lr") { Description = "Fine-tuning phase 2: learning rate.", DefaultValueFactory = _ => 1e-4 };
        var ftOptimizer = new Option<string>("--ft-optimizer") { Description = "Fine-tuning phase 2: sgd (momentum 0.9, default), adam or rmsprop.", DefaultValueFactory = _ => "sgd" };
        ftOptimizer.AcceptOnlyFromAmong("adam", "sgd", "rmsprop");
        var schedule = new Option<string>("--schedule") { Description = "Learning-rate schedule of live training: constant, step, cosine or one-cycle.", DefaultValueFactory = _ => "constant" };
        schedule.AcceptOnlyFromAmong("constant", "step", "cosine", "one-cycle");
        var discriminative = new Option<double>("--discriminative") { Description = "Fine-tuning: each unfrozen block learns at this times the rate of the block above (e.g. 0.5; 1: equal).", DefaultValueFactory = _ => 1.0 };
        var classWeight = new Option<string?>("--class-weight") { Description = "balanced: weigh each class's loss inversely to its frequency." };
        classWeight.AcceptOnlyFromAmong("balanced");
        var featuresFrom = new Option<string?>("--features-from") { Description = "Take features from this block instead of the trunk's last (e.g. block_12, block4, mixed7): more generic, for data unlike ImageNet." };
        var resume = new Option<bool>("--resume") { Description = "Continue a stopped run from its checkpoint (MODEL.checkpoint); same command line otherwise." };
        var augment = new AugmentOptions();
        var batchNorm = new Option<bool>("--batchnorm") { Description = "Batch normalisation in the head." };
        var se = new Option<bool>("--se") { Description = "A squeeze-and-excitation block on the trunk's output before the head." };
        var binary = new Option<bool>("--binary") { Description = "Two classes: one sigmoid output with binary cross-entropy." };
        var resize = new Option<string>("--resize") { Description = "crop: centred square, then resize (default); squash: the whole image.", DefaultValueFactory = _ => "crop" };
        resize.AcceptOnlyFromAmong("crop", "squash");
        var noCache = new Option<bool>("--no-cache") { Description = "Do not read or write the bottleneck feature cache." };
        var precision = new Option<string>("--precision")
        {
            Description = "The frozen trunk's numbers (feature extraction only). int8: quantized in ONNX Runtime after a calibration pass over 64 "
                + "training images (about a second); the trunk runs about 2x faster (feature extraction with decoding 1.3-1.7x), accuracy within "
                + "a few tenths of a point of float (graft bench measures both); its features are cached apart, and the model file keeps the calibration.",
            DefaultValueFactory = _ => "float",
        };
        precision.AcceptOnlyFromAmong("float", "int8");
        var report = new Option<string?>("--report") { Description = "Write an HTML report of the validation set into this folder at the end." };
        var output = new Option<string?>("--out") { Description = "Model file to write (default: DATA's folder name + .graft, in the current folder)." };
        var device = Cli.DeviceOption();
        var json = Cli.JsonOption();

        var command = new Command("train", "Train a classifier on a folder of photos.")
        {
            data, device, backbone, strategy, epochs, batchSize, lr, optimizer, valSplit, testSplit, exclude, seed, patience, hidden, dropout, batchNorm, se, binary, head, resize,
            unfreeze, unfreezeFrom, freezeFirst, ftEpochs, ftLr, ftOptimizer, schedule, discriminative, classWeight, featuresFrom, resume, noCache, precision, output, report, json,
        };
        augment.AddTo(command);
        weights.AddTo(command);
        command.SetHandler(async (parse, cancel) =>
        {
            var on = Cli.Device(parse, device);
            var path = SampleDatasets.Resolve(parse.GetValue(data)!, Cli.Assets);
            var outPath = parse.GetValue(output) ?? DefaultModelPath(path);
            // Where the run will write is checked before it trains: a bad path found after training loses the run.
            OutputPaths.File("--out", outPath, path, parse.GetValue(weights.Weights));
            if (parse.GetValue(report) is { } reportFolder) OutputPaths.Folder("--report", reportFolder, path, outPath);
            bool Given(Option o) => parse.GetResult(o) is { Implicit: false };
            var chosen = StrategyNames.Parse(parse.GetValue(strategy)!);
            Option[] unfreezing = [unfreeze, unfreezeFrom, freezeFirst];
            if (unfreezing.Count(Given) > 1)
                throw new GraftException("--unfreeze, --unfreeze-from and --freeze-first each say what to fine-tune.", "Pass only one of them.");
            // Options a strategy does not use are named, not silently dropped.
            Option[] fineTuning = [.. unfreezing, ftEpochs, ftLr, ftOptimizer, discriminative];
            Option[] live = [schedule, resume];
            var unused = chosen switch
            {
                Strategy.FeatureExtraction => [.. fineTuning, .. live],
                Strategy.Scratch => fineTuning,
                _ => Array.Empty<Option>(),
            };
            foreach (var option in unused.Where(Given))
                Cli.Out.MarkupLine($"[yellow]note:[/] {option.Name} does not apply to --strategy {chosen.Name()}: ignored.");
            // The options of one training phase: the head's (or scratch's), or fine-tuning's phase 2.
            FitOptions Phase(Option<int> phaseEpochs, Option<double> phaseLr, Option<string> phaseOptimizer) => new(
                Epochs: Positive(parse.GetValue(phaseEpochs), phaseEpochs.Name),
                BatchSize: Positive(parse.GetValue(batchSize), "--batch-size"),
                LearningRate: InRange(parse.GetValue(phaseLr), phaseLr.Name, 0, 10, lowerInclusive: false),
                Optimizer: Enum.Parse<OptimizerKind>(parse.GetValue(phaseOptimizer)!, ignoreCase: true),
                Seed: parse.GetValue(seed),
                Patience: Positive(parse.GetValue(patience), "--patience"));
            var options = new TrainOptions
            {
                Backbone = parse.GetValue(backbone),
                WeightsFile = weights.WeightsFile(parse),
                InputSize = weights.Size(parse),
                Strategy = chosen,
                Hidden = parse.GetValue(hidden) is { } h ? Positive(h, "--hidden", allowZero: true) : null,
                Dropout = parse.GetValue(dropout) is { } d ? InRange(d, "--dropout", 0, 1) : null,
                Pooling = parse.GetValue(head) switch { "gap" => Pooling.Gap, "flatten" => Pooling.Flatten, _ => null },
                Unfreeze = parse.GetValue(freezeFirst) is { } ff ? new UnfreezeSpec(FreezeFirstLayers: ff)
                    : parse.GetValue(unfreezeFrom) is { } from ? new UnfreezeSpec(FromLayer: from)
                    : parse.GetValue(unfreeze) is { } top ? new UnfreezeSpec(TopBlocks: top)
                    : null,
                FineTune = Phase(ftEpochs, ftLr, ftOptimizer),
                Augmentation = augment.Read(parse, chosen is Strategy.FineTune or Strategy.Scratch ? TrainOptions.DefaultAugmentation(chosen) : null),
                Schedule = Enum.Parse<LrSchedule>(parse.GetValue(schedule)!.Replace("-", ""), ignoreCase: true),
                DiscriminativeFactor = InRange(parse.GetValue(discriminative), "--discriminative", 0, 1.000001, lowerInclusive: false),
                BalancedClassWeights = parse.GetValue(classWeight) == "balanced",
                FeatureBlock = parse.GetValue(featuresFrom),
                CheckpointPath = outPath + ".checkpoint",
                Resume = parse.GetValue(resume),
                BatchNorm = parse.GetValue(batchNorm),
                SqueezeExcite = parse.GetValue(se),
                Binary = parse.GetValue(binary),
                Resize = parse.GetValue(resize) == "squash" ? ResizeMode.Squash : ResizeMode.CenterCrop,
                ValidationSplit = parse.GetValue(valSplit),
                TestSplit = parse.GetValue(testSplit),
                UseCache = !parse.GetValue(noCache),
                Exclude = parse.GetValue(exclude),
                Precision = parse.GetValue(precision) == "int8" ? Graft.Runtime.Precision.Int8 : Graft.Runtime.Precision.Float,
                Fit = Phase(epochs, lr, optimizer),
                Device = on,
            };
            var progress = new ProgressLine();
            var result = await Learner.TrainAsync(path, options, Cli.Assets, progress.Callbacks, cancel);
            result.Model.Save(outPath);

            Cli.ReportDataset(result.Dataset);
            Cli.ReportSkipped(result.Skipped);
            if (result.AuditSummary is { } found)
                Cli.Out.MarkupLine($"[yellow]audit:[/] {Cli.Escape(found)} (graft audit {Cli.Escape(parse.GetValue(data)!)} lists them, with suggested actions)");
            var fit = result.Fit;
            Cli.Out.MarkupLine($"trained {fit.History.Count} epoch(s), best epoch {fit.BestEpoch}{(fit.StoppedEarly ? " (early stopping)" : "")}, " +
                $"{result.Seconds:0.0}s in all; {(chosen == Strategy.FeatureExtraction ? "head training" : "training")} {fit.SamplesPerSecond:0} samples/s");
            if (result.Test is { } t)
            {
                if (result.Validation is { } v)
                    Cli.Out.MarkupLine($"validation accuracy {v.Accuracy:0.0000} (95% CI {v.AccuracyInterval.Low:0.000}-{v.AccuracyInterval.High:0.000}) on {v.Images} images: it picked the epoch");
                ResultsView.Show(t, "test");
            }
            else if (result.Validation is { } v)
            {
                ResultsView.Show(v, "validation");
                Cli.Out.MarkupLine("[yellow]note:[/] this is a validation accuracy: the same images picked the best epoch, so it is optimistic. " +
                    "A test/ folder, or --test-split 0.2, measures the model on images it never saw.");
            }
            Cli.Out.MarkupLine($"saved [green]{Cli.Escape(Path.GetFullPath(outPath))}[/]");
            if (parse.GetValue(report) is { } folder)
            {
                if (result.Headline is not { } measured)
                    throw new GraftException("--report needs a validation or test set, and this run had none (--val-split 0).", "Use --val-split above 0 or a validation folder.");
                var index = await ModelReport.WriteAsync(result.Model, outPath, measured, null, result.Dataset, result.Skipped, folder, Cli.Assets, cancel: cancel);
                Cli.Out.MarkupLine($"report [green]{Cli.Escape(Path.GetFullPath(index))}[/]");
            }

            if (parse.GetValue(json))
            {
                var payload = ResultsView.Json(result.Headline);
                payload["measured_on"] = result.Test is null ? "validation" : "test";
                payload["validation"] = ResultsView.Summary(result.Validation);
                if (result.Test is not null) payload["test"] = ResultsView.Summary(result.Test);
                payload["model"] = Path.GetFullPath(outPath);
                payload["strategy"] = result.Model.Config.Strategy;
                payload["classes"] = result.Dataset.Classes;
                payload["seconds"] = result.Seconds;
                payload["train_images"] = result.Model.Config.Dataset!.TrainImages;
                payload["validation_images"] = result.Model.Config.Dataset.ValidationImages;
                payload["test_images"] = result.Model.Config.Dataset.TestImages;
                payload["epochs"] = fit.History.Count;
                payload["best_epoch"] = fit.BestEpoch;
                payload["epoch_seconds"] = fit.History.Select(h => h.Seconds).ToList();
                payload["feature_images_per_second"] = result.Features.ImagesPerSecond;
                payload["features_computed"] = result.Features.Computed;
                payload["features_cached"] = result.Features.CacheHits;
                payload["training_samples_per_second"] = fit.SamplesPerSecond;
                payload["skipped"] = result.Skipped;
                payload["audit"] = result.AuditSummary;
                payload["peak_rss_mb"] = Graft.Engine.ProcessStats.PeakRssMb();
                Cli.WriteJson(payload);
            }
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
