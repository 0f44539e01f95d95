using Graft.Backbones.Layers;
using static TorchSharp.torch;

namespace Graft.Export;

/// <summary>
/// ONNX nodes (opset 17) for the primitives of Keras's newer families — the activations beyond ReLU, Rescaling,
/// Normalization, LayerNormalization, LayerScale, Multiply — in float. The float export emits them, and the int8
/// trunk runs them as float islands between a DequantizeLinear and a QuantizeLinear. Per-channel constants are
/// [C, 1, 1] on a feature map and [C] on a vector, so they broadcast over [N, C, H, W] and [N, C].
/// </summary>
static class OnnxLayers
{
    /// <summary>Whether <see cref="Activate"/> maps this activation (ReLU, ReLU6 and softmax are the emitters' own).</summary>
    public static bool Maps(Activation activation) => activation is Activation.Sigmoid or Activation.Swish or Activation.HardSwish or Activation.Gelu;

    /// <summary>
    /// Sigmoid; swish as x · Sigmoid(x); HardSwish (an ONNX operator since opset 14); GELU as 0.5 · x · (1 + Erf(x / √2)),
    /// the pattern ONNX Runtime fuses into one Gelu (ONNX has a Gelu operator only from opset 20).
    /// </summary>
    public static string Activate(OnnxGraph graph, string x, Activation activation, string path) => activation switch
    {
        Activation.Sigmoid => graph.Node("Sigmoid", $"{path}/Sigmoid", [x]),
        Activation.Swish => graph.Node("Mul", $"{path}/Swish", [x, graph.Node("Sigmoid", $"{path}/Sigmoid", [x])]),
        Activation.HardSwish => graph.Node("HardSwish", $"{path}/HardSwish", [x]),
        Activation.Gelu => Gelu(graph, x, path),
        _ => throw new ArgumentException($"No ONNX mapping here for {activation} ({path}).", nameof(activation)),
    };

    static string Gelu(OnnxGraph graph, string x, string path)
    {
        var scaled = graph.Node("Div", $"{path}/Gelu/Div", [x, graph.Constant($"{path}/Gelu/sqrt2", [MathF.Sqrt(2)])]);
        var erf = graph.Node("Erf", $"{path}/Gelu/Erf", [scaled]);
        var plusOne = graph.Node("Add", $"{path}/Gelu/Add", [erf, graph.Constant($"{path}/Gelu/one", [1f])]);
        var product = graph.Node("Mul", $"{path}/Gelu/Mul", [x, plusOne]);
        return graph.Node("Mul", $"{path}/Gelu/Half", [product, graph.Constant($"{path}/Gelu/half", [0.5f])]);
    }

    /// <summary>x · scale + offset (each step left out when it changes nothing).</summary>
    public static string Rescale(OnnxGraph graph, Rescaling layer, string path, string x, bool map)
    {
        if (layer.Scale.Any(s => s != 1)) x = graph.Node("Mul", $"{path}/Mul", [x, PerChannel(graph, $"{path}/scale", [.. layer.Scale], map)]);
        if (layer.Offset.Any(o => o != 0)) x = graph.Node("Add", $"{path}/Add", [x, PerChannel(graph, $"{path}/offset", [.. layer.Offset], map)]);
        return x;
    }

    /// <summary>(x − mean) / max(√variance, 1e-7), the divisor computed here as the layer computes it.</summary>
    public static string Normalize(OnnxGraph graph, Normalization layer, string path, string x, bool map)
    {
        using var std = layer.Std();
        var centred = graph.Node("Sub", $"{path}/Sub", [x, PerChannel(graph, $"{path}/mean", Values(layer.mean), map)]);
        return graph.Node("Div", $"{path}/Div", [centred, PerChannel(graph, $"{path}/std", Values(std), map)]);
    }

    /// <summary>
    /// LayerNormalization over the channels: ONNX's operator normalizes the trailing axes, so a map goes channels-last
    /// around it (Transpose, LayerNormalization on the last axis, Transpose back); a vector needs no transposes.
    /// </summary>
    public static string LayerNormalize(OnnxGraph graph, LayerNormalization layer, string path, string x, bool map)
    {
        if (map) x = graph.Node("Transpose", $"{path}/ToNhwc", [x], OnnxGraph.Attribute("perm", [0L, 2L, 3L, 1L]));
        var y = graph.Node("LayerNormalization", $"{path}/LayerNormalization",
            [x, graph.Constant($"{path}/gamma", Values(layer.gamma), layer.Channels), graph.Constant($"{path}/beta", Values(layer.beta), layer.Channels)],
            OnnxGraph.Attribute("axis", -1L), OnnxGraph.Attribute("epsilon", (float)layer.Epsilon));
        return map ? graph.Node("Transpose", $"{path}/ToNchw", [y], OnnxGraph.Attribute("perm", [0L, 3L, 1L, 2L])) : y;
    }

    /// <summary>Each channel times its gamma.</summary>
    public static string Scale(OnnxGraph graph, LayerScale layer, string path, string x, bool map) =>
        graph.Node("Mul", $"{path}/Mul", [x, PerChannel(graph, $"{path}/gamma", Values(layer.gamma), map)]);

    /// <summary>The product of two inputs (broadcast: a squeeze-excitation gate [N, C, 1, 1] over its map).</summary>
    public static string Multiply(OnnxGraph graph, string path, string[] x) => graph.Node("Mul", $"{path}/Mul", [x[0], x[1]]);

    static string PerChannel(OnnxGraph graph, string name, float[] values, bool map) =>
        map ? graph.Constant(name, values, values.Length, 1, 1) : graph.Constant(name, values, values.Length);

    static float[] Values(Tensor t)
    {
        using var scope = NewDisposeScope();
        return t.detach().to(float32).cpu().contiguous().data<float>().ToArray();
    }
}
