using Graft.Inference;
using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Diagnostics;
using Graft.Backbones;
using Graft.Data;
using Graft.Engine;
using Graft.Training;
using Graft.Weights;
using Graft.Imaging;
using Graft.Heads;
using static TorchSharp.torch;

namespace Graft.Audit;

internal sealed record AuditOptions
{
    /// <summary>A label file naming DATA's images and their labels, read instead of class folders (<see cref="TrainOptions.LabelsFile"/>); null: class folders.</summary>
    [Description("A label file (.csv, .tsv or .jsonl; as for train) read instead of class folders.")]
    public string? LabelsFile { get; init; }
    /// <summary>The pretrained backbone whose features are compared (a registry name, or an ONNX image model's file).</summary>
    [Description("The pretrained backbone whose features are compared: a registry name, or an ONNX image model (.onnx).")]
    public string Backbone { get; init; } = BackboneRegistry.Default.Name;
    /// <summary>The backbone's input size; null: its default (an ONNX model's own).</summary>
    public int? InputSize { get; init; }
    /// <summary>What an ONNX backbone does not say about itself.</summary>
    public OnnxBackboneOptions Onnx { get; init; } = new();
    /// <summary>The bottleneck cache's root; null for the user cache (where graft train leaves features).</summary>
    [Description("The bottleneck cache folder; by default the user cache, where training leaves features.")]
    public string? CacheRoot { get; init; }
    /// <summary>The split training uses (same split, same roles: leakage is measured between them).</summary>
    [Description("The share of each class held out for validation when the data has no validation folder (as training holds it out).")]
    [Range(0, 1, MaximumIsExclusive = true)]
    public double ValidationSplit { get; init; } = 0.2;
    /// <summary>The test split training uses (<see cref="TrainOptions.TestSplit"/>): the same images are test images here.</summary>
    [Description("The share of each class held out as a test set when the data has no test folder (as training holds it out).")]
    [Range(0, 1, MaximumIsExclusive = true)]
    public double TestSplit { get; init; }
    /// <summary>Seed of the split, the folds and the learning curve's samples.</summary>
    [Description("Seed of the split, the folds and the learning curve's samples.")]
    public int Seed { get; init; } = 42;
    public int Folds { get; init; } = 5;
    /// <summary>Feature cosine similarity from which two images count as near duplicates.</summary>
    public double NearDuplicateSimilarity { get; init; } = 0.95;
    /// <summary>Robust z-score of neighbour distance from which an image is an outlier.</summary>
    public double OutlierScore { get; init; } = 4;
    /// <summary>Neighbours whose mean distance scores an outlier.</summary>
    public int OutlierNeighbours { get; init; } = 5;
    public bool LearningCurve { get; init; } = true;
    public int Repeats { get; init; } = 3;
    /// <summary>Where the trunk and the probes run.</summary>
    public ComputeDevice Device { get; init; } = ComputeDevice.Cpu;
}

/// <summary>A file Graft cannot or will not use: <c>undecodable</c> (with the decoder's reason) or <c>unsupported format</c>.</summary>
internal sealed record Unusable(string File, string Kind, string Reason);

internal sealed record ClassCount(string Name, int Train, int Validation, int Test)
{
    public int Total => Train + Validation + Test;
}

/// <summary>Everything an audit found; every list most severe first.</summary>
internal sealed record AuditResult(string Root, string Layout, string Backbone, IReadOnlyList<ClassCount> Classes,
    IReadOnlyList<LabelIssue> LabelIssues, IReadOnlyList<DuplicatePair> Duplicates, IReadOnlyList<DuplicatePair> Leakage,
    IReadOnlyList<LeakedShare> Leaked, IReadOnlyList<Outlier> Outliers, IReadOnlyList<Unusable> Unusable, IReadOnlyList<string> Notes,
    ImageStats Images, LearningCurveResult? LearningCurve, IReadOnlyList<AuditAction> Actions, FeatureStats Features, string? CacheWarning, double Seconds)
{
    /// <summary>Whether the data is multi-label: its label check is <see cref="MissingLabels"/> and <see cref="ExtraLabels"/>, not <see cref="LabelIssues"/>.</summary>
    public bool MultiLabel { get; init; }
    /// <summary>How many images the audit read: a multi-label image counts once, though several classes count it.</summary>
    public int ImageCount => MultiLabel ? Images.Images : Classes.Sum(c => c.Total);
    /// <summary>Multi-label data: labels images likely lack, most probable first (empty for single-label data).</summary>
    public IReadOnlyList<LabelChange> MissingLabels { get; init; } = [];
    /// <summary>Multi-label data: labels images likely carry wrongly, least probable first (empty for single-label data).</summary>
    public IReadOnlyList<LabelChange> ExtraLabels { get; init; } = [];
}

