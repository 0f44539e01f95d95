using Graft.Data;
using Graft.Models;
using Graft.Weights;

namespace Graft.Evaluation.Report;

/// <summary>The pretrained network's ImageNet predictions for a few images of every class.</summary>
public static class ImageNetView
{
    public static async Task<IReadOnlyList<ImageNetGuess>> SampleAsync(string backbone, IReadOnlyList<LabeledImage> images,
        IReadOnlyList<string> classes, AssetResolver resolver, int perClass = 3, CancellationToken cancel = default)
    {
        var sample = images.GroupBy(i => i.Label).OrderBy(g => g.Key).SelectMany(g => g.Take(perClass)).ToList();
        using var model = ImageClassifier.PretrainedImageNet(backbone, resolver);
        var predictions = await model.PredictAsync(sample.Select(s => s.Path).ToList(), 3, [], cancel: cancel);
        var byFile = predictions.ToDictionary(p => p.File);
        return sample.Where(s => byFile.ContainsKey(s.Path))
            .Select(s => new ImageNetGuess(s.Path, classes[s.Label], byFile[s.Path].Top)).ToList();
    }
}

/// <summary>Assembles and writes the report for an evaluation of a model.</summary>
public static class ModelReport
{
    public static async Task<string> WriteAsync(ImageClassifier model, string? modelPath, EvaluationResult result, EvaluationResult? tta,
        ImageDataset dataset, IReadOnlyList<Training.SkippedImage> skipped, string folder, AssetResolver resolver,
        bool imageNetView = true, CancellationToken cancel = default)
    {
        var summary = ModelSummary.Of(model.Config.Backbone, model.Backbone.Trunk, model.Config.Input.Size, model.Head, model.Config.Head.Pooling);
        var evaluated = result.Items.Select(i => new LabeledImage(i.File, i.Truth)).ToList();
        var view = imageNetView ? await ImageNetView.SampleAsync(model.Config.Backbone, evaluated, result.Classes, resolver, cancel: cancel) : null;
        var title = $"Graft report: {Path.GetFileName(Path.TrimEndingDirectorySeparator(dataset.Root))} ({result.Classes.Count} classes)";
        var content = new ReportContent(title, modelPath is null ? null : Path.GetFullPath(modelPath), model.Config, summary, model.History,
            Path.GetFullPath(dataset.Root), dataset.Layout, skipped, result, tta, view) { DataNotes = dataset.Notes };
        return HtmlReport.Write(content, folder);
    }
}
