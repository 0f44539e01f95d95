using System.CommandLine;
using Graft.Data;
using Graft.Imaging;
using Spectre.Console;

namespace Graft.Cli.Commands;

public static class DatasetsCommand
{
    public static Command Create() =>
        new("datasets", "List the sample datasets (hymenoptera, cats_vs_dogs) and put them where 'graft train NAME' finds them.") { List(), Get() };

    static Command List()
    {
        var json = Cli.JsonOption();
        var command = new Command("list", "The sample datasets: where they come from, whether they are here, their size.") { json };
        command.SetHandler((parse, _) =>
        {
            var rows = SampleDatasets.All.Select(d => new
            {
                name = d.Name, upstream = d.Page, url = d.Url, content_hash = d.ContentHash, files = d.Files, bytes = d.Bytes,
                local_path = SampleDatasets.Find(d, Cli.Assets),
            }).ToList();
            var table = new Table().Border(TableBorder.Rounded).AddColumns("dataset", "upstream", "here", "size");
            foreach (var r in rows)
                table.AddRow(Cli.Escape(r.name), Cli.Escape(r.upstream), r.local_path is null ? "[yellow]not here[/]" : $"[green]{Cli.Escape(r.local_path)}[/]", Size(r.files, r.bytes));
            Cli.Out.Write(table);
            Cli.Out.MarkupLine("  'graft datasets get NAME' puts one into Graft's cache.");
            if (parse.GetValue(json)) Cli.WriteJson(new { datasets = rows });
            return Task.CompletedTask;
        });
        return command;
    }

    static Command Get()
    {
        var name = new Argument<string>("NAME") { Description = "The sample dataset: " + string.Join(", ", SampleDatasets.All.Select(d => d.Name)) + "." };
        var from = new Option<string?>("--from") { Description = "Its upstream zip file, already downloaded (needed for cats_vs_dogs: Kaggle needs a login)." };
        var json = Cli.JsonOption();
        var command = new Command("get", "Download a sample dataset (or unpack its zip given with --from), check its content and put it into Graft's cache.")
            { name, from, json };
        command.SetHandler((parse, _) =>
        {
            var wanted = parse.GetValue(name)!;
            var dataset = SampleDatasets.Named(wanted) ?? throw new GraftException($"There is no sample dataset '{wanted}'.",
                $"Use one of {string.Join(", ", SampleDatasets.All.Select(d => d.Name))} (see 'graft datasets list').");
            var existing = SampleDatasets.Find(dataset, Cli.Assets);
            var path = existing ?? SampleDatasets.Get(dataset, Cli.Assets, parse.GetValue(from));
            Cli.Out.MarkupLine($"{Cli.Escape(dataset.Name)}: {(existing is null ? "verified and unpacked into" : "already here, in")} {Cli.Escape(path)} " +
                $"({Size(dataset.Files, dataset.Bytes)}); 'graft train {Cli.Escape(dataset.Name)}' uses it.");
            if (parse.GetValue(json)) Cli.WriteJson(new { name = dataset.Name, path, already_here = existing is not null, content_hash = dataset.ContentHash });
            return Task.CompletedTask;
        });
        return command;
    }

    static string Size(int files, long bytes) => $"{(files == 1 ? "1 file" : $"{files:N0} files")}, {bytes / 1e6:0.0} MB";
}
