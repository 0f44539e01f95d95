using System.Globalization;
using System.Text;
using Graft.Data;
using Graft.Evaluation;
using Graft.Imaging;
using Graft.Models;
using Graft.Training;
using static Graft.Reports.HtmlReport;

namespace Graft.Reports;

/// <summary>Everything one multi-label report shows.</summary>
internal sealed record MultiLabelReportContent : ReportPage
{
    public MultiLabelReportContent(ReportPage page, MultiLabelResult result) : base(page) => Result = result;

    /// <summary>The evaluation shown.</summary>
    public MultiLabelResult Result { get; }
}

/// <summary>
/// The report of a multi-label model, in the single-label report's page: the headline figures, a per-label table (each
/// row's figures also in data-* attributes for checks), the labels' co-occurrence in the evaluated images, and the images
/// with the largest errors. The numbers behind the page are embedded as JSON (id "graft-report-data").
/// </summary>
internal static class MultiLabelReport
{
    /// <summary>The most images the gallery of largest errors shows.</summary>
    public const int LargestErrors = 24;

    public static string Write(MultiLabelReportContent content, string folder)
    {
        var (images, curves) = PrepareFolder(content, folder);
        var r = content.Result;
        var worst = Worst(r);

        var html = Begin(content);
        var subset = r.SubsetAccuracyInterval;
        string F(double x, string format = "0.0000") => x.ToString(format, CultureInfo.InvariantCulture);
        string part = content.Part is { } p ? p + " " : "";
        html.Append("<section class=\"cards\">");
        Card(html, $"{part}mAP (macro)", F(r.MeanAveragePrecision), "map");
        Card(html, "mAP (micro)", F(r.MicroAveragePrecision), "micro-map");
        Card(html, "micro-F1", F(r.MicroF1), "micro-f1");
        Card(html, "macro-F1", F(r.MacroF1), "macro-f1");
        Card(html, FormattableString.Invariant($"exact match (95% CI {subset.Low:0.000}-{subset.High:0.000})"), F(r.SubsetAccuracy), "exact-match");
        Card(html, "Hamming loss", F(r.HammingLoss), "hamming-loss");
        Card(html, "images", r.Images.ToString(), "images");
        Card(html, "images with a wrong label", r.Items.Count(i => i.Errors > 0).ToString(), "with-errors");
        html.Append("</section>\n");

        Dataset(html, content, r.Classes, r.PerLabel.Select(l => l.Support).ToList(), r.Images);
        PerLabel(html, r);
        CoOccurrence(html, r);
        Errors(html, r, worst, images, content.Model.Input);
        if (curves) HtmlReport.Training(html, content);
        ModelSection(html, content);

        var data = new
        {
            task = "multi-label",
            map = r.MeanAveragePrecision, micro_map = r.MicroAveragePrecision, micro_f1 = r.MicroF1, macro_f1 = r.MacroF1,
            subset_accuracy = r.SubsetAccuracy, ci_low = subset.Low, ci_high = subset.High, interval = "95% Wilson score interval",
            hamming_loss = r.HammingLoss, loss = r.Loss, images = r.Images, classes = r.Classes,
            per_label = r.PerLabel.Select(l => new
            {
                label = l.Label, average_precision = l.AveragePrecision, threshold = l.Threshold, precision = l.Precision, recall = l.Recall, f1 = l.F1,
                support = l.Support, predicted = l.Predicted,
            }).ToList(),
            co_occurrence = CoOccurrenceCounts(r),
            largest_errors = worst.Select(w => w.File).ToList(),
        };
        return End(html, data, folder);
    }

    /// <summary>The images with a wrong decision: most wrong labels first, then the largest binary cross-entropy, at most <see cref="LargestErrors"/>.</summary>
    public static IReadOnlyList<MultiLabelImage> Worst(MultiLabelResult r) =>
        r.Items.Where(i => i.Errors > 0).OrderByDescending(i => i.Errors).ThenByDescending(Loss).ThenBy(i => i.File, StringComparer.Ordinal)
            .Take(LargestErrors).ToList();

    static double Loss(MultiLabelImage image) =>
        -image.Probabilities.Select((p, c) => Math.Log(Math.Max(image.Truth.Contains(c) ? p : 1 - p, 1e-12))).Sum();

    /// <summary>How many evaluated images carry both labels of each pair (the diagonal: those carrying the label).</summary>
    public static int[][] CoOccurrenceCounts(MultiLabelResult r) =>
        Enumerable.Range(0, r.Classes.Count).Select(a => Enumerable.Range(0, r.Classes.Count)
            .Select(b => r.Items.Count(i => i.Truth.Contains(a) && i.Truth.Contains(b))).ToArray()).ToArray();

