using Graft.Backbones;
using Graft.Models;
using Graft.Weights;

namespace Graft.Cli;

/// <summary>Turns a MODEL argument into a classifier: a saved model file or, where allowed, a backbone's ImageNet classifier.</summary>
public static class ModelSource
{
    public static ImageClassifier Open(string model, bool allowBackbone)
    {
        if (File.Exists(model)) return ImageClassifier.Load(model);
        if (allowBackbone && BackboneRegistry.Exists(model)) return ImageClassifier.PretrainedImageNet(model, AssetResolver.Default);
        throw new GraftException($"{model} is not a model file{(allowBackbone ? " or a backbone name" : "")}.",
            allowBackbone ? $"Pass a file from graft train or one of: {string.Join(", ", BackboneRegistry.All.Select(b => b.Name))}." : "Pass a file written by graft train.");
    }
}
