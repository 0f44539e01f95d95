using System.CommandLine;
using Graft.Backbones;
using Graft.Backbones.Architectures;
using Graft.Evaluation;
using Graft.Training;
using Spectre.Console;

namespace Graft.Cli.Commands;

public static class SummaryCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "A model file, or a backbone name (its network as Keras's model.summary() shows it; no weights needed)." };
        var top = new Option<bool>("--top") { Description = "A backbone with its ImageNet classifier (Keras's include_top=True)." };
        var json = Cli.JsonOption();
        var command = new Command("summary", "Keras-style table of a model's layers, output shapes and parameters.") { model, top, json };
        var weights = new BackboneOptions();
        weights.AddTo(command);
        command.SetHandler((parse, _) =>
        {
            var name = parse.GetValue(model)!;
            ModelSummary summary;
            string input;
            if (!File.Exists(name) && BackboneRegistry.Exists(name))
            {
                // The architecture alone: names, shapes and counts do not depend on the weights, so this works offline.
                var config = BackboneRegistry.Get(name);
                int size = weights.Size(parse) ?? config.InputSize;
                // With --weights the file is read and checked against the network; the architecture alone needs no file.
                using var backbone = weights.WeightsFile(parse) is { } file
                    ? Backbone.LoadPretrained(config, Cli.Assets, parse.GetValue(top), weights.Size(parse), file)
                    : Backbone.Create(config, new ArchitectureOptions(size, parse.GetValue(top)), config.Spec(size));
                foreach (var p in backbone.Network.parameters()) p.requires_grad = true; // as Keras builds it: all trainable
                summary = ModelSummary.Of($"{config.Name}{(parse.GetValue(top) ? " with its ImageNet top" : "")}" +
                    (backbone.LoadReport is { } report ? $" — weights {report}" : ""), backbone.Network, backbone.Input.Size);
                input = backbone.Input.Describe();
            }
            else
            {
                using var classifier = ModelSource.Open(name, allowBackbone: false, weights.WeightsFile(parse), weights.Size(parse));
                // Show what training trained: a fine-tuned model's unfrozen blocks count as trainable.
                if (classifier.Config.Unfreeze is { } unfreeze) Graft.Training.Freezing.Apply(classifier.Backbone.Trunk, unfreeze);
                if (classifier.Config.Strategy == Strategy.Scratch.Name())
                    foreach (var p in classifier.Backbone.Trunk.parameters()) p.requires_grad = true;
                summary = ModelSummary.Of($"{classifier.Config.Backbone} — {classifier.Config.Strategy}", classifier.Backbone,
                    classifier.Config.Input.Size, classifier.Head, classifier.Config.Head.Pooling);
                input = $"{classifier.Config.Input.Describe()}; head: {classifier.Config.Head.Describe()}";
            }
            var table = new Table().Border(TableBorder.Simple).Title(Cli.Escape(summary.Title))
                .AddColumns("Layer (type)", "Output Shape", "Param #", "Trainable");
            foreach (var row in summary.Rows)
                table.AddRow(Cli.Escape($"{row.Name} ({row.Type})"), row.ShapeText, row.Parameters.ToString("N0"),
                    row.Parameters == 0 ? "" : row.TrainableParameters == row.Parameters ? "yes" : row.TrainableParameters == 0 ? "no" : "partly");
            Cli.Out.Write(table);
            Cli.Out.MarkupLine($"Total params: {summary.Total:N0}\nTrainable params: {summary.Trainable:N0}\nNon-trainable params: {summary.NonTrainable:N0}");
            Cli.Out.MarkupLine($"Input: {Cli.Escape(input)}");
            if (parse.GetValue(json))
                Cli.WriteJson(new { summary.Title, layers = summary.Rows, total_params = summary.Total, trainable_params = summary.Trainable, non_trainable_params = summary.NonTrainable });
            return Task.CompletedTask;
        });
        return command;
    }
}
