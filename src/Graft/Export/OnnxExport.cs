using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using Graft.Backbones;
using Graft.Backbones.Layers;
using Layers = Graft.Backbones.Layers;
using Padding = Graft.Backbones.Layers.Padding;
using Graft.Heads;
using Graft.Imaging;
using Graft.Inference;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Graft.Export;

/// <summary>
/// Exports a classifier to ONNX (IR 8, opset 17) for ONNX Runtime and other engines: input "images" [N,3,S,S],
/// already normalized as the model's <see cref="ImageSpec"/> says, output "probabilities" [N, classes].
/// The preprocessing and the class names travel in the model's metadata_props. Modules are mapped by type,
/// not by name, so any network built from the layer primitives, and any head, exports.
/// </summary>
/// <summary>
/// What the whole classifier's ONNX graph is made of: the network before the head (<paramref name="Body"/>, in int8
/// with <paramref name="Int8"/>), the head's pooling and modules, and what its metadata tells a deployer.
/// </summary>
internal sealed record ClassifierParts(Graph Body, nn.Module<Tensor, Tensor> Head, Pooling Pooling, ImageSpec Input,
    IReadOnlyList<string> Classes, string Backbone, Int8Calibration? Int8)
{
    /// <summary>Divides the logits before the softmax (null: none).</summary>
    public TemperatureScaling? Temperature { get; init; }
    /// <summary>Adds the "ood_score" output (null: none).</summary>
    public OodDetector? Detector { get; init; }
    /// <summary>
    /// The head alone, on an ONNX trunk's pooled features of this length (input "features" [N, C]); the trunk runs as
    /// its own ONNX model (<see cref="OnnxTrunk"/>) and <see cref="Body"/> is not emitted. Null: the whole network.
    /// </summary>
    public long? FeaturesIn { get; init; }
    /// <summary>A multi-label model's decision threshold of each class: the probabilities are each output's sigmoid (null: single-label, softmax).</summary>
    public IReadOnlyList<double>? Thresholds { get; init; }
}

internal static class OnnxExport
{
    public const string ImagesInput = ModelFile.ImagesInput, ProbabilitiesOutput = ModelFile.ProbabilitiesOutput, FeaturesOutput = "features";

    /// <summary>
    /// The whole classifier: images → trunk → the head's pooling → head → softmax; a binary head's one sigmoid
    /// output p becomes [1 - p, p], and a multi-label head's outputs each take a sigmoid, as <see cref="Objective.Probabilities"/> gives.
    /// </summary>
    public static byte[] ClassifierModel(ClassifierParts model)
    {
        var input = model.Input;
        var graph = new OnnxGraph();
        var emitter = new ModuleEmitter(graph, input.Size);
        string map, features;
        long[] mapShape;
        if (model.FeaturesIn is { } channels)
        {
            graph.Input(ModelFile.FeaturesInput, channels);
            map = features = emitter.Vector(ModelFile.FeaturesInput, channels);
            mapShape = emitter.Dimensions;
        }
        else
        {
            graph.Input(ImagesInput, 3, input.Size, input.Size);
            map = emitter.EmitTrunk(model.Body, model.Int8, ImagesInput);
            mapShape = emitter.Dimensions;
            features = emitter.Pool(map, model.Pooling, "trunk/pooled");
        }
        long featureLength = emitter.Channels;
        var logits = OnnxTrust.Scale(graph, emitter.Emit(model.Head, "head", features), model.Temperature);
        bool binary = emitter.Channels == 1;
        long outputs = binary ? 2 : emitter.Channels;
        if (outputs != model.Classes.Count)
            throw new InvalidOperationException($"The head gives {outputs} probabilities for {model.Classes.Count} classes.");
        if (binary)
        {
            var p = graph.Node("Sigmoid", "head/Sigmoid", [logits]);
            var q = graph.Node("Sub", "head/Sub", [graph.Constant("one", [1f]), p]);
            graph.Node("Concat", ProbabilitiesOutput, [q, p], OnnxGraph.Attribute("axis", 1L));
        }
        else if (model.Thresholds is not null) graph.Node("Sigmoid", ProbabilitiesOutput, [logits]);
        else graph.Node("Softmax", ProbabilitiesOutput, [logits], OnnxGraph.Attribute("axis", 1L));
        graph.Output(ProbabilitiesOutput, outputs);
        if (model.Detector is { } detector)
        {
            OnnxTrust.OodScore(graph, detector, features, featureLength, logits, binary, ProbabilitiesOutput, model.Temperature?.Temperature ?? 1);
            graph.Output(ModelFile.OodScoreOutput);
        }
        if (mapShape.Length == 3 && OnnxTrust.ClassActivation(graph, model.Head, model.Pooling, map, mapShape[0]) is { } activation)
            graph.Output(activation, outputs, mapShape[1], mapShape[2]);
        return graph.ToModel(Metadata(model));
    }

