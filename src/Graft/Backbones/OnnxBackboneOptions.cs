using System.ComponentModel;
using Graft.Inference;

namespace Graft.Backbones;

/// <summary>
/// What an ONNX image model used as a backbone does not say about itself (<see cref="Backbone.FromOnnx"/>); null: as its
/// metadata_props or its input's shape say.
/// </summary>
public sealed record OnnxBackboneOptions
{
    /// <summary>How it wants its pixels, as Keras's preprocess_input modes name them.</summary>
    [Description("An ONNX backbone's preprocessing, as Keras's modes: caffe (BGR, minus the ImageNet mean), tf (-1..1), torch (0..1, ImageNet mean and std); "
        + "by default as its metadata says.")]
    public Preprocessing? Preprocess { get; init; }
    /// <summary>The mean per RGB channel subtracted from pixels 0..255 (instead of <see cref="Preprocess"/>).</summary>
    [Description("An ONNX backbone's mean per RGB channel, subtracted from pixels 0..255 (instead of a preprocessing mode).")]
    public IReadOnlyList<float>? Mean { get; init; }
    /// <summary>The std per RGB channel the centred pixels are divided by (instead of <see cref="Preprocess"/>).</summary>
    [Description("An ONNX backbone's std per RGB channel, the centred pixels divided by it (instead of a preprocessing mode).")]
    public IReadOnlyList<float>? Std { get; init; }
    /// <summary>Its input's layout.</summary>
    [Description("An ONNX backbone's input layout; by default as its input's shape or metadata shows.")]
    public TensorLayout? Layout { get; init; }
    /// <summary>The output that gives the features (4-D: pooled, 2-D: taken as it is), or the node that makes it.</summary>
    [Description("An ONNX backbone's output taken as features (a 4-D output is average-pooled, a 2-D one taken as the embedding); "
        + "by default its only output, or the one its metadata names.")]
    public string? Output { get; init; }

    /// <summary>Whether nothing is said (everything comes from the model).</summary>
    public bool IsEmpty => Preprocess is null && Mean is null && Std is null && Layout is null && Output is null;

    /// <summary>Whether a backbone argument names an ONNX file rather than a registry network.</summary>
    public static bool IsOnnxFile(string? backbone) => backbone?.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) == true;
}
