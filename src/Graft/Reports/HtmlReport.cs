using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Graft.Data;
using Graft.Models;
using Graft.Training;
using Graft.Imaging;
using Graft.Heads;
using Graft.Inference;
using Graft.Evaluation;

namespace Graft.Reports;

/// <summary>Something wrong with an image rather than with the model (from the data audit and the heat maps): kind "outlier", "label", "duplicate", "leakage" or "shortcut".</summary>
internal sealed record DataProblem(string File, string Kind, string Detail);

/// <summary>What the pretrained network's own ImageNet classifier thinks an image is.</summary>
internal sealed record ImageNetGuess(string File, string TrueClass, IReadOnlyList<ClassProbability> Top);

/// <summary>What every report page shows beside its figures: the model, its training, and the data it was measured on.</summary>
internal record ReportPage(
    string Title,
    string? ModelPath,
    ModelConfig Model,
    ModelSummary Summary,
    IReadOnlyList<EpochRecord> History,
    string DataRoot,
    string DataLayout,
    IReadOnlyList<SkippedImage> Skipped)
{
    /// <summary>Which part of the data the evaluated images are ("test", "validation", "training"); null where they are all of it.</summary>
    public string? Part { get; init; }

    /// <summary>The whole split the evaluated part was held out of, every role; null where there is none to show.</summary>
    public ImageDataset? Whole { get; init; }

    /// <summary>What the data folder's reading noted (e.g. that these images picked the epoch), one sentence each.</summary>
    public IReadOnlyList<string> DataNotes { get; init; } = [];
}

/// <summary>Everything one single-label report shows.</summary>
internal sealed record ReportContent : ReportPage
{
    public ReportContent(ReportPage page, EvaluationResult result, EvaluationResult? tta = null, IReadOnlyList<ImageNetGuess>? imageNetView = null) : base(page) =>
        (Result, Tta, ImageNetView) = (result, tta, imageNetView);

    /// <summary>The evaluation shown.</summary>
    public EvaluationResult Result { get; }

    /// <summary>The same images with test-time augmentation (null: none).</summary>
    public EvaluationResult? Tta { get; }

    /// <summary>The pretrained network's ImageNet guesses for a few images (null: not shown).</summary>
    public IReadOnlyList<ImageNetGuess>? ImageNetView { get; }

    /// <summary>The data audit's findings about the evaluated images, shown apart from the model's mistakes.</summary>
    public IReadOnlyList<DataProblem> DataProblems { get; init; } = [];

    /// <summary>A grown model: the earlier and the grown model on the same images, per class (null: the model did not grow).</summary>
    public GrowthResult? Growth { get; init; }

    /// <summary>Heat maps of where the network looked (PNG over the photo), by image file: their src in the report folder.</summary>
    public IReadOnlyDictionary<string, string> Heatmaps { get; init; } = new Dictionary<string, string>();
}

/// <summary>
/// A self-contained report folder: index.html (inline CSS, no scripts or fonts from elsewhere), the confusion
/// matrix and training curves as PNG, and a thumbnail of every misclassified image. The numbers behind the
/// page are embedded as JSON (id "graft-report-data") so checks can compare page and data.
/// </summary>
internal static class HtmlReport
{
    public const int ThumbnailSize = 180;

