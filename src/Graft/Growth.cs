using Graft.Data;
using Graft.Evaluation;
using Graft.Models;
using Graft.Training;

namespace Graft;

/// <summary>
/// Growing a model (<see cref="TrainOptions.From"/>): the run takes the model's backbone, input, head and preprocessing, keeps
/// its classes and test images, adds the classes the data has new, and measures both models on the same images.
/// </summary>
internal static class Growing
{
    /// <summary>The model to grow, loaded where the run computes.</summary>
    public static TrainableClassifier Load(string from, TrainOptions options)
    {
        if (!File.Exists(from))
            throw new GraftException($"The model to grow, {from}, does not exist.", "Pass a model file written by training.");
        var model = TrainableClassifier.Load(from, options.Device);
        var strategy = Enum.GetValues<Strategy>().FirstOrDefault(s => s != Strategy.Auto && s.Name() == model.Config.Strategy, Strategy.Auto);
        if (strategy == Strategy.Auto || model.Config.Dataset is null)
        {
            model.Dispose();
            throw new GraftException($"{from} was not trained on a dataset by Graft (its strategy is '{model.Config.Strategy}'): only a trained model can grow.",
                "Train a model on the data instead.");
        }
        if (model.Config.Head.MultiLabel)
        {
            model.Dispose();
            throw new GraftException($"{from} is a multi-label model, and growing continues single-label models only.", "Train a new model on the data.");
        }
        return model;
    }

    /// <summary>
    /// The run's options, the model's where they shape the network: backbone, input size and resize, feature block, head and
    /// precision; what the run asks that differs is refused. The strategy (auto: the model's) must continue the model's trunk:
    /// a trained trunk keeps training as it was trained, a pretrained one may stay frozen or be fine-tuned.
    /// </summary>
    public static TrainOptions Options(TrainableClassifier model, TrainOptions options, string from)
    {
        var c = model.Config;
        var head = c.Head;
        void Conflict(bool conflict, string what, string asked, string has)
        {
            if (conflict)
                throw new GraftException($"{from} has {what} {has}, and the run asks for {asked}: a model grows with its own {what}.",
                    $"Leave the {what} out, or train a new model instead of growing this one.");
        }
        if (options.LabelsFile is { } labels)
            throw new GraftException($"A model grows on class folders, and the run reads its labels from {labels}: growing does not read label files yet.",
                "Put the photos in class folders to grow the model, or train a new model from the label file.");
        bool onnx = c.OnnxTrunk is not null;
        Conflict(options.Backbone is { } b && (onnx || b != c.Backbone), "backbone", options.Backbone!, onnx ? c.OnnxTrunk!.File : c.Backbone);
        Conflict(options.WeightsFile is not null, "backbone weights", options.WeightsFile!, "its own in the file");
        Conflict(!options.Onnx.IsEmpty, "ONNX trunk description", "another", onnx ? "its own" : "none (a registry backbone)");
        Conflict(options.InputSize is { } size && size != c.Input.Size, "input size", $"{options.InputSize}", $"{c.Input.Size}");
        Conflict(options.Resize != new TrainOptions().Resize && options.Resize != c.Input.Resize, "resize", $"{options.Resize}", $"{c.Input.Resize}");
        Conflict(options.FeatureBlock is { } block && block != c.FeatureBlock, "feature block", options.FeatureBlock!, c.FeatureBlock ?? "the trunk's last");
        Conflict(options.Pooling is { } pooling && pooling != head.Pooling, "pooling", $"{options.Pooling}", $"{head.Pooling}");
        Conflict(options.Hidden is { } hidden && hidden != head.Hidden, "hidden layer", $"{options.Hidden} units", $"{head.Hidden} units");
        Conflict(options.BatchNorm && !head.BatchNorm, "head batch norm", "it", "none");
        Conflict(options.SqueezeExcite && !head.SqueezeExcite, "squeeze-and-excitation block", "one", "none");
        Conflict(options.Binary && !head.Binary, "output", "one binary output", $"{head.Classes} softmax outputs");
        var precision = c.Precision ?? Runtime.Precision.Float;
        Conflict(options.Precision != new TrainOptions().Precision && options.Precision != precision, "trunk precision", $"{options.Precision}", $"{precision}");
        var earlier = StrategyNames.Parse(c.Strategy);
        var strategy = options.Strategy == Strategy.Auto ? earlier : options.Strategy;
        bool continues = strategy == earlier || earlier == Strategy.FeatureExtraction && strategy == Strategy.FineTune && !onnx;
        if (!continues)
            throw new GraftException($"{from} was trained with {earlier.Name()}, and the run asks for {strategy.Name()}: " +
                (earlier == Strategy.FeatureExtraction ? "its trunk is the pretrained one, which cannot start over from scratch." : "its trunk was trained, so it grows by the same strategy.") +
                (onnx ? " An ONNX trunk stays frozen." : ""),
                $"Use the {earlier.Name()} strategy (or leave the strategy to the model).");
        return options with
        {
            Strategy = strategy, Backbone = onnx ? null : c.Backbone, InputSize = c.Input.Size, Resize = c.Input.Resize, FeatureBlock = c.FeatureBlock,
            Pooling = head.Pooling, Hidden = head.Hidden, Dropout = options.Dropout ?? head.Dropout, BatchNorm = head.BatchNorm,
            SqueezeExcite = head.SqueezeExcite, Binary = head.Binary, Precision = precision,
            TestSplit = options.TestSplit > 0 ? options.TestSplit : c.Dataset!.TestSplit,
        };
    }

