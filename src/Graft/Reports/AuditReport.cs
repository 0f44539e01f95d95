using System.Globalization;
using System.Text;
using System.Text.Json;
using Graft.Models;
using static Graft.Reports.HtmlReport;
using Graft.Inference;
using Graft.Audit;
using Graft.Evaluation;

namespace Graft.Reports;

/// <summary>
/// An audit as a report folder in the style of the evaluation report: index.html (thumbnails of the findings, the
/// numbers, the learning curve), audit.json (the same object as graft audit --json, also embedded in the page as
/// id "graft-audit-data"), findings.csv (one row per finding) and actions.csv (the suggested actions).
/// </summary>
internal static class AuditReport
{
    /// <summary>Galleries show the most severe findings; the CSV and JSON hold all of them.</summary>
    const int Shown = 60;

    public static string Json(AuditResult audit) => JsonSerializer.Serialize(audit, TrainableClassifier.Json);

    public static string Write(AuditResult audit, string folder)
    {
        var images = Path.Combine(folder, "images");
        Directory.CreateDirectory(images);
        var thumbnails = new Dictionary<string, string>();
        string Thumb(string file) => thumbnails.TryGetValue(file, out var src) ? src : thumbnails[file] = Thumbnail(file, images, $"{thumbnails.Count:D4}.jpg");

        var html = new StringBuilder();
        string title = $"Audit of {Path.GetFileName(Path.TrimEndingDirectorySeparator(audit.Root))}";
        Head(html, title);
        html.Append($"<header><h1>{E(title)}</h1><p class=\"muted\"><code>{E(audit.Root)}</code> · {E(audit.Layout)} · features of {E(audit.Backbone)} · " +
                    $"{audit.Seconds:0.0} s · written {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC</p></header>\n");
        html.Append("<section class=\"cards\">");
        Card(html, "images", audit.ImageCount.ToString(), "images");
        Card(html, "classes", audit.Classes.Count.ToString(), "classes");
        if (audit.MultiLabel)
        {
            Card(html, "likely missing labels", audit.MissingLabels.Count.ToString(), "missing-labels");
            Card(html, "likely extra labels", audit.ExtraLabels.Count.ToString(), "extra-labels");
        }
        else Card(html, "likely label errors", audit.LabelIssues.Count.ToString(), "label-issues");
        Card(html, "duplicate pairs", audit.Duplicates.Count.ToString(), "duplicates");
        foreach (var leaked in audit.Leaked)
            Card(html, $"of {Name(leaked.Role)} leaked", leaked.Share.ToString("0.0%", CultureInfo.InvariantCulture), $"leaked-{Name(leaked.Role)}");
        Card(html, "outliers", audit.Outliers.Count.ToString(), "outliers");
        Card(html, "unusable files", audit.Unusable.Count.ToString(), "unusable");
        html.Append("</section>\n");

        if (audit.MultiLabel)
        {
            const string Probes = "Out-of-fold probabilities of a linear sigmoid head per label, judged by confident learning per label";
            Section(html, "missing-labels", $"Likely missing labels ({audit.MissingLabels.Count})",
                $"{Probes}: the image lacks the label, but its probability reaches the mean of the images that carry it. Most probable first.",
                audit.MissingLabels.Take(Shown).Select(m => Item(m.File, Thumb(m.File),
                    $"lacks <span class=\"right\">{E(m.Label)}</span> ({m.Probability:0.00}; those with it {m.Threshold:0.00}; {m.Agreeing} of its {m.Nearest} nearest images carry it)")));
            Section(html, "extra-labels", $"Likely extra labels ({audit.ExtraLabels.Count})",
                $"{Probes}: the image carries the label, but its probability is below the mean of the images that lack it. Least probable first.",
                audit.ExtraLabels.Take(Shown).Select(e => Item(e.File, Thumb(e.File),
                    $"carries <span class=\"wrong\">{E(e.Label)}</span> ({e.Probability:0.00}; those without it {e.Threshold:0.00}; {e.Agreeing} of its {e.Nearest} nearest images lack it)")));
        }
        else Section(html, "label-issues", $"Likely label errors ({audit.LabelIssues.Count})",
            "Out-of-fold probabilities of linear heads, ranked by confident learning (cleanlab's find_label_issues): least self-confident first.",
            audit.LabelIssues.Take(Shown).Select(i => Item(i.File, Thumb(i.File),
                $"labelled <span class=\"wrong\">{E(i.Given)}</span> ({i.SelfConfidence:0.00}), looks like <span class=\"right\">{E(i.Suggested)}</span> ({i.Confidence:0.00}; {i.Agreeing} of its {i.Nearest} nearest images)")));
        Pairs(html, "leakage", "Leakage across training, validation and test",
            string.Join("; ", audit.Leaked.Select(l => $"{l.Leaked} of {l.Images} {Name(l.Role)} images ({l.Share:0.0%}) have a copy in an earlier part")) + ".",
            audit.Leakage, Thumb);
        Pairs(html, "duplicates", "Duplicates", "Exact copies (same bytes) and near copies (feature cosine similarity); copies labelled differently first.",
            audit.Duplicates, Thumb);
        Section(html, "outliers", $"Outliers ({audit.Outliers.Count})",
            "Images whose nearest neighbours in feature space are all far away: possibly not a photo of any class.",
            audit.Outliers.Take(Shown).Select(o => Item(o.File, Thumb(o.File), $"class {E(o.Label)}, distance {o.Distance:0.000}, score {o.Score:0.0}")));
        Unusable(html, audit);
        Classes(html, audit);
        ImageFacts(html, audit.Images);
        if (audit.LearningCurve is { } curve) Curve(html, curve);

        // "</" inside JSON would end the script element; the default escaping encoder prevents it.
        html.Append($"<script type=\"application/json\" id=\"graft-audit-data\">{JsonSerializer.Serialize(audit, new JsonSerializerOptions(TrainableClassifier.Json) { WriteIndented = false })}</script>\n");
        html.Append("</main></body></html>\n");
        var index = Path.Combine(folder, "index.html");
        File.WriteAllText(index, html.ToString());
        File.WriteAllText(Path.Combine(folder, "audit.json"), Json(audit));
        WriteFindings(audit, Path.Combine(folder, "findings.csv"));
        AuditActions.Write(Path.Combine(folder, "actions.csv"), audit.Actions);
        return index;
    }

