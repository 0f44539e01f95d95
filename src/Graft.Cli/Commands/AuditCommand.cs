using Graft.Inference;
using System.CommandLine;
using Graft.Audit;
using Graft.Data;
using Graft.Imaging;
using Spectre.Console;
using Graft.Reports;
using Graft.Training;
using Graft.Weights;

namespace Graft.Cli.Commands;

/// <summary>graft audit DATA: the data doctor, from cached features. Reads the data, writes only reports and the actions CSV.</summary>
public static class AuditCommand
{
    const int Top = 5;

    public static Command Create()
    {
        var data = new Argument<string>("DATA") { Description = "A dataset folder (as for train)." };
        var report = new Option<string?>("--report") { Description = "Write an HTML report (with audit.json, findings.csv and actions.csv) into this folder." };
        var actions = new Option<string?>("--actions") { Description = "Write the suggested actions (file,action,label,reason) to this CSV, for graft train --exclude." };
        var flags = new Flags<AuditOptions>(new AuditOptions());
        var labels = flags.Option("--labels", o => o.LabelsFile);
        labels.HelpName = "FILE";
        var backbone = flags.Option("--backbone", o => o.Backbone);
        var cache = flags.Option("--cache", o => o.CacheRoot);
        var split = flags.Option("--val-split", o => o.ValidationSplit);
        var testSplit = flags.Option("--test-split", o => o.TestSplit);
        var seed = flags.Option("--seed", o => o.Seed);
        var device = Cli.DeviceOption();
        var described = new BackboneOptions();
        var output = new Option<string?>("--out") { Description = "With --shard: also write the share's features, one row per image (file, vector), to this .jsonl, .csv or .parquet file, as it goes (graft merge combines the shards' files)." };
        var shards = new ShardOptions();
        var json = Cli.JsonOption();
        var command = new Command("audit", "Find likely label errors, duplicates and leakage, outliers and unusable files; would more photos help?")
            { data, labels, report, actions, backbone, cache, split, testSplit, seed, output, device, json };
        command.Options.Add(described.InputSize);
        foreach (var option in described.Onnx) command.Options.Add(option);
        shards.AddTo(command);
        command.SetHandler(async (parse, cancel) =>
        {
            var on = Cli.Device(parse, device);
            described.CheckOnnx(parse, parse.GetValue(backbone)!, Backbones.OnnxBackboneOptions.IsOnnxFile(parse.GetValue(backbone)));
            var dataPath = parse.GetValue(data)!;
            if (parse.GetValue(report) is { } reportOut) OutputPaths.Folder("--report", reportOut, dataPath);
            if (parse.GetValue(actions) is { } actionsOut) OutputPaths.File("--actions", actionsOut, dataPath, parse.GetValue(labels));
            var path = SampleDatasets.Resolve(dataPath, Cli.Assets);
            var options = new AuditOptions { LabelsFile = parse.GetValue(labels), Backbone = parse.GetValue(backbone)!, InputSize = described.Size(parse), Onnx = described.OnnxOptions(parse), CacheRoot = parse.GetValue(cache), ValidationSplit = parse.GetValue(split), TestSplit = parse.GetValue(testSplit), Seed = parse.GetValue(seed), Device = on };
            if (parse.GetValue(shards.Shard) is not null)
            {
                if (parse.GetValue(report) is not null || parse.GetValue(actions) is not null)
                    throw new GraftException("--shard computes a share of the audit's features; the findings (--report, --actions) need every image.",
                        $"Drop --report and --actions here; run graft audit {dataPath} with them once every shard is done.");
                await ShardAsync(parse, shards, path, parse.GetValue(output), options, parse.GetValue(json), cancel);
                return;
            }
            if (parse.GetValue(output) is not null || parse.GetValue(shards.Resume))
                throw new GraftException("--out and --resume write a shard's features: the audit itself writes --report and --actions.", "Add --shard K/N, or drop --out and --resume.");
            var audit = await DataAudit.RunAsync(path, options, Cli.Assets, new ProgressLine().Callbacks, cancel);
            if (audit.CacheWarning is { } warning) Cli.Err.MarkupLine($"[yellow]warning:[/] the bottleneck cache could not be written ({Cli.Escape(warning)}).");
            Summarize(audit);
            if (parse.GetValue(actions) is { } actionsPath)
            {
                AuditActions.Write(actionsPath, audit.Actions);
                Cli.Out.MarkupLine($"{Plural.Of(audit.Actions.Count, "suggested action")}: [green]{Cli.Escape(Path.GetFullPath(actionsPath))}[/] (graft train --exclude)");
            }
            if (parse.GetValue(report) is { } folder)
                Cli.Out.MarkupLine($"report [green]{Cli.Escape(Path.GetFullPath(AuditReport.Write(audit, folder)))}[/]");
            if (parse.GetValue(json)) Cli.WriteJson(audit);
        });
        return command;
    }

