using Spectre.Console;

namespace Graft.Bench;

/// <summary>One result of the standard run: a value, its unit, and the target it is held to (empty: none).</summary>
sealed record Row(string Benchmark, double Value, string Unit, string Target, bool? Met);

/// <summary>The standard run's tables: every row against its target, and the backbones side by side.</summary>
static class Tables
{
    public static Table Rows(IEnumerable<Row> rows, Func<string, string> escape)
    {
        var table = new Table().Border(TableBorder.Rounded).AddColumns("benchmark", "value", "unit", "target", "met");
        foreach (var r in rows)
            table.AddRow(escape(r.Benchmark), r.Value >= 100 ? $"{r.Value:0}" : $"{r.Value:0.000}", r.Unit, escape(r.Target), Met(r.Met));
        return table;
    }

    /// <summary>A met column's cell: green yes, red no, or empty where there is no target.</summary>
    public static string Met(bool? met) => met is null ? "" : met.Value ? "[green]yes[/]" : "[red]no[/]";

    public static Table Backbones(IReadOnlyList<BackboneResult> results, Machine machine, ConvPeak peak, Func<string, string> escape)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .Title(escape($"backbones at their default input size; {machine.Cpu}; {machine.Allocator}; convolution peak {peak.Gflops:0} GFLOP/s"))
            .AddColumns("backbone", "weights", "input", "GMACs", "GFLOPs", "forward batch", "Graft images/s", "ORT defaults images/s", "Graft / ORT",
                "libtorch images/s", "fine-tune top 2: images/s (batch)", "% of conv peak", "peak RSS MB: forward / fine-tune");
        static string Rate(double x) => double.IsNaN(x) ? "-" : x >= 100 ? $"{x:0}" : $"{x:0.0}";
        foreach (var r in results)
            table.AddRow(escape(r.Name), r.Weights, $"{r.InputSize}", $"{r.Gmacs:0.000}", $"{r.Gflops:0.00}", $"{r.ForwardBatch}",
                Rate(r.GraftImagesPerSecond), Rate(r.OrtDefaultImagesPerSecond),
                double.IsNaN(r.GraftOverOrt) ? "-" : r.GraftOverOrt >= 1.0 ? $"[green]{r.GraftOverOrt:0.00}x[/]" : $"[red]{r.GraftOverOrt:0.00}x[/]",
                Rate(r.LibtorchImagesPerSecond), $"{Rate(r.TrainImagesPerSecond)} ({r.TrainBatch})",
                double.IsNaN(r.FractionOfPeak) ? "-" : $"{100 * r.FractionOfPeak:0}%", $"{r.PeakRssForwardMb:0} / {r.PeakRssTrainMb:0}"
                    + (r.Error is null ? "" : $" [red]{escape(r.Error)}[/]"));
        return table;
    }
}
