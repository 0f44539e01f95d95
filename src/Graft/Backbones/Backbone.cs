using Graft.Data;
using Graft.Weights;
using Graft.Weights.Tflite;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Graft.Backbones;

/// <summary>
/// A backbone ready to run: its trunk (image → feature map), optionally the pretrained ImageNet
/// classifier on top, and the input it expects. Built from a registry config, with pretrained weights
/// from the asset resolver or empty (to be filled from a saved model).
/// </summary>
public sealed class Backbone : IDisposable
{
    public BackboneConfig Config { get; }
    public Sequential Trunk { get; private set; }
    public Linear? ImageNetClassifier { get; }
    public ImageSpec Input { get; }

    Backbone(BackboneConfig config, Sequential trunk, Linear? classifier, ImageSpec input)
    {
        Config = config; Trunk = trunk; ImageNetClassifier = classifier; Input = input;
        // Pretrained parts start frozen; a strategy that fine-tunes unfreezes what it trains.
        foreach (var p in trunk.parameters().Concat(classifier?.parameters() ?? [])) p.requires_grad = false;
    }

    /// <summary>An untrained backbone of the config's architecture (weights come from elsewhere).</summary>
    public static Backbone Create(BackboneConfig config, ImageSpec input)
    {
        Engine.TorchRuntime.EnsureInitialized();
        return new Backbone(config, config.BuildTrunk(), null, input);
    }

    /// <summary>The backbone with its pretrained ImageNet weights, and the ImageNet classifier if asked.</summary>
    public static Backbone LoadPretrained(BackboneConfig config, AssetResolver resolver, bool includeTop = false)
    {
        Engine.TorchRuntime.EnsureInitialized();
        if (config.Weights is null)
            throw new GraftException($"{config.Name} has no pretrained weights.", "Use it with --strategy scratch, or pick a pretrained backbone (graft models).");
        var path = resolver.Resolve(config.Weights);
        return config.Format switch
        {
            WeightFormat.Tflite => FromTflite(config, TfliteModel.Read(path), includeTop),
            _ => throw new NotSupportedException(config.Format.ToString()),
        };
    }

    static Backbone FromTflite(BackboneConfig config, TfliteModel model, bool includeTop)
    {
        var mapping = TfliteLayers.InputMapping(model);
        var input = config.Input ?? (mapping is { } m
            ? ImageSpec.Uniform(config.InputSize, m.Mean, m.Std)
            : throw new GraftException($"{model.Source} has a float input and the registry gives no preprocessing for {config.Name}.",
                "Add the input mapping to its BackboneRegistry row."));

        var layers = TfliteLayers.Read(model);
        var trunk = config.BuildTrunk();
        var units = ModuleTree.Descendants(trunk).OfType<ConvUnit>().ToList();
        if (layers.Count != units.Count + 1)
            throw new GraftException($"{model.Source} has {layers.Count} weighted layers; {config.Name} expects {units.Count} plus a classifier.",
                "Check that the file is the one the registry names.");
        for (int i = 0; i < units.Count; i++)
        {
            var (unit, w) = (units[i], layers[i]);
            var expected = unit.conv.weight!.shape.Select(d => (int)d).ToArray();
            if (!expected.SequenceEqual(w.Shape) || unit.Depthwise != (w.Kind == LayerKind.Depthwise) || unit.Stride != w.Stride)
                throw new GraftException($"{model.Source}: layer {i} '{w.Name}' is {w.Kind} {w.ShapeText} stride {w.Stride}; {unit.GetName()} needs {string.Join("x", expected)} stride {unit.Stride}.",
                    "Check that the file is the one the registry names.");
            unit.SetWeights(w.Weight, w.Bias);
        }

        Linear? classifier = null;
        if (includeTop)
        {
            var top = layers[^1];
            int classes = top.Shape[0], features = top.Shape[1];
            if (classes != config.ImageNetClasses || features != config.FeatureChannels)
                throw new GraftException($"{model.Source}: classifier is {top.ShapeText}, expected {config.ImageNetClasses}x{config.FeatureChannels}.",
                    "Check that the file is the one the registry names.");
            classifier = nn.Linear(features, classes);
            using var _ = no_grad();
            classifier.weight!.copy_(tensor(top.Weight, [classes, features]));
            classifier.bias!.copy_(tensor(top.Bias ?? new float[classes]));
        }
        var backbone = new Backbone(config, trunk, classifier, input);
        backbone.Trunk.eval();
        return backbone;
    }

    /// <summary>
    /// Cuts the trunk after the named block, so features come from there: earlier blocks are more generic,
    /// which suits data far from ImageNet (the "small and different" case).
    /// </summary>
    public void TruncateAfter(string block)
    {
        var children = Trunk.named_children().ToList();
        int last = children.FindIndex(c => c.name == block);
        if (last < 0)
            throw new GraftException($"The {Config.Name} trunk has no block '{block}'.", $"Use one of: {string.Join(", ", children.Select(c => c.name))}.");
        var kept = children.Take(last + 1).Select(c => (c.name, (nn.Module<Tensor, Tensor>)c.module)).ToList();
        foreach (var (_, dropped) in children.Skip(last + 1)) dropped.Dispose();
        Trunk = nn.Sequential(kept);
    }

    /// <summary>Names of the trunk's blocks, input to output (the unit of unfreezing and truncation).</summary>
    public IReadOnlyList<string> BlockNames => Trunk.named_children().Select(c => c.name).ToList();

    public void Dispose()
    {
        Trunk.Dispose();
        ImageNetClassifier?.Dispose();
    }
}
