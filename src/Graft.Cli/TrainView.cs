using Graft.Evaluation;
using Graft.Inference;
using Spectre.Console;
using Graft.Reports;
using Graft.Training;
using Graft.Evaluation;

namespace Graft.Cli;

/// <summary>What `graft train` shows of a finished run: notes, the epochs, the measured accuracy, the report, and its --json object.</summary>
public static class TrainView
{
    public static async Task ShowAsync(TrainingResult result, string data, Strategy strategy, string modelPath, string? reportFolder, bool json, CancellationToken cancel)
    {
        Cli.ReportDataset(result.Dataset);
        Cli.ReportSkipped(result.Skipped);
        if (result.AuditSummary is { } found)
            Cli.Out.MarkupLine($"[yellow]audit:[/] {Cli.Escape(found)} (graft audit {Cli.Escape(data)} lists them, with suggested actions)");
        var fit = result.Fit;
        Cli.Out.MarkupLine($"trained {Plural.Of(fit.History.Count, "epoch")}, best epoch {fit.BestEpoch}{(fit.StoppedEarly ? " (early stopping)" : "")}, " +
            $"{result.Seconds:0.0}s in all; {(strategy == Strategy.FeatureExtraction ? "head training" : "training")} {fit.SamplesPerSecond:0} samples/s");
        ShowMeasured(result.Test, result.Validation, ResultsView.Show,
            v => $"validation accuracy {v.Accuracy:0.0000} (95% CI {v.AccuracyInterval.Low:0.000}-{v.AccuracyInterval.High:0.000}) on {Plural.Of(v.Images, "image")}: it picked the epoch",
            "[yellow]note:[/] this is a validation accuracy: the same images picked the best epoch, so it is optimistic. " +
            (result.Dataset.LabelsFile is null ? "A test/ folder" : "Rows with split test in the label file") + ", or --test-split 0.2, measures the model on images it never saw.");
        ShowMeasured(result.MultiLabelTest, result.MultiLabelValidation, ResultsView.Show,
            v => $"validation mAP {v.MeanAveragePrecision:0.0000} on {Plural.Of(v.Images, "image")}: it picked the epoch and each label's threshold",
            "[yellow]note:[/] these are validation figures: the same images picked the best epoch and each label's threshold, so they are optimistic.");
        if (result.Growth is { } growth) ShowGrowth(growth);
        Cli.Out.MarkupLine($"saved [green]{Cli.Escape(Path.GetFullPath(modelPath))}[/]");
        if (reportFolder is not null)
        {
            bool multiLabel = result.Dataset.MultiLabel;
            if (multiLabel ? (result.MultiLabelTest ?? result.MultiLabelValidation) is null : result.Headline is null)
                throw new GraftException("--report needs a validation or test set, and this run had none (--val-split 0).", "Use --val-split above 0 or a validation folder.");
            var index = multiLabel
                ? ModelReport.WriteMultiLabel(result.Model, modelPath, (result.MultiLabelTest ?? result.MultiLabelValidation)!, result.Dataset, result.Skipped, reportFolder)
                : await ModelReport.WriteAsync(result.Model, modelPath, result.Headline!, null, result.Dataset, result.Skipped, reportFolder, Cli.Assets, growth: result.Growth, cancel: cancel);
            Cli.Out.MarkupLine($"report [green]{Cli.Escape(Path.GetFullPath(index))}[/]");
        }
        if (json) Cli.WriteJson(Json(result, modelPath));
    }

    /// <summary>Growing a model: the earlier and the grown model on the same images, per class.</summary>
    static void ShowGrowth(GrowthResult growth)
    {
        static string Share(double? x) => x is { } v ? $"{v:0.000}" : "—";
        static string Change(double? x) => x switch { null => "—", > 0 => $"[green]+{x:0.000}[/]", < 0 => $"[red]{x:0.000}[/]", _ => "0.000" };
        Cli.Out.MarkupLine($"grown from {Cli.Escape(growth.From)}: " + (growth.ClassesAdded.Count > 0
            ? $"{Plural.Of(growth.ClassesAdded.Count, "class", "classes")} added ({Cli.Escape(string.Join(", ", growth.ClassesAdded))})" : "no class added"));
        var table = new Table().Border(TableBorder.Rounded).AddColumns("class", "images", "before", "after", "change")
            .Caption($"[grey]accuracy on the same {growth.MeasuredOn} images: the earlier model (its own classes) and the grown one[/]");
        foreach (var c in growth.PerClass)
            table.AddRow(Cli.Escape(c.Class) + (c.Added ? " [grey](new)[/]" : ""), c.Images.ToString(), Share(c.Before), Share(c.After), Change(c.Change));
        table.AddRow("[bold]earlier classes[/]", growth.EarlierImages.ToString(), Share(growth.Before),
            Share(growth.AfterOnEarlierClasses), Change(growth.Change));
        table.AddRow("[bold]all[/]", growth.PerClass.Sum(c => c.Images).ToString(), "—", Share(growth.After), "—");
        Cli.Out.Write(table);
        if (growth.ClassesWithoutImages.Count > 0)
            Cli.Out.MarkupLine($"[yellow]note:[/] no images of {Cli.Escape(string.Join(", ", growth.ClassesWithoutImages))} in the data: kept in the model, not measured.");
    }

