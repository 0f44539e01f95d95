using Graft.Data;
using Graft.Models;
using Graft.Weights;
using Graft.Imaging;
using Graft.Inference;
using Graft.Evaluation;

namespace Graft.Reports;

/// <summary>The pretrained network's ImageNet predictions for a few images of every class.</summary>
internal static class ImageNetView
{
    public static async Task<IReadOnlyList<ImageNetGuess>> SampleAsync(string backbone, IReadOnlyList<LabeledImage> images,
        IReadOnlyList<string> classes, AssetResolver resolver, int perClass = 3, CancellationToken cancel = default)
    {
        var sample = images.GroupBy(i => i.Label).OrderBy(g => g.Key).SelectMany(g => g.Take(perClass)).ToList();
        using var model = TrainableClassifier.PretrainedImageNet(backbone, resolver);
        var predictions = await model.PredictAsync(sample.Select(s => s.Path).ToList(), 3, [], cancel: cancel);
        var byFile = predictions.ToDictionary(p => p.File);
        return sample.Where(s => byFile.ContainsKey(s.Path))
            .Select(s => new ImageNetGuess(s.Path, classes[s.Label], byFile[s.Path].Top)).ToList();
    }
}

/// <summary>Assembles and writes the report for an evaluation of a model.</summary>
internal static class ModelReport
{
    /// <param name="audit">Audit the dataset (from cached features: seconds after training) and show its findings about the
    /// evaluated images apart from the model's mistakes.</param>
    public static async Task<string> WriteAsync(TrainableClassifier model, string? modelPath, EvaluationResult result, EvaluationResult? tta,
        ImageDataset dataset, IReadOnlyList<SkippedImage> skipped, string folder, AssetResolver resolver,
        bool imageNetView = true, bool audit = true, GrowthResult? growth = null, CancellationToken cancel = default)
    {
        if (model.Config.Head.MultiLabel)
            throw new GraftException("The model is multi-label: its report is written from a multi-label evaluation.", "Evaluate it with EvaluateMultiLabelAsync and write that report.");
        Audit.AuditResult? findings = null;
        var notes = dataset.Notes.ToList();
        // An ONNX trunk has no registry network to audit with or to show ImageNet guesses of, and no feature map for heat maps.
        bool onnx = model.Config.OnnxTrunk is not null;
        if (onnx)
        {
            (audit, imageNetView) = (false, false);
            notes.Add($"the trunk is the ONNX model {model.Config.OnnxTrunk!.File}, which gives pooled features only: no heat maps, shortcut check, data audit or ImageNet view");
        }
        if (audit)
        {
            var trained = model.Config.Dataset;
            try
            {
                findings = await Audit.DataAudit.RunAsync(dataset.Root, new Audit.AuditOptions
                {
                    Backbone = model.Config.Backbone, LearningCurve = false,
                    ValidationSplit = trained?.ValidationSplit ?? 0.2, TestSplit = trained?.TestSplit ?? 0, Seed = trained?.Seed ?? 42,
                }, resolver, cancel: cancel);
            }
            catch (GraftException e)
            {
                notes.Add($"the data audit could not run ({e.Problem})");
            }
        }
        var images = Path.Combine(folder, "images");
        Directory.CreateDirectory(images);
        // Where the network looked: the heat map of each shown image's predicted class, and a check for shortcuts.
        var (mistakes, leastConfident) = HtmlReport.Shown(result);
        var shown = mistakes.Concat(leastConfident).ToList();
        var heatmaps = onnx ? new Dictionary<string, string>() : await Overlays(model, shown.Select(i => i.File).ToList(), shown.Select(i => i.Predicted).ToList(), images, "heat", cancel);
        var shortcuts = audit ? await ShortcutProblemsAsync(model, result, images, heatmaps, cancel) : [];
        var evaluated = result.Items.Select(i => new LabeledImage(i.File, i.Truth)).ToList();
        var view = imageNetView ? await ImageNetView.SampleAsync(model.Config.Backbone, evaluated, result.Classes, resolver, cancel: cancel) : null;
        var content = new ReportContent(Page(model, modelPath, dataset, skipped, result.Classes.Count) with { DataNotes = notes }, result, tta, view)
        {
            Growth = growth, DataProblems = shortcuts.Concat(Problems(findings, result)).DistinctBy(p => Path.GetFullPath(p.File)).ToList(), Heatmaps = heatmaps,
        };
        return HtmlReport.Write(content, folder);
    }

    /// <summary>Writes the report of a multi-label model's evaluation (<see cref="MultiLabelReport"/>): index.html's path.</summary>
    public static string WriteMultiLabel(TrainableClassifier model, string? modelPath, MultiLabelResult result, ImageDataset dataset,
        IReadOnlyList<SkippedImage> skipped, string folder)
    {
        return MultiLabelReport.Write(new MultiLabelReportContent(Page(model, modelPath, dataset, skipped, result.Classes.Count), result), folder);
    }

