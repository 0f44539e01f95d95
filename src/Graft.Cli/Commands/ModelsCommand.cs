using System.CommandLine;
using System.Globalization;
using Graft.Backbones;
using Spectre.Console;

namespace Graft.Cli.Commands;

public static class ModelsCommand
{
    public static Command Create()
    {
        var json = Cli.JsonOption();
        var command = new Command("models", "List the known backbones: parameters, GMACs, Keras's ImageNet top-1, weight sources and whether the weights are here.") { json };
        command.SetHandler((parse, _) =>
        {
            var resolver = Cli.Assets;
            var rows = BackboneRegistry.All.Select(b =>
            {
                // Counts are measured on the built network (without memory), not typed into the registry.
                var facts = NetworkFacts.Of(b);
                // The file train would load at the default size, and where it is on this machine.
                var source = b.SourceFor(resolver, b.InputSize, includeTop: false);
                return new
                {
                    name = b.Name,
                    description = b.Description,
                    input_size = b.InputSize,
                    min_input_size = b.MinInputSize,
                    preprocessing = b.Preprocessing.ToString().ToLowerInvariant(),
                    feature_layer = b.FeatureLayer,
                    feature_channels = facts.FeatureChannels,
                    generic_feature_block = b.GenericFeatureBlock,
                    is_default = b.IsDefault,
                    parameters = facts.ParametersWithTop,
                    parameters_without_top = facts.Parameters,
                    gmacs = Math.Round(facts.GigaMacs, 3),
                    imagenet_top1 = b.ImageNetTop1,
                    weights_file = source?.File.FileName,
                    weights_path = source is null ? null : resolver.FindLocal(source.File),
                    weights = b.Weights.Select(w => new
                    {
                        file = w.File.FileName, url = w.File.Url, hash = w.File.Hash, includes_top = w.IncludesTop,
                        input_sizes = w.InputSizes, local_path = resolver.FindLocal(w.File),
                    }).ToList(),
                };
            }).ToList();
            var table = new Table().Border(TableBorder.Rounded)
                .AddColumns("backbone", "input (min)", "features", "params", "GMACs", "top-1", "preprocessing", "weights here (the file train uses)");
            foreach (var r in rows)
                table.AddRow(Cli.Escape(r.name + (r.is_default ? " (default)" : "")), $"{r.input_size} ({r.min_input_size})", r.feature_channels.ToString(),
                    r.parameters >= 1e6 ? (r.parameters / 1e6).ToString("0.0 M", CultureInfo.InvariantCulture) : (r.parameters / 1e3).ToString("0 K", CultureInfo.InvariantCulture),
                    r.gmacs.ToString("0.00", CultureInfo.InvariantCulture),
                    r.imagenet_top1 is { } top1 ? top1.ToString("0.0%", CultureInfo.InvariantCulture) : "", r.preprocessing,
                    r.weights_file is null ? "trained from scratch"
                        : r.weights_path is not null ? $"[green]yes[/] {Cli.Escape(r.weights_file)}"
                        : $"[yellow]no[/]: downloads {Cli.Escape(r.weights_file)}");
            Cli.Out.Write(table);
            Cli.Out.MarkupLine("params: with the ImageNet top, as Keras counts them; GMACs: the trunk at its input size; top-1: Keras's published ImageNet accuracy (https://keras.io/api/applications/).");
            if (parse.GetValue(json)) Cli.WriteJson(new { backbones = rows });
            return Task.CompletedTask;
        });
        return command;
    }
}
