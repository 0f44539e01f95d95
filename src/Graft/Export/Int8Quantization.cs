using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Graft.Backbones;
using Graft.Backbones.Layers;
using Padding = Graft.Backbones.Layers.Padding;
using static TorchSharp.torch;

namespace Graft.Export;

/// <summary>
/// How an int8 trunk quantizes its activations: each node's output range [min, max] (by Keras layer name, the
/// input's included) observed while the float trunk ran over <see cref="Images"/> of the user's training images.
/// Stored in the model file, so a loaded model builds exactly the trunk that produced its training features.
/// </summary>
public sealed record Int8Calibration(int Images, IReadOnlyDictionary<string, float[]> Ranges)
{
    /// <summary>Identifies the ranges exactly (the bottleneck cache keys int8 features by it).</summary>
    public string Hash => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join(";",
        Ranges.OrderBy(r => r.Key, StringComparer.Ordinal).Select(r => $"{r.Key}:{string.Join(",", r.Value.Select(v => v.ToString("R", CultureInfo.InvariantCulture)))}")))))[..16];

    /// <summary>Widens every node's range over batches of images run through the float trunk.</summary>
    public sealed class Observer
    {
        readonly Dictionary<string, float[]> _ranges = [];
        int _images;

        public void Observe(Graph trunk, Tensor images)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            trunk.eval();
            Widen(trunk.Nodes[0].Name, images);
            trunk.Run(images, (node, value) => Widen(node.Name, value));
            _images += (int)images.shape[0];
        }

        void Widen(string name, Tensor value)
        {
            float min = value.min().item<float>(), max = value.max().item<float>();
            _ranges[name] = _ranges.TryGetValue(name, out var r) ? [Math.Min(r[0], min), Math.Max(r[1], max)] : [min, max];
        }

        public Int8Calibration Result() => new(_images, new Dictionary<string, float[]>(_ranges));
    }
}

/// <summary>
/// An int8 trunk for ONNX Runtime, in QDQ form: per-channel symmetric int8 weights (DequantizeLinear on int8
/// constants, axis 0), int32 biases at the input scale times the weight scale, and per-tensor asymmetric uint8
/// activations (QuantizeLinear at each producer, DequantizeLinear before each consumer) whose ranges come from an
/// <see cref="Int8Calibration"/>. ONNX Runtime's optimizer turns Q→DQ→Conv→(Clip)→Q into QLinearConv and DQ→Add→Q
/// into QLinearAdd. Each batch normalization is folded into the convolution before it, and that convolution's
/// activation layer taken in (quantized at the activation's range), so Keras trunks with separate batch-norm
/// layers (MobileNetV2, MobileNet, ResNet50, InceptionV3) and folded ones (TFLite) both quantize; VGG too. A batch
/// norm before its convolution (the pre-activation DenseNets and ResNetV2s) runs in float between quantized values;
/// separable convolutions (Xception, NASNet) have no int8 form.
/// </summary>
internal static class Int8Quantization
{
    // TensorProto.DataType
    const int Uint8 = 2, Int8 = 3, Int32 = 6;

    /// <summary>Throws the one-line error for the first layer the int8 trunk cannot map (before any calibration runs).</summary>
    public static void CheckSupported(Graph trunk, string backbone)
    {
        // A dense layer quantizes on a feature map (as a 1x1 convolution), not on a vector.
        if (trunk.Nodes.Skip(1).FirstOrDefault(n => !Maps(n.Layer!) || n.Layer is Dense && trunk.Nodes[n.Inputs[0]].Size == 0) is { } node)
            throw Unsupported(node, $"the {backbone} trunk");
    }

    static bool Maps(Layer layer) => layer is Conv2D or DepthwiseConv2D or BatchNormalization or ActivationLayer { Activation: not Activation.Softmax }
        or Add or Concatenate or Pooling2D or ZeroPadding2D or CustomScaleLayer || FloatIsland(layer) || layer is Dense or Dropout;

    /// <summary>
    /// Layers of the newer families that run in float between a DequantizeLinear and a QuantizeLinear (ONNX Runtime
    /// fuses the element-wise ones into its quantized Mul and Add where it can): the preprocessing layers, the
    /// squeeze-excitation path (pooling, reshape, the gate's product) and ConvNeXt's normalization and scale.
    /// </summary>
    static bool FloatIsland(Layer layer) => layer is Rescaling or Normalization or Multiply or LayerScale or LayerNormalization
        or GlobalAveragePooling2D or Reshape { ToMap: true };

