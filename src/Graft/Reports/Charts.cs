using Graft.Training;
using Graft.Heads;
using ScottPlot;
using Graft.Evaluation;

namespace Graft.Reports;

/// <summary>The report's pictures, drawn with ScottPlot and saved as PNG.</summary>
internal static class Charts
{
    /// <summary>Heat map of the confusion matrix (rows: true class, columns: predicted), counts in the cells.</summary>
    public static void ConfusionMatrix(EvaluationResult result, string path)
    {
        int k = result.Classes.Count;
        var plot = new Plot();
        // Row-normalised colours (recall per cell) so small classes stay readable; the numbers are the counts.
        var intensities = new double[k, k];
        for (int t = 0; t < k; t++)
        {
            int support = Math.Max(1, result.ConfusionMatrix[t].Sum());
            for (int p = 0; p < k; p++) intensities[t, p] = (double)result.ConfusionMatrix[t][p] / support;
        }
        var heatmap = plot.Add.Heatmap(intensities);
        heatmap.Colormap = new ScottPlot.Colormaps.Blues().Reversed(); // dark = many
        heatmap.ManualRange = new ScottPlot.Range(0, 1);
        for (int t = 0; t < k; t++)
            for (int p = 0; p < k; p++)
            {
                // Heatmap row 0 is drawn at the top, at y = k - 1.
                var text = plot.Add.Text(result.ConfusionMatrix[t][p].ToString(), p, k - 1 - t);
                text.LabelAlignment = Alignment.MiddleCenter;
                text.LabelFontSize = k <= 10 ? 18 : 10;
                text.LabelFontColor = intensities[t, p] > 0.5 ? Colors.White : Colors.Black;
            }
        var ticks = Enumerable.Range(0, k).Select(i => (double)i).ToArray();
        plot.Axes.Bottom.SetTicks(ticks, result.Classes.ToArray());
        plot.Axes.Left.SetTicks(ticks, result.Classes.Reverse().ToArray());
        plot.XLabel("predicted");
        plot.YLabel("true");
        plot.Title("Confusion matrix");
        plot.Add.ColorBar(heatmap).Label = "fraction of the true class";
        int side = Math.Clamp(120 + 60 * k, 420, 1400);
        plot.SavePng(path, side + 140, side);
    }

    /// <summary>The learning-rate range test: smoothed loss against the rate (log scale), the suggested rate marked.</summary>
    public static void LearningRateSearch(LearningRateSearch search, string path)
    {
        var plot = new Plot();
        var rates = search.Rates.Select(Math.Log10).ToArray();
        plot.Add.Scatter(rates, search.Losses.ToArray()).MarkerSize = 0;
        var marker = plot.Add.VerticalLine(Math.Log10(search.Suggested));
        marker.LegendText = $"suggested {search.Suggested:0.#####}";
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericFixedInterval(1) { LabelFormatter = x => $"1e{x:0}" };
        plot.Title($"Learning-rate range test ({search.Phase})");
        plot.XLabel("learning rate");
        plot.YLabel("training loss (smoothed)");
        plot.ShowLegend(Alignment.UpperLeft);
        plot.SavePng(path, 700, 420);
    }

    /// <summary>Loss and accuracy per epoch, training and validation, side by side.</summary>
    public static void TrainingCurves(IReadOnlyList<EpochRecord> history, string path)
    {
        var epochs = history.Select(h => (double)h.Epoch).ToArray();
        var loss = new Plot();
        Line(loss, epochs, history.Select(h => h.Loss), "training");
        if (history.Any(h => h.ValLoss is not null)) Line(loss, epochs, history.Select(h => h.ValLoss ?? double.NaN), "validation");
        loss.Title("Loss"); loss.XLabel("epoch"); loss.ShowLegend(Alignment.UpperRight);

        var accuracy = new Plot();
        Line(accuracy, epochs, history.Select(h => h.Accuracy), "training");
        if (history.Any(h => h.ValAccuracy is not null)) Line(accuracy, epochs, history.Select(h => h.ValAccuracy ?? double.NaN), "validation");
        accuracy.Title("Accuracy"); accuracy.XLabel("epoch"); accuracy.ShowLegend(Alignment.LowerRight);

        var multi = new Multiplot(loss);
        multi.AddPlot(accuracy);
        multi.Layout = new ScottPlot.MultiplotLayouts.Columns();
        multi.SavePng(path, 1000, 360);
    }

    /// <summary>
    /// The reliability diagram (Guo et al., 2017): each confidence bin's accuracy against its mean confidence, before and
    /// after temperature scaling, beside the diagonal of perfect calibration; the share of images per bin below.
    /// </summary>
    public static void ReliabilityDiagram(CalibrationResult calibration, string path)
    {
        var plot = new Plot();
        var diagonal = plot.Add.Line(0, 0, 1, 1);
        diagonal.LineColor = Colors.Gray;
        diagonal.LinePattern = LinePattern.Dashed;
        diagonal.LegendText = "perfectly calibrated";
        if (calibration.Temperature is not null)
            Bins(plot, calibration.BinsBefore, FormattableString.Invariant($"before temperature scaling (ECE {calibration.EceBefore:0.000})"), Colors.Orange);
        Bins(plot, calibration.Bins, FormattableString.Invariant($"{(calibration.Temperature is { } t ? $"after (T = {t:0.##}, " : "(")}ECE {calibration.Ece:0.000})"), Colors.SteelBlue);
        int total = Math.Max(1, calibration.Bins.Sum(b => b.Images));
        var share = plot.Add.Bars(calibration.Bins.Select(b => (b.Low + b.High) / 2).ToArray(), calibration.Bins.Select(b => 0.25 * b.Images / total).ToArray());
        foreach (var bar in share.Bars) { bar.Size = 1.0 / calibration.Bins.Count * 0.9; bar.FillColor = Colors.LightGray.WithAlpha(0.7); bar.LineWidth = 0; }
        share.LegendText = "share of images (scaled to 1/4)";
        plot.Axes.SetLimits(0, 1, 0, 1.02);
        plot.XLabel("confidence");
        plot.YLabel("accuracy");
        plot.Title("Reliability diagram");
        plot.ShowLegend(Edge.Bottom); // below the plot: points may lie anywhere in it
        plot.SavePng(path, 560, 560);
    }

    static void Bins(Plot plot, IReadOnlyList<ReliabilityBin> bins, string label, Color color)
    {
        var used = bins.Where(b => b.Images > 0).ToList();
        var line = plot.Add.Scatter(used.Select(b => b.Confidence).ToArray(), used.Select(b => b.Accuracy).ToArray());
        line.LegendText = label;
        line.Color = color;
        line.MarkerSize = 7;
    }

    static void Line(Plot plot, double[] xs, IEnumerable<double> ys, string label)
    {
        var line = plot.Add.Scatter(xs, ys.ToArray());
        line.LegendText = label;
        line.MarkerSize = xs.Length > 40 ? 0 : 5;
    }
}
