using System.CommandLine;
using Graft.Evaluation;
using Spectre.Console;

namespace Graft.Cli.Commands;

public static class SummaryCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "A model file or a backbone name." };
        var json = Cli.JsonOption();
        var command = new Command("summary", "Keras-style table of a model's layers, output shapes and parameters.") { model, json };
        command.SetHandler((parse, _) =>
        {
            using var classifier = ModelSource.Open(parse.GetValue(model)!, allowBackbone: true);
            // Show what training trained: a fine-tuned model's unfrozen blocks count as trainable.
            if (classifier.Config.Unfreeze is { } unfreeze) Graft.Training.Freezing.Apply(classifier.Backbone.Trunk, unfreeze);
            if (classifier.Config.Strategy == Strategies.Scratch)
                foreach (var p in classifier.Backbone.Trunk.parameters()) p.requires_grad = true;
            var summary = ModelSummary.Of($"{classifier.Config.Backbone} — {classifier.Config.Strategy}", classifier.Backbone.Trunk,
                classifier.Head, classifier.Config.Input.Size);
            var table = new Table().Border(TableBorder.Simple).Title(Cli.Escape(summary.Title))
                .AddColumns("Layer (type)", "Output Shape", "Param #", "Trainable");
            foreach (var row in summary.Rows)
                table.AddRow(Cli.Escape($"{new string(' ', row.Depth * 2)}{row.Name} ({row.Type})"), row.ShapeText,
                    row.Parameters.ToString("N0"), row.Parameters == 0 ? "" : row.TrainableParameters == row.Parameters ? "yes" : row.TrainableParameters == 0 ? "no" : "partly");
            Cli.Out.Write(table);
            Cli.Out.MarkupLine($"Total params: {summary.Total:N0}\nTrainable params: {summary.Trainable:N0}\nNon-trainable params: {summary.NonTrainable:N0}");
            Cli.Out.MarkupLine($"Input: {classifier.Config.Input.Size}x{classifier.Config.Input.Size} RGB, (pixel - {classifier.Config.Input.Mean[0]:0.###}) / {classifier.Config.Input.Std[0]:0.###}; head: {Cli.Escape(classifier.Config.Head.Describe())}");
            if (parse.GetValue(json))
                Cli.WriteJson(new { summary.Title, layers = summary.Rows, total_params = summary.Total, trainable_params = summary.Trainable, non_trainable_params = summary.NonTrainable });
            return Task.CompletedTask;
        });
        return command;
    }
}