    static GraftException Unsupported(GraphNode node, string trunk) =>
        new($"{char.ToUpperInvariant(trunk[0])}{trunk[1..]} cannot run in int8: its layer {node.Name} ({node.Layer?.KerasClass}) has no int8 form.",
            "Use --precision float.");

    /// <summary>
    /// Emits the QDQ trunk into <paramref name="graph"/> reading float images <paramref name="input"/>; returns the
    /// dequantized (float) feature map's name, its channels and size (the network's build size must be the input size).
    /// </summary>
    internal static (string Map, long Channels, long Size) Emit(OnnxGraph graph, Graph trunk, int inputSize, Int8Calibration calibration, string input)
    {
        if (trunk.InputSize != inputSize) throw new ArgumentException($"The trunk was built for {trunk.InputSize}, not {inputSize}.", nameof(inputSize));
        var map = new Emitter(graph, calibration.Ranges).Emit(trunk, input);
        return (map, trunk.Output.Channels, trunk.Output.Size);
    }

    sealed class Emitter(OnnxGraph graph, IReadOnlyDictionary<string, float[]> ranges)
    {
        /// <summary>A quantized value: the uint8 tensor's name, its scale and zero point constants.</summary>
        readonly record struct Quantized(string Name, float Scale, string ScaleName, string ZeroPointName);

        int _dq;

        public string Emit(Graph network, string input)
        {
            var nodes = network.Nodes;
            int n = nodes.Count;
            var q = new Quantized[n];
            // Zero padding waits for its reader: a convolution takes it as pads, anything else gets a Pad node.
            var pendingPads = new (int Top, int Bottom, int Left, int Right)[n];
            var readers = new List<int>[n];
            for (int i = 0; i < n; i++) readers[i] = [];
            for (int i = 1; i < n; i++) foreach (var j in nodes[i].Inputs) readers[j].Add(i);
            var fused = new bool[n];
            q[0] = Quantize(input, "trunk/input", nodes[0].Name);
            for (int i = 1; i < n; i++)
            {
                var node = nodes[i];
                var path = $"trunk/{node.Name}";
                int j = node.Inputs[0];
                if (fused[i])
                {
                    q[i] = q[j];
                    continue;
                }
                switch (node.Layer)
                {
                    case ZeroPadding2D z:
                        var (p, before) = (z.Pads, pendingPads[j]);
                        pendingPads[i] = (before.Top + p.Top, before.Bottom + p.Bottom, before.Left + p.Left, before.Right + p.Right);
                        q[i] = q[j];
                        break;
                    case Dropout:
                        q[i] = q[j]; // identity at inference
                        break;
                    case Dense dense when nodes[j].Size > 0:
                        // On a feature map (ConvNeXt's pointwise layers) a dense layer is a 1x1 convolution, quantized as one.
                        int after = readers[i] is [var next] && nodes[next].Layer is ActivationLayer { Activation: not Activation.Softmax } ? next : -1;
                        if (after >= 0) fused[after] = true;
                        using (var kernel = dense.weight.view(dense.Units, -1, 1, 1))
                            q[i] = Conv(kernel, dense.bias, 1, (1, 1), (1, 1), Padding.Valid, dense.Activation, null, path, q[j], nodes[j].Size,
                                pendingPads[j], nodes[after >= 0 ? after : i].Name, after >= 0 ? ((ActivationLayer)nodes[after].Layer!).Activation : null);
                        break;
                    case Layer island when FloatIsland(island):
                        q[i] = Quantize(FloatLayer(island, path, node.Inputs.Select(k => Float(q[k], pendingPads[k], path)).ToArray(), nodes[j].Size > 0),
                            path, node.Name);
                        break;
                    case Conv2D or DepthwiseConv2D:
                        var layer = (ConvolutionLayer)node.Layer;
                        // The batch norm that only this convolution feeds folds into it, and the activation layer after
                        // them is taken in: Conv→Clip→Q, whose Clip the quantization range makes redundant (ONNX Runtime
                        // drops it), quantized at the last taken-in layer's range.
                        int last = i;
                        BatchNormalization? norm = null;
                        if (layer.Activation == Activation.Linear && readers[i] is [var b] && nodes[b].Layer is BatchNormalization bn)
                            (norm, fused[b], last) = (bn, true, b);
                        Activation? then = null;
                        if (readers[last] is [var r] && nodes[r].Layer is ActivationLayer activation)
                            (then, fused[r], last) = (activation.Activation, true, r);
                        q[i] = Conv(layer, norm, path, q[j], nodes[j].Size, pendingPads[j], nodes[last].Name, then);
                        break;
                    case ActivationLayer a:
                        q[i] = Quantize(Activate(Float(q[j], pendingPads[j], path), a.Activation, path), path, node.Name);
                        break;
                    case Add:
                        var sum = node.Inputs.Skip(1).Aggregate(Float(q[j], pendingPads[j], path),
                            (acc, k) => graph.Node("Add", $"{path}/Add{k}", [acc, Float(q[k], pendingPads[k], path)]));
                        q[i] = Quantize(sum, path, node.Name);
                        break;
                    case BatchNormalization alone:
                        // No convolution feeds it alone (the pre-activation networks: DenseNet, ResNetV2): a per-channel
                        // scale and shift in float between its dequantized input and its quantized output.
                        q[i] = Quantize(Normalize(alone, Float(q[j], pendingPads[j], path), path), path, node.Name);
                        break;
                    case CustomScaleLayer scaled:
                        int up = node.Inputs[1];
                        var branch = graph.Node("Mul", $"{path}/Mul", [Float(q[up], pendingPads[up], path), graph.Constant($"{path}/scale", [(float)scaled.Scale])]);
                        q[i] = Quantize(graph.Node("Add", $"{path}/Add", [Float(q[j], pendingPads[j], path), branch]), path, node.Name);
                        break;
                    case Concatenate:
                        q[i] = Quantize(graph.Node("Concat", $"{path}/Concat", node.Inputs.Select(k => Float(q[k], pendingPads[k], path)).ToList(),
                            OnnxGraph.Attribute("axis", 1L)), path, node.Name);
                        break;
                    case Pooling2D pool:
                        var pads = Pads(pool.Pool, pool.Stride, pool.Padding, nodes[j].Size, default);
                        var pooled = graph.Node(pool.Max ? "MaxPool" : "AveragePool", $"{path}/{(pool.Max ? "MaxPool" : "AveragePool")}", [Float(q[j], pendingPads[j], path)],
                            OnnxGraph.Attribute("kernel_shape", [pool.Pool.H, pool.Pool.W]),
                            OnnxGraph.Attribute("strides", [pool.Stride.H, pool.Stride.W]),
                            OnnxGraph.Attribute("pads", pads));
                        // Max pooling picks input values: it keeps the input's quantization, which lets ONNX Runtime run it on uint8.
                        q[i] = pool.Max ? Requantize(pooled, q[j], path) : Quantize(pooled, path, node.Name);
                        break;
                    default:
                        throw Unsupported(node, "the trunk");
                }
            }
            return Float(q[^1], pendingPads[^1], "trunk/output");
        }

