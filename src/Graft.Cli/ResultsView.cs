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
        ["loss"] = r?.Loss,
        ["images"] = r?.Images ?? 0,
        ["top_k"] = r?.TopK,
        ["top_k_accuracy"] = r?.TopKAccuracy,
        ["per_class"] = r?.PerClass,
        ["confusion_matrix"] = r?.ConfusionMatrix,
        ["most_confused"] = r?.MostConfused,
    };

    public static void Show(EvaluationResult r, string what)
    {
        Cli.Out.MarkupLine($"{what} accuracy [bold]{r.Accuracy:0.0000}[/] (loss {r.Loss:0.0000}) on {r.Images} images, {r.Classes.Count} classes");

        var perClass = new Table().Border(TableBorder.Rounded).AddColumns("class", "precision", "recall", "F1", "support");
        foreach (var c in r.PerClass)
            perClass.AddRow(Cli.Escape(c.Class), $"{c.Precision:0.000}", $"{c.Recall:0.000}", $"{c.F1:0.000}", c.Support.ToString());
        Cli.Out.Write(perClass);

        var matrix = new Table().Border(TableBorder.Rounded).Title("confusion matrix (rows: true, columns: predicted)");
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
}
