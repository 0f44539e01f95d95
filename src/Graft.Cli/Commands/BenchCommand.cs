using System.CommandLine;
using System.Diagnostics;
using Graft.Bench;

namespace Graft.Cli.Commands;

/// <summary>`graft bench`: its flags mapped onto <see cref="BenchOptions"/>, run by the lab in Graft.Bench with this program as host.</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var flags = new Flags<BenchOptions>(new BenchOptions());
        var datasets = flags.Option("--datasets", o => o.Datasets);
        var noDatasets = new Option<bool>("--no-datasets") { Description = "Train on no sample dataset (as --datasets '')." };
        var backbones = flags.Option("--backbones", o => o.Backbones);
        backbones.HelpName = "NAMES";
        var batches = flags.Option("--batches", o => o.Batches);
        var experiments = flags.Option("--experiments", o => o.Experiments);
        var advisor = flags.Option("--advisor", o => o.Advisor);
        var decoders = flags.Option("--decoders", o => o.Decoders);
        var accuracy = flags.Option("--accuracy", o => o.Accuracy);
        var candidate = new Option<string[]>("--candidate") { Description = flags.Help(o => o.Candidates), HelpName = "ARGS", AllowMultipleArgumentsPerToken = false };
        var serve = flags.Option("--serve", o => o.Serve);
        var serveRequests = flags.Option("--serve-requests", o => o.ServeRequests);
        var trust = flags.Option("--trust", o => o.Trust);
        var audit = flags.Option("--audit", o => o.Audit);
        var multiLabel = flags.Option("--multi-label", o => o.MultiLabel);
        var mosaics = flags.Option("--mosaics", o => o.Mosaics);
        mosaics.HelpName = "DIR";
        // One backbone's measurement, which the bench runs in a child process so that its peak memory is its own.
        var child = new Flags<MeasureRequest>(new MeasureRequest(""));
        var measure = new Option<string?>(MeasureRequest.BackboneFlag) { Hidden = true };
        var part = child.Option(MeasureRequest.PartFlag, m => m.Part);
        var batch = child.Option(MeasureRequest.BatchFlag, m => m.Batch);
        part.Hidden = batch.Hidden = true;
        // One decoder's measurement on a list of files, also in a child process of its own.
        var measureDecoder = new Option<string?>(DecoderRequest.DecoderFlag) { Hidden = true };
        var measureFiles = new Option<string?>(DecoderRequest.FilesFlag) { Hidden = true };
        var json = Cli.JsonOption();
        var command = new Command("bench", "Measure speed and accuracy against Graft's targets.")
            { datasets, noDatasets, backbones, batches, experiments, advisor, decoders, accuracy, candidate, serve, serveRequests, trust, audit, multiLabel, mosaics, measure, part, batch, measureDecoder, measureFiles, json };
        command.SetHandler((parse, cancel) =>
        {
            var options = new BenchOptions
            {
                Datasets = parse.GetValue(noDatasets) ? [] : parse.GetValue(datasets)!,
                Backbones = parse.GetValue(backbones)!,
                Batches = parse.GetValue(batches),
                Experiments = parse.GetValue(experiments),
                Advisor = parse.GetValue(advisor),
                Decoders = parse.GetValue(decoders),
                Accuracy = parse.GetValue(accuracy),
                Candidates = parse.GetValue(candidate) ?? [],
                Serve = parse.GetValue(serve),
                ServeRequests = parse.GetValue(serveRequests),
                Trust = parse.GetValue(trust),
                Audit = parse.GetValue(audit),
                MultiLabel = parse.GetValue(multiLabel),
                Mosaics = parse.GetValue(mosaics),
                Measure = parse.GetValue(measure) is { } name ? new MeasureRequest(name, parse.GetValue(part), parse.GetValue(batch)) : null,
                MeasureDecoder = parse.GetValue(measureDecoder) is { } decoder ? new DecoderRequest(decoder, parse.GetValue(measureFiles) ?? "") : null,
            };
            bool child = options.Measure is not null || options.MeasureDecoder is not null;
            var progress = new ProgressLine();
            var host = new BenchHost(Cli.Out, Cli.Escape, parse.GetValue(json) || child ? Cli.WriteJson : null,
                Cli.Assets, progress.Callbacks, StartGraft);
            return Bench.Bench.RunAsync(options, host, cancel);
        });
        return command;
    }

    /// <summary>This program again, as a child process: `dotnet Graft.Cli.dll ARGS`.</summary>
    static ProcessStartInfo StartGraft(IReadOnlyList<string> arguments)
    {
        var start = new ProcessStartInfo("dotnet");
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Graft.Cli.dll"));
        foreach (var a in arguments) start.ArgumentList.Add(a);
        return start;
    }
}