    /// <summary>train's --json "growth" object (null when the run did not grow a model).</summary>
    static Dictionary<string, object?>? GrowthJson(GrowthResult? growth) => growth is null ? null : new()
    {
        ["from"] = growth.From,
        ["classes_added"] = growth.ClassesAdded,
        ["classes_without_images"] = growth.ClassesWithoutImages,
        ["measured_on"] = growth.MeasuredOn,
        ["change_earlier_classes"] = growth.Change,
        ["before"] = new Dictionary<string, object?> { ["accuracy"] = growth.Before, ["images"] = growth.EarlierImages },
        ["after"] = new Dictionary<string, object?>
        {
            ["accuracy"] = growth.After, ["accuracy_earlier_classes"] = growth.AfterOnEarlierClasses, ["images"] = growth.PerClass.Sum(c => c.Images),
        },
        ["per_class"] = growth.PerClass.Select(c => new Dictionary<string, object?>
        {
            ["class"] = c.Class, ["added"] = c.Added, ["images"] = c.Images, ["before"] = c.Before, ["after"] = c.After, ["change"] = c.Change,
        }).ToList(),
    };

    /// <summary>
    /// The test results, after a line on the validation ones that picked the epoch; without test images, the validation
    /// results and why they are optimistic. Nothing when neither was measured.
    /// </summary>
    static void ShowMeasured<T>(T? test, T? validation, Action<T, string> show, Func<T, string> validationLine, string optimistic) where T : class
    {
        if (test is not null)
        {
            if (validation is not null) Cli.Out.MarkupLine(validationLine(validation));
            show(test, "test");
        }
        else if (validation is not null)
        {
            show(validation, "validation");
            Cli.Out.MarkupLine(optimistic);
        }
    }

    /// <summary>train's --json object.</summary>
    public static Dictionary<string, object?> Json(TrainingResult result, string modelPath)
    {
        var fit = result.Fit;
        var payload = ResultsView.Json(result.Headline);
        payload["measured_on"] = result.Test is null ? "validation" : "test";
        bool multiLabel = result.Dataset.MultiLabel;
        payload["task"] = multiLabel ? "multi-label" : "single-label";
        payload["validation"] = multiLabel ? ResultsView.Json(result.MultiLabelValidation) : ResultsView.Summary(result.Validation);
        if (result.Test is not null || result.MultiLabelTest is not null)
            payload["test"] = multiLabel ? ResultsView.Json(result.MultiLabelTest) : ResultsView.Summary(result.Test);
        if (multiLabel)
        {
            payload["measured_on"] = result.MultiLabelTest is null ? "validation" : "test";
            payload["thresholds"] = result.Model.Config.Thresholds;
        }
        payload["model"] = Path.GetFullPath(modelPath);
        payload["strategy"] = result.Model.Config.Strategy;
        payload["classes"] = result.Dataset.Classes;
        payload["seconds"] = result.Seconds;
        payload["train_images"] = result.Model.Config.Dataset!.TrainImages;
        payload["validation_images"] = result.Model.Config.Dataset.ValidationImages;
        payload["test_images"] = result.Model.Config.Dataset.TestImages;
        payload["epochs"] = fit.History.Count;
        payload["best_epoch"] = fit.BestEpoch;
        payload["epoch_seconds"] = fit.History.Select(h => h.Seconds).ToList();
        payload["feature_images_per_second"] = result.Features.ImagesPerSecond;
        payload["features_computed"] = result.Features.Computed;
        payload["features_cached"] = result.Features.CacheHits;
        payload["training_samples_per_second"] = fit.SamplesPerSecond;
        payload["fine_tuning_kept"] = result.FineTuningKept;
        payload["epochs_planned"] = fit.PlannedEpochs is var (run, asked) ? new { run, asked } : null;
        payload["learning_rate_search"] = result.LearningRateSearch is { } search ? new { phase = search.Phase, suggested = search.Suggested } : null;
        payload["skipped"] = result.Skipped;
        payload["audit"] = result.AuditSummary;
        payload["growth"] = GrowthJson(result.Growth);
        payload["peak_rss_mb"] = Graft.Engine.ProcessStats.PeakRssMb();
        return payload;
    }
}