        /// <summary>ONNX pads [top, left, bottom, right]: the zero padding layers' before it, plus TensorFlow SAME's (the extra pixel after).</summary>
        static long[] Pads((int H, int W) kernel, (int H, int W) stride, Padding padding, int size, (int Top, int Bottom, int Left, int Right) extra)
        {
            long[] pads = [extra.Top, extra.Left, extra.Bottom, extra.Right];
            if (padding == Padding.Valid) return pads;
            var (top, bottom) = Windows.SamePadding(size, kernel.H, stride.H);
            var (left, right) = Windows.SamePadding(size, kernel.W, stride.W);
            return [pads[0] + top, pads[1] + left, pads[2] + bottom, pads[3] + right];
        }

        Quantized Conv(ConvolutionLayer layer, BatchNormalization? norm, string path, Quantized x, int size,
            (int Top, int Bottom, int Left, int Right) extra, string rangeNode, Activation? then)
        {
            var (weight, bias, group) = layer switch
            {
                Conv2D c => (c.weight, (Tensor?)c.bias, (long)c.Groups),
                DepthwiseConv2D d => (d.weight, d.bias, (long)d.Channels),
                _ => throw new ArgumentException($"No int8 convolution for {layer.KerasClass}.", nameof(layer)),
            };
            return Conv(weight, bias, group, layer.Kernel, layer.Stride, layer.Padding, layer.Activation, norm, path, x, size, extra, rangeNode, then);
        }