    /// <summary>
    /// The trunk and the pooling only: images [N,3,S,S] → features [N, C] (what the head trains on); without pooling,
    /// the feature map [N, C, H, W] (the frozen part of a network being fine-tuned). With <paramref name="int8"/>,
    /// the trunk quantized with that calibration (<see cref="Int8Quantization"/>).
    /// </summary>
    public static byte[] TrunkModel(Graph trunk, int inputSize, Pooling? pooling = Pooling.Gap, Int8Calibration? int8 = null)
    {
        var graph = new OnnxGraph();
        var emitter = new ModuleEmitter(graph, inputSize);
        graph.Input(ImagesInput, 3, inputSize, inputSize);
        var map = emitter.EmitTrunk(trunk, int8, ImagesInput);
        if (pooling is { } p) emitter.Pool(map, p, FeaturesOutput);
        else graph.Node("Identity", FeaturesOutput, [map]);
        graph.Output(FeaturesOutput, emitter.Dimensions);
        return graph.ToModel([]);
    }

    static readonly JsonSerializerOptions MetadataJson = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>What a deployer needs to feed the model and read its outputs.</summary>
    static IEnumerable<(string, string)> Metadata(ClassifierParts config) =>
    [
        .. config.Temperature is { } t ? [("temperature", $"{t.Temperature.ToString("R", CultureInfo.InvariantCulture)}: the logits are divided by it before the softmax (probabilities calibrated on the validation images)")] : Array.Empty<(string, string)>(),
        .. config.Detector?.Config is { } ood ? [
            ("ood_score", $"{JsonNamingPolicy.SnakeCaseLower.ConvertName(ood.Score.ToString())}: output {ModelFile.OodScoreOutput} [N], higher is less like the training images"),
            ("ood_threshold", ood.Threshold.ToString("R", CultureInfo.InvariantCulture)),
            ("ood_rule", $"an image whose {ModelFile.OodScoreOutput} is above ood_threshold is like none of the classes (the threshold keeps {ood.Acceptance:0.##%} of the validation images)"),
        ] : Array.Empty<(string, string)>(),
        .. config.Thresholds is { } thresholds ? [
            ("thresholds", JsonSerializer.Serialize(thresholds, MetadataJson)),
            ("multi_label", $"each of {ProbabilitiesOutput}'s values is one class's independent probability (sigmoid); an image carries every class whose probability is at least its threshold (thresholds, in class order)"),
        ] : Array.Empty<(string, string)>(),
        ("classes", JsonSerializer.Serialize(config.Classes, MetadataJson)),
        ("input_size", config.Input.Size.ToString(CultureInfo.InvariantCulture)),
        ("mean", JsonSerializer.Serialize(config.Input.Mean, MetadataJson)),
        ("std", JsonSerializer.Serialize(config.Input.Std, MetadataJson)),
        ("resize", JsonNamingPolicy.SnakeCaseLower.ConvertName(config.Input.Resize.ToString())),
        ("channel_order", config.Input.Bgr ? "BGR" : "RGB"),
        ("orientation", "images are turned upright as their EXIF orientation tag says before they are cropped and resized"),
        ("preprocessing", $"turned upright by EXIF orientation, resized to input_size x input_size (squash: the whole image; center_crop: its centred square), channels in " +
            $"{(config.Input.Bgr ? "BGR" : "RGB")} order, x = (pixel 0..255 - mean) / std per channel (mean and std in that order), float32 NCHW"),
        ("backbone", config.Backbone),
    ];

