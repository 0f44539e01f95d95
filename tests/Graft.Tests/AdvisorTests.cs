using System.Text.Json;
using Graft.Evaluation;
using Graft.Training;
using Graft.Heads;

namespace Graft.Tests;

public class AdvisorTests
{
    static readonly StrategyEstimate Plain = new(Strategy.FeatureExtraction, null, null, 0.95, new Interval(0.93, 0.97), 2, null);

    static StrategyEstimate Earlier(int wins, int losses) =>
        new(Strategy.FeatureExtraction, "block_12", null, 0.95, new Interval(0.93, 0.97), 2, new PairedGain(wins, losses, 600));

    static StrategyEstimate FineTune(int wins, int losses) =>
        new(Strategy.FineTune, null, UnfreezeSpec.Default, 0.95, new Interval(0.93, 0.97), 120, new PairedGain(wins, losses, 600));

    [Fact]
    public void A_clearly_better_strategy_is_chosen()
    {
        var (chosen, reason) = AdviceRule.Decide([Plain, Earlier(3, 40), FineTune(30, 2)]);
        Assert.Equal("--strategy fine-tune --unfreeze 2", chosen.Arguments);
        Assert.Contains("beyond the noise", reason);
    }

    [Fact]
    public void Inside_the_noise_the_cheaper_strategy_is_chosen_and_the_reason_says_so()
    {
        var (chosen, reason) = AdviceRule.Decide([Plain, Earlier(3, 40), FineTune(6, 2)]);
        Assert.Same(Plain, chosen);
        Assert.Contains("inside the noise", reason);
        Assert.Contains("cheaper", reason);

        // Two clear gains whose difference is inside the noise: the cheaper one (earlier in the list).
        var (cheaper, why) = AdviceRule.Decide([Plain, Earlier(40, 4), FineTune(44, 4)]);
        Assert.Equal("block_12", cheaper.FeatureBlock);
        Assert.Contains("cheaper", why);

        var (plainAgain, because) = AdviceRule.Decide([Plain, Earlier(0, 30), FineTune(0, 0)]);
        Assert.Same(Plain, plainAgain);
        Assert.Contains("no other strategy measured better", because);
    }

    [Fact]
    public void A_learning_curve_is_followed_as_a_power_law_held_to_a_halving_per_doubling()
    {
        // Error 0.2 at 100 images and 0.1 at 200: b = 1, so 0.05 at 400.
        Assert.Equal(0.05, StrategyAdvisor.FollowCurve(0.2, 0.1, 100, 200, 400), 9);
        // A steeper fall (0.4 to 0.1) is held to b = 1 as well.
        Assert.Equal(0.05, StrategyAdvisor.FollowCurve(0.4, 0.1, 100, 200, 400), 9);
        // No fall, or a rise: the error stays where the larger probe measured it.
        Assert.Equal(0.1, StrategyAdvisor.FollowCurve(0.08, 0.1, 100, 200, 800), 9);
        Assert.Equal(0.0, StrategyAdvisor.FollowCurve(0.1, 0.0, 100, 200, 800), 9);
        // b = log2(0.2/0.16): the error at 800 falls by the same factor per doubling.
        double b = Math.Log(0.2 / 0.16) / Math.Log(2);
        Assert.Equal(0.16 * Math.Pow(4, -b), StrategyAdvisor.FollowCurve(0.2, 0.16, 100, 200, 800), 9);
    }

    [Fact]
    public void Fine_tunings_gain_is_read_off_both_curves_at_the_runs_size_with_an_interval()
    {
        // 400 held-out images; fine-tuning 80% right at 200 training images, 90% at 400. Feature extraction: 90% out of fold on 2000.
        static bool[] Right(int correct, int of) => [.. Enumerable.Range(0, of).Select(i => i < correct)];
        var small = new StrategyAdvisor.Probe(200, Right(360, 400), Right(320, 400), 0.1);
        var large = new StrategyAdvisor.Probe(400, Right(360, 400), Right(360, 400), 0.1);
        var extraction = Right(1800, 2000);
        var measured = new PairedGain(0, 0, 400);
        var gain = StrategyAdvisor.Curves(small, large, 1600, extraction, measured);
        // Fine-tuning's error halves per doubling (capped at b = 1): 0.1 at 400, 0.025 at 1600; feature extraction's is 0.1.
        Assert.Equal(0.075, gain.Value, 9);
        Assert.True(gain.Interval.Low > 0 && gain.Interval.Low < 0.075 && gain.Interval.High > 0.075, $"{gain.Interval}");
        Assert.True(gain.Clear);
        Assert.Contains("at 1600 training images, by the learning curve through 200 and 400", gain.Describe());
        // The same data, the same interval: the resampling is seeded.
        Assert.Equal(gain.Interval, StrategyAdvisor.Curves(small, large, 1600, extraction, measured).Interval);
        // At the larger probe's own size, fine-tuning's measured 90% against feature extraction's 90%.
        Assert.Equal(0.0, StrategyAdvisor.Curves(small, large, 400, extraction, measured).Value, 9);
    }

