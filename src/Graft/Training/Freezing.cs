using Graft.Backbones;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Graft.Training;

/// <summary>
/// Which part of the trunk fine-tuning trains, in one of three ways (the first one set wins):
/// the top N blocks (<c>--unfreeze 2</c>), everything from a named block or layer on
/// (<c>--unfreeze-from block_13</c>), or all but the first N layers, like Keras's
/// <c>for layer in model.layers[:N]: layer.trainable = False</c> (<c>--freeze-first 40</c>).
/// Layers are the trunk's convolution units in execution order (see <c>graft summary</c>).
/// </summary>
public sealed record UnfreezeSpec(int? TopBlocks = null, string? FromLayer = null, int? FreezeFirstLayers = null)
{
    public static readonly UnfreezeSpec Default = new(TopBlocks: 2);

    public string ToArguments() =>
        TopBlocks is { } n ? $"--unfreeze {n}" : FromLayer is { } name ? $"--unfreeze-from {name}" : $"--freeze-first {FreezeFirstLayers}";

    public string Describe() =>
        TopBlocks is { } n ? $"top {n} block(s)" : FromLayer is { } name ? $"from {name} on" : $"all but the first {FreezeFirstLayers} layer(s)";
}

/// <summary>One trainable block of the trunk: its name, its distance from the top (0 = last) and its parameters.</summary>
public sealed record TrainableBlock(string Name, int DepthFromTop, IReadOnlyList<Parameter> Parameters);

public static class Freezing
{
    /// <summary>
    /// Freezes the whole trunk, then unfreezes what the spec names. Returns the unfrozen blocks (top first).
    /// Frozen modules must run in inference mode during training: see <see cref="SetTrainingMode"/>.
    /// </summary>
    public static IReadOnlyList<TrainableBlock> Apply(Sequential trunk, UnfreezeSpec spec)
    {
        var blocks = trunk.named_children().ToList();
        var layers = blocks.SelectMany(b => Layers(b.module).Select(l => (Block: b.name, Layer: l.name, Module: l.module))).ToList();
        foreach (var p in trunk.parameters()) p.requires_grad = false;

        HashSet<nn.Module> unfrozen;
        if (spec.TopBlocks is { } top)
        {
            if (top < 0 || top > blocks.Count)
                throw new GraftException($"--unfreeze {top} is out of range.", $"The trunk has {blocks.Count} blocks; pass 0 to {blocks.Count}.");
            unfrozen = layers.Where(l => blocks.FindIndex(b => b.name == l.Block) >= blocks.Count - top).Select(l => l.Module).ToHashSet<nn.Module>(ReferenceEqualityComparer.Instance);
        }
        else if (spec.FromLayer is { } name)
        {
            int from = layers.FindIndex(l => l.Block == name || l.Layer == name);
            if (from < 0)
                throw new GraftException($"--unfreeze-from {name}: no block or layer has that name.", "See 'graft summary' for the names (e.g. block_13, block_13_expand, Conv_1).");
            unfrozen = layers.Skip(from).Select(l => l.Module).ToHashSet<nn.Module>(ReferenceEqualityComparer.Instance);
        }
        else if (spec.FreezeFirstLayers is { } first)
        {
            if (first < 0 || first > layers.Count)
                throw new GraftException($"--freeze-first {first} is out of range.", $"The trunk has {layers.Count} layers; pass 0 to {layers.Count}.");
            unfrozen = layers.Skip(first).Select(l => l.Module).ToHashSet<nn.Module>(ReferenceEqualityComparer.Instance);
        }
        else unfrozen = [];

        foreach (var module in unfrozen)
            foreach (var p in module.parameters()) p.requires_grad = true;

        return blocks.Select((b, i) => new TrainableBlock(b.name, blocks.Count - 1 - i,
                Layers(b.module).Where(l => unfrozen.Contains(l.module)).SelectMany(l => l.module.parameters()).ToList()))
            .Where(b => b.Parameters.Count > 0).OrderBy(b => b.DepthFromTop).ToList();
    }

    /// <summary>
    /// Puts trainable parts in training mode and frozen ones in inference mode. A frozen batch-norm layer
    /// must keep its moving statistics (the Keras fine-tuning guide's main pitfall).
    /// </summary>
    public static void SetTrainingMode(nn.Module network)
    {
        network.train();
        foreach (var (_, module) in network.named_modules())
            if (module is BatchNorm1d or BatchNorm2d && module.parameters().All(p => !p.requires_grad))
                module.eval();
    }

    /// <summary>The layers of a block: its convolution units (depth-first), or the block itself if it has none.</summary>
    static IEnumerable<(string name, nn.Module module)> Layers(nn.Module block)
    {
        var units = ModuleTree.Descendants(block).OfType<ConvUnit>().ToList();
        return units.Count > 0 ? units.Select(u => (u.GetName(), (nn.Module)u)) : [(block.GetName(), block)];
    }
}

/// <summary>The whole classifier as one module for end-to-end training: trunk → pooling → head.</summary>
public sealed class GraftedNetwork : nn.Module<Tensor, Tensor>
{
    public readonly Sequential trunk;
    public readonly nn.Module<Tensor, Tensor> head;
    readonly Pooling _pooling;

    public GraftedNetwork(Sequential trunk, Pooling pooling, nn.Module<Tensor, Tensor> head) : base("grafted")
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
