using System.CommandLine;
using Graft.Backbones;
using Graft.Backbones.Architectures;
using Graft.Weights;
using Spectre.Console;

namespace Graft.Cli.Commands;

public static class ModelsCommand
{
    public static Command Create()
    {
        var json = Cli.JsonOption();
        var command = new Command("models", "List the known backbones, their weight sources and whether the weights are here.") { json };
        command.SetHandler((parse, _) =>
        {
            var resolver = Cli.Assets;
            var rows = BackboneRegistry.All.Select(b =>
            {
                // Feature channels are measured on the built network, not typed into the registry.
                using var network = b.Build(new ArchitectureOptions(b.InputSize));
                return new
                {
                    name = b.Name,
                    description = b.Description,
                    input_size = b.InputSize,
                    min_input_size = b.MinInputSize,
                    preprocessing = b.Preprocessing.ToString().ToLowerInvariant(),
                    feature_layer = b.FeatureLayer,
                    feature_channels = network.Output.Channels,
                    generic_feature_block = b.GenericFeatureBlock,
                    is_default = b.IsDefault,
                    weights = b.Weights.Select(w => new
                    {
                        file = w.File.FileName, url = w.File.Url, hash = w.File.Hash, includes_top = w.IncludesTop,
                        input_sizes = w.InputSizes, local_path = resolver.FindLocal(w.File),
                    }).ToList(),
                };
            }).ToList();
            var table = new Table().Border(TableBorder.Rounded).AddColumns("backbone", "input (min)", "features", "preprocessing", "weights available here");
            foreach (var r in rows)
            {
                var local = r.weights.Where(w => w.local_path is not null).ToList();
                table.AddRow(Cli.Escape(r.name + (r.is_default ? " (default)" : "")), $"{r.input_size} ({r.min_input_size})", r.feature_channels.ToString(), r.preprocessing,
                    r.weights.Count == 0 ? "trained from scratch"
                        : local.Count > 0 ? $"[green]yes[/] {Cli.Escape(string.Join(", ", local.Select(w => w.file)))}"
                        : $"[yellow]no[/]: downloads {Cli.Escape(r.weights[0].file)}");
            }
            Cli.Out.Write(table);
            if (parse.GetValue(json)) Cli.WriteJson(new { backbones = rows });
            return Task.CompletedTask;
        });
        return command;
    }
}