/// <summary>
/// The data doctor: label errors, duplicates and leakage, outliers, unusable files, balance and image facts, and a
/// learning curve, all from the bottleneck features training caches (seconds after a first run). Reads only.
/// </summary>
internal static class DataAudit
{
    public static async Task<AuditResult> RunAsync(string data, AuditOptions? options = null, AssetResolver? resolver = null,
        Callbacks? callbacks = null, CancellationToken cancel = default)
    {
        options ??= new AuditOptions();
        var device = TorchDevices.Resolve(options.Device);
        callbacks ??= Callbacks.None;
        var clock = Stopwatch.StartNew();
        var dataset = Open(data, options);
        var labelled = Roles(dataset).ToList();
        var images = labelled.Select(t => new AuditImage(t.Image.Path, LabelName(dataset, t.Image), t.Role)).ToList();
        var paths = images.Select(i => i.File).ToList();

        var source = Source(options);
        using var backbone = BottleneckFeatures.LoadBackbone(source, resolver);
        var features = await BottleneckFeatures.ExtractAsync(paths, backbone, source, callbacks.Images, cancel);
        var rowImage = Enumerable.Range(0, paths.Count).Where(i => features.Rows[i] is not null).ToArray();
        if (rowImage.Length < 2)
            throw new GraftException($"{data}: {rowImage.Length} of its {paths.Count} images could be read; there is nothing to compare.",
                "Replace the damaged images, or check the folder's permissions.");
        var x = rowImage.Select(i => features.Rows[i]!).ToArray();
        var y = rowImage.Select(i => labelled[i].Image.Label).ToArray();
        var rowFiles = rowImage.Select(i => paths[i]).ToList();

        var neighbours = FeatureSpace.Nearest(FeatureSpace.Normalized(x), k: LabelIssues.Asked, device);
        var notes = dataset.Notes.ToList();
        IReadOnlyList<LabelIssue> labelIssues = [];
        var changes = new LabelChangeCheck([], [], []);
        if (dataset.MultiLabel)
        {
            callbacks.Log?.Invoke($"missing and extra labels: {options.Folds}-fold per-label probes on {x.Length} images");
            var rows = rowImage.Select(i => labelled[i].Image).ToArray();
            var probabilities = Probes.OutOfFold(x, rows, dataset.Classes.Count, options.Folds, options.Seed, device);
            changes = LabelChanges.Find(rowFiles, rows.Select(r => r.Labels).ToArray(), probabilities, dataset.Classes, neighbours);
            if (changes.Unjudged.Count > 0)
                notes.Add($"labels not checked: {string.Join(", ", changes.Unjudged)}: fewer than {LabelIssues.MinimumPerClass} readable images carry or lack each, too few to judge it");
        }
        else
        {
            callbacks.Log?.Invoke($"label issues: {options.Folds}-fold linear probes on {x.Length} images");
            var scores = Probes.OutOfFold(x, y, dataset.Classes.Count, options.Folds, options.Seed, device);
            var check = LabelIssues.Find(rowFiles, y, scores, dataset.Classes, neighbours);
            labelIssues = check.Issues;
            if (check.Unjudged.Count > 0)
                notes.Add($"labels not checked in {string.Join(", ", check.Unjudged)}: fewer than {LabelIssues.MinimumPerClass} readable images per class are too few to judge a label");
        }

        callbacks.Log?.Invoke("duplicates and outliers: nearest neighbours in feature space, file hashes");
        var (duplicates, leakage, outliers) = Copies(images, features.ContentKeys, rowImage, neighbours, options);

        var unusable = features.Skipped.Select(s => new Unusable(s.Path, "undecodable", s.Reason))
            .Concat(dataset.Unconverted.Select(f => new Unusable(f, "unsupported format", "Graft does not decode TIFF or HEIC: convert it to JPEG or PNG to use it")))
            .ToList();
        var classes = dataset.Classes.Select((name, c) => new ClassCount(name, Count(dataset.Train, c), Count(dataset.Validation, c), Count(dataset.Test, c))).ToList();
        var headers = ImageHeaders.Measure(paths, backbone.Input.Size);

        LearningCurveResult? curve = null;
        if (options.LearningCurve && dataset.MultiLabel)
            notes.Add("no learning curve: it is measured in single-label accuracy");
        else if (options.LearningCurve)
        {
            callbacks.Log?.Invoke("learning curve: heads on 10, 25, 50 and 100% of the training images");
            curve = MeasureCurve(x, y, rowImage.Select(i => images[i].Role).ToArray(), dataset.Classes, options, device);
        }
        var actions = Suggest(labelIssues, changes, duplicates, leakage, outliers);
        return new AuditResult(dataset.Root, dataset.Layout, options.Backbone, classes, labelIssues, duplicates, leakage,
            Duplicates.Leaked(images, leakage), outliers, unusable, notes, headers, curve, actions, features.Stats, features.CacheWarning,
            clock.Elapsed.TotalSeconds) { MultiLabel = dataset.MultiLabel, MissingLabels = changes.Missing, ExtraLabels = changes.Extra };
    }