    public static string Write(ReportContent content, string folder)
    {
        var (images, curves) = PrepareFolder(content, folder);
        var r = content.Result;
        Charts.ConfusionMatrix(r, Path.Combine(folder, "confusion_matrix.png"));
        if (r.Calibration is { } calibration) Charts.ReliabilityDiagram(calibration, Path.Combine(folder, "reliability_diagram.png"));

        var (mistakes, leastConfident) = Shown(r);
        var thumbnails = new Dictionary<string, string>();
        var inputs = new Dictionary<string, string>();
        foreach (var (item, n) in mistakes.Concat(leastConfident).Select((m, n) => (m, n)))
        {
            thumbnails[item.File] = Thumbnail(item.File, images, $"scored_{n:D4}.jpg");
            inputs[item.File] = NetworkInput(item.File, images, $"scored_{n:D4}_input.jpg", content.Model.Input);
        }
        foreach (var (problem, n) in content.DataProblems.Select((p, n) => (p, n)))
            thumbnails.TryAdd(problem.File, Thumbnail(problem.File, images, $"problem_{n:D4}.jpg"));
        var problems = content.DataProblems.ToDictionary(p => p.File);
        foreach (var (guess, n) in (content.ImageNetView ?? []).Select((g, n) => (g, n)))
            thumbnails.TryAdd(guess.File, Thumbnail(guess.File, images, $"imagenet_{n:D4}.jpg"));

        var html = Begin(content);

        html.Append("<section class=\"cards\">");
        var ci = r.AccuracyInterval;
        Card(html, FormattableString.Invariant($"{(content.Part is { } part ? part + " " : "")}accuracy (95% CI {ci.Low:0.000}-{ci.High:0.000})"), r.Accuracy.ToString("0.0000", CultureInfo.InvariantCulture), "accuracy");
        if (r.Classes.Count > r.TopK) // with k classes or fewer, top-k is always right
            Card(html, $"top-{r.TopK} accuracy", r.TopKAccuracy.ToString("0.0000", CultureInfo.InvariantCulture), "top-k-accuracy");
        if (content.Tta is { } tta) Card(html, "accuracy with TTA (mirror)", tta.Accuracy.ToString("0.0000", CultureInfo.InvariantCulture), "tta-accuracy");
        Card(html, "loss", r.Loss.ToString("0.0000", CultureInfo.InvariantCulture), "loss");
        if (r.Calibration is { } ece) Card(html, "calibration error (ECE)", ece.Ece.ToString("0.000", CultureInfo.InvariantCulture), "ece");
        Card(html, "images", r.Images.ToString(), "images");
        Card(html, "misclassified", mistakes.Count.ToString(), "misclassified");
        html.Append("</section>\n");

        Dataset(html, content, r.Classes, r.Support, r.Images);
        PerClass(html, r);
        if (content.Growth is { } growth) Growth(html, growth);
        Confusion(html, r, mistakes);
        DataProblems(html, content.DataProblems, thumbnails, content.Heatmaps);
        Gallery(html, r, mistakes, thumbnails, inputs, content.Heatmaps, problems);
        LeastConfident(html, r, leastConfident, thumbnails, inputs, content.Heatmaps);
        if (r.Calibration is { } c) CalibrationSection(html, c, r.Images);
        if (curves) Training(html, content);
        ModelSection(html, content);
        if (content.ImageNetView is { Count: > 0 } view) ImageNet(html, view, thumbnails, content.Model.Backbone);

        var data = new
        {
            accuracy = r.Accuracy,
            ci_low = ci.Low,
            ci_high = ci.High,
            interval = "95% Wilson score interval",
            top_k = r.TopK,
            top_k_accuracy = r.TopKAccuracy,
            tta_accuracy = content.Tta?.Accuracy,
            loss = r.Loss,
            images = r.Images,
            classes = r.Classes,
            confusion_matrix = r.ConfusionMatrix,
            misclassified = mistakes.Select(m => m.File).ToList(),
            calibration = r.Calibration is { } cal ? new { ece = cal.Ece, ece_before = cal.EceBefore, temperature = cal.Temperature } : null,
            heatmaps = content.Heatmaps.Count,
            growth = content.Growth is { } g ? new
            {
                from = g.From, classes_added = g.ClassesAdded, measured_on = g.MeasuredOn, before = g.Before, after = g.After,
                per_class = g.PerClass.Select(c => new { @class = c.Class, added = c.Added, images = c.Images, before = c.Before, after = c.After, change = c.Change }).ToList(),
            } : null,
        };
        return End(html, data, folder);
    }

    /// <summary>Creates the report folder and its images folder (its path), and draws the training curves (whether there are any) and the learning-rate search.</summary>
    internal static (string Images, bool Curves) PrepareFolder(ReportPage content, string folder)
    {
        var images = Path.Combine(folder, "images");
        Directory.CreateDirectory(images);
        bool curves = content.History.Count > 0;
        if (curves) Charts.TrainingCurves(content.History, Path.Combine(folder, "training_curves.png"));
        if (content.Model.LearningRateSearch is { } search) Charts.LearningRateSearch(search, Path.Combine(folder, "learning_rate.png"));
        return (images, curves);
    }