    /// <summary>
    /// Turns a network's layer primitives, then the head's modules, into ONNX nodes, following the shape of the
    /// value that flows (channels, and height and width while it is a feature map), which TensorFlow SAME padding
    /// and flattening depend on. Knows the closed set of primitives, never an architecture. Node and initializer
    /// names are layer paths.
    /// </summary>
    sealed class ModuleEmitter(OnnxGraph graph, int inputSize)
    {
        /// <summary>The flowing value's channels (or vector length), height and width (0 for a vector).</summary>
        readonly record struct Shape(long C, long H, long W);

        Shape _shape = new(3, inputSize, inputSize);
        (string Min, string Max)? _relu6Bounds;

        public long Channels => _shape.C;

        /// <summary>The flowing value's dimensions after the batch: [C] for a vector, [C, H, W] for a map.</summary>
        public long[] Dimensions => _shape.H == 0 ? [_shape.C] : [_shape.C, _shape.H, _shape.W];

        /// <summary>Emits a network's nodes in execution order; returns the output's name.</summary>
        public string Emit(Graph network, string path, string x)
        {
            var values = new string[network.Nodes.Count];
            var shapes = new Shape[network.Nodes.Count];
            values[0] = x;
            shapes[0] = _shape;
            for (int i = 1; i < network.Nodes.Count; i++)
            {
                var node = network.Nodes[i];
                var inputs = node.Inputs.Select(j => values[j]).ToArray();
                _shape = shapes[node.Inputs[0]];
                values[i] = Layer(node.Layer!, $"{path}/{node.Name}", inputs, node.Inputs.Select(j => shapes[j]).ToArray());
                shapes[i] = _shape;
            }
            return values[^1];
        }

        /// <summary>Starts from a vector of <paramref name="channels"/> (pooled features given as the input); returns its name.</summary>
        public string Vector(string x, long channels)
        {
            _shape = new(channels, 0, 0);
            return x;
        }

        /// <summary>The trunk: in float, or quantized to int8 with its calibration.</summary>
        public string EmitTrunk(Graph trunk, Int8Calibration? int8, string x)
        {
            if (int8 is null) return Emit(trunk, "trunk", x);
            var (map, channels, size) = Int8Quantization.Emit(graph, trunk, inputSize, int8, x);
            _shape = new(channels, size, size);
            return map;
        }

        /// <summary>The head's modules (Graft's own, on the pooled vector).</summary>
        public string Emit(nn.Module module, string path, string x) => module switch
        {
            Sequential sequential => sequential.named_children().Aggregate(x, (value, child) => Emit(child.module, $"{path}/{child.name}", value)),
            Linear linear => Gemm(linear.weight!, linear.bias, path, x),
            BatchNorm norm => BatchNormalization(norm.weight, norm.bias, norm.running_mean!, norm.running_var!, norm.eps, path, x),
            SqueezeExcitation excitation => SqueezeExcite(excitation, path, x),
            ReLU => graph.Node("Relu", $"{path}/Relu", [x]),
            TorchSharp.Modules.Dropout or Identity => x, // identity at inference
            _ => throw new NotSupportedException($"ONNX export has no mapping for {module.GetType().Name} ({path})."),
        };

