using System.Text.Json;
using Graft.Data;
using Graft.Evaluation;
using Graft.Imaging;

namespace Graft.Tests;

/// <summary>Issue 10 §1: training, validation and test images kept apart, and every accuracy with its interval.</summary>
public class HonestEvaluationTests
{
    [Theory]
    // Reference values: statsmodels' proportion_confint(k, n, method="wilson").
    [InlineData(5, 10, 0.236593, 0.763407)]
    [InlineData(0, 10, 0.0, 0.277533)]
    [InlineData(10, 10, 0.722467, 1.0)]
    [InlineData(148, 153, 0.925787, 0.985962)]
    public void Wilson_interval_matches_the_reference(int successes, int trials, double low, double high)
    {
        var i = Interval.Wilson(successes, trials);
        Assert.Equal(low, i.Low, 5);
        Assert.Equal(high, i.High, 5);
    }

    [Fact]
    public void Every_metric_carries_its_interval()
    {
        var probabilities = new float[,] { { 0.9f, 0.1f }, { 0.8f, 0.2f }, { 0.3f, 0.7f }, { 0.6f, 0.4f } };
        var r = EvaluationResult.From(["a", "b", "c", "d"], probabilities, [0, 0, 1, 1], ["x", "y"]);
        Assert.Equal(Interval.Wilson(3, 4), r.AccuracyInterval);
        Assert.Equal(Interval.Wilson(2, 3), r.PerClass[0].PrecisionInterval); // three predicted as x, two of them right
        Assert.Equal(Interval.Wilson(1, 2), r.PerClass[1].RecallInterval);
    }

