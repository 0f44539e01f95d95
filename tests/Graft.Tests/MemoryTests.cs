using Graft.Backbones;
using Graft.Engine;
using Graft.Training;
using Graft.Runtime;
using Graft.Heads;
using static TorchSharp.torch;

namespace Graft.Tests;

public class MemoryTests
{
    /// <summary>Every batch's tensors are disposed: resident memory after many batches is what it was after a few.</summary>
    [Fact]
    public void Inference_and_training_steps_do_not_grow_memory()
    {
        var trunk = Networks.Build("mobilenet_v2_0.35", 64);
        manual_seed(0);
        var runner = new TorchTrunkRunner(trunk);
        var head = new HeadConfig(trunk.Output.Channels, 2).Build();
        var network = new GraftedNetwork(trunk, Pooling.Gap, head);
        Freezing.Apply(trunk, new UnfreezeSpec(TopBlocks: 3));
        using var optimizer = optim.SGD(network.parameters().Where(p => p.requires_grad), 1e-3, momentum: 0.9);
        using var images = randn(8, 3, 64, 64);
        using var labels = tensor(new long[] { 0, 1, 0, 1, 0, 1, 0, 1 });

        void Work(int batches)
        {
            for (int i = 0; i < batches; i++)
            {
                runner.Features(images).Dispose();
                using var scope = NewDisposeScope();
                Freezing.SetTrainingMode(network);
                optimizer.zero_grad();
                Objective.Loss(network.call(images), labels).backward();
                optimizer.step();
            }
        }

        Work(5);
        GC.Collect();
        double before = ProcessStats.CurrentRssMb();
        Work(30);
        GC.Collect();
        double after = ProcessStats.CurrentRssMb();
        Assert.True(after - before < 40, $"resident memory grew from {before:0} MB to {after:0} MB over 30 batches");
    }

    [Theory]
    [InlineData("VmHWM:\t  123456 kB", 123456)]
    [InlineData("VmHWM:\t11565640 kB", 11565640)]
    [InlineData("VmRSS:\t123456789 kB", 123456789)]
    public void Process_status_lines_parse_at_every_width(string line, long kb) => Assert.Equal(kb, ProcessStats.StatusKb(line));
}
