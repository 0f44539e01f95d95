using Spectre.Console;
using System.CommandLine;
using Graft.Data;
using Graft.Reports;
using Graft.Weights;
using Graft.Imaging;

namespace Graft.Cli.Commands;

public static class EvaluateCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "A model file written by graft train." };
        var data = new Argument<string>("DATA") { Description = "Its test or validation folder is used if it has one, otherwise all its class folders; with --labels, the label file's test (or val) rows, otherwise all of them." };
        var labels = Cli.LabelsOption();
        var report = new Option<string?>("--report") { Description = "Write an HTML report (metrics, confusion matrix, misclassified gallery, curves) into this folder." };
        var csv = new Option<string?>("--csv") { Description = "Write one row per image (file, true, predicted, confidence, correct) to this CSV file." };
        var tta = new Option<bool>("--tta") { Description = "Test-time augmentation: also average each image with its mirror image; reports both accuracies." };
        var device = Cli.DeviceOption();
        var json = Cli.JsonOption();
        var command = new Command("evaluate", "Measure a trained model on labelled photos.") { model, data, labels, report, csv, tta, device, json };
        command.SetHandler(async (parse, cancel) =>
        {
            var on = Cli.Device(parse, device);
            var modelPath = parse.GetValue(model)!;
            var dataPath = parse.GetValue(data)!;
            // Where it will write is checked before the evaluation runs.
            if (parse.GetValue(csv) is { } csvOut) OutputPaths.File("--csv", csvOut, modelPath, dataPath, parse.GetValue(labels));
            if (parse.GetValue(report) is { } reportOut) OutputPaths.Folder("--report", reportOut, modelPath, dataPath);
            OutputPaths.Distinct(("--csv", parse.GetValue(csv)), ("--report", parse.GetValue(report)));
            using var classifier = ModelSource.Open(modelPath, allowBackbone: false, device: on);
            var path = SampleDatasets.Resolve(dataPath, Cli.Assets);
            if (classifier.Config.Head.MultiLabel)
            {
                await EvaluateMultiLabelAsync(parse, classifier, modelPath, path, parse.GetValue(labels), csv, report, tta, json, cancel);
                return;
            }
            var run = await Learner.EvaluateAsync(classifier, path, callbacks: new ProgressLine().Callbacks, tta: parse.GetValue(tta),
                labelsFile: parse.GetValue(labels), cancel: cancel);
            Cli.ReportDataset(run.Dataset);
            Cli.ReportSkipped(run.Skipped);
            ResultsView.Show(run.Result, $"{run.Dataset.Layout}:");
            if (run.Result.Calibration is { } calibration) ResultsView.ShowCalibration(calibration);
            if (run.Tta is { } withTta) Cli.Out.MarkupLine($"with test-time augmentation (mirror): accuracy [bold]{withTta.Accuracy:0.0000}[/] (loss {withTta.Loss:0.0000})");
            if (parse.GetValue(csv) is { } csvPath)
            {
                run.Result.WriteCsv(csvPath);
                Cli.Out.MarkupLine($"wrote [green]{Cli.Escape(Path.GetFullPath(csvPath))}[/]");
            }
            if (parse.GetValue(report) is { } folder)
            {
                var index = await ModelReport.WriteAsync(classifier, modelPath, run.Result, run.Tta, run.Dataset, run.Skipped, folder, Cli.Assets, cancel: cancel);
                Cli.Out.MarkupLine($"report [green]{Cli.Escape(Path.GetFullPath(index))}[/]");
            }
            if (parse.GetValue(json))
            {
                var payload = ResultsView.Json(run.Result);
                payload["task"] = "single-label";
                payload["tta_accuracy"] = run.Tta?.Accuracy;
                payload["calibration"] = ResultsView.Calibration(run.Result.Calibration);
                payload["classes"] = run.Result.Classes;
                payload["seconds"] = run.Seconds;
                payload["skipped"] = run.Skipped;
                Cli.WriteJson(payload);
            }
        });
        return command;
    }

    /// <summary>A multi-label model's evaluation: its figures and per-label table, the report, and --json; what is single-label only is refused.</summary>
    static async Task EvaluateMultiLabelAsync(ParseResult parse, Models.TrainableClassifier classifier, string modelPath, string path, string? labelsFile, Option<string?> csv, Option<string?> report,
        Option<bool> tta, Option<bool> json, CancellationToken cancel)
    {
        string? refused = parse.GetValue(csv) is not null ? "--csv" : parse.GetValue(tta) ? "--tta" : null;
        if (refused is not null)
            throw new GraftException($"{refused} is not available for multi-label models yet.", $"Leave {refused} out; the terminal and --json show the per-label results.");
        var run = await Learner.EvaluateMultiLabelAsync(classifier, path, callbacks: new ProgressLine().Callbacks, labelsFile: labelsFile, cancel: cancel);
        Cli.ReportDataset(run.Dataset);
        Cli.ReportSkipped(run.Skipped);
        ResultsView.Show(run.Result, $"{run.Dataset.Layout}:");
        if (parse.GetValue(report) is { } folder)
        {
            var index = ModelReport.WriteMultiLabel(classifier, modelPath, run.Result, run.Dataset, run.Skipped, folder);
            Cli.Out.MarkupLine($"report [green]{Cli.Escape(Path.GetFullPath(index))}[/]");
        }
        if (!parse.GetValue(json)) return;
        var payload = ResultsView.Json(run.Result)!;
        payload["task"] = "multi-label";
        payload["thresholds"] = run.Result.Thresholds;
        payload["classes"] = run.Result.Classes;
        payload["seconds"] = run.Seconds;
        payload["skipped"] = run.Skipped;
        Cli.WriteJson(payload);
    }
}
