using Graft.Data;
using Graft.Training;
using Graft.Imaging;
using Graft.Heads;
using Graft.Evaluation;
using TorchSharp;
using static TorchSharp.torch;

namespace Graft.Audit;

/// <summary>Out-of-fold class probabilities per row: as the probes give them, and temperature-scaled per fold.</summary>
internal sealed record OutOfFoldScores(float[][] Raw, float[][] Calibrated);

/// <summary>
/// Linear softmax heads on cached features (standardised with the training rows' statistics): the audit's one
/// model, for out-of-fold probabilities and for the learning curve. A linear probe is what a default
/// feature-extraction head is, trains in a second, and cannot memorise the images it is asked about.
/// </summary>
internal static class Probes
{
    /// <summary>
    /// Each row's class probabilities from a head trained on the other folds (stratified, seeded), on <paramref name="device"/>:
    /// as the probes give them (<see cref="OutOfFoldScores.Raw"/>, what the label check ranks) and temperature-scaled per
    /// fold (<see cref="OutOfFoldScores.Calibrated"/>, what a reader is shown): a probe fitted on a few dozen images
    /// says 0 and 1 where it should not, and a temperature fitted on the other folds' scores makes its numbers honest
    /// without using the row's own label.
    /// </summary>
    public static OutOfFoldScores OutOfFold(float[][] x, int[] y, int classes, int folds, int seed, Device device)
    {
        var rows = y.Select(label => new LabeledImage(string.Empty, label)).ToArray();
        var (raw, tests, others) = Folded(x, rows, Targets.SingleLabel with { Classes = classes }, y, folds, seed, device);
        // The temperatures need every fold's scores: a second pass.
        var calibrated = new float[y.Length][];
        for (int f = 0; f < folds; f++)
        {
            var (test, other) = (tests[f], others[f]);
            if (test.Length == 0) continue;
            double temperature = other.Length == 0 ? 1 : Calibration.FitTemperature(Matrix(raw, other, classes), other.Select(i => y[i]).ToArray());
            var scaled = Calibration.Scale(Matrix(raw, test, classes), temperature);
            for (int k = 0; k < test.Length; k++) calibrated[test[k]] = Enumerable.Range(0, classes).Select(j => scaled[k, j]).ToArray();
        }
        return new OutOfFoldScores(raw, calibrated);
    }

    /// <summary>
    /// Each row's per-label sigmoid probabilities from multi-label heads trained on the other folds (stratified on each
    /// image's first label, seeded), on <paramref name="device"/>: the out-of-fold scores the multi-label check judges.
    /// </summary>
    public static float[][] OutOfFold(float[][] x, IReadOnlyList<LabeledImage> rows, int classes, int folds, int seed, Device device) =>
        Folded(x, rows, new Targets(classes, MultiLabel: true), rows.Select(r => r.Label).ToArray(), folds, seed, device).Raw;

    /// <summary>Every row scored by a head trained on the other folds, with each fold's rows and the others'.</summary>
    static (float[][] Raw, int[][] Tests, int[][] Others) Folded(float[][] x, IReadOnlyList<LabeledImage> rows, Targets targets, int[] strata,
        int folds, int seed, Device device)
    {
        var fold = ImageFolder.StratifiedFolds(strata, folds, seed);
        var tests = Enumerable.Range(0, folds).Select(f => Enumerable.Range(0, rows.Count).Where(i => fold[i] == f).ToArray()).ToArray();
        var others = Enumerable.Range(0, folds).Select(f => Enumerable.Range(0, rows.Count).Where(i => fold[i] != f).ToArray()).ToArray();
        var raw = new float[rows.Count][];
        for (int f = 0; f < folds; f++)
        {
            var test = tests[f];
            if (test.Length == 0) continue;
            var scored = FitPredict(x, rows, targets, others[f], test, seed + f, device);
            for (int k = 0; k < test.Length; k++) raw[test[k]] = scored[k];
        }
        return (raw, tests, others);
    }

    static float[,] Matrix(float[][] rows, int[] pick, int classes)
    {
        var m = new float[pick.Length, classes];
        for (int k = 0; k < pick.Length; k++)
            for (int j = 0; j < classes; j++) m[k, j] = rows[pick[k]][j];
        return m;
    }

    /// <summary>Trains a head on the rows <paramref name="train"/> and returns the class probabilities of the rows <paramref name="test"/>, on <paramref name="device"/>.</summary>
    public static float[][] FitPredict(float[][] x, int[] y, int classes, int[] train, int[] test, int seed, Device device) =>
        FitPredict(x, y.Select(label => new LabeledImage(string.Empty, label)).ToArray(), Targets.SingleLabel with { Classes = classes }, train, test, seed, device);

    /// <summary>
    /// Trains a head towards <paramref name="targets"/> of the rows <paramref name="train"/> and returns the probabilities
    /// (softmax, or each label's sigmoid) of the rows <paramref name="test"/>, on <paramref name="device"/>.
    /// </summary>
    static float[][] FitPredict(float[][] x, IReadOnlyList<LabeledImage> rows, Targets targets, int[] train, int[] test, int seed, Device device)
    {
        Engine.TorchRuntime.EnsureInitialized();
        int classes = targets.Classes;
        if (train.Length == 0 || test.Length == 0) return test.Select(_ => new float[classes]).ToArray();
        int c = x[train[0]].Length;
        using var scope = NewDisposeScope();
        var xTrain = ImageFeatures.Stack(x, train, c, device);
        var mean = xTrain.mean([0]);
        var std = xTrain.std(dimensions: [0]).add(1e-6);
        xTrain = (xTrain - mean) / std;
        var xTest = (ImageFeatures.Stack(x, test, c, device) - mean) / std;
        var yTrain = targets.Of(train.Select(i => rows[i]).ToArray(), device);
        manual_seed(seed);
        using var head = new HeadConfig(c, classes, Dropout: 0) { MultiLabel = targets.MultiLabel }.Build().to(device); // initialized on the host, as on every device
        HeadTrainer.Fit(head, xTrain, yTrain, null, null, new FitOptions(Epochs: 30, BatchSize: 64, LearningRate: 1e-3, Seed: seed));
        var p = HeadTrainer.Score(head, xTest, null, multiLabel: targets.MultiLabel).Probabilities;
        return Enumerable.Range(0, test.Length).Select(k => Enumerable.Range(0, classes).Select(j => p[k, j]).ToArray()).ToArray();
    }
}