    static string Name(ImageRole role) => role.ToString().ToLowerInvariant();

    static string Item(string file, string src, string caption) =>
        $"<div class=\"item\" data-file=\"{E(file)}\"><img src=\"{E(src)}\" alt=\"{E(Path.GetFileName(file))}\"><div>{caption}</div><div class=\"path\">{E(file)}</div></div>";

    static void Section(StringBuilder html, string id, string heading, string note, IEnumerable<string> items)
    {
        var list = items.ToList();
        html.Append($"<section id=\"{id}\"><h2>{E(heading)}</h2><p class=\"muted\">{E(note)}</p>");
        html.Append(list.Count == 0 ? "<p>None found.</p>" : $"<div class=\"gallery\">{string.Concat(list)}</div>");
        html.Append("</section>\n");
    }

    static void Pairs(StringBuilder html, string id, string heading, string note, IReadOnlyList<DuplicatePair> pairs, Func<string, string> thumb) =>
        Section(html, id, $"{heading} ({pairs.Count} pairs)", note, pairs.Take(Shown).Select(p =>
            $"<div class=\"item\" data-file=\"{E(p.File)}\" data-other=\"{E(p.Other)}\"><img src=\"{E(thumb(p.File))}\" alt=\"{E(Path.GetFileName(p.File))}\">" +
            $"<img src=\"{E(thumb(p.Other))}\" alt=\"{E(Path.GetFileName(p.Other))}\"><div>{E(p.Match)} copy, similarity {p.Similarity:0.000}" +
            (p.ConflictingLabels ? $", <span class=\"wrong\">labelled {E(p.Label)} and {E(p.OtherLabel)}</span>" : $", class {E(p.Label)}") +
            $"</div><div class=\"path\">{Name(p.Role)}: {E(p.File)}</div><div class=\"path\">{Name(p.OtherRole)}: {E(p.Other)}</div></div>"));

    static void Unusable(StringBuilder html, AuditResult audit)
    {
        html.Append($"<section id=\"unusable\"><h2>Files Graft cannot or will not use ({audit.Unusable.Count})</h2>");
        if (audit.Unusable.Count == 0 && audit.Notes.Count == 0) html.Append("<p>None: every image file can be read.</p>");
        if (audit.Unusable.Count > 0)
        {
            html.Append("<table><tr><th>file</th><th>kind</th><th>reason</th></tr>");
            foreach (var u in audit.Unusable) html.Append($"<tr><td><code>{E(u.File)}</code></td><td>{E(u.Kind)}</td><td style=\"text-align:left\">{E(u.Reason)}</td></tr>");
            html.Append("</table>");
        }
        if (audit.Notes.Count > 0) html.Append($"<ul>{string.Concat(audit.Notes.Select(n => $"<li>{E(n)}</li>"))}</ul>");
        html.Append("</section>\n");
    }

    static void Classes(StringBuilder html, AuditResult audit)
    {
        int largest = audit.Classes.Max(c => c.Total);
        html.Append("<section id=\"classes\"><h2>Class balance</h2><table><tr><th>class</th><th>train</th><th>validation</th><th>test</th><th>total</th><th>of largest</th></tr>");
        foreach (var c in audit.Classes)
            html.Append($"<tr><td>{E(c.Name)}</td><td>{c.Train}</td><td>{c.Validation}</td><td>{c.Test}</td><td>{c.Total}</td><td>{(double)c.Total / largest:0%}</td></tr>");
        html.Append("</table></section>\n");
    }

