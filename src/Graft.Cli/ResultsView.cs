using Graft.Inference;
using Graft.Evaluation;
using Spectre.Console;

namespace Graft.Cli;

/// <summary>Accuracy, per-class metrics and the confusion matrix as terminal tables.</summary>
public static class ResultsView
{
    /// <summary>The metrics part of train's and evaluate's --json object.</summary>
    public static Dictionary<string, object?> Json(EvaluationResult? r) => new()
    {
        ["accuracy"] = r?.Accuracy,
        ["ci_low"] = r?.AccuracyInterval.Low,
        ["ci_high"] = r?.AccuracyInterval.High,
        ["interval"] = IntervalMethod,
        ["loss"] = r?.Loss,
        ["images"] = r?.Images ?? 0,
        ["top_k"] = r?.TopK,
        ["top_k_accuracy"] = r?.TopKAccuracy,
        ["per_class"] = r?.PerClass,
        ["confusion_matrix"] = r?.ConfusionMatrix,
        ["most_confused"] = r?.MostConfused,
    };

    public const string IntervalMethod = "95% Wilson score interval";

    /// <summary>evaluate's "calibration" object: the expected calibration error after and before temperature scaling, and the temperature (null: none).</summary>
    public static Dictionary<string, object?>? Calibration(CalibrationResult? c) => c is null ? null : new()
    {
        ["ece"] = c.Ece,
        ["ece_before"] = c.EceBefore,
        ["temperature"] = c.Temperature,
    };

    public static void ShowCalibration(CalibrationResult c) =>
        Cli.Out.MarkupLine(c.Temperature is { } t
            ? $"calibration: expected calibration error [bold]{c.Ece:0.000}[/] (before temperature scaling {c.EceBefore:0.000}; temperature {t:0.###})"
            : $"calibration: expected calibration error [bold]{c.Ece:0.000}[/] (the model has no temperature scaling: train it again to calibrate it)");

    /// <summary>One measured set in train's --json: accuracy with its interval and the number of images.</summary>
    public static Dictionary<string, object?>? Summary(EvaluationResult? r) => r is null ? null : new()
    {
        ["accuracy"] = r.Accuracy,
        ["ci_low"] = r.AccuracyInterval.Low,
        ["ci_high"] = r.AccuracyInterval.High,
        ["images"] = r.Images,
    };

    public static void Show(EvaluationResult r, string what)
    {
        var ci = r.AccuracyInterval;
        Cli.Out.MarkupLine($"{what} accuracy [bold]{r.Accuracy:0.0000}[/] (95% CI {ci.Low:0.000}-{ci.High:0.000}; loss {r.Loss:0.0000}) on {Plural.Of(r.Images, "image")}, {Plural.Of(r.Classes.Count, "class", "classes")}");

        var perClass = new Table().Border(TableBorder.Rounded).AddColumns("class", "precision", "recall", "F1", "support")
            .Caption("[grey]precision and recall with their 95% Wilson intervals[/]");
        foreach (var c in r.PerClass)
            perClass.AddRow(Cli.Escape(c.Class), WithInterval(c.Precision, c.PrecisionInterval), WithInterval(c.Recall, c.RecallInterval),
                $"{c.F1:0.000}", c.Support.ToString());
        Cli.Out.Write(perClass);

        Cli.Out.MarkupLine("confusion matrix (rows: true, columns: predicted)");
        var matrix = new Table().Border(TableBorder.Rounded);
        matrix.AddColumn("");
        foreach (var c in r.Classes) matrix.AddColumn(Cli.Escape(c));
        for (int i = 0; i < r.Classes.Count; i++)
            matrix.AddRow(new[] { Cli.Escape(r.Classes[i]) }.Concat(r.ConfusionMatrix[i].Select((n, j) => i == j ? $"[green]{n}[/]" : n == 0 ? "0" : $"[red]{n}[/]")).ToArray());
        Cli.Out.Write(matrix);

        var wrong = r.Items.Where(i => !i.Correct).OrderByDescending(i => i.Confidence).Take(10).ToList();
        if (wrong.Count == 0) return;
        Cli.Out.MarkupLine($"most confident mistakes ({r.Items.Count(i => !i.Correct)} in all):");
        foreach (var w in wrong)
            Cli.Out.MarkupLine($"  {Cli.Escape(w.File)}: {Cli.Escape(r.Classes[w.Truth])} predicted as {Cli.Escape(r.Classes[w.Predicted])} ({w.Confidence:0.000})");
    }