        string Layer(Layer layer, string path, string[] x, Shape[] inputs) => layer switch
        {
            Conv2D c => Activate(Conv(c.weight, c.bias, c.Groups, c, path, x[0]), c.Activation, path),
            DepthwiseConv2D d => Activate(Conv(d.weight, d.bias, d.Channels, d, path, x[0]), d.Activation, path),
            SeparableConv2D s => Activate(Pointwise(s, path, Conv(s.depthwise, null, s.InChannels, s, $"{path}/depthwise", x[0])), s.Activation, path),
            BatchNormalization b => BatchNormalization(b.gamma, b.beta, b.running_mean, b.running_var, b.Epsilon, path, x[0]),
            ActivationLayer a => Activate(x[0], a.Activation, path),
            Pooling2D p => Pool(p, path, x[0]),
            ZeroPadding2D z => Pad(z, path, x[0]),
            Cropping2D c => Crop(c, path, x[0]),
            CustomScaleLayer c => graph.Node("Add", $"{path}/Add", [x[0], graph.Node("Mul", $"{path}/Mul", [x[1], graph.Constant($"{path}/scale", [(float)c.Scale])])]),
            Add => x.Skip(1).Select((other, k) => (other, k)).Aggregate(x[0], (sum, o) => graph.Node("Add", $"{path}/Add{(o.k == 0 ? "" : o.k)}", [sum, o.other])),
            Concatenate => Concat(path, x, inputs),
            GlobalAveragePooling2D g => GlobalAverage(path, x[0], g.KeepDims),
            Layers.Flatten => FlattenChannelsLast(path, x[0]),
            Dense d => Activate(_shape.H == 0 ? Gemm(d.weight, d.bias, path, x[0]) : Pointwise(d, path, x[0]), d.Activation, path),
            Layers.Dropout => x[0],
            Reshape r => r.ToMap ? ToMap(path, x[0]) : Flatten(path, x[0]),
            Rescaling r => OnnxLayers.Rescale(graph, r, path, x[0], _shape.H > 0),
            Normalization n => OnnxLayers.Normalize(graph, n, path, x[0], _shape.H > 0),
            Layers.LayerNormalization l => OnnxLayers.LayerNormalize(graph, l, path, x[0], _shape.H > 0),
            LayerScale l => OnnxLayers.Scale(graph, l, path, x[0], _shape.H > 0),
            Multiply => OnnxLayers.Multiply(graph, path, x),
            _ => throw new NotSupportedException($"ONNX export has no mapping for {layer.KerasClass} ({path})."),
        };

        /// <summary>The feature map [N,C,H,W] to a vector per image, as <see cref="HeadConfig.Pool"/> does (vectors pass).</summary>
        public string Pool(string map, Pooling pooling, string output)
        {
            if (_shape.H == 0) return graph.Node("Identity", output, [map]);
            if (pooling == Pooling.Flatten)
            {
                _shape = new(_shape.C * _shape.H * _shape.W, 0, 0); // C, H, W order, as torch's flatten
                return graph.Node("Flatten", output, [map], OnnxGraph.Attribute("axis", 1L));
            }
            var pooled = graph.Node("GlobalAveragePool", $"{output}/GlobalAveragePool", [map]);
            _shape = new(_shape.C, 0, 0);
            return graph.Node("Flatten", output, [pooled], OnnxGraph.Attribute("axis", 1L));
        }

        /// <summary>ONNX pads [top, left, bottom, right] for a window on the flowing map (TensorFlow SAME puts the extra pixel after).</summary>
        long[] Pads((int H, int W) kernel, (int H, int W) stride, Padding padding)
        {
            if (padding == Padding.Valid) return [0, 0, 0, 0];
            var (top, bottom) = Windows.SamePadding((int)_shape.H, kernel.H, stride.H);
            var (left, right) = Windows.SamePadding((int)_shape.W, kernel.W, stride.W);
            return [top, left, bottom, right];
        }

        /// <summary>A convolution (group = channels makes it depthwise) with the layer's window and padding.</summary>
        string Conv(Tensor weight, Tensor? bias, long group, ConvolutionLayer layer, string path, string x)
        {
            List<string> inputs = [x, Constant($"{path}/weight", weight)];
            if (bias is not null) inputs.Add(Constant($"{path}/bias", bias));
            var pads = Pads(layer.Kernel, layer.Stride, layer.Padding);
            Advance(layer.Kernel, layer.Stride, pads, weight.shape[0]);
            return graph.Node("Conv", $"{path}/Conv", inputs,
                OnnxGraph.Attribute("kernel_shape", [layer.Kernel.H, layer.Kernel.W]),
                OnnxGraph.Attribute("strides", [layer.Stride.H, layer.Stride.W]),
                OnnxGraph.Attribute("pads", pads),
                OnnxGraph.Attribute("group", group));
        }

        string Pointwise(SeparableConv2D layer, string path, string x)
        {
            List<string> inputs = [x, Constant($"{path}/pointwise", layer.pointwise)];
            if (layer.bias is not null) inputs.Add(Constant($"{path}/bias", layer.bias));
            _shape = _shape with { C = layer.Filters };
            return graph.Node("Conv", $"{path}/Conv", inputs, OnnxGraph.Attribute("kernel_shape", [1L, 1L]));
        }