    /// <summary>What the model fixes about the data it grows on: its classes first, its test images kept.</summary>
    public static EarlierRoles Roles(TrainableClassifier model) => new(model.Classes, model.Config.Dataset?.TestFiles);

    /// <summary>Whether the model's trunk is the pretrained one, whose features the bottleneck cache holds under the model's key.</summary>
    public static bool PretrainedTrunk(TrainableClassifier model) => model.Config.Strategy == Strategy.FeatureExtraction.Name();

    /// <summary>Refuses data the model cannot grow on: multi-label, another class order, or new classes for a binary head.</summary>
    public static void CheckData(TrainableClassifier model, ImageDataset dataset, string from)
    {
        if (dataset.MultiLabel)
            throw new GraftException($"{dataset.Root} is multi-label, and growing continues a single-label model ({from}).", "Train a new model on it.");
        var earlier = model.Classes;
        if (dataset.Classes.Count < earlier.Count || !dataset.Classes.Take(earlier.Count).SequenceEqual(earlier))
            throw new GraftException($"The classes of {dataset.Root} do not begin with those of {from} ({string.Join(", ", earlier)}), in its order.",
                "Open the data with the model's classes first.");
        if (model.Config.Head.Binary && dataset.Classes.Count > 2)
            throw new GraftException($"{from} has one binary output, which cannot take the new class(es) {string.Join(", ", dataset.Classes.Skip(2))}.",
                "Train a new model without the binary output.");
    }

    /// <summary>The grown model's config: the model's network and preprocessing, the data's classes, the run's training settings.</summary>
    public static ModelConfig Config(TrainableClassifier model, ImageDataset dataset, TrainOptions options)
    {
        bool fineTune = options.Strategy == Strategy.FineTune;
        var c = model.Config;
        return c with
        {
            Classes = dataset.Classes, Head = c.Head with { Classes = dataset.Classes.Count, Dropout = options.DropoutOrDefault },
            Strategy = options.Strategy.Name(), Training = options.Fit, Dataset = null, CreatedUtc = DateTime.UtcNow,
            FineTune = fineTune ? options.FineTuneOrDefault : c.FineTune,
            Unfreeze = fineTune ? options.UnfreezeOrDefault : c.Unfreeze,
            Augmentation = options.Strategy != Strategy.FeatureExtraction ? options.AugmentationOrDefault : null,
            WeightsSha256 = null, LearningRateSearch = null, TemperatureScaling = null, OutOfDistribution = null,
        };
    }

    /// <summary>The images both models are measured on: the run's test images, or its validation images without any.</summary>
    public static (IReadOnlyList<LabeledImage> Images, string Part) Measured(ImageDataset dataset) =>
        dataset.Test.Count > 0 ? (dataset.Test, "test") : (dataset.Validation, "validation");

    /// <summary>
    /// The comparison: <paramref name="before"/> (the earlier model on the measured images of its classes) and
    /// <paramref name="after"/> (the grown model on all of them), per class.
    /// </summary>
    public static GrowthResult Compare(string from, IReadOnlyList<string> earlier, ImageDataset dataset, string part, EvaluationResult? before,
        EvaluationResult? after)
    {
        static double? Share(IEnumerable<ScoredImage> items) => items.ToList() is { Count: > 0 } list ? list.Count(i => i.Correct) / (double)list.Count : null;
        var afterItems = after?.Items ?? [];
        var beforeItems = before?.Items ?? [];
        var perClass = dataset.Classes.Select((name, c) => new ClassGrowth(name, afterItems.Count(i => i.Truth == c),
            Share(beforeItems.Where(i => i.Truth == c)), Share(afterItems.Where(i => i.Truth == c)), c >= earlier.Count)).ToList();
        var listed = dataset.All.Select(i => i.Label).ToHashSet();
        return new GrowthResult(from, dataset.Classes.Skip(earlier.Count).ToList(), earlier.Where((_, c) => !listed.Contains(c)).ToList(), part, perClass)
        {
            Before = Share(beforeItems), AfterOnEarlierClasses = Share(afterItems.Where(i => i.Truth < earlier.Count)), After = Share(afterItems),
        };
    }
}