    /// <summary>A page's head and its header: title, backbone, strategy, model file and when it was written.</summary>
    internal static StringBuilder Begin(ReportPage content)
    {
        var html = new StringBuilder();
        Head(html, content.Title);
        html.Append($"<header><h1>{E(content.Title)}</h1><p class=\"muted\">{E(content.Model.Backbone)} · {E(content.Model.Strategy)} · " +
                    $"{E(content.ModelPath ?? "")} · report written {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC</p></header>\n");
        return html;
    }

    /// <summary>Ends a page with the numbers behind it (JSON, id "graft-report-data") and the image check, and writes it as index.html: its path.</summary>
    internal static string End(StringBuilder html, object data, string folder)
    {
        // "</" inside JSON would end the script element; the escaping encoder prevents it.
        html.Append($"<script type=\"application/json\" id=\"graft-report-data\">{JsonSerializer.Serialize(data)}</script>\n");
        html.Append(ImageCheckScript);
        html.Append("</main></body></html>\n");
        var index = Path.Combine(folder, "index.html");
        File.WriteAllText(index, html.ToString());
        return index;
    }

    /// <summary>
    /// The scored images a report shows: every misclassified one, most confident first (fastai's plot_top_losses), and the
    /// 12 correct answers the model was least sure of (where the next mistakes will come from).
    /// </summary>
    public static (List<ScoredImage> Mistakes, List<ScoredImage> LeastConfident) Shown(EvaluationResult r) =>
        (r.Items.Where(i => !i.Correct).OrderByDescending(i => i.Confidence).ThenBy(i => i.File, StringComparer.Ordinal).ToList(),
         r.Items.Where(i => i.Correct).OrderBy(i => i.Confidence).ThenBy(i => i.File, StringComparer.Ordinal).Take(12).ToList());

    internal static string Thumbnail(string source, string folder, string name) =>
        ImageFile(folder, name, target => ImageLoader.WriteThumbnail(source, target, ThumbnailSize));

    /// <summary>The crop the network saw, at its input size (empty when the file cannot be decoded).</summary>
    internal static string NetworkInput(string source, string folder, string name, ImageSpec input) =>
        ImageFile(folder, name, target => ImageLoader.WriteNetworkInput(source, target, input.Size, input.Resize));

    /// <summary>Writes an image into the report's images folder: its src, or empty when the source cannot be decoded.</summary>
    static string ImageFile(string folder, string name, Action<string> write)
    {
        try
        {
            write(Path.Combine(folder, name));
            return "images/" + name;
        }
        catch (ImageDecodeException)
        {
            return "";
        }
    }

    internal static void Head(StringBuilder html, string title) => html.Append($$"""
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{E(title)}}</title>
        <style>
        body { font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; margin: 0; color: #1d2430; background: #f6f7f9; }
        main { max-width: 1200px; margin: 0 auto; padding: 24px; }
        header h1 { margin: 0 0 4px; font-size: 26px; }
        .muted { color: #6a7380; font-size: 14px; }
        section { background: #fff; border: 1px solid #e2e5ea; border-radius: 8px; padding: 16px 20px; margin: 16px 0; }
        section h2 { margin-top: 0; font-size: 19px; }
        .cards { display: flex; gap: 12px; flex-wrap: wrap; background: none; border: none; padding: 0; }
        .card { background: #fff; border: 1px solid #e2e5ea; border-radius: 8px; padding: 12px 18px; min-width: 130px; }
        .card .value { font-size: 26px; font-weight: 600; }
        .card .label { color: #6a7380; font-size: 13px; }
        table { border-collapse: collapse; font-size: 14px; }
        th, td { border-bottom: 1px solid #e2e5ea; padding: 5px 10px; text-align: right; }
        th:first-child, td:first-child { text-align: left; }
        td.diag { background: #e3f4e6; font-weight: 600; } td.off { background: #fbe4e4; }
        .gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)); gap: 12px; }
        .item { border: 1px solid #e2e5ea; border-radius: 6px; padding: 8px; font-size: 13px; background: #fff; }
        .item img { width: 100%; height: 160px; object-fit: contain; background: #f0f1f3; }
        .item .pair { display: flex; gap: 4px; } .item .pair img { flex: 1; min-width: 0; width: auto; }
        td a { color: inherit; }
        .item .path { color: #6a7380; word-break: break-all; font-size: 11px; }
        .wrong { color: #b3261e; font-weight: 600; } .right { color: #1b7a33; font-weight: 600; }
        img.chart { max-width: 100%; }
        code { font-size: 13px; }
        </style></head><body><main>

        """);

