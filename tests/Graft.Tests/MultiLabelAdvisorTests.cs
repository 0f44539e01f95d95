using Graft.Data;
using Graft.Training;
using Xunit.Abstractions;

namespace Graft.Tests;

/// <summary>The strategy advisor on multi-label mosaics: its estimates are exact-match figures, finite, with intervals.</summary>
public class MultiLabelAdvisorTests(ITestOutputHelper output)
{
    [Fact]
    public async Task The_advisor_estimates_exact_match_of_multi_label_data()
    {
        using var dir = new TempDir();
        var dataset = Mosaics.Write(dir["data"], train: 36, validation: 12, test: 0, seed: 4);
        var options = new TrainOptions
        {
            CacheRoot = dir["cache"], InputSize = 64, BalancedClassWeights = true,
            Fit = new FitOptions(Epochs: 4, BatchSize: 8, LearningRate: 3e-3),
            FineTune = new FitOptions(Epochs: 1, BatchSize: 8, LearningRate: 1e-4),
        };
        var advice = await StrategyAdvisor.AdviseAsync(dataset, options, Assets.Resolver);
        foreach (var reason in advice.Reasons) output.WriteLine(reason);
        Assert.Equal("exact match", advice.Measure);
        Assert.Contains(advice.Estimates, e => e.Strategy == Strategy.FineTune);
        Assert.All(advice.Estimates, e =>
        {
            Assert.InRange(e.Accuracy, 0, 1);
            Assert.True(double.IsFinite(e.Interval.Low) && e.Interval.Low <= e.Interval.High, $"{e.Arguments}: [{e.Interval.Low}, {e.Interval.High}]");
            Assert.True(double.IsFinite(e.Seconds));
            if (e.Gain is { } gain) Assert.True(double.IsFinite(gain.Value) && double.IsFinite(gain.Interval.Low) && double.IsFinite(gain.Interval.High));
        });
        Assert.Contains(advice.Reasons, r => r.Contains("scored exact match"));
        Assert.Contains(advice.Estimates, e => e == advice.Chosen);
    }
}