        Quantized Conv(Tensor weight, Tensor? bias, long group, (int H, int W) kernel, (int H, int W) stride, Padding padding, Activation activation,
            BatchNormalization? norm, string path, Quantized x, int size, (int Top, int Bottom, int Left, int Right) extra, string rangeNode, Activation? then)
        {
            var (w, b) = Folded(weight, bias, norm);
            long outChannels = weight.shape[0];
            int perChannel = (int)(w.Length / outChannels);
            var wScale = new float[outChannels];
            var wq = new sbyte[w.Length];
            var bScale = new float[outChannels];
            var bq = new int[outChannels];
            for (int o = 0; o < outChannels; o++)
            {
                float max = 0;
                for (int k = 0; k < perChannel; k++) max = Math.Max(max, Math.Abs(w[o * perChannel + k]));
                float s = max > 0 ? max / 127f : 1f;
                wScale[o] = s;
                for (int k = 0; k < perChannel; k++)
                    wq[o * perChannel + k] = (sbyte)Math.Clamp(MathF.Round(w[o * perChannel + k] / s), -127, 127);
                bScale[o] = x.Scale * s;
                bq[o] = (int)Math.Clamp(Math.Round(b[o] / (double)bScale[o]), int.MinValue + 1, int.MaxValue);
            }
            var wDq = graph.Node("DequantizeLinear", $"{path}/weight",
                [Tensor($"{path}/weight_q", Int8, MemoryMarshal.AsBytes(wq.AsSpan()), weight.shape), graph.Constant($"{path}/weight_scale", wScale, outChannels),
                 Tensor($"{path}/weight_zero_point", Int8, new byte[outChannels], outChannels)], OnnxGraph.Attribute("axis", 0L));
            var bDq = graph.Node("DequantizeLinear", $"{path}/bias",
                [Tensor($"{path}/bias_q", Int32, MemoryMarshal.AsBytes(bq.AsSpan()), outChannels), graph.Constant($"{path}/bias_scale", bScale, outChannels),
                 Tensor($"{path}/bias_zero_point", Int32, new byte[outChannels * 4], outChannels)], OnnxGraph.Attribute("axis", 0L));
            var y = graph.Node("Conv", $"{path}/Conv", [Dequantize(x, path), wDq, bDq],
                OnnxGraph.Attribute("kernel_shape", [kernel.H, kernel.W]),
                OnnxGraph.Attribute("strides", [stride.H, stride.W]),
                OnnxGraph.Attribute("pads", Pads(kernel, stride, padding, size, extra)),
                OnnxGraph.Attribute("group", group));
            y = Activate(y, activation, path);
            if (then is { } after) y = Activate(y, after, $"{path}/then");
            return Quantize(y, path, rangeNode);
        }

        /// <summary>Inference batch norm as Mul and Add by its folded per-channel scale γ/√(σ²+ε) and shift β−μ·scale.</summary>
        string Normalize(BatchNormalization norm, string x, string path)
        {
            long channels = norm.Channels;
            using var identity = ones(channels, 1, 1, 1, device: CPU); // export arithmetic runs on the host
            var (scale, shift) = Folded(identity, null, norm);
            var scaled = graph.Node("Mul", $"{path}/Mul", [x, graph.Constant($"{path}/scale", scale, channels, 1, 1)]);
            return graph.Node("Add", $"{path}/Add", [scaled, graph.Constant($"{path}/shift", shift, channels, 1, 1)]);
        }

        /// <summary>The convolution's weight and bias with the batch norm after it folded in: w·γ/√(σ²+ε), (b−μ)·γ/√(σ²+ε)+β.</summary>
        static (float[] Weight, float[] Bias) Folded(Tensor weight, Tensor? bias, BatchNormalization? norm)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            long channels = weight.shape[0];
            var w = weight.detach().cpu().to(float64);
            var b = bias?.detach().cpu().to(float64) ?? zeros(channels, float64, device: CPU);
            if (norm is not null)
            {
                var scale = (norm.gamma?.detach().cpu().to(float64) ?? ones(channels, float64, device: CPU)).div(norm.running_var.cpu().to(float64).add(norm.Epsilon).sqrt());
                w = w.mul(scale.view(-1, 1, 1, 1));
                b = b.sub(norm.running_mean.cpu().to(float64)).mul(scale).add(norm.beta?.detach().cpu().to(float64) ?? zeros(channels, float64, device: CPU));
            }
            return (w.to(float32).contiguous().data<float>().ToArray(), b.to(float32).contiguous().data<float>().ToArray());
        }

