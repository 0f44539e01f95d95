using System.Text.Json.Nodes;

namespace Graft.Weights;

/// <summary>
/// One weight array of a layer, in Keras's own layout whatever the file format: Conv2D kernels H x W x In x Out,
/// DepthwiseConv2D kernels H x W x C x multiplier, SeparableConv2D pointwise kernels 1 x 1 x In x Out, Dense
/// kernels In x Out, vectors as they are. <see cref="Name"/> is the short Keras name ("kernel", "bias", "gamma",
/// "beta", "moving_mean", "moving_variance", "depthwise_kernel", "pointwise_kernel") where the file says it,
/// otherwise the file's own name (Keras 1's "W", "b"); loaders match a layer's arrays by order, as Keras does.
/// </summary>
public sealed record WeightArray(string Name, int[] Shape, float[] Values)
{
    public string ShapeText => string.Join("x", Shape);
}

/// <summary>One layer's weights, named by the file's layer name, arrays in the file's (= Keras's) order.</summary>
public sealed record LayerWeightSet(string Layer, IReadOnlyList<WeightArray> Arrays);

/// <summary>
/// What a weight-file reader produces: the layers that have weights, in the file's order (the order Keras saved
/// them in, which is what its by-order loading relies on), plus facts about the file that loading needs.
/// Readers know formats, not architectures.
/// </summary>
public sealed record NamedWeights(string Source, string Format, IReadOnlyList<LayerWeightSet> Layers)
{
    /// <summary>Batch norm was folded into the convolutions (quantized TFLite): build the network without BN layers.</summary>
    public bool BatchNormFolded { get; init; }

    /// <summary>The (mean, std) over 0..255 pixels that a quantized input implies, when the file states one.</summary>
    public (float Mean, float Std)? InputMapping { get; init; }

    /// <summary>The input size the file's network was made for, when the format fixes it (TFLite).</summary>
    public int? InputSize { get; init; }

    /// <summary>The Keras model topology (<c>model_config</c> / <c>modelTopology</c>) when the file carries one.</summary>
    public JsonNode? Topology { get; init; }

    /// <summary>Keras version and backend the file was written by, when it says.</summary>
    public string? KerasVersion { get; init; }

    public LayerWeightSet? Find(string layer) => Layers.FirstOrDefault(l => l.Layer == layer);

    public long ParameterCount => Layers.Sum(l => l.Arrays.Sum(a => (long)a.Values.Length));
}
