using Graft.Data;
using Graft.Engine;
using Graft.Training;
using Graft.Imaging;
using Graft.Runtime;
using Graft.Heads;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Graft.Tests;

public class ScheduleTests
{
    [Fact]
    public void Schedules_have_their_shapes()
    {
        const long total = 101;
        double At(LrSchedule s, long step) => Schedules.Multiplier(s, step, total);
        Assert.All(Enumerable.Range(0, 101), i => Assert.Equal(1.0, At(LrSchedule.Constant, i)));

        Assert.Equal(1.0, At(LrSchedule.Cosine, 0), 9);
        Assert.Equal(0.5, At(LrSchedule.Cosine, 50), 9);
        Assert.Equal(0.0, At(LrSchedule.Cosine, 100), 9);
        Assert.Equal([1.0, 0.1, 0.01], new long[] { 10, 50, 90 }.Select(i => At(LrSchedule.Step, i)).ToArray(), new ToleranceComparer(1e-12));

        // One-cycle warms up to the full rate at 30% of training, then anneals to almost nothing.
        var cycle = Enumerable.Range(0, 101).Select(i => At(LrSchedule.OneCycle, i)).ToList();
        Assert.Equal(30, cycle.IndexOf(cycle.Max()));
        Assert.Equal(1.0, cycle.Max(), 9);
        Assert.Equal(0.04, cycle[0], 9);
        Assert.True(cycle[100] < 1e-3);
        Assert.All(Enumerable.Range(1, 99), i => Assert.True(i <= 30 ? cycle[i] > cycle[i - 1] : cycle[i] < cycle[i - 1]));
    }

    [Fact]
    public async Task Live_training_scales_each_group_by_its_multiplier_and_the_schedule()
    {
        // Two identical linear layers whose outputs add up get identical gradients, so one SGD step
        // (no momentum) moves each by learning rate x its group's multiplier x the schedule, and nothing else.
        TorchRuntime.EnsureInitialized();
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir.Path, perClass: 2, size: 16);
        var images = Directory.GetFiles(dir.Path, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Select((path, i) => new LabeledImage(path, i % 2)).ToList();
        var spec = ImageSpec.Uniform(8, 127.5f, 127.5f);

        async Task<(float Top, float Deeper)> Step(LrSchedule schedule)
        {
            manual_seed(5); // both runs start from the same weights
            using var twins = new Twins(3 * 8 * 8);
            using var before = twins.Top.weight.detach().clone();
            var groups = new[] { new ParameterGroup([.. twins.Top.parameters()], 1.0), new ParameterGroup([.. twins.Deeper.parameters()], 0.25) };
            var fit = new FitOptions(Epochs: 1, BatchSize: images.Count, LearningRate: 0.1, Optimizer: OptimizerKind.Sgd, Momentum: 0);
            await ImageTrainer.FitAsync(twins, groups, images, [], spec, new LiveFitOptions(fit, new Augmentation(), schedule),
                Callbacks.None, CancellationToken.None);
            float Moved(Linear layer) => (layer.weight - before).abs().sum().item<float>();
            return (Moved(twins.Top), Moved(twins.Deeper));
        }

        var constant = await Step(LrSchedule.Constant);
        Assert.True(constant.Top > 1e-4);
        Assert.Equal(0.25, constant.Deeper / constant.Top, 4);
        var warmingUp = await Step(LrSchedule.OneCycle); // the first step of one-cycle is at 4% of the rate
        Assert.Equal(0.04, warmingUp.Top / constant.Top, 4);
        Assert.Equal(0.25, warmingUp.Deeper / warmingUp.Top, 4);
    }

    sealed class Twins : nn.Module<Tensor, Tensor>
    {
        public readonly Linear Top, Deeper;

        public Twins(int inputs) : base(nameof(Twins))
        {
            Top = nn.Linear(inputs, 2);
            Deeper = nn.Linear(inputs, 2);
            using (no_grad())
            {
                Deeper.weight.copy_(Top.weight);
                Deeper.bias!.copy_(Top.bias!);
            }
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => Top.call(x.flatten(1)) + Deeper.call(x.flatten(1));
    }

    sealed class ToleranceComparer(double tolerance) : IEqualityComparer<double>
    {
        public bool Equals(double a, double b) => Math.Abs(a - b) <= tolerance;
        public int GetHashCode(double value) => 0;
    }
}