    /// <summary>A multi-label measured set in --json: mean average precision, F1, exact-match accuracy with its interval, Hamming loss, each label's figures.</summary>
    public static Dictionary<string, object?>? Json(MultiLabelResult? r) => r is null ? null : new()
    {
        ["map"] = r.MeanAveragePrecision,
        ["micro_map"] = r.MicroAveragePrecision,
        ["micro_f1"] = r.MicroF1,
        ["macro_f1"] = r.MacroF1,
        ["subset_accuracy"] = r.SubsetAccuracy,
        ["ci_low"] = r.SubsetAccuracyInterval.Low,
        ["ci_high"] = r.SubsetAccuracyInterval.High,
        ["interval"] = IntervalMethod,
        ["hamming_loss"] = r.HammingLoss,
        ["loss"] = r.Loss,
        ["images"] = r.Images,
        ["per_label"] = r.PerLabel,
    };

    /// <summary>A multi-label evaluation: its figures in one line, and a table of each label's.</summary>
    public static void Show(MultiLabelResult r, string what)
    {
        var subset = r.SubsetAccuracyInterval;
        Cli.Out.MarkupLine($"{what} mAP [bold]{r.MeanAveragePrecision:0.0000}[/] (micro {r.MicroAveragePrecision:0.000}), micro-F1 {r.MicroF1:0.000}, macro-F1 {r.MacroF1:0.000}, " +
            $"exact match {r.SubsetAccuracy:0.000} (95% CI {subset.Low:0.000}-{subset.High:0.000}), Hamming loss {r.HammingLoss:0.000} " +
            $"on {Plural.Of(r.Images, "image")}, {Plural.Of(r.Classes.Count, "label")}");
        var perLabel = new Table().Border(TableBorder.Rounded).AddColumns("label", "AP", "threshold", "precision", "recall", "F1", "images", "predicted")
            .Caption("[grey]precision and recall at the label's threshold, with their 95% Wilson intervals[/]");
        foreach (var l in r.PerLabel)
            perLabel.AddRow(Cli.Escape(l.Label), l.AveragePrecision is { } ap ? $"{ap:0.000}" : "-", $"{l.Threshold:0.00}", WithInterval(l.Precision, l.PrecisionInterval),
                WithInterval(l.Recall, l.RecallInterval), $"{l.F1:0.000}", l.Support.ToString(), l.Predicted.ToString());
        Cli.Out.Write(perLabel);
        var worst = r.Items.Where(i => i.Errors > 0).OrderByDescending(i => i.Errors).ThenBy(i => i.File, StringComparer.Ordinal).Take(10).ToList();
        if (worst.Count == 0) return;
        Cli.Out.MarkupLine($"largest errors ({r.Items.Count(i => i.Errors > 0)} images with one or more):");
        string Names(IEnumerable<int> labels) => labels.Any() ? string.Join(", ", labels.Select(c => Cli.Escape(r.Classes[c]))) : "none";
        foreach (var w in worst)
            Cli.Out.MarkupLine($"  {Cli.Escape(w.File)}: carries {Names(w.Truth)}, predicted {Names(w.Predicted)}");
    }

    static string WithInterval(double value, Interval i) => $"{value:0.000} [grey]({i.Low:0.00}-{i.High:0.00})[/]";
}