    /// <summary>
    /// The audit's one step per image: the features it compares, as the bottleneck cache keys them. Everything else
    /// compares images with each other, so only this step can be split over machines (graft audit --shard computes a
    /// share of the features into a cache the whole audit then reads).
    /// </summary>
    public static FeatureSource Source(AuditOptions options) =>
        new(options.Backbone) { InputSize = options.InputSize, Onnx = options.Onnx, CacheRoot = options.CacheRoot, Device = options.Device };

    /// <summary>DATA as training opens it with the audit's split and label file.</summary>
    static ImageDataset Open(string data, AuditOptions options) =>
        ImageFolder.OpenForTraining(data, options.ValidationSplit, options.Seed, options.TestSplit, options.LabelsFile);

    /// <summary>Every image the audit of <paramref name="data"/> reads, in the ordinal order of their paths.</summary>
    public static IReadOnlyList<string> Images(string data, AuditOptions options) =>
        Roles(Open(data, options)).Select(t => t.Image.Path).Order(StringComparer.Ordinal).ToList();

    /// <summary>
    /// Copies within a part, copies across parts (leakage) and outliers: from the files' content keys (null where a file
    /// could not be read: equal to no other) and the nearest neighbours of the readable images <paramref name="rowImage"/>.
    /// </summary>
    static (List<DuplicatePair> Duplicates, List<DuplicatePair> Leakage, IReadOnlyList<Outlier> Outliers) Copies(
        IReadOnlyList<AuditImage> images, IReadOnlyList<string?> contentKeys, int[] rowImage, Neighbours neighbours, AuditOptions options)
    {
        var hashes = contentKeys.Select((h, i) => h ?? $"unreadable: {images[i].File}").ToList();
        var pairs = Duplicates.Find(images, hashes, neighbours, rowImage, options.NearDuplicateSimilarity);
        return (pairs.Where(p => p.Role == p.OtherRole).ToList(), pairs.Where(p => p.Role != p.OtherRole).ToList(),
            Outliers.Find(images, neighbours, rowImage, options.OutlierNeighbours, options.OutlierScore));
    }

    /// <summary>
    /// The checks training can afford on the features it just computed (no extra trunk pass, no probes): copies, leakage
    /// and outliers, as one sentence, computed on <paramref name="device"/>; null when there is nothing to say.
    /// </summary>
    public static string? QuickSummary(ImageDataset dataset, IReadOnlyList<string?> hashes, float[]?[] rows, Device device)
    {
        var images = Roles(dataset).Select(t => new AuditImage(t.Image.Path, LabelName(dataset, t.Image), t.Role)).ToList();
        var rowImage = Enumerable.Range(0, images.Count).Where(i => rows[i] is not null).ToArray();
        if (rowImage.Length < 3) return null;
        var neighbours = FeatureSpace.Nearest(FeatureSpace.Normalized(rowImage.Select(i => rows[i]!).ToArray()), k: LabelIssues.Asked, device);
        var (duplicates, leakage, outliers) = Copies(images, hashes, rowImage, neighbours, new AuditOptions());
        var parts = new List<string>();
        if (duplicates.Count > 0) parts.Add($"{Plural.Of(duplicates.Count, "duplicate pair")}{(duplicates.Any(d => d.ConflictingLabels) ? $", {duplicates.Count(d => d.ConflictingLabels)} labelled differently" : "")}");
        if (leakage.Count > 0) parts.Add($"{Plural.Of(leakage.Count, "held-out image")} with a copy in an earlier part (leakage)");
        if (outliers.Count > 0) parts.Add($"{Plural.Of(outliers.Count, "outlier")} far from every class (first: {Path.GetFileName(outliers[0].File)})");
        return parts.Count == 0 ? null : string.Join("; ", parts);
    }

    /// <summary>Every image with its role, training first.</summary>
    static IEnumerable<(LabeledImage Image, ImageRole Role)> Roles(ImageDataset dataset) =>
        dataset.Train.Select(i => (Image: i, Role: ImageRole.Train)).Concat(dataset.Validation.Select(i => (Image: i, Role: ImageRole.Validation)))
            .Concat(dataset.Test.Select(i => (Image: i, Role: ImageRole.Test)));

    static int Count(IReadOnlyList<LabeledImage> images, int label) => images.Count(i => i.Labels.Contains(label));