    static void PerLabel(StringBuilder html, MultiLabelResult r)
    {
        static string R(double x) => x.ToString("R", CultureInfo.InvariantCulture);
        static string WithInterval(double value, Interval i) => FormattableString.Invariant($"{value:0.000} <span class=\"muted\">({i.Low:0.00}-{i.High:0.00})</span>");
        html.Append("<section id=\"per-label\"><h2>Per-label metrics</h2><table id=\"per-label-table\"><tr><th>label</th><th>images</th><th>AP</th><th>threshold</th>" +
                    "<th>precision</th><th>recall</th><th>F1</th><th>predicted</th></tr>");
        foreach (var l in r.PerLabel)
            html.Append($"<tr data-label=\"{E(l.Label)}\" data-support=\"{l.Support}\" data-predicted=\"{l.Predicted}\" data-ap=\"{(l.AveragePrecision is { } a ? R(a) : "")}\" " +
                        $"data-threshold=\"{R(l.Threshold)}\" data-precision=\"{R(l.Precision)}\" data-recall=\"{R(l.Recall)}\" data-f1=\"{R(l.F1)}\">" +
                        $"<td>{E(l.Label)}</td><td>{l.Support}</td><td>{(l.AveragePrecision is { } ap ? ap.ToString("0.000", CultureInfo.InvariantCulture) : "—")}</td>" +
                        $"<td>{l.Threshold.ToString("0.000", CultureInfo.InvariantCulture)}</td><td>{WithInterval(l.Precision, l.PrecisionInterval)}</td>" +
                        $"<td>{WithInterval(l.Recall, l.RecallInterval)}</td><td>{l.F1.ToString("0.000", CultureInfo.InvariantCulture)}</td><td>{l.Predicted}</td></tr>");
        html.Append("</table><p class=\"muted\">AP: the label's average precision over the ranking by its probability. Precision, recall and F1 at the label's " +
                    "threshold (chosen on the validation images for the largest F1); in brackets their 95% Wilson score intervals (precision over the images " +
                    "predicted to carry the label, recall over those that carry it).</p></section>\n");
    }

    static void CoOccurrence(StringBuilder html, MultiLabelResult r)
    {
        var counts = CoOccurrenceCounts(r);
        html.Append("<section id=\"co-occurrence\"><h2>Labels together</h2><p class=\"muted\">How many evaluated images carry both labels " +
                    "(on the diagonal: the images carrying the label).</p><table id=\"co-occurrence-table\"><tr><th></th>");
        foreach (var c in r.Classes) html.Append($"<th>{E(c)}</th>");
        html.Append("</tr>");
        for (int a = 0; a < r.Classes.Count; a++)
        {
            html.Append($"<tr><td>{E(r.Classes[a])}</td>");
            for (int b = 0; b < r.Classes.Count; b++)
                html.Append($"<td data-a=\"{a}\" data-b=\"{b}\"{(a == b ? " class=\"diag\"" : "")}>{counts[a][b]}</td>");
            html.Append("</tr>");
        }
        html.Append("</table></section>\n");
    }

    static void Errors(StringBuilder html, MultiLabelResult r, IReadOnlyList<MultiLabelImage> worst, string images, ImageSpec input)
    {
        int wrong = r.Items.Count(i => i.Errors > 0);
        html.Append($"<section id=\"largest-errors\"><h2>Largest errors ({worst.Count} of {wrong})</h2><p class=\"muted\">The images with the most wrong labels " +
                    "(a label missed or one added), then the least likely under the model: the photo, the crop the network saw, the labels it carries and those " +
                    "predicted with their probabilities (red: wrong).</p><div class=\"gallery\">");
        foreach (var (w, n) in worst.Select((w, n) => (w, n)))
        {
            var thumbnail = Thumbnail(w.File, images, $"error_{n:D4}.jpg");
            var crop = NetworkInput(w.File, images, $"error_{n:D4}_input.jpg", input) is { Length: > 0 } src ? $"<img src=\"{E(src)}\" alt=\"network input\" title=\"what the network saw\">" : "";
            string Names(IEnumerable<int> labels, Func<int, bool> right) => labels.Any()
                ? string.Join(", ", labels.Select(c => $"<span class=\"{(right(c) ? "right" : "wrong")}\">{E(r.Classes[c])}</span> {w.Probabilities[c].ToString("0.00", CultureInfo.InvariantCulture)}"))
                : "none";
            html.Append($"<div class=\"item\" data-error-file=\"{E(w.File)}\" data-errors=\"{w.Errors}\"><div class=\"pair\"><img src=\"{E(thumbnail)}\" alt=\"{E(Path.GetFileName(w.File))}\">{crop}</div>" +
                        $"<div>carries {Names(w.Truth, w.Predicted.Contains)}</div><div>predicted {Names(w.Predicted, w.Truth.Contains)}</div>" +
                        $"<div class=\"path\">{E(w.File)}</div></div>");
        }
        html.Append("</div></section>\n");
    }
}
