using Graft.Inference;
using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Graft.Backbones;
using Graft.Backbones.Layers;
using Graft.Heads;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Graft.Training;

/// <summary>
/// Which part of the trunk fine-tuning trains, in one of three ways (the first one set wins):
/// the top N blocks (<c>--unfreeze 2</c>), everything from a named block or Keras layer on
/// (<c>--unfreeze-from block5_conv1</c>), or all but the first N Keras layers, like Keras's
/// <c>for layer in model.layers[:N]: layer.trainable = False</c> (<c>--freeze-first 15</c>).
/// Layers are counted in Keras's <c>model.layers</c> order, input layer included (see <c>graft summary</c>).
/// </summary>
public sealed record UnfreezeSpec(
    [property: Description("Fine-tuning trains the top N blocks of the trunk (the blocks graft summary lists) and the head."), Range(1, int.MaxValue)] int? TopBlocks = null,
    [property: Description("Fine-tuning: train from this block or Keras layer on (e.g. block5_conv1, mixed9, conv5_block1_1_conv; "
        + "names as the model summary lists them).")] string? FromLayer = null,
    [property: Description("Fine-tuning: freeze the first N layers and train the rest (Keras: layers[:N].trainable = False; layers "
        + "counted as Keras lists them, input layer first)."), Range(0, int.MaxValue)] int? FreezeFirstLayers = null,
    [property: Description("Fine-tuning trains every block of the trunk and the head.")] bool All = false)
{
    public static readonly UnfreezeSpec Default = new(TopBlocks: 2);

    public string ToArguments() => All ? "--unfreeze all"
        : TopBlocks is { } n ? $"--unfreeze {n}" : FromLayer is { } name ? $"--unfreeze-from {name}" : $"--freeze-first {FreezeFirstLayers}";

    public string Describe() => All ? "whole trunk"
        : TopBlocks is { } n ? $"top {Plural.Of(n, "block")}" : FromLayer is { } name ? $"from {name} on" : $"all but the first {Plural.Of(FreezeFirstLayers ?? 0, "layer")}";
}

/// <summary>One trainable block of the trunk: its name, its distance from the top (0 = last) and its parameters.</summary>
internal sealed record TrainableBlock(string Name, int DepthFromTop, IReadOnlyList<Parameter> Parameters);

internal static class Freezing
{
    /// <summary>
    /// Freezes the whole trunk, then unfreezes what the spec names. Returns the unfrozen blocks (top first).
    /// Frozen modules must run in inference mode during training: see <see cref="SetTrainingMode"/>.
    /// </summary>
    public static IReadOnlyList<TrainableBlock> Apply(Graph trunk, UnfreezeSpec spec)
    {
        var blocks = trunk.Blocks;
        var layers = trunk.KerasOrder();
        foreach (var p in trunk.parameters()) p.requires_grad = false;

        IEnumerable<GraphNode> unfrozen;
        if (spec.All) unfrozen = layers;
        else if (spec.TopBlocks is { } top)
        {
            if (top < 0 || top > blocks.Count)
                throw new GraftException($"--unfreeze {top} is out of range.", $"The trunk has {blocks.Count} blocks; pass 0 to {blocks.Count}.");
            var trained = blocks.Skip(blocks.Count - top).ToHashSet();
            unfrozen = layers.Where(l => trained.Contains(l.Block));
        }
        else if (spec.FromLayer is { } name)
        {
            int from = layers.ToList().FindIndex(l => l.Block == name || l.Name == name);
            if (from < 0)
                throw new GraftException($"--unfreeze-from {name}: no block or layer has that name.",
                    $"See 'graft summary' for the layer names; the blocks are {string.Join(", ", blocks.Take(3))} … {string.Join(", ", blocks.TakeLast(2))}.");
            unfrozen = layers.Skip(from);
        }
        else if (spec.FreezeFirstLayers is { } first)
        {
            if (first < 0 || first > layers.Count)
                throw new GraftException($"--freeze-first {first} is out of range.", $"The trunk has {layers.Count} layers; pass 0 to {layers.Count}.");
            unfrozen = layers.Skip(first);
        }
        else unfrozen = [];

        var open = unfrozen.Where(l => l.Layer is not null).ToList();
        foreach (var node in open)
            foreach (var p in node.Layer!.parameters()) p.requires_grad = true;
        return blocks.Select((b, i) => new TrainableBlock(b, blocks.Count - 1 - i,
                open.Where(l => l.Block == b).SelectMany(l => l.Layer!.parameters()).ToList()))
            .Where(b => b.Parameters.Count > 0).OrderBy(b => b.DepthFromTop).ToList();
    }

    /// <summary>
    /// The last node before the first trainable layer that splits the trunk in two (null when there is none, or
    /// nothing before it): everything up to it is frozen and can run as plain inference, outside autograd.
    /// </summary>
    public static string? FrozenPrefixEnd(Graph trunk)
    {
        int first = trunk.Nodes.ToList().FindIndex(n => n.Layer?.parameters().Any(p => p.requires_grad) == true);
        if (first < 0) return null;
        for (int cut = first - 1; cut > 0; cut--)
            if (trunk.IsCut(cut)) return trunk.Nodes[cut].Name;
        return null;
    }

    /// <summary>
    /// Puts trainable parts in training mode and frozen ones in inference mode. A frozen batch-norm layer
    /// must keep its moving statistics (the Keras fine-tuning guide's main pitfall); with <paramref name="freezeTrunkBatchNorm"/>
    /// the trunk's batch-norm layers all do, trained or not (Keras's rule: the base model runs with training=False).
    /// </summary>
    public static void SetTrainingMode(nn.Module network, bool freezeTrunkBatchNorm = false)
    {
        network.train();
        foreach (var (_, module) in network.named_modules())
            if (module is BatchNorm1d or BatchNorm2d or BatchNormalization && module.parameters().All(p => !p.requires_grad)
                || freezeTrunkBatchNorm && module is BatchNormalization)
                module.eval();
    }
}

/// <summary>The whole classifier as one module for end-to-end training: trunk → pooling → head.</summary>
internal sealed class GraftedNetwork : nn.Module<Tensor, Tensor>
{
    public readonly Graph trunk;
    public readonly nn.Module<Tensor, Tensor> head;
    readonly Pooling _pooling;

    public GraftedNetwork(Graph trunk, Pooling pooling, nn.Module<Tensor, Tensor> head) : base("grafted")
    {
        this.trunk = trunk;
        this.head = head;
        _pooling = pooling;
        RegisterComponents();
    }

    public override Tensor forward(Tensor images)
    {
        using var map = trunk.call(images);
        using var pooled = HeadConfig.Pool(map, _pooling);
        return head.call(pooled);
    }
}
