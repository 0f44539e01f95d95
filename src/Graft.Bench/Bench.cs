using Graft.Engine;
using Spectre.Console;

namespace Graft.Bench;

/// <summary>
/// Speed and accuracy, measured and compared with Graft's targets (`graft bench`). The standard run measures its
/// families in order into one table of rows; a study (<see cref="Studies"/>) runs alone instead, with output of its
/// own. A new family is a file with a <c>RunAsync(BenchRun, CancellationToken)</c> added to <see cref="Standard"/>
/// (or a study added to <see cref="Studies"/>), and its option in <see cref="BenchOptions"/>.
/// </summary>
public static class Bench
{
    /// <summary>The standard run's families, in the order their rows appear.</summary>
    static readonly Func<BenchRun, CancellationToken, Task>[] Standard =
        [BackboneSpeed.RunAsync, TrainingLoop.RunAsync, DatasetRuns.RunAsync, Int8Bench.TrunkRowsAsync];

    /// <summary>Studies that run instead of the standard run when their option is set (the first that is).</summary>
    static readonly (Func<BenchOptions, bool> Chosen, Func<BenchOptions, BenchHost, CancellationToken, Task> RunAsync)[] Studies =
        [(o => o.Experiments, KerasBlogExperiments.RunAsync), (o => o.Advisor, AdvisorBench.RunAsync), (o => o.Decoders, DecoderBench.RunAsync),
         (o => o.Accuracy, AccuracyBench.RunAsync),
         (o => o.Serve is not null, ServeBench.RunAsync),
         (o => o.Trust, TrustBench.RunAsync), (o => o.Audit, AuditBench.RunAsync), (o => o.MultiLabel, MultiLabelBench.RunAsync)];

    /// <summary>Runs what <paramref name="options"/> asks for, writing through <paramref name="host"/>.</summary>
    public static async Task RunAsync(BenchOptions options, BenchHost host, CancellationToken cancel = default)
    {
        if (options.MeasureDecoder is { } decoding)
        {
            // Before libtorch loads: the child's peak memory is the decoder's.
            host.WriteJson?.Invoke(DecoderBench.MeasureInChild(decoding));
            return;
        }
        TorchRuntime.EnsureInitialized();
        if (options.Measure is { } request)
        {
            host.WriteJson?.Invoke(BackboneSpeed.MeasureInChild(request, host.Assets, options.TimedBatches));
            return;
        }
        if (Studies.FirstOrDefault(s => s.Chosen(options)) is { RunAsync: { } study })
        {
            await study(options, host, cancel);
            return;
        }

        var run = new BenchRun(options, host);
        host.Log(run.Machine.StartLine);
        if (run.Machine.BusyWarning is { } warning) host.Log(warning);
        foreach (var family in Standard)
        {
            cancel.ThrowIfCancellationRequested();
            await family(run, cancel);
        }

        string loadAtEnd = Machine.LoadAverage();
        var peak = run.Peak;
        host.Out.WriteLine(run.Machine.Summary(loadAtEnd) + (peak is null ? "" : $"; convolution peak {peak.Gflops:0} GFLOP/s ({peak.Label})"));
        host.Out.Write(Tables.Rows(run.Rows, host.Escape));
        if (run.Backbones.Count > 0) host.Out.Write(Tables.Backbones(run.Backbones, run.Machine, peak!, host.Escape));
        var machine = run.Machine;
        host.WriteJson?.Invoke(new
        {
            cpu = machine.Cpu, cores = machine.Cores, allocator = machine.Allocator, threads = machine.Threads,
            load_average_start = machine.LoadAtStart, load_average_end = loadAtEnd,
            conv_peak_gflops = peak?.Gflops, conv_peak = peak?.Label, results = run.Rows, backbones = run.Backbones,
        });
    }
}