    internal static void Card(StringBuilder html, string label, string value, string id) =>
        html.Append($"<div class=\"card\" id=\"card-{id}\"><div class=\"value\">{E(value)}</div><div class=\"label\">{E(label)}</div></div>");

    /// <summary>The data: images of each class per role (an image counts for every class it carries), the notes, the skipped files.</summary>
    internal static void Dataset(StringBuilder html, ReportPage c, IReadOnlyList<string> classes, IReadOnlyList<int> support, int evaluated)
    {
        string measured = c.Part is { } part ? $"the {part} images" : "every image";
        html.Append($"<section id=\"dataset\"><h2>Dataset</h2><p><code>{E(c.DataRoot)}</code> — {E(c.DataLayout)}; {classes.Count} classes. " +
                    $"Measured on {measured}: {evaluated} evaluated.</p>");
        if (c.Whole is { } whole)
        {
            int Count(IReadOnlyList<LabeledImage> images, int label) => images.Count(i => i.Labels.Contains(label));
            html.Append("<table><tr><th>class</th><th>train</th><th>validation</th><th>test</th><th>evaluated</th></tr>");
            var labelOf = whole.Classes.Select((name, label) => (name, label)).ToDictionary(t => t.name, t => t.label);
            for (int i = 0; i < classes.Count; i++)
            {
                int label = labelOf.GetValueOrDefault(classes[i], -1);
                string Cell(IReadOnlyList<LabeledImage> images) => label < 0 ? "" : Count(images, label).ToString();
                html.Append($"<tr><td>{E(classes[i])}</td><td>{Cell(whole.Train)}</td><td>{Cell(whole.Validation)}</td><td>{Cell(whole.Test)}</td><td>{support[i]}</td></tr>");
            }
            html.Append($"<tr><th>all</th><th>{whole.Train.Count}</th><th>{whole.Validation.Count}</th><th>{whole.Test.Count}</th><th>{evaluated}</th></tr></table>");
        }
        else
        {
            html.Append("<table><tr><th>class</th><th>evaluated</th></tr>");
            for (int i = 0; i < classes.Count; i++) html.Append($"<tr><td>{E(classes[i])}</td><td>{support[i]}</td></tr>");
            html.Append("</table>");
        }
        foreach (var note in c.DataNotes) html.Append($"<p class=\"note\">Note: {E(note)}</p>");
        if (c.Skipped.Count > 0)
        {
            html.Append($"<p>Skipped {Plural.Of(c.Skipped.Count, "file")} that could not be read:</p><ul>");
            foreach (var s in c.Skipped) html.Append($"<li><code>{E(s.Path)}</code>: {E(s.Reason)}</li>");
            html.Append("</ul>");
        }
        else html.Append("<p class=\"muted\">No file was skipped.</p>");
        html.Append("</section>\n");
    }

    static void PerClass(StringBuilder html, EvaluationResult r)
    {
        static string WithInterval(double value, Interval i) => FormattableString.Invariant($"{value:0.000} <span class=\"muted\">({i.Low:0.00}-{i.High:0.00})</span>");
        html.Append("<section id=\"per-class\"><h2>Per-class metrics</h2><table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>");
        foreach (var c in r.PerClass)
            html.Append($"<tr><td>{E(c.Class)}</td><td>{WithInterval(c.Precision, c.PrecisionInterval)}</td><td>{WithInterval(c.Recall, c.RecallInterval)}</td><td>{c.F1:0.000}</td><td>{c.Support}</td></tr>");
        html.Append("</table><p class=\"muted\">In brackets: 95% Wilson score intervals (precision over the images predicted as the class, recall over its images).</p></section>\n");
    }

