using Spectre.Console;
using System.CommandLine;
using Graft.Data;
using Graft.Weights;

namespace Graft.Cli.Commands;

public static class EvaluateCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "A model file written by graft train." };
        var data = new Argument<string>("DATA") { Description = "Its validation folder is used if it has one, otherwise all its class folders." };
        var json = Cli.JsonOption();
        var command = new Command("evaluate", "Measure a trained model on labelled photos.") { model, data, json };
        command.SetHandler(async (parse, cancel) =>
        {
            using var classifier = ModelSource.Open(parse.GetValue(model)!, allowBackbone: false);
            var path = SampleDatasets.Resolve(parse.GetValue(data)!, AssetResolver.Default);
            var run = await Learner.EvaluateAsync(classifier, path, callbacks: new ProgressLine().Callbacks, cancel: cancel);
            Cli.ReportSkipped(run.Skipped);
            ResultsView.Show(run.Result, $"{run.Dataset.Layout}:");
            if (parse.GetValue(json))
                Cli.WriteJson(new
                {
                    accuracy = run.Result.Accuracy,
                    loss = run.Result.Loss,
                    images = run.Result.Images,
                    classes = run.Result.Classes,
                    seconds = run.Seconds,
                    per_class = run.Result.PerClass,
                    confusion_matrix = run.Result.ConfusionMatrix,
                    skipped = run.Skipped,
                });
        });
        return command;
    }
}