    [Fact]
    public void A_time_budget_leaves_out_what_would_not_fit()
    {
        // Fine-tuning (estimated at 120 s) beats feature extraction clearly, but only 60 s are left.
        var (chosen, reason) = AdviceRule.Decide([Plain, Earlier(3, 40), FineTune(30, 2)], secondsLeft: 60);
        Assert.Same(Plain, chosen);
        Assert.Contains("Fine-tuning the top 2 blocks would take about 2 min, more than the 60 s the time budget leaves: left out.", reason);
        Assert.DoesNotContain("block_12 would take", reason);
        var (roomy, _) = AdviceRule.Decide([Plain, Earlier(3, 40), FineTune(30, 2)], secondsLeft: 600);
        Assert.Equal(Strategy.FineTune, roomy.Strategy);
        // Even the quickest over the budget: it is still the choice, and the reason says the budget is short.
        var (quickest, why) = AdviceRule.Decide([Plain, Earlier(3, 40), FineTune(30, 2)], secondsLeft: 1);
        Assert.Same(Plain, quickest);
        Assert.Contains("Even feature extraction, the quickest", why);
    }

    [Fact]
    public void The_paired_interval_is_a_score_interval_that_holds_its_estimate()
    {
        // No disagreement among 42 images is no evidence either way: a few points each side of 0, not "0.0 to 0.0".
        var none = new PairedGain(0, 0, 42).Interval;
        Assert.Equal(-none.Low, none.High, 9);
        Assert.InRange(none.High, 0.05, 0.12);
        Assert.True(new PairedGain(0, 0, 500).Interval.High < none.High); // more images agreeing: a narrower interval
        // Ten losses and no win of 43: the estimate lies strictly inside its interval.
        var losses = new PairedGain(0, 10, 43);
        Assert.InRange(losses.Value, losses.Interval.Low + 0.02, losses.Interval.High - 0.02);
        // With many images it comes near the Wald interval of a paired difference (a score interval leans away from 0).
        var many = new PairedGain(20, 2, 500);
        double se = Math.Sqrt(22.0 / 500 / 500 - 18.0 * 18 / 500 / 500 / 500);
        Assert.InRange(many.Interval.Low - (many.Value - 1.959964 * se), -0.005, 0.005);
        Assert.InRange(many.Interval.High - (many.Value + 1.959964 * se), -0.005, 0.005);
        var even = new PairedGain(5, 5, 500).Interval;
        Assert.Equal(-even.Low, even.High, 9);
        Assert.False(new PairedGain(3, 0, 500).Clear); // three lucky images are not evidence
        Assert.True(many.Clear);
        Assert.Equal(0.036, many.Value, 9);
    }

    [Fact]
    public void Advice_is_the_same_for_every_seed_and_the_json_has_its_fields()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["photos"], perClass: 12, classes: 2, size: 40);
        File.WriteAllText(dir["photos/red/broken.jpg"], "not a picture"); // measured images and their classes must stay paired
        var env = new Dictionary<string, string> { ["GRAFT_CACHE"] = dir["cache"] };

        // The first run fills the bottleneck cache, the second reads it: neither that nor the seed may change the advice.
        // The first says how it measured (-v); the second only what it chose.
        var runs = new[] { "1", "7" }.Select(seed => GraftCli.Run(env, seed == "1"
            ? new[] { "advise", dir["photos"], "--json", "--seed", seed, "-v" } : new[] { "advise", dir["photos"], "--json", "--seed", seed })).ToList();
        Assert.All(runs, r => Assert.True(r.ExitCode == 0, r.Stderr));
        var advice = runs.Select(r => JsonDocument.Parse(r.LastLine).RootElement).ToList();
        foreach (var field in new[] { "strategy", "feature_block", "unfreeze", "arguments" })
            Assert.Equal(advice[0].GetProperty(field).GetRawText(), advice[1].GetProperty(field).GetRawText());
        string Estimates(JsonElement a) => string.Join("; ", a.GetProperty("estimates").EnumerateArray().Select(e =>
            $"{e.GetProperty("arguments").GetString()} {e.GetProperty("accuracy").GetDouble()} {e.GetProperty("ci_low").GetDouble()} {e.GetProperty("ci_high").GetDouble()}"));
        Assert.Equal(Estimates(advice[0]), Estimates(advice[1]));

        var estimates = advice[0].GetProperty("estimates").EnumerateArray().ToList();
        Assert.Equal(3, estimates.Count); // top block, block_12, fine-tuning the top 2 blocks
        Assert.All(estimates, e =>
        {
            Assert.InRange(e.GetProperty("ci_low").GetDouble(), 0, e.GetProperty("accuracy").GetDouble());
            Assert.InRange(e.GetProperty("ci_high").GetDouble(), e.GetProperty("accuracy").GetDouble(), 1);
            Assert.True(e.GetProperty("seconds").GetDouble() >= 0);
        });
        Assert.StartsWith("--strategy ", advice[0].GetProperty("arguments").GetString());
        Assert.Contains("24 training and validation images", runs[0].Stderr); // the broken file is left out; human lines go to stderr
        Assert.DoesNotContain("24 training and validation images", runs[1].Stderr);
        Assert.DoesNotContain(": loss ", runs[1].Stderr); // the probes' epoch lines are the advisor's working
        Assert.Contains("graft advise -v", runs[1].Stderr);
        Assert.True(runs[1].Stderr.Split('\n').Length < runs[0].Stderr.Split('\n').Length / 2, runs[1].Stderr);
        // ... and named, as train names what it skips, in the human lines and the JSON.
        Assert.Contains("skipped 1 file that could not be read", runs[0].Stderr);
        Assert.Contains("broken.jpg", runs[0].Stderr);
        Assert.EndsWith("broken.jpg", Assert.Single(advice[0].GetProperty("skipped").EnumerateArray()).GetProperty("path").GetString());
    }
}