    /// <summary>A grown model's classes: the earlier model's accuracy on the same images before growing, the grown one's after.</summary>
    static void Growth(StringBuilder html, GrowthResult g)
    {
        static string Share(double? x) => x is { } v ? v.ToString("0.000", CultureInfo.InvariantCulture) : "—";
        static string Change(double? x) => x is { } v ? v.ToString("+0.000;-0.000;0.000", CultureInfo.InvariantCulture) : "—";
        html.Append($"<section id=\"growth\"><h2>Before and after growing</h2><p>Grown from <code>{E(g.From)}</code>" +
            (g.ClassesAdded.Count > 0 ? $", adding {E(string.Join(", ", g.ClassesAdded))}" : "") + $". Accuracy on the same {E(g.MeasuredOn)} images: " +
            "the earlier model on the classes it knew, the grown model on all.</p><table id=\"growth-table\"><tr><th>class</th><th>images</th><th>before</th><th>after</th><th>change</th></tr>");
        foreach (var c in g.PerClass)
            html.Append($"<tr><td>{E(c.Class)}{(c.Added ? " <span class=\"muted\">(new)</span>" : "")}</td><td>{c.Images}</td><td>{Share(c.Before)}</td><td>{Share(c.After)}</td><td>{Change(c.Change)}</td></tr>");
        html.Append($"<tr><th>earlier classes</th><td>{g.EarlierImages}</td><td>{Share(g.Before)}</td><td>{Share(g.AfterOnEarlierClasses)}</td>" +
            $"<td>{Change(g.Change)}</td></tr></table></section>\n");
    }

    /// <summary>The confusion matrix; each cell of mistakes links to its first (most confident) image in the gallery.</summary>
    static void Confusion(StringBuilder html, EvaluationResult r, List<ScoredImage> mistakes)
    {
        var linked = mistakes.GroupBy(m => (m.Truth, m.Predicted)).ToDictionary(g => g.Key, g => g.First().File);
        html.Append("<section id=\"confusion\"><h2>Confusion matrix</h2><img class=\"chart\" src=\"confusion_matrix.png\" alt=\"confusion matrix heat map\">");
        html.Append("<table id=\"confusion-matrix\"><tr><th>true \\ predicted</th>");
        foreach (var c in r.Classes) html.Append($"<th>{E(c)}</th>");
        html.Append("</tr>");
        for (int t = 0; t < r.Classes.Count; t++)
        {
            html.Append($"<tr><td>{E(r.Classes[t])}</td>");
            for (int p = 0; p < r.Classes.Count; p++)
            {
                int n = r.ConfusionMatrix[t][p];
                string css = t == p ? "diag" : n > 0 ? "off" : "";
                string count = linked.ContainsKey((t, p)) ? $"<a href=\"#cell-{t}-{p}\">{n}</a>" : $"{n}";
                html.Append($"<td class=\"{css}\" data-true=\"{t}\" data-predicted=\"{p}\">{count}</td>");
            }
            html.Append("</tr>");
        }
        html.Append("</table>");
        var pairs = r.MostConfused.Take(10).ToList();
        if (pairs.Count > 0)
        {
            html.Append("<h3>Most confused</h3><ul id=\"most-confused\">");
            foreach (var p in pairs) html.Append($"<li>{p.Count} × <b>{E(p.Truth)}</b> predicted as <b>{E(p.PredictedAs)}</b></li>");
            html.Append("</ul>");
        }
        html.Append("</section>\n");
    }

    /// <summary>Images the audit finds wrong in themselves (mislabelled, not of any class, copied): fix the data, not the model.</summary>
    static void DataProblems(StringBuilder html, IReadOnlyList<DataProblem> problems, Dictionary<string, string> thumbnails, IReadOnlyDictionary<string, string> heatmaps)
    {
        if (problems.Count == 0) return;
        html.Append($"<section id=\"data-problems\"><h2>Likely data problems ({problems.Count})</h2>" +
                    "<p class=\"muted\">Found by the data audit (graft audit) and the heat maps, not by this model's mistakes: images that look mislabelled, belong to no class, " +
                    "are copies, or whose class the network finds in one small place of every picture (a likely shortcut: a watermark, a border, a background object). " +
                    "A mistake on one of them may be the data's, not the model's; a shortcut makes the accuracy look better than it is.</p><div class=\"gallery\">");
        foreach (var p in problems)
            html.Append($"<div class=\"item\" data-problem=\"{E(p.Kind)}\"><div class=\"pair\"><img src=\"{E(thumbnails[p.File])}\" alt=\"{E(Path.GetFileName(p.File))}\">{Heatmap(heatmaps, p.File)}</div>" +
                        $"<div><b>{E(p.Kind)}</b>: {E(p.Detail)}</div><div class=\"path\">{E(p.File)}</div></div>");
        html.Append("</div></section>\n");
    }

    static void Gallery(StringBuilder html, EvaluationResult r, List<ScoredImage> mistakes, Dictionary<string, string> thumbnails, Dictionary<string, string> inputs,
        IReadOnlyDictionary<string, string> heatmaps, Dictionary<string, DataProblem> problems)
    {
        html.Append($"<section id=\"misclassified\"><h2>Misclassified images ({mistakes.Count})</h2>" +
                    "<p class=\"muted\">Every misclassified image, most confident mistakes first (fastai's plot_top_losses): the photo, the crop the network saw, " +
                    "and a heat map of where it looked for the class it predicted (red: most, the ring at the peak).</p><div class=\"gallery\">");
        var first = new HashSet<(int, int)>();
        foreach (var m in mistakes)
        {
            string anchor = first.Add((m.Truth, m.Predicted)) ? $" id=\"cell-{m.Truth}-{m.Predicted}\"" : "";
            html.Append($"<div class=\"item\" data-file=\"{E(m.File)}\"{anchor}>");
            Scored(html, r, m, thumbnails, inputs, heatmaps);
            if (problems.TryGetValue(m.File, out var problem)) html.Append($"<div class=\"note\">likely a data problem ({E(problem.Kind)}): {E(problem.Detail)}</div>");
            html.Append("</div>");
        }
        if (mistakes.Count == 0) html.Append("<p>None: every image was classified correctly.</p>");
        html.Append("</div></section>\n");
    }

    static void LeastConfident(StringBuilder html, EvaluationResult r, List<ScoredImage> correct, Dictionary<string, string> thumbnails, Dictionary<string, string> inputs,
        IReadOnlyDictionary<string, string> heatmaps)
    {
        if (correct.Count == 0) return;
        html.Append("<section id=\"least-confident\"><h2>Right, but least sure</h2>" +
                    "<p class=\"muted\">Correctly classified images with the lowest confidence, with where the network looked: the next mistakes are likely among them.</p><div class=\"gallery\">");
        foreach (var m in correct)
        {
            html.Append($"<div class=\"item\" data-correct-file=\"{E(m.File)}\">");
            Scored(html, r, m, thumbnails, inputs, heatmaps);
            html.Append("</div>");
        }
        html.Append("</div></section>\n");
    }

    /// <summary>One scored image: photo, network input and heat map, true and predicted class, top probabilities, path.</summary>
    static void Scored(StringBuilder html, EvaluationResult r, ScoredImage m, Dictionary<string, string> thumbnails, Dictionary<string, string> inputs,
        IReadOnlyDictionary<string, string> heatmaps)
    {
        var top = string.Join(", ", m.TopClasses.Zip(m.TopProbabilities).Select(t => $"{E(r.Classes[t.First])} {t.Second:0.000}"));
        var input = inputs[m.File] is { Length: > 0 } src ? $"<img src=\"{E(src)}\" alt=\"network input\" title=\"what the network saw\">" : "";
        html.Append($"<div class=\"pair\"><img src=\"{E(thumbnails[m.File])}\" alt=\"{E(Path.GetFileName(m.File))}\">{input}{Heatmap(heatmaps, m.File)}</div>" +
                    $"<div>true <span class=\"right\">{E(r.Classes[m.Truth])}</span>, predicted <span class=\"{(m.Correct ? "right" : "wrong")}\">{E(r.Classes[m.Predicted])}</span> " +
                    $"({m.Confidence:0.000})</div><div class=\"muted\">top: {top}</div><div class=\"path\">{E(m.File)}</div>");
    }

    /// <summary>The heat map beside a photo (empty when there is none).</summary>
    static string Heatmap(IReadOnlyDictionary<string, string> heatmaps, string file) =>
        heatmaps.TryGetValue(file, out var src) ? $"<img class=\"heatmap\" src=\"{E(src)}\" alt=\"heat map\" title=\"where the network looked\">" : "";

    static void CalibrationSection(StringBuilder html, CalibrationResult c, int images)
    {
        html.Append("<section id=\"calibration\"><h2>Calibration: is a confidence a probability?</h2>" +
                    "<img class=\"chart\" src=\"reliability_diagram.png\" alt=\"reliability diagram\">");
        html.Append(FormattableString.Invariant($"<p>Expected calibration error <b>{c.Ece:0.000}</b> on these {images} images: ") +
                    $"the images are put in {Calibration.Bins} bins by confidence, and in each the mean confidence is compared with the share right (on the diagonal, " +
                    "a confidence of 0.9 is right nine times in ten). " +
                    (c.Temperature is { } t
                        ? FormattableString.Invariant($"Before temperature scaling it was {c.EceBefore:0.000}; the model divides its logits by {t:0.###}, fitted on its validation images.")
                        : "The model has no temperature scaling (trained before it, or on too few validation images).") + "</p></section>\n");
    }

    internal static void Training(StringBuilder html, ReportPage c)
    {
        var best = c.History.OrderBy(h => h.ValLoss ?? h.Loss).First();
        html.Append("<section id=\"training\"><h2>Training curves</h2><img class=\"chart\" src=\"training_curves.png\" alt=\"loss and accuracy per epoch\">" +
                    $"<p>{c.History.Count} epochs; best epoch {best.Epoch} (validation loss {best.ValLoss:0.0000}, accuracy {best.ValAccuracy:0.0000}), whose weights were kept.</p>" +
                    (c.Model.LearningRateSearch is { } s
                        ? $"<img class=\"chart\" src=\"learning_rate.png\" alt=\"learning-rate range test\"><p>The learning rate of the {E(s.Phase)} phase was chosen by a range test: " +
                          $"{s.Suggested:0.#####}, in the steepest stable stretch of the loss.</p>"
                        : "") + "</section>\n");
    }

    internal static void ModelSection(StringBuilder html, ReportPage c)
    {
        var m = c.Model;
        var f = m.Training;
        html.Append("<section id=\"model\"><h2>Model</h2><table>");
        Row(html, "backbone", $"{m.Backbone} (weights SHA-256 {m.BackboneWeightsSha256[..12]}…)");
        Row(html, "strategy", m.Strategy);
        Row(html, "input", $"{m.Input.Describe()}, {m.Input.Resize}");
        Row(html, "head", m.Head.Describe());
        Row(html, "parameters", $"{c.Summary.Total:N0} total, {c.Summary.Trainable:N0} trainable, {c.Summary.NonTrainable:N0} non-trainable");
        Row(html, "hyper-parameters", $"{f.Optimizer} lr {f.LearningRate}, batch {f.BatchSize}, up to {f.Epochs} epochs, patience {f.Patience}, seed {f.Seed}");
        if (m.Dataset is { } d) Row(html, "trained on", $"{d.Root} ({d.Layout}): {d.TrainImages} training, {d.ValidationImages} validation images");
        html.Append("</table></section>\n");
    }

    static void ImageNet(StringBuilder html, IReadOnlyList<ImageNetGuess> view, Dictionary<string, string> thumbnails, string backbone)
    {
        html.Append($"<section id=\"imagenet-view\"><h2>What the pretrained {E(backbone)} sees</h2>" +
                    "<p class=\"muted\">The backbone's own ImageNet classifier on a few images per class: why a new head is grafted on.</p><div class=\"gallery\">");
        foreach (var g in view)
            html.Append($"<div class=\"item\"><img src=\"{E(thumbnails[g.File])}\" alt=\"{E(Path.GetFileName(g.File))}\"><div>class <b>{E(g.TrueClass)}</b></div>" +
                        $"<div class=\"muted\">ImageNet: {string.Join(", ", g.Top.Select(t => $"{E(t.Label)} {t.Probability:0.00}"))}</div></div>");
        html.Append("</div></section>\n");
    }

    internal static void Row(StringBuilder html, string key, string value) => html.Append($"<tr><td>{E(key)}</td><td style=\"text-align:left\">{E(value)}</td></tr>");

    /// <summary>Marks the page once every image has loaded or failed, for automated checks (data-images="loaded/total").</summary>
    const string ImageCheckScript = """
        <script>
        window.addEventListener('load', () => {
          const images = Array.from(document.images);
          const loaded = images.filter(i => i.complete && i.naturalWidth > 0).length;
          document.body.dataset.images = loaded + '/' + images.length;
        });
        </script>

        """;

    internal static string E(string text) => WebUtility.HtmlEncode(text);
}
