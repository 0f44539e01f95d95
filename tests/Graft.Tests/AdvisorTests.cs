using Graft.Training;

namespace Graft.Tests;

public class AdvisorTests
{
    static DatasetFacts Facts(int perClass, double top, double earlier, double confidence) =>
        new(2, perClass * 2, perClass, perClass, 500, 375, confidence, ["tabby (3)"], top, earlier, "block_12", 100);

    [Fact]
    public void The_four_cases()
    {
        var smallSimilar = StrategyAdvisor.Decide(Facts(120, 0.97, 0.86, 0.7));
        Assert.Equal(("small and similar", Strategies.FeatureExtraction, (string?)null), (smallSimilar.Case, smallSimilar.Strategy, smallSimilar.FeatureBlock));

        var smallDifferent = StrategyAdvisor.Decide(Facts(120, 0.70, 0.85, 0.1));
        Assert.Equal(("small and different", Strategies.FeatureExtraction, "block_12"), (smallDifferent.Case, smallDifferent.Strategy, smallDifferent.FeatureBlock));

        var largeSimilar = StrategyAdvisor.Decide(Facts(1000, 0.98, 0.90, 0.6));
        Assert.Equal(("large and similar", Strategies.FineTune), (largeSimilar.Case, largeSimilar.Strategy));
        Assert.Equal(2, largeSimilar.Unfreeze!.TopBlocks);

        var largeDifferent = StrategyAdvisor.Decide(Facts(5000, 0.80, 0.90, 0.05));
        Assert.Equal(("large and different", 0), (largeDifferent.Case, largeDifferent.Unfreeze!.FreezeFirstLayers));
        Assert.All([smallSimilar, smallDifferent, largeSimilar, largeDifferent], a => Assert.Equal(4, a.Reasons.Count));
    }

    [Fact]
    public void Imbalance_is_pointed_out()
    {
        var facts = Facts(120, 0.97, 0.86, 0.7) with { SmallestClass = 20, LargestClass = 200 };
        Assert.Contains("--class-weight balanced", StrategyAdvisor.Decide(facts).Reasons[0]);
    }

    [Fact]
    public void Cross_validated_probe_separates_separable_features_and_not_noise()
    {
        var rng = new Random(1);
        int n = 60;
        var labels = Enumerable.Range(0, n).Select(i => i % 2).ToArray();
        var separable = labels.Select(l => new[] { l * 4f + (float)rng.NextDouble(), (float)rng.NextDouble() }).ToArray();
        var noise = labels.Select(_ => new[] { (float)rng.NextDouble(), (float)rng.NextDouble() }).ToArray();
        Engine.TorchRuntime.EnsureInitialized();
        Assert.True(StrategyAdvisor.CrossValidatedProbe(separable, labels, 2, seed: 1) > 0.95);
        Assert.True(StrategyAdvisor.CrossValidatedProbe(noise, labels, 2, seed: 1) < 0.8);
    }

    [Fact]
    public async Task Advising_a_real_folder_measures_it()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir.Path, perClass: 10, classes: 2, size: 48);
        File.WriteAllText(dir["red/broken.jpg"], "not a picture"); // probed images and their classes must stay paired
        var advice = await StrategyAdvisor.AdviseAsync(dir.Path, "mobilenet_v2", Assets.Resolver, sample: 30);
        Assert.Equal(2, advice.Facts.Classes);
        Assert.Equal(21, advice.Facts.Images);
        Assert.Equal(20, advice.Facts.SampledImages);
        Assert.Equal((48, 56), (advice.Facts.MedianWidth, advice.Facts.MedianHeight));
        Assert.StartsWith("small", advice.Case);
        Assert.InRange(advice.Facts.ImageNetConfidence, 0, 1);
    }
}
