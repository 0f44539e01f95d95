using System.Globalization;
using Graft.Backbones;
using Graft.Engine;
using Graft.Heads;
using Graft.Runtime;
using static TorchSharp.torch;

namespace Graft.Bench;

/// <summary>The machine a bench ran on: its CPU, cores, allocator and libtorch threads, and its load before and after.</summary>
sealed record Machine(string Cpu, int Cores, string Allocator, int Threads, string LoadAtStart)
{
    /// <summary>This machine, now.</summary>
    public static Machine Here() => new(CpuDescription(), Environment.ProcessorCount, Engine.Allocator.Describe(), get_num_threads(), LoadAverage());

    /// <summary>The progress line that opens a bench.</summary>
    public string StartLine => $"CPU: {Cpu}; allocator: {Allocator}; threads: {Threads}; load average: {LoadAtStart}";

    /// <summary>A warning when other work already ran on the machine (a load average above its cores), else null.</summary>
    public string? BusyWarning =>
        double.TryParse(LoadAtStart.Split(' ')[0], CultureInfo.InvariantCulture, out var load) && load > Cores
            ? $"warning: load average {load:0.0} on {Cores} cores: other work is running, so speeds will be low and noisy." : null;

    /// <summary>The line that closes a bench's output: the machine and its load at start and at <paramref name="loadAtEnd"/>.</summary>
    public string Summary(string loadAtEnd) =>
        $"{Cpu}; allocator: {Allocator}; threads: {Threads}; load average (1, 5, 15 min) at start {LoadAtStart}, at end {loadAtEnd}";

    /// <summary>The 1, 5 and 15 minute load averages: other work on the machine during the bench shows here (Linux; "" elsewhere).</summary>
    public static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "";

    /// <summary>The CPU as /proc/cpuinfo names it (a hypervisor may hide the exact model: family and model numbers say more), its cores and vector width.</summary>
    static string CpuDescription()
    {
        if (!File.Exists("/proc/cpuinfo")) return $"{System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture}, {Environment.ProcessorCount} cores";
        var fields = File.ReadLines("/proc/cpuinfo").TakeWhile(l => l.Trim().Length > 0).Select(l => l.Split(':', 2)).Where(f => f.Length == 2)
            .GroupBy(f => f[0].Trim()).ToDictionary(g => g.Key, g => g.First()[1].Trim());
        var flags = fields.GetValueOrDefault("flags", "").Split(' ').ToHashSet();
        string vector = flags.Contains("avx512f") ? "AVX-512" : flags.Contains("avx2") ? "AVX2" : flags.Contains("asimd") ? "NEON" : "no AVX2";
        string model = fields.GetValueOrDefault("model name") ?? fields.GetValueOrDefault("Model") ?? "unknown CPU";
        string family = fields.TryGetValue("cpu family", out var f) && fields.TryGetValue("model", out var m) ? $" (family {f}, model {m})" : "";
        return $"{model}{family}, {Environment.ProcessorCount} cores, {vector}";
    }
}

/// <summary>The machine's convolution throughput, against which each network's is put.</summary>
sealed record ConvPeak(double Gflops, string Label)
{
    /// <summary>
    /// The machine's convolution throughput as Graft runs convolutions: stacks of large 3x3 convolutions (the shapes of
    /// VGG's and ResNet's middle layers) in Graft's tuned ONNX Runtime session, GFLOP/s = 2·MACs (<see cref="GraphCost"/>)
    /// / time; the better shape's best of three rounds. (Smaller maps, 14x14, run well below this.)
    /// </summary>
    public static ConvPeak Measure(Action<string>? log = null)
    {
        ConvPeak? best = null;
        foreach (var (size, channels, batch) in new[] { (56, 256, 16), (28, 512, 16) })
        {
            const int layers = 5;
            var b = new GraphBuilder("conv_peak", size, foldedBatchNorm: false);
            int x = b.Input;
            for (int i = 0; i < layers; i++) x = b.Conv2D($"conv{i}", x, channels, 3, padding: Backbones.Layers.Padding.Same);
            using var graph = b.Build();
            Timing.HeInitialize(graph);
            var cost = GraphCost.Of(graph);
            using var runner = new OnnxTrunkRunner(graph, size, Pooling.Gap);
            using var images = randn(batch, 3, size, size, device: CPU);
            Timing.WarmUp(() => runner.Features(images).Dispose());
            double rate = Enumerable.Range(0, 3).Max(_ => Timing.Throughput(runner, images, 1000, 1.5).Rate);
            var peak = new ConvPeak(cost.GigaFlops * rate,
                $"{layers - 1} 3x3 convolutions {channels}->{channels} at {size}x{size} after a 3->{channels} one, batch {batch}, Graft's ONNX Runtime session");
            log?.Invoke($"  {peak.Gflops:0} GFLOP/s: {peak.Label}");
            if (best is null || peak.Gflops > best.Gflops) best = peak;
        }
        return best!;
    }
}