    static void ImageFacts(StringBuilder html, ImageStats s)
    {
        string Counts(IReadOnlyDictionary<string, int> counts) => string.Join(", ", counts.Select(kv => $"{kv.Key}: {kv.Value}"));
        html.Append("<section id=\"image-facts\"><h2>Image files</h2><p class=\"muted\">From the file headers (no decoding).</p><table>");
        Row(html, "read", $"{s.Images} headers");
        Row(html, "size (width x height)", $"median {s.MedianWidth} x {s.MedianHeight}, smallest {s.MinWidth} x {s.MinHeight}, largest {s.MaxWidth} x {s.MaxHeight}");
        Row(html, "smaller than the network's input", $"{s.SmallerThanInput}" + Examples(s.SmallFiles));
        Row(html, "formats", Counts(s.Formats));
        Row(html, "aspect ratios", Counts(s.AspectRatios));
        Row(html, "EXIF orientations (applied when read)", Counts(s.ExifOrientations));
        Row(html, "grayscale", $"{s.Grayscale}" + Examples(s.GrayscaleFiles));
        Row(html, "CMYK", $"{s.Cmyk}" + Examples(s.CmykFiles));
        html.Append("</table></section>\n");
    }

    static string Examples(IReadOnlyList<string> files) => files.Count == 0 ? "" : $" (e.g. {string.Join(", ", files.Take(3).Select(Path.GetFileName))})";

    static void Curve(StringBuilder html, LearningCurveResult curve)
    {
        var classes = curve.Points[0].PerClass.Keys.ToList();
        html.Append($"<section id=\"learning-curve\"><h2>Would more photos help?</h2><p><b>{E(curve.Verdict)}</b></p>" +
                    $"<p class=\"muted\">A linear head on cached features trained on part of the training images (stratified, {curve.Repeats} seeded repeats below 100%), " +
                    $"evaluated on {E(curve.EvaluatedOn)}; accuracy with its 95% Wilson interval.</p>");
        html.Append($"<table><tr><th>training images</th><th>accuracy</th>{string.Concat(classes.Select(c => $"<th>{E(c)}</th>"))}</tr>");
        static string Cell(Accuracy a) => $"<td>{a.Value:0.000} [{a.Low:0.000}, {a.High:0.000}]</td>";
        foreach (var p in curve.Points)
            html.Append($"<tr><td>{p.Fraction:0%} ({p.TrainImages})</td>{Cell(p.Overall)}{string.Concat(classes.Select(c => Cell(p.PerClass[c])))}</tr>");
        html.Append("</table></section>\n");
    }

    /// <summary>One row per finding, most severe first within each kind.</summary>
    static void WriteFindings(AuditResult audit, string path)
    {
        var rows = new StringBuilder("kind,file,other,label,suggested,score,detail\n");
        void Add(string kind, string file, string other, string label, string suggested, double score, string detail) =>
            rows.Append(string.Join(",", new[] { kind, file, other, label, suggested, score.ToString("0.####", CultureInfo.InvariantCulture), detail }.Select(AuditActions.Quote))).Append('\n');
        foreach (var i in audit.LabelIssues) Add("label_issue", i.File, "", i.Given, i.Suggested, i.Confidence, $"self-confidence {i.SelfConfidence:0.000}; {i.Agreeing} of {i.Nearest} nearest images say {i.Suggested}");
        foreach (var m in audit.MissingLabels) Add("missing_label", m.File, "", "", m.Label, m.Probability, $"those with it {m.Threshold:0.000} on average; {m.Agreeing} of {m.Nearest} nearest images carry it");
        foreach (var e in audit.ExtraLabels) Add("extra_label", e.File, "", e.Label, "", e.Probability, $"those without it {e.Threshold:0.000} on average; {e.Agreeing} of {e.Nearest} nearest images lack it");
        foreach (var p in audit.Leakage) Add("leakage", p.File, p.Other, p.Label, p.OtherLabel, p.Similarity, $"{p.Match}, {Name(p.Role)} copy of {Name(p.OtherRole)}");
        foreach (var p in audit.Duplicates) Add("duplicate", p.File, p.Other, p.Label, p.OtherLabel, p.Similarity, p.Match + (p.ConflictingLabels ? ", conflicting labels" : ""));
        foreach (var o in audit.Outliers) Add("outlier", o.File, "", o.Label, "", o.Score, $"neighbour distance {o.Distance:0.000}");
        foreach (var u in audit.Unusable) Add("unusable", u.File, "", "", "", 0, $"{u.Kind}: {u.Reason}");
        File.WriteAllText(path, rows.ToString());
    }
}
