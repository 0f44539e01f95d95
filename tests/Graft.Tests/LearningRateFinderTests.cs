using Graft.Engine;
using Graft.Heads;
using Graft.Training;
using static TorchSharp.torch;

namespace Graft.Tests;

/// <summary>The learning-rate range test: the curve it records, its suggestion, and that it leaves the network as it was.</summary>
public class LearningRateFinderTests
{
    [Fact]
    public void The_valley_is_two_thirds_down_the_longest_falling_stretch()
    {
        // Flat and noisy, then falling from step 30 to step 70, then blowing up.
        var rates = Enumerable.Range(0, 100).Select(i => Math.Pow(10, -7 + 8.0 * i / 99)).ToList();
        var losses = Enumerable.Range(0, 100).Select(i => i < 30 ? 2.0 + 0.01 * (i % 2) : i <= 70 ? 2.0 - (i - 30) * 0.04 : 0.4 + (i - 70) * 0.3).ToList();
        double suggested = LearningRateFinder.Valley(rates, losses);
        int index = rates.IndexOf(suggested);
        Assert.InRange(index, 35, 62); // within the fall, well before its end
        Assert.Equal(1e-3, LearningRateFinder.Valley([], []));
    }

    [Fact]
    public void The_range_test_records_rising_rates_suggests_one_inside_them_and_restores_the_weights()
    {
        TorchRuntime.EnsureInitialized();
        manual_seed(4);
        using var x = randn(64, 8);
        using var y = (x[.., 0] + x[.., 1] > 0).to(int64);
        var head = new HeadConfig(8, 2, Hidden: 16, Dropout: 0).Build();
        var before = head.parameters().Select(p => p.detach().clone()).ToList();

        var search = HeadTrainer.FindLearningRate(head, x, y, new FitOptions(Epochs: 1, BatchSize: 8));

        Assert.Equal("head", search.Phase);
        Assert.Equal(search.Rates.Count, search.Losses.Count);
        Assert.InRange(search.Rates.Count, 10, LearningRateSearch.Steps);
        Assert.True(search.Rates.Zip(search.Rates.Skip(1)).All(p => p.Second > p.First), "the rate grows every step");
        Assert.Equal(LearningRateSearch.Start, search.Rates[0], 12);
        Assert.Contains(search.Suggested, search.Rates);
        Assert.InRange(search.Suggested, 1e-5, 1); // a separable problem learns between the flat start and the blow-up
        Assert.True(search.Losses.Min() < search.Losses[0], "the loss fell somewhere on the way");
        foreach (var (p, q) in head.parameters().Zip(before)) Assert.True(p.detach().allclose(q, 0, 0), "the test put the weights back");
    }
}
