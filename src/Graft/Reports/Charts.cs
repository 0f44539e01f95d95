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

    static void Line(Plot plot, double[] xs, IEnumerable<double> ys, string label)
    {
        var line = plot.Add.Scatter(xs, ys.ToArray());
        line.LegendText = label;
        line.MarkerSize = xs.Length > 40 ? 0 : 5;
    }
}
