using Graft.Backbones;
using Graft.Models;
using Graft.Weights;
using Graft.Inference;

namespace Graft.Cli;

/// <summary>Turns a MODEL argument into a classifier: a saved model file or, where allowed, a backbone's ImageNet classifier.</summary>
public static class ModelSource
{
    public static TrainableClassifier Open(string model, bool allowBackbone, string? weightsFile = null, int? inputSize = null, ComputeDevice? device = null)
    {
        if (File.Exists(model))
            return weightsFile is null && inputSize is null ? TrainableClassifier.Load(model, device)
                : throw new GraftException($"{model} is a trained model: its weights and input size are its own.", "Drop --weights and --input-size, or pass a backbone name.");
        if (allowBackbone && BackboneRegistry.Exists(model)) return TrainableClassifier.PretrainedImageNet(model, Cli.Assets, weightsFile, inputSize, device);
        throw new GraftException($"{model} is not a model file{(allowBackbone ? " or a backbone name" : "")}.",
            allowBackbone ? $"Pass a file from graft train or one of: {string.Join(", ", BackboneRegistry.All.Select(b => b.Name))}." : "Pass a file written by graft train.");
    }
}
