using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Graft.Evaluation;
using Graft.Reports;
using Graft.Training;

namespace Graft.Tests;

/// <summary>The HTML report of a multi-label model, trained on 2x2 mosaics: its per-label table, co-occurrence and largest errors.</summary>
public class MultiLabelReportTests
{
    [Fact]
    public async Task A_multi_label_report_shows_each_labels_figures_their_co_occurrence_and_the_largest_errors()
    {
        using var dir = new TempDir();
        var dataset = Mosaics.Write(dir["data"], train: 24, validation: 12, test: 12, seed: 4);
        var trained = await Learner.TrainAsync(dataset, new TrainOptions
        {
            CacheRoot = dir["cache"], InputSize = 64, Strategy = Strategy.FeatureExtraction, Fit = new FitOptions(Epochs: 5, BatchSize: 8, LearningRate: 3e-3),
        }, Assets.Resolver);
        using var model = trained.Model;
        var test = Assert.IsType<MultiLabelResult>(trained.MultiLabelTest);
        var index = ModelReport.WriteMultiLabel(model, null, test, trained.Dataset, trained.Skipped, dir["report"]);
        var html = File.ReadAllText(index);
        Assert.DoesNotContain("http://", html);
        Assert.DoesNotContain("https://", html);
        foreach (Match m in Regex.Matches(html, "<img[^>]+src=\"([^\"]+)\""))
            Assert.True(File.Exists(Path.Combine(dir["report"], m.Groups[1].Value)), m.Groups[1].Value);

        // The per-label table: one row per class, its data-* figures those of the evaluation.
        var rows = Regex.Matches(html, "<tr data-label=\"([^\"]+)\" data-support=\"(\\d+)\" data-predicted=\"(\\d+)\" data-ap=\"([^\"]*)\" data-threshold=\"([^\"]+)\"");
        Assert.Equal(Mosaics.Classes, rows.Select(m => m.Groups[1].Value));
        for (int c = 0; c < Mosaics.Classes.Length; c++)
        {
            var row = rows[c].Groups;
            Assert.Equal(dataset.Test.Count(i => i.Labels.Contains(c)), int.Parse(row[2].Value));
            Assert.Equal(test.PerLabel[c].Predicted, int.Parse(row[3].Value));
            Assert.Equal(test.PerLabel[c].AveragePrecision, row[4].Value == "" ? null : double.Parse(row[4].Value, CultureInfo.InvariantCulture));
            Assert.Equal(model.Config.Thresholds![c], double.Parse(row[5].Value, CultureInfo.InvariantCulture));
        }

        // The co-occurrence table counts the test mosaics carrying both labels, from the data itself.
        var cells = Regex.Matches(html, "<td data-a=\"(\\d)\" data-b=\"(\\d)\"[^>]*>(\\d+)</td>")
            .ToDictionary(m => (int.Parse(m.Groups[1].Value), int.Parse(m.Groups[2].Value)), m => int.Parse(m.Groups[3].Value));
        Assert.Equal(9, cells.Count);
        foreach (var ((a, b), n) in cells)
            Assert.Equal(dataset.Test.Count(i => i.Labels.Contains(a) && i.Labels.Contains(b)), n);

        // The largest errors: the mosaics with a wrong label, most wrong labels first, each with its thumbnail.
        var shown = Regex.Matches(html, "data-error-file=\"([^\"]+)\" data-errors=\"(\\d+)\"").Select(m => (File: m.Groups[1].Value, Errors: int.Parse(m.Groups[2].Value))).ToList();
        var wrong = test.Items.Where(i => i.Errors > 0).ToDictionary(i => i.File, i => i.Errors);
        Assert.Equal(Math.Min(MultiLabelReport.LargestErrors, wrong.Count), shown.Count);
        Assert.All(shown, s => Assert.Equal(wrong[s.File], s.Errors));
        Assert.Equal(shown.Select(s => s.Errors).OrderDescending(), shown.Select(s => s.Errors));

        // The numbers behind the page agree with the table.
        var json = JsonDocument.Parse(Regex.Match(html, "id=\"graft-report-data\">(.*?)</script>").Groups[1].Value).RootElement;
        Assert.Equal("multi-label", json.GetProperty("task").GetString());
        Assert.Equal(test.MeanAveragePrecision, json.GetProperty("map").GetDouble(), 12);
        Assert.Equal(test.PerLabel.Select(l => l.F1), json.GetProperty("per_label").EnumerateArray().Select(l => l.GetProperty("f1").GetDouble()));
        Assert.Contains($"id=\"card-map\"><div class=\"value\">{test.MeanAveragePrecision.ToString("0.0000", CultureInfo.InvariantCulture)}</div>", html);
    }
}