    /// <summary>
    /// The audit's one step per image, for share K of N: the features, into the bottleneck cache (and <c>--out</c>). Every
    /// finding compares images with each other, so the whole audit then runs once, with the same <c>--cache</c>, and reads
    /// every feature from it.
    /// </summary>
    static async Task ShardAsync(ParseResult parse, ShardOptions shards, string data, string? outPath, AuditOptions options, bool json, CancellationToken cancel)
    {
        if (outPath is not null)
        {
            RowFile.Check("--out", outPath);
            OutputPaths.File("--out", outPath, data);
        }
        var (files, done) = shards.Select(parse, [data], [.. DataAudit.Images(data, options)], outPath);
        var source = DataAudit.Source(options);
        using var backbone = BottleneckFeatures.LoadBackbone(source, Cli.Assets);
        using var extraction = FeatureExtraction.Open(backbone, source);
        var extracted = await FeatureRows.ExtractAsync(extraction, files, outPath, done, cancel);
        Cli.ReportSkipped(extracted.Skipped);
        if (extracted.CacheWarning is { } warning) Cli.Err.MarkupLine($"[yellow]warning:[/] the bottleneck cache could not be written ({Cli.Escape(warning)}): the whole audit will compute these features again.");
        var cacheRoot = Path.GetFullPath(options.CacheRoot ?? AssetResolver.DefaultCacheRoot());
        Cli.Err.MarkupLine($"shard {Cli.Escape(parse.GetValue(shards.Shard)!)}: features of {Plural.Of(extracted.Rows.Count, "image")} ({extracted.CacheHits} cached, {extracted.Computed} computed) in [green]{Cli.Escape(cacheRoot)}[/]"
            + (outPath is null ? "" : $", rows{(done.Count > 0 ? $" after the {done.Count} already there" : "")} in [green]{Cli.Escape(Path.GetFullPath(outPath))}[/]")
            + $"; once every shard is done, graft audit {Cli.Escape(data)} --cache {Cli.Escape(cacheRoot)} reads them");
        if (json)
            Cli.WriteJson(new { images = extracted.Rows.Count, cache_hits = extracted.CacheHits, computed = extracted.Computed, cache = cacheRoot, skipped = extracted.Skipped });
    }

    static void Summarize(AuditResult a)
    {
        var f = a.Features;
        Cli.Out.MarkupLine($"[bold]{Cli.Escape(a.Root)}[/]: {Plural.Of(a.ImageCount, "image")} in {Plural.Of(a.Classes.Count, "class", "classes")} ({Cli.Escape(a.Layout)}); " +
                           $"features {f.CacheHits} cached, {f.Computed} computed; {a.Seconds:0.0} s");
        if (a.MultiLabel)
        {
            Findings("likely missing label", a.MissingLabels, m => $"{m.File}: lacks {m.Label} ({m.Probability:0.00}; those with it {m.Threshold:0.00}; {m.Agreeing} of its {m.Nearest} nearest images carry it)");
            Findings("likely extra label", a.ExtraLabels, e => $"{e.File}: carries {e.Label} ({e.Probability:0.00}; those without it {e.Threshold:0.00}; {e.Agreeing} of its {e.Nearest} nearest images lack it)");
        }
        else
            Findings("likely label error", a.LabelIssues, i => $"{i.File}: labelled {i.Given} ({i.SelfConfidence:0.00}), looks like {i.Suggested} ({i.Confidence:0.00}; {i.Agreeing} of its {i.Nearest} nearest images)");
        foreach (var l in a.Leaked) Cli.Out.MarkupLine($"[bold]leakage[/]: {l.Leaked} of {l.Images} {l.Role.ToString().ToLowerInvariant()} images ({l.Share:0.0%}) have a copy in an earlier part");
        Findings("leaked pair", a.Leakage, Pair);
        Findings("duplicate pair", a.Duplicates, Pair);
        Findings("outlier", a.Outliers, o => $"{o.File} (class {o.Label}): neighbour distance {o.Distance:0.000}, score {o.Score:0.0}");
        Findings("unusable file", a.Unusable, u => $"{u.File}: {u.Kind}: {u.Reason}");
        foreach (var note in a.Notes) Cli.Out.MarkupLine($"[yellow]note:[/] {Cli.Escape(note)}");
        var smallest = a.Classes.MinBy(c => c.Total)!;
        var largest = a.Classes.MaxBy(c => c.Total)!;
        var balance = smallest.Total == largest.Total ? $"{Plural.Of(largest.Total, "image")} each"
            : $"from {Cli.Escape(smallest.Name)} {smallest.Total} to {Cli.Escape(largest.Name)} {Plural.Of(largest.Total, "image")}";
        Cli.Out.MarkupLine($"[bold]classes[/]: {balance}" +
                           $"; median size {a.Images.MedianWidth}x{a.Images.MedianHeight}, {a.Images.Grayscale} grayscale, {a.Images.Cmyk} CMYK");
        if (a.LearningCurve is { } curve)
            Cli.Out.MarkupLine($"[bold]more photos?[/] {Cli.Escape(string.Join(", ", curve.Points.Select(p => $"{p.TrainImages} images {p.Overall.Value:0.000}")))}. {Cli.Escape(curve.Verdict)}");
    }

    static string Pair(DuplicatePair p) =>
        $"{p.File} ({p.Role.ToString().ToLowerInvariant()}, {p.Label}) = {p.Other} ({p.OtherRole.ToString().ToLowerInvariant()}, {p.OtherLabel}): {p.Match}, similarity {p.Similarity:0.000}";

    static void Findings<T>(string what, IReadOnlyList<T> findings, Func<T, string> line)
    {
        Cli.Out.MarkupLine($"[bold]{Plural.Of(findings.Count, what)}[/]" + (findings.Count > Top ? $" (first {Top}):" : findings.Count > 0 ? ":" : ""));
        foreach (var finding in findings.Take(Top)) Cli.Out.MarkupLine($"  {Cli.Escape(line(finding))}");
    }
}