    /// <summary>An image's class, or for multi-label data its labels joined by <c>;</c> (<c>none</c> where it carries none).</summary>
    static string LabelName(ImageDataset dataset, LabeledImage image) =>
        !dataset.MultiLabel ? dataset.Classes[image.Label] : image.Labels.Count == 0 ? "none" : string.Join(";", image.Labels.Select(c => dataset.Classes[c]));

    /// <summary>Evaluated on the validation images; without any, on a stratified fifth of the training images held out.</summary>
    static LearningCurveResult? MeasureCurve(float[][] x, int[] y, ImageRole[] roles, IReadOnlyList<string> classes, AuditOptions options, Device device)
    {
        var train = Enumerable.Range(0, y.Length).Where(r => roles[r] == ImageRole.Train).ToArray();
        var held = Enumerable.Range(0, y.Length).Where(r => roles[r] == ImageRole.Validation).ToArray();
        string evaluatedOn = $"{held.Length} validation images";
        if (held.Length == 0)
        {
            var fold = ImageFolder.StratifiedFolds(train.Select(r => y[r]).ToArray(), 5, options.Seed);
            held = train.Where((_, k) => fold[k] == 0).ToArray();
            train = train.Where((_, k) => fold[k] != 0).ToArray();
            evaluatedOn = $"{held.Length} training images held out (no validation set)";
        }
        if (held.Length == 0 || train.Length < 2 * classes.Count) return null;
        return LearningCurve.Measure(x, y, classes, train, held, evaluatedOn, options.Repeats, options.Seed, device);
    }

    /// <summary>
    /// One action per file, the first that applies: a held-out image's earlier copy is deduplicated (evaluation keeps
    /// its images); copies labelled differently are both removed (which label is right is unknown); a later copy is
    /// deduplicated; a contradicted label is relabelled; an outlier is removed.
    /// </summary>
    static List<AuditAction> Suggest(IReadOnlyList<LabelIssue> labelIssues, LabelChangeCheck changes, IReadOnlyList<DuplicatePair> duplicates,
        IReadOnlyList<DuplicatePair> leakage, IReadOnlyList<Outlier> outliers)
    {
        var actions = new List<AuditAction>();
        var decided = new HashSet<string>();
        void Add(string file, string action, string? label, string reason)
        {
            file = Path.GetFullPath(file); // the CSV is used later, maybe from elsewhere
            if (decided.Add(file)) actions.Add(new AuditAction(file, action, label, reason));
        }
        string Copy(DuplicatePair p) => p.Match == "exact" ? "identical to" : $"a near copy (similarity {p.Similarity:0.000}) of";
        foreach (var p in leakage)
            Add(p.Other, AuditActions.Deduplicate, null, $"{Copy(p)} the {Name(p.Role)} image {p.File}: this {Name(p.OtherRole)} copy leaks it");
        foreach (var p in duplicates.Where(p => p.ConflictingLabels))
        {
            Add(p.File, AuditActions.Remove, null, $"{Copy(p)} {p.Other}, labelled {p.OtherLabel} there");
            Add(p.Other, AuditActions.Remove, null, $"{Copy(p)} {p.File}, labelled {p.Label} there");
        }
        foreach (var p in duplicates.Where(p => !p.ConflictingLabels))
            Add(p.File, AuditActions.Deduplicate, null, $"{Copy(p)} {p.Other}");
        foreach (var i in labelIssues)
            Add(i.File, AuditActions.Relabel, i.Suggested, $"labelled {i.Given}, but the other images say {i.Suggested} ({i.Confidence:0.000}; {i.Given} {i.SelfConfidence:0.000}; {i.Agreeing} of its {i.Nearest} nearest images are {i.Suggested})");
        foreach (var o in outliers)
            Add(o.File, AuditActions.Remove, null, $"far from every class (neighbour distance {o.Distance:0.000}, score {o.Score:0.0})");
        // A multi-label image may need several label changes: one action per label, for files no other action takes.
        foreach (var m in changes.Missing.Where(m => !decided.Contains(Path.GetFullPath(m.File))))
            actions.Add(new AuditAction(Path.GetFullPath(m.File), AuditActions.AddLabel, m.Label, $"lacks {m.Label}, but the other images say {m.Probability:0.000} (those with it: {m.Threshold:0.000} on average; {m.Agreeing} of its {m.Nearest} nearest images carry it)"));
        foreach (var e in changes.Extra.Where(e => !decided.Contains(Path.GetFullPath(e.File))))
            actions.Add(new AuditAction(Path.GetFullPath(e.File), AuditActions.RemoveLabel, e.Label, $"carries {e.Label}, but the other images say {e.Probability:0.000} (those without it: {e.Threshold:0.000} on average; {e.Agreeing} of its {e.Nearest} nearest images lack it)"));
        return actions;
    }

    static string Name(ImageRole role) => role.ToString().ToLowerInvariant();
}
