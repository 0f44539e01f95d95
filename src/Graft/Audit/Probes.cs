using Graft.Data;
using Graft.Training;
using Graft.Imaging;
using Graft.Heads;
using TorchSharp;
using static TorchSharp.torch;

namespace Graft.Audit;

/// <summary>
/// Linear softmax heads on cached features (standardised with the training rows' statistics): the audit's one
/// model, for out-of-fold probabilities and for the learning curve. A linear probe is what a default
/// feature-extraction head is, trains in a second, and cannot memorise the images it is asked about.
/// </summary>
internal static class Probes
{
    /// <summary>Each row's class probabilities from a head trained on the other folds (stratified, seeded), on <paramref name="device"/>.</summary>
    public static float[][] OutOfFold(float[][] x, int[] y, int classes, int folds, int seed, Device device)
    {
        var fold = ImageFolder.StratifiedFolds(y, folds, seed);
        var probabilities = new float[y.Length][];
        for (int f = 0; f < folds; f++)
        {
            var test = Enumerable.Range(0, y.Length).Where(i => fold[i] == f).ToArray();
            var train = Enumerable.Range(0, y.Length).Where(i => fold[i] != f).ToArray();
            if (test.Length == 0) continue;
            var scored = FitPredict(x, y, classes, train, test, seed + f, device);
            for (int k = 0; k < test.Length; k++) probabilities[test[k]] = scored[k];
        }
        return probabilities;
    }

    /// <summary>Trains a head on the rows <paramref name="train"/> and returns the class probabilities of the rows <paramref name="test"/>, on <paramref name="device"/>.</summary>
    public static float[][] FitPredict(float[][] x, int[] y, int classes, int[] train, int[] test, int seed, Device device)
    {
        Engine.TorchRuntime.EnsureInitialized();
        if (train.Length == 0 || test.Length == 0) return test.Select(_ => new float[classes]).ToArray();
        int c = x[train[0]].Length;
        using var scope = NewDisposeScope();
        var xTrain = ImageFeatures.Stack(x, train, c, device);
        var mean = xTrain.mean([0]);
        var std = xTrain.std(dimensions: [0]).add(1e-6);
        xTrain = (xTrain - mean) / std;
        var xTest = (ImageFeatures.Stack(x, test, c, device) - mean) / std;
        var yTrain = tensor(train.Select(i => (long)y[i]).ToArray(), device: device);
        manual_seed(seed);
        using var head = new HeadConfig(c, classes, Dropout: 0).Build().to(device); // initialized on the host, as on every device
        HeadTrainer.Fit(head, xTrain, yTrain, null, null, new FitOptions(Epochs: 30, BatchSize: 64, LearningRate: 1e-3, Seed: seed));
        var p = HeadTrainer.Score(head, xTest, null).Probabilities;
        return Enumerable.Range(0, test.Length).Select(k => Enumerable.Range(0, classes).Select(j => p[k, j]).ToArray()).ToArray();
    }
}
