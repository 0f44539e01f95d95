using Graft.Inference;
using System.CommandLine;
using Spectre.Console;

namespace Graft.Cli.Commands;

/// <summary><c>graft merge OUT SHARDS...</c>: the row files of <c>--shard K/N</c> runs as one, sorted by file; a file in two shards is an error.</summary>
public static class MergeCommand
{
    public static Command Create()
    {
        var output = new Argument<string>("OUT") { Description = "The merged file: .jsonl, .csv or .parquet (any of them, whatever the shards are)." };
        var inputs = new Argument<string[]>("SHARDS") { Description = "The files the --shard runs wrote with --out.", Arity = ArgumentArity.OneOrMore };
        var command = new Command("merge", "Combine the row files of predict or embed --shard runs into one, sorted by file.") { output, inputs };
        command.SetHandler((parse, _) =>
        {
            var outPath = parse.GetValue(output)!;
            var shards = parse.GetValue(inputs)!;
            RowFile.Check("OUT", outPath);
            OutputPaths.File("OUT", outPath, shards);
            var rows = new List<System.Text.Json.Nodes.JsonObject>();
            var from = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var shard in shards)
            {
                if (!File.Exists(shard)) throw new GraftException($"{shard} does not exist.", "Pass the files the --shard runs wrote.");
                foreach (var row in RowFile.Read(shard))
                {
                    var file = (string)row["file"]!;
                    if (!from.TryAdd(file, shard))
                        throw new GraftException($"{file} is in both {from[file]} and {shard}.", "Merge the shards of one run (the same N), each once.");
                    rows.Add(row);
                }
            }
            if (rows.Select(r => r.ContainsKey("vector")).Distinct().Count() > 1)
                throw new GraftException("the files mix predictions and embeddings.", "Merge the outputs of one command.");
            rows.Sort((a, b) => string.CompareOrdinal((string)a["file"]!, (string)b["file"]!));
            RowFile.Write(outPath, rows);
            Cli.Err.MarkupLine($"merged {Plural.Of(rows.Count, "row")} from {Plural.Of(shards.Length, "file")} into [green]{Cli.Escape(Path.GetFullPath(outPath))}[/]");
            return Task.CompletedTask;
        });
        return command;
    }
}
