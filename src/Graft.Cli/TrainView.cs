using Graft.Inference;
using Spectre.Console;
using Graft.Reports;
using Graft.Training;

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
        if (result.Test is { } t)
        {
            if (result.Validation is { } v)
                Cli.Out.MarkupLine($"validation accuracy {v.Accuracy:0.0000} (95% CI {v.AccuracyInterval.Low:0.000}-{v.AccuracyInterval.High:0.000}) on {Plural.Of(v.Images, "image")}: it picked the epoch");
            ResultsView.Show(t, "test");
        }
        else if (result.Validation is { } v)
        {
            ResultsView.Show(v, "validation");
            Cli.Out.MarkupLine("[yellow]note:[/] this is a validation accuracy: the same images picked the best epoch, so it is optimistic. " +
                (result.Dataset.LabelsFile is null ? "A test/ folder" : "Rows with split test in the label file") + ", or --test-split 0.2, measures the model on images it never saw.");
        }
        Cli.Out.MarkupLine($"saved [green]{Cli.Escape(Path.GetFullPath(modelPath))}[/]");
        if (reportFolder is not null)
        {
            if (result.Headline is not { } measured)
                throw new GraftException("--report needs a validation or test set, and this run had none (--val-split 0).", "Use --val-split above 0 or a validation folder.");
            var index = await ModelReport.WriteAsync(result.Model, modelPath, measured, null, result.Dataset, result.Skipped, reportFolder, Cli.Assets, cancel: cancel);
            Cli.Out.MarkupLine($"report [green]{Cli.Escape(Path.GetFullPath(index))}[/]");
        }
        if (json) Cli.WriteJson(Json(result, modelPath));
    }

    /// <summary>train's --json object.</summary>
    static Dictionary<string, object?> Json(TrainingResult result, string modelPath)
    {
        var fit = result.Fit;
        var payload = ResultsView.Json(result.Headline);
        payload["measured_on"] = result.Test is null ? "validation" : "test";
        payload["validation"] = ResultsView.Summary(result.Validation);
        if (result.Test is not null) payload["test"] = ResultsView.Summary(result.Test);
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
        payload["peak_rss_mb"] = Graft.Engine.ProcessStats.PeakRssMb();
        return payload;
    }
}