    [Fact]
    public void A_test_split_is_held_out_before_validation_and_stratified()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir.Path, perClass: 10, classes: 2, size: 16);
        var set = ImageFolder.OpenForTraining(dir.Path, validationSplit: 0.2, seed: 3, testSplit: 0.2);
        Assert.Equal((12, 4, 4), (set.Train.Count, set.Validation.Count, set.Test.Count));
        Assert.Equal(2, set.Test.Count(i => i.Label == 0));
        var roles = new[] { set.Train, set.Validation, set.Test }.Select(r => r.Select(i => i.Path).ToHashSet()).ToList();
        Assert.Empty(roles[0].Intersect(roles[1]));
        Assert.Empty(roles[0].Intersect(roles[2]));
        Assert.Empty(roles[1].Intersect(roles[2]));
        Assert.Equal(set.Test, ImageFolder.OpenForTraining(dir.Path, 0.2, seed: 3, testSplit: 0.2).Test);
        Assert.Contains("held out for testing", set.Layout);
    }

    [Fact]
    public void A_test_folder_is_the_test_set_even_beside_a_validation_folder()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["train"], perClass: 5, size: 16);
        TinyImages.WriteClassFolders(dir["val"], perClass: 2, size: 16, seed: 2);
        TinyImages.WriteClassFolders(dir["test"], perClass: 3, size: 16, seed: 3);
        var set = ImageFolder.OpenForTraining(dir.Path);
        Assert.Equal((10, 4, 6), (set.Train.Count, set.Validation.Count, set.Test.Count));
        Assert.All(set.Test, i => Assert.Contains($"{Path.DirectorySeparatorChar}test{Path.DirectorySeparatorChar}", i.Path));
        Assert.Equal(6, ImageFolder.OpenForEvaluation(dir.Path, set.Classes).Validation.Count); // evaluation measures the test folder

        var error = Assert.Throws<GraftException>(() => ImageFolder.OpenForTraining(dir.Path, testSplit: 0.2));
        Assert.Contains("test folder", error.Message);

        // train/ + test/ only: validation is split from train/, test/ stays the test set.
        Directory.Delete(dir["val"], recursive: true);
        var noVal = ImageFolder.OpenForTraining(dir.Path, validationSplit: 0.2);
        Assert.Equal((8, 2, 6), (noVal.Train.Count, noVal.Validation.Count, noVal.Test.Count));
    }

    [Fact]
    public void Evaluating_the_training_folder_again_measures_what_training_held_out()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir.Path, perClass: 10, classes: 2, size: 16);
        var trained = ImageFolder.OpenForTraining(dir.Path, 0.2, seed: 5, testSplit: 0.3);
        var info = new Data.DatasetInfo(Path.GetFullPath(dir.Path), trained.Layout, trained.Train.Count, trained.Validation.Count, 0)
            { ValidationSplit = 0.2, TestSplit = 0.3, Seed = 5 };
        var eval = ImageFolder.OpenForEvaluation(dir.Path, trained.Classes, info);
        Assert.Equal(trained.Test, eval.Validation);
        Assert.Contains("test split", eval.Layout);

        var withoutTest = ImageFolder.OpenForEvaluation(dir.Path, trained.Classes, info with { TestSplit = 0 });
        Assert.Equal(ImageFolder.OpenForTraining(dir.Path, 0.2, seed: 5).Validation, withoutTest.Validation);
        Assert.Contains(withoutTest.Notes, n => n.Contains("optimistic"));

        var everything = ImageFolder.OpenForEvaluation(dir.Path, trained.Classes, info with { TestSplit = 0, ValidationSplit = 0 });
        Assert.Equal(20, everything.Validation.Count);
        Assert.Contains(everything.Notes, n => n.Contains("trained on"));
        Assert.Equal(("test", "validation", "training"), (eval.Part, withoutTest.Part, everything.Part));
        Assert.Equal(trained.Train, eval.Whole!.Train); // the report lists the whole split the test part came from
    }

    [Fact]
    public void A_test_split_held_out_beside_a_val_folder_is_what_evaluating_the_training_data_measures()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["train"], perClass: 10, classes: 2, size: 16);
        TinyImages.WriteClassFolders(dir["val"], perClass: 3, classes: 2, size: 16);
        var trained = ImageFolder.OpenForTraining(dir.Path, 0.2, seed: 5, testSplit: 0.3);
        Assert.NotEmpty(trained.Test);
        var info = new Data.DatasetInfo(Path.GetFullPath(dir.Path), trained.Layout, trained.Train.Count, trained.Validation.Count, trained.Test.Count)
            { ValidationSplit = 0.2, TestSplit = 0.3, Seed = 5 };
        var eval = ImageFolder.OpenForEvaluation(dir.Path, trained.Classes, info);
        Assert.Equal(trained.Test, eval.Validation); // not val/, which picked the epoch
        Assert.Equal("test", eval.Part);
        Assert.Equal("validation", ImageFolder.OpenForEvaluation(dir.Path, trained.Classes, info with { TestSplit = 0 }).Part);
    }

    [Fact]
    public void Classes_too_small_to_learn_or_measure_are_named()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir.Path, perClass: 1, classes: 2, size: 16);
        var set = ImageFolder.OpenForTraining(dir.Path);
        Assert.Contains(set.Notes, n => n.Contains("fewer than 2 training images") && n.Contains("green") && n.Contains("red"));
        Assert.Contains(set.Notes, n => n.Contains("no validation images"));
    }

    [Fact]
    public void Train_reports_validation_and_test_apart_with_intervals()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["photos"], perClass: 10, classes: 2, size: 40);
        var env = new Dictionary<string, string> { ["GRAFT_CACHE"] = dir["cache"] };
        var train = GraftCli.Run(env, "train", dir["photos"], "--epochs", "3", "--test-split", "0.3", "--out", dir["m.graft"], "--json");
        Assert.True(train.ExitCode == 0, train.Stderr);
        var json = JsonDocument.Parse(train.LastLine).RootElement;
        var test = json.GetProperty("test");
        var validation = json.GetProperty("validation");
        Assert.Equal(6, test.GetProperty("images").GetInt32());
        Assert.Equal(test.GetProperty("accuracy").GetDouble(), json.GetProperty("accuracy").GetDouble());
        Assert.Equal("test", json.GetProperty("measured_on").GetString());
        foreach (var part in new[] { test, validation })
        {
            double accuracy = part.GetProperty("accuracy").GetDouble();
            Assert.InRange(accuracy, part.GetProperty("ci_low").GetDouble(), part.GetProperty("ci_high").GetDouble());
            Assert.True(part.GetProperty("ci_high").GetDouble() - part.GetProperty("ci_low").GetDouble() > 0.1); // a handful of images: wide
        }

        // Evaluating the same folder measures the held-out test images, not the training ones.
        var evaluate = GraftCli.Run(env, "evaluate", dir["m.graft"], dir["photos"], "--json");
        Assert.True(evaluate.ExitCode == 0, evaluate.Stderr);
        Assert.Equal(6, JsonDocument.Parse(evaluate.LastLine).RootElement.GetProperty("images").GetInt32());

        var plain = GraftCli.Run(env, "train", dir["photos"], "--epochs", "1", "--out", dir["n.graft"]);
        Assert.True(plain.ExitCode == 0, plain.Stderr);
        Assert.Contains("optimistic", plain.Stdout);
    }
}
