using System.CommandLine;
using Graft.Backbones;
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
            var resolver = AssetResolver.Default;
            var rows = BackboneRegistry.All.Select(b => new
            {
                name = b.Name,
                description = b.Description,
                input_size = b.InputSize,
                feature_channels = b.FeatureChannels,
                weights_url = b.Weights?.Url,
                weights_sha256 = b.Weights?.Sha256,
                local_path = b.Weights is null ? null : resolver.FindLocal(b.Weights),
            }).ToList();
            var table = new Table().Border(TableBorder.Rounded).AddColumns("backbone", "input", "features", "weights", "available here");
            foreach (var r in rows)
                table.AddRow(Cli.Escape(r.name), $"{r.input_size}x{r.input_size}", r.feature_channels.ToString(),
                    Cli.Escape(r.description), r.weights_url is null ? "trained from scratch"
                        : r.local_path is null ? $"[yellow]no[/] (downloads from {Cli.Escape(r.weights_url)})" : $"[green]yes[/] {Cli.Escape(r.local_path)}");
            Cli.Out.Write(table);
            if (parse.GetValue(json)) Cli.WriteJson(new { backbones = rows });
            return Task.CompletedTask;
        });
        return command;
    }
}
