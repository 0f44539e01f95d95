using System.CommandLine;
using Graft.Models;
using Graft.Inference;
using Spectre.Console;

namespace Graft.Cli.Commands;

public static class ImportCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL_FILE")
        {
            Description = "A whole trained Keras model: a Teachable Machine export or TF.js layers model.json, or a Keras .h5 from model.save.",
        };
        var labels = new Option<string?>("--labels")
        {
            Description = "Class names, one per line, in the model's output order (default: Teachable Machine's metadata.json, else class_0, class_1, …).",
        };
        var output = new Option<string?>("--out") { Description = "Model file to write (default: the model's name + .graft, in the current folder)." };
        var json = Cli.JsonOption();
        var command = new Command("import", "Turn a trained Keras or Teachable Machine classifier into a Graft model file (predict, evaluate, export, summary).")
        {
            model, labels, output, json,
        };
        command.SetHandler((parse, _) =>
        {
            var path = parse.GetValue(model)!;
            var outPath = OutputPaths.File("--out", parse.GetValue(output) ?? DefaultOutput(path), path, parse.GetValue(labels));
            using var classifier = ModelImport.Import(path, parse.GetValue(labels), line => Console.Error.WriteLine(line));
            classifier.Save(outPath);
            var config = classifier.Config;
            // As Keras counts them: batch norm's moving statistics included.
            long trunkParameters = classifier.Backbone.Trunk.Layers.Sum(l => l.KerasWeights.Sum(w => w.Shape.Aggregate(1L, (a, b) => a * b)));
            long headParameters = classifier.Head.parameters().Sum(p => p.numel());
            Cli.Out.MarkupLine($"imported {Cli.Escape(Path.GetFullPath(path))}: {Cli.Escape(config.Backbone)} trunk ({trunkParameters:N0} parameters) at " +
                $"{config.Input.Size}x{config.Input.Size}, head {Cli.Escape(config.Head.Describe())} ({headParameters:N0} parameters), " +
                $"{config.Classes.Count} classes: {Cli.Escape(string.Join(", ", config.Classes))}");
            Cli.Out.MarkupLine($"saved [green]{Cli.Escape(Path.GetFullPath(outPath))}[/]");
            if (parse.GetValue(json))
                Cli.WriteJson(new
                {
                    model = Path.GetFullPath(outPath),
                    source = Path.GetFullPath(path),
                    strategy = config.Strategy,
                    backbone = config.Backbone,
                    input_size = config.Input.Size,
                    classes = config.Classes,
                    head = config.Head.Describe(),
                    trunk_params = trunkParameters,
                    head_params = headParameters,
                });
            return Task.CompletedTask;
        });
        return command;
    }

    /// <summary>A model.json is named by its folder (Teachable Machine exports are all "model.json"); other files by their own name.</summary>
    static string DefaultOutput(string path)
    {
        var full = Path.GetFullPath(path);
        var name = Path.GetFileName(full).Equals("model.json", StringComparison.OrdinalIgnoreCase)
            ? Path.GetFileName(Path.GetDirectoryName(full)!)
            : Path.GetFileNameWithoutExtension(full);
        return (string.IsNullOrEmpty(name) ? "imported" : name) + ".graft";
    }
}