        string Pool(Pooling2D pool, string path, string x)
        {
            var pads = Pads(pool.Pool, pool.Stride, pool.Padding);
            Advance(pool.Pool, pool.Stride, pads, _shape.C);
            // ONNX AveragePool leaves padding out of the count by default, as TensorFlow's SAME does.
            return graph.Node(pool.Max ? "MaxPool" : "AveragePool", $"{path}/{(pool.Max ? "MaxPool" : "AveragePool")}", [x],
                OnnxGraph.Attribute("kernel_shape", [pool.Pool.H, pool.Pool.W]),
                OnnxGraph.Attribute("strides", [pool.Stride.H, pool.Stride.W]),
                OnnxGraph.Attribute("pads", pads));
        }

        /// <summary>The flowing map's shape after a window with these pads.</summary>
        void Advance((int H, int W) kernel, (int H, int W) stride, long[] pads, long channels) =>
            _shape = new(channels, (_shape.H + pads[0] + pads[2] - kernel.H) / stride.H + 1, (_shape.W + pads[1] + pads[3] - kernel.W) / stride.W + 1);

        string Pad(ZeroPadding2D layer, string path, string x)
        {
            var (top, bottom, left, right) = layer.Pads;
            _shape = _shape with { H = _shape.H + top + bottom, W = _shape.W + left + right };
            return graph.Node("Pad", $"{path}/Pad", [x, graph.Int64Constant($"{path}/pads", 0, 0, top, left, 0, 0, bottom, right)]);
        }

        /// <summary>Keras's Cropping2D as a Slice of the height and width axes.</summary>
        string Crop(Cropping2D layer, string path, string x)
        {
            var (top, bottom, left, right) = layer.Crops;
            var (height, width) = (_shape.H, _shape.W);
            _shape = _shape with { H = height - top - bottom, W = width - left - right };
            return graph.Node("Slice", $"{path}/Slice", [x, graph.Int64Constant($"{path}/starts", top, left),
                graph.Int64Constant($"{path}/ends", height - bottom, width - right), graph.Int64Constant($"{path}/axes", 2, 3)]);
        }

        string Concat(string path, string[] x, Shape[] inputs)
        {
            _shape = _shape with { C = inputs.Sum(s => s.C) };
            return graph.Node("Concat", $"{path}/Concat", x, OnnxGraph.Attribute("axis", 1L));
        }

        string GlobalAverage(string path, string x, bool keepDims)
        {
            var pooled = graph.Node("GlobalAveragePool", $"{path}/GlobalAveragePool", [x]);
            _shape = keepDims ? _shape with { H = 1, W = 1 } : new(_shape.C, 0, 0);
            return keepDims ? pooled : graph.Node("Flatten", $"{path}/Flatten", [pooled], OnnxGraph.Attribute("axis", 1L));
        }

        /// <summary>Keras's Flatten: positions first, channels fastest.</summary>
        string FlattenChannelsLast(string path, string x)
        {
            var nhwc = graph.Node("Transpose", $"{path}/Transpose", [x], OnnxGraph.Attribute("perm", [0L, 2L, 3L, 1L]));
            return Flatten(path, nhwc);
        }

        string Flatten(string path, string x)
        {
            _shape = new(_shape.C * Math.Max(_shape.H, 1) * Math.Max(_shape.W, 1), 0, 0);
            return graph.Node("Flatten", $"{path}/Flatten", [x], OnnxGraph.Attribute("axis", 1L));
        }

        string ToMap(string path, string x)
        {
            _shape = new(_shape.C, 1, 1);
            return graph.Node("Reshape", $"{path}/Reshape", [x, graph.Int64Constant($"{path}/shape", 0, -1, 1, 1)]);
        }

        string Activate(string x, Activation activation, string path) => activation switch
        {
            Activation.Relu => graph.Node("Relu", $"{path}/Relu", [x]),
            Activation.Relu6 => Relu6(path, x),
            Activation.Softmax => graph.Node("Softmax", $"{path}/Softmax", [x], OnnxGraph.Attribute("axis", 1L)),
            Activation.Linear => x,
            _ => OnnxLayers.Activate(graph, x, activation, path),
        };