        string Activate(string x, Activation activation, string path) => activation switch
        {
            Activation.Relu => graph.Node("Relu", $"{path}/Relu", [x]),
            Activation.Relu6 => graph.Node("Clip", $"{path}/Clip", [x, graph.Constant($"{path}/clip_min", [0f]), graph.Constant($"{path}/clip_max", [6f])]),
            Activation.Linear => x,
            _ when OnnxLayers.Maps(activation) => OnnxLayers.Activate(graph, x, activation, path),
            _ => throw new ArgumentException($"No int8 mapping for {activation} ({path}).", nameof(activation)),
        };

        /// <summary>A <see cref="FloatIsland"/> layer on float inputs (<paramref name="map"/>: a feature map, not a vector).</summary>
        string FloatLayer(Layer layer, string path, string[] x, bool map) => layer switch
        {
            Rescaling r => OnnxLayers.Rescale(graph, r, path, x[0], map),
            Normalization n => OnnxLayers.Normalize(graph, n, path, x[0], map),
            LayerNormalization l => OnnxLayers.LayerNormalize(graph, l, path, x[0], map),
            LayerScale l => OnnxLayers.Scale(graph, l, path, x[0], map),
            Multiply => OnnxLayers.Multiply(graph, path, x),
            GlobalAveragePooling2D g => g.KeepDims
                ? graph.Node("GlobalAveragePool", $"{path}/GlobalAveragePool", [x[0]])
                : graph.Node("Flatten", $"{path}/Flatten", [graph.Node("GlobalAveragePool", $"{path}/GlobalAveragePool", [x[0]])], OnnxGraph.Attribute("axis", 1L)),
            Reshape => graph.Node("Reshape", $"{path}/Reshape", [x[0], graph.Int64Constant($"{path}/shape", 0, -1, 1, 1)]),
            _ => throw new ArgumentException($"No float island for {layer.KerasClass} ({path}).", nameof(layer)),
        };

        /// <summary>QuantizeLinear to uint8 with the calibrated range of <paramref name="node"/> (widened to hold 0).</summary>
        Quantized Quantize(string x, string path, string node)
        {
            var r = ranges.TryGetValue(node, out var range) ? range : throw new InvalidOperationException($"No calibration for {node}.");
            float min = Math.Min(r[0], 0), max = Math.Max(r[1], 0);
            float scale = max > min ? (max - min) / 255f : 1f;
            byte zero = (byte)Math.Clamp(MathF.Round(-min / scale), 0, 255);
            var scaleName = graph.Constant($"{path}/y_scale", [scale]);
            var zeroName = Tensor($"{path}/y_zero_point", Uint8, [zero]);
            return new Quantized(graph.Node("QuantizeLinear", $"{path}/quantized", [x, scaleName, zeroName]), scale, scaleName, zeroName);
        }

        /// <summary>QuantizeLinear with another value's scale and zero point.</summary>
        Quantized Requantize(string x, Quantized like, string path) =>
            like with { Name = graph.Node("QuantizeLinear", $"{path}/quantized", [x, like.ScaleName, like.ZeroPointName]) };

        /// <summary>A DequantizeLinear of its own for each consumer, as ONNX Runtime's QDQ node units expect.</summary>
        string Dequantize(Quantized x, string path) =>
            graph.Node("DequantizeLinear", $"{path}/dequantized{_dq++}", [x.Name, x.ScaleName, x.ZeroPointName]);

        /// <summary>The value in float for a non-convolution reader, with any zero padding still pending applied.</summary>
        string Float(Quantized x, (int Top, int Bottom, int Left, int Right) pads, string path)
        {
            var value = Dequantize(x, path);
            if (pads == default) return value;
            return graph.Node("Pad", $"{path}/Pad{_dq}", [value, graph.Int64Constant($"{path}/pads{_dq}", 0, 0, pads.Top, pads.Left, 0, 0, pads.Bottom, pads.Right)]);
        }

        /// <summary>A typed constant as a Constant node (ONNX Runtime makes it an initializer on load).</summary>
        string Tensor(string name, int dataType, ReadOnlySpan<byte> data, params long[] dims)
        {
            var tensor = new ProtoWriter();
            foreach (var d in dims) tensor.Int(1, d);
            tensor.Int(2, dataType).String(8, name).Bytes(9, data);
            return graph.Node("Constant", name, [], new ProtoWriter().String(1, "value").Int(20, 4).Message(5, tensor));
        }
    }
}
