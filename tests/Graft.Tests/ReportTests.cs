using System.Text.Json;
using System.Text.RegularExpressions;
using Graft.Reports;
using Graft.Training;
using Graft.Heads;

namespace Graft.Tests;

public class ReportTests
{
    [Fact]
    public async Task Report_csv_and_tta_agree_with_the_evaluation()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data/train"], perClass: 6, classes: 3, size: 40);
        TinyImages.WriteClassFolders(dir["data/val"], perClass: 4, classes: 3, size: 40, seed: 3);
        var trained = await Learner.TrainAsync(dir["data"], new TrainOptions { CacheRoot = dir["cache"], Fit = new FitOptions(Epochs: 1, LearningRate: 1e-4) },
            Assets.Resolver);
        using var model = trained.Model;
        var run = await Learner.EvaluateAsync(model, dir["data"], dir["cache"], tta: true);
        var r = run.Result;
        Assert.Equal(trained.Validation!.ConfusionMatrix, r.ConfusionMatrix);
        Assert.NotNull(run.Tta);
        Assert.Equal(12, run.Tta!.Images);

        var index = await ModelReport.WriteAsync(model, null, r, run.Tta, run.Dataset, run.Skipped, dir["report"], Assets.Resolver);
        var html = File.ReadAllText(index);
        Assert.DoesNotContain("http://", html);
        Assert.DoesNotContain("https://", html);
        foreach (Match m in Regex.Matches(html, "<img[^>]+src=\"([^\"]+)\""))
            Assert.True(File.Exists(Path.Combine(dir["report"], m.Groups[1].Value)), m.Groups[1].Value);
        Assert.True(File.Exists(dir["report/confusion_matrix.png"]));
        Assert.True(File.Exists(dir["report/training_curves.png"]));

        var data = JsonDocument.Parse(Regex.Match(html, "id=\"graft-report-data\">(.*?)</script>").Groups[1].Value).RootElement;
        var matrix = data.GetProperty("confusion_matrix").EnumerateArray().Select(row => row.EnumerateArray().Select(c => c.GetInt32()).ToArray()).ToArray();
        Assert.Equal(r.ConfusionMatrix, matrix);
        for (int t = 0; t < 3; t++)
            for (int p = 0; p < 3; p++)
                Assert.Matches($"data-true=\"{t}\" data-predicted=\"{p}\">(<a href=\"#cell-{t}-{p}\">)?{r.ConfusionMatrix[t][p]}<", html);
        int mistakes = r.Items.Count(i => !i.Correct);
        Assert.Equal(mistakes, Regex.Matches(html, "class=\"item\" data-file=").Count);
        // Each cell of mistakes links to its images; every scored image shows the crop the network saw.
        foreach (var cell in r.Items.Where(i => !i.Correct).Select(i => (i.Truth, i.Predicted)).Distinct())
            Assert.Contains($"id=\"cell-{cell.Truth}-{cell.Predicted}\"", html);
        int leastSure = Math.Min(12, r.Items.Count(i => i.Correct));
        Assert.Equal(leastSure, Regex.Matches(html, "data-correct-file=").Count);
        Assert.Equal(mistakes + leastSure, Regex.Matches(html, "_input\\.jpg\"").Count);
        // ... and where the network looked for the class it predicted; the reliability diagram shows the calibration.
        Assert.Equal(mistakes + leastSure, Regex.Matches(html, "class=\"heatmap\" src=\"(images/heat_[^\"]+)").Select(m => m.Groups[1].Value).Distinct().Count());
        Assert.Equal(mistakes + leastSure, data.GetProperty("heatmaps").GetInt32());
        Assert.Equal(r.Calibration!.Ece, data.GetProperty("calibration").GetProperty("ece").GetDouble(), 9);
        Assert.True(File.Exists(dir["report/reliability_diagram.png"]));
        Assert.Contains("95% CI", html);
        Assert.Equal(run.Tta.Accuracy, data.GetProperty("tta_accuracy").GetDouble(), 9);
        Assert.Contains("imagenet-view", html);

        r.WriteCsv(dir["rows.csv"]);
        var rows = File.ReadAllLines(dir["rows.csv"]);
        Assert.Equal("file,true,predicted,confidence,correct", rows[0]);
        Assert.Equal(12, rows.Length - 1);
        Assert.Equal(mistakes, rows.Skip(1).Count(l => l.EndsWith(",false")));
    }

    [Fact]
    public void Most_confused_pairs_are_sorted_by_count()
    {
        float[,] p = { { 0, 1, 0 }, { 0, 1, 0 }, { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 } };
        var r = Evaluation.EvaluationResult.From(["a", "b", "c", "d", "e"], p, [0, 0, 1, 2, 2], ["x", "y", "z"]);
        Assert.Equal(new Evaluation.ConfusedPair("x", "y", 2), r.MostConfused[0]);
        Assert.Equal(3, r.MostConfused.Count);
    }
}
