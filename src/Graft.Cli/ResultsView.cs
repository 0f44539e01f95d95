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

    static string WithInterval(double value, Interval i) => $"{value:0.000} [grey]({i.Low:0.00}-{i.High:0.00})[/]";
}