        /// <summary>A dense layer on a feature map (every position's channels): a 1x1 convolution.</summary>
        string Pointwise(Dense layer, string path, string x)
        {
            _shape = _shape with { C = layer.Units };
            using var kernel = layer.weight.view(layer.Units, -1, 1, 1);
            return graph.Node("Conv", $"{path}/Conv", [x, Constant($"{path}/weight", kernel), Constant($"{path}/bias", layer.bias)],
                OnnxGraph.Attribute("kernel_shape", [1L, 1L]));
        }

        /// <summary>ReLU6 as Clip, whose bounds are inputs since opset 11; one pair of constants serves every node.</summary>
        string Relu6(string path, string x)
        {
            _relu6Bounds ??= (graph.Constant("relu6/min", [0f]), graph.Constant("relu6/max", [6f]));
            return graph.Node("Clip", $"{path}/Clip", [x, _relu6Bounds.Value.Min, _relu6Bounds.Value.Max]);
        }

        /// <summary>A dense layer, y = x W^T + b with W stored [out, in].</summary>
        string Gemm(Tensor weight, Tensor? bias, string path, string x)
        {
            List<string> inputs = [x, Constant($"{path}/weight", weight)];
            if (bias is not null) inputs.Add(Constant($"{path}/bias", bias));
            _shape = new(weight.shape[0], 0, 0);
            return graph.Node("Gemm", $"{path}/Gemm", inputs, OnnxGraph.Attribute("transB", 1L));
        }

        /// <summary>Inference batch norm with the running statistics (works on [N,C] and [N,C,H,W]); missing scale is 1, missing offset 0.</summary>
        string BatchNormalization(Tensor? scale, Tensor? offset, Tensor mean, Tensor variance, double epsilon, string path, string x)
        {
            var channels = (int)mean.shape[0];
            var scaleName = scale is null ? graph.Constant($"{path}/scale", Enumerable.Repeat(1f, channels).ToArray(), channels) : Constant($"{path}/scale", scale);
            var offsetName = offset is null ? graph.Constant($"{path}/bias", new float[channels], channels) : Constant($"{path}/bias", offset);
            return graph.Node("BatchNormalization", $"{path}/BatchNormalization",
                [x, scaleName, offsetName, Constant($"{path}/mean", mean), Constant($"{path}/var", variance)],
                OnnxGraph.Attribute("epsilon", (float)epsilon));
        }

        /// <summary>
        /// <see cref="SqueezeExcitation"/> on a pooled vector [N, C*P] (P positions per channel, 1 after global average
        /// pooling): view as [N, C, P], average over P, dense C/4 ReLU → dense C sigmoid, scale each channel, view back.
        /// </summary>
        string SqueezeExcite(SqueezeExcitation excitation, string path, string x)
        {
            long channels = excitation.squeeze.in_features, positions = _shape.C / channels;
            var perChannel = graph.Node("Reshape", $"{path}/per_channel", [x, graph.Int64Constant($"{path}/per_channel_shape", 0, channels, positions)]);
            var mean = graph.Node("ReduceMean", $"{path}/ReduceMean", [perChannel],
                OnnxGraph.Attribute("axes", [2L]), OnnxGraph.Attribute("keepdims", 0L));
            var squeezed = graph.Node("Relu", $"{path}/squeeze/Relu", [Gemm(excitation.squeeze.weight!, excitation.squeeze.bias, $"{path}/squeeze", mean)]);
            var scale = graph.Node("Sigmoid", $"{path}/excite/Sigmoid", [Gemm(excitation.excite.weight!, excitation.excite.bias, $"{path}/excite", squeezed)]);
            var perPosition = graph.Node("Unsqueeze", $"{path}/Unsqueeze", [scale, graph.Int64Constant($"{path}/position_axis", 2)]);
            var scaled = graph.Node("Mul", $"{path}/Mul", [perChannel, perPosition]);
            _shape = new(channels * positions, 0, 0);
            return graph.Node("Reshape", $"{path}/Reshape", [scaled, graph.Int64Constant($"{path}/vector_shape", 0, _shape.C)]);
        }

        string Constant(string name, Tensor tensor) => graph.Constant(name, tensor);
    }
}