    /// <summary>
    /// What every report's page says of the model and the data: its title, the model's summary, the data's notes, and which
    /// part of the data was measured within which whole. A training run's dataset holds every role and is measured as
    /// TrainingResult.Headline is: on its test images, else its validation images.
    /// </summary>
    static ReportPage Page(TrainableClassifier model, string? modelPath, ImageDataset dataset, IReadOnlyList<SkippedImage> skipped, int classes)
    {
        var summary = ModelSummary.Of(model.Config.Backbone, model.Backbone, model.Config.Input.Size, model.Head, model.Config.Head.Pooling);
        var (part, whole) = dataset.Part is { } p ? (p, dataset.Whole)
            : dataset.Train.Count > 0 ? (dataset.Test.Count > 0 ? "test" : "validation", dataset) : ((string?)null, (ImageDataset?)null);
        return new ReportPage($"Graft report: {Path.GetFileName(Path.TrimEndingDirectorySeparator(dataset.Root))} ({classes} classes)",
            modelPath is null ? null : Path.GetFullPath(modelPath), model.Config, summary, model.History, Path.GetFullPath(dataset.Root), dataset.Layout, skipped)
        {
            Part = part, Whole = whole, DataNotes = dataset.Notes.ToList(),
        };
    }

    /// <summary>Each file's heat map of its class, over the photo, written into the report's images folder: file → src (unreadable files left out).</summary>
    static async Task<Dictionary<string, string>> Overlays(TrainableClassifier model, IReadOnlyList<string> files, IReadOnlyList<int> classes, string images,
        string prefix, CancellationToken cancel)
    {
        var maps = await model.HeatMapsAsync(files, classes, cancel: cancel);
        var overlays = new Dictionary<string, string>();
        for (int i = 0; i < files.Count; i++)
            if (maps[i] is { } map && !overlays.ContainsKey(files[i]))
            {
                var name = $"{prefix}_{i:D4}.png";
                ImageLoader.PlaceHeatMap(files[i], map, model.Config.Input.Resize, Path.Combine(images, name));
                overlays[files[i]] = "images/" + name;
            }
        return overlays;
    }

    /// <summary>
    /// The shortcut check (<see cref="Audit.Shortcuts"/>) on the heat maps of the labelled class of up to
    /// <see cref="Audit.ShortcutOptions.ImagesPerClass"/> evaluated images per class; a few images of each flagged class
    /// become data problems, their heat maps added to <paramref name="heatmaps"/>.
    /// </summary>
    static async Task<IReadOnlyList<DataProblem>> ShortcutProblemsAsync(TrainableClassifier model, EvaluationResult result, string images,
        Dictionary<string, string> heatmaps, CancellationToken cancel)
    {
        var options = new Audit.ShortcutOptions();
        var sample = result.Items.GroupBy(i => i.Truth).SelectMany(g => g.OrderBy(i => i.File, StringComparer.Ordinal).Take(options.ImagesPerClass)).ToList();
        var maps = await model.HeatMapsAsync(sample.Select(i => i.File).ToList(), sample.Select(i => i.Truth).ToList(), cancel: cancel);
        var peaks = sample.Select((item, i) => (item, map: maps[i])).Where(t => t.map is not null)
            .Select(t => new Audit.HeatMapPeak(t.item.File, t.item.Truth, t.map!.Peak.X, t.map.Peak.Y)).ToList();
        var problems = new List<DataProblem>();
        foreach (var finding in Audit.Shortcuts.Find(peaks, result.Classes, options))
        {
            var examples = finding.Examples.Take(4).ToList();
            int label = result.Classes.ToList().IndexOf(finding.Class);
            foreach (var (file, src) in await Overlays(model, examples, examples.Select(_ => label).ToList(), images, $"shortcut_{label}", cancel))
                heatmaps.TryAdd(file, src);
            problems.AddRange(examples.Select(file => new DataProblem(file, "shortcut", Audit.Shortcuts.Describe(finding))));
        }
        return problems;
    }

    /// <summary>The audit's findings that concern the evaluated images, most severe first, one per image.</summary>
    static IReadOnlyList<DataProblem> Problems(Audit.AuditResult? audit, EvaluationResult result)
    {
        if (audit is null) return [];
        var evaluated = result.Items.Select(i => Path.GetFullPath(i.File)).ToHashSet();
        bool Here(string file) => evaluated.Contains(Path.GetFullPath(file));
        var problems = audit.Outliers.Where(o => Here(o.File)).Select(o => new DataProblem(o.File, "outlier", $"far from every class (score {o.Score:0.0}): maybe not a photo of any class"))
            .Concat(audit.LabelIssues.Where(i => Here(i.File)).Select(i => new DataProblem(i.File, "label", $"labelled {i.Given}; the other images say {i.Suggested} ({i.Confidence:0.00})")))
            .Concat(audit.Leakage.Concat(audit.Duplicates).SelectMany(p => new[] { (File: p.File, Other: p.Other, Pair: p), (File: p.Other, Other: p.File, Pair: p) })
                .Where(t => Here(t.File)).Select(t => new DataProblem(t.File, t.Pair.Role != t.Pair.OtherRole ? "leakage" : "duplicate",
                    $"{(t.Pair.Match == "exact" ? "identical to" : $"a near copy ({t.Pair.Similarity:0.000}) of")} {t.Other}" +
                    (t.Pair.ConflictingLabels ? $", labelled {(t.File == t.Pair.File ? t.Pair.OtherLabel : t.Pair.Label)} there" : ""))));
        return problems.DistinctBy(p => Path.GetFullPath(p.File)).ToList();
    }
}
