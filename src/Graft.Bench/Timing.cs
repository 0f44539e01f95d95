using System.Diagnostics;
using Graft.Backbones;
using Graft.Runtime;
using static TorchSharp.torch;

namespace Graft.Bench;

/// <summary>How the lab times a runner: warm-up, timed batches within a budget, and random weights that time like real ones.</summary>
static class Timing
{
    /// <summary>Images/s over timed batches: until about <paramref name="seconds"/> have passed, at least one, at most <paramref name="maxBatches"/>.</summary>
    public static (double Rate, int Batches) Throughput(ITrunkRunner runner, Tensor images, int maxBatches, double seconds = 1.5)
    {
        int n = 0;
        var clock = Stopwatch.StartNew();
        do { runner.Features(images).Dispose(); n++; } while (n < maxBatches && clock.Elapsed.TotalSeconds < seconds);
        return (images.shape[0] * (double)n / clock.Elapsed.TotalSeconds, n);
    }

    /// <summary>The first batches pick kernels and allocate: two of them, or one when it takes seconds.</summary>
    public static void WarmUp(Action step)
    {
        var clock = Stopwatch.StartNew();
        step();
        if (clock.Elapsed.TotalSeconds < 2) step();
    }

    /// <summary>
    /// Random weights that keep activations at their scale through any depth (He normal: std sqrt(2 / fan-in)),
    /// so that random-weight timings never run into denormal numbers, which are slow on CPUs.
    /// </summary>
    public static void HeInitialize(Graph network)
    {
        using var _ = no_grad();
        foreach (var p in network.parameters().Where(p => p.dim() >= 2))
            p.normal_(0, Math.Sqrt(2.0 / (p.numel() / p.shape[0])));
    }
}
