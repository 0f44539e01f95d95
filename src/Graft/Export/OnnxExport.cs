using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using Graft.Backbones;
using Graft.Models;
using Graft.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Graft.Export;

/// <summary>
/// Exports a classifier to ONNX (IR 8, opset 17) for ONNX Runtime and other engines: input "images" [N,3,S,S],
/// already normalized as the model's <see cref="Data.ImageSpec"/> says, output "probabilities" [N, classes].
/// The preprocessing and the class names travel in the model's metadata_props. Modules are mapped by type,
/// not by name, so any trunk and head built from the supported layers exports.
/// </summary>
public static class OnnxExport
{
    public const string ImagesInput = "images", ProbabilitiesOutput = "probabilities", FeaturesOutput = "features";

    /// <summary>Writes the classifier's ONNX file atomically: a temporary file beside it, then a rename.</summary>
    public static void Write(ImageClassifier model, string path)
    {
        var bytes = ClassifierModel(model);
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temp = $"{full}.{Environment.ProcessId}.tmp";
        try
        {
            File.WriteAllBytes(temp, bytes);
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>
    /// The whole classifier: images → trunk → the head's pooling → head → softmax; a binary head's one sigmoid
    /// output p becomes [1 - p, p], as <see cref="Objective.Probabilities"/> gives.
    /// </summary>
    public static byte[] ClassifierModel(ImageClassifier model)
    {
        var input = model.Config.Input;
        var graph = new OnnxGraph();
        var emitter = new ModuleEmitter(graph, input.Size);
        graph.Input(ImagesInput, 3, input.Size, input.Size);
        var features = emitter.Pool(emitter.Emit(model.Backbone.Trunk, "trunk", ImagesInput), model.Config.Head.Pooling, "trunk/pooled");
        var logits = emitter.Emit(model.Head, "head", features);
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
        else graph.Node("Softmax", ProbabilitiesOutput, [logits], OnnxGraph.Attribute("axis", 1L));
        graph.Output(ProbabilitiesOutput, outputs);
        return graph.ToModel(Metadata(model.Config));
    }

    /// <summary>The trunk and the pooling only: images [N,3,S,S] → features [N, C] (what the head trains on).</summary>
    public static byte[] TrunkModel(Sequential trunk, int inputSize, Pooling pooling = Pooling.Gap)
    {
        var graph = new OnnxGraph();
        var emitter = new ModuleEmitter(graph, inputSize);
        graph.Input(ImagesInput, 3, inputSize, inputSize);
        emitter.Pool(emitter.Emit(trunk, "trunk", ImagesInput), pooling, FeaturesOutput);
        graph.Output(FeaturesOutput, emitter.Channels);
        return graph.ToModel([]);
    }

    static readonly JsonSerializerOptions MetadataJson = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>What a deployer needs to feed the model and read its output.</summary>
    static IEnumerable<(string, string)> Metadata(ModelConfig config) =>
    [
        ("classes", JsonSerializer.Serialize(config.Classes, MetadataJson)),
        ("input_size", config.Input.Size.ToString(CultureInfo.InvariantCulture)),
        ("mean", JsonSerializer.Serialize(config.Input.Mean, MetadataJson)),
        ("std", JsonSerializer.Serialize(config.Input.Std, MetadataJson)),
        ("resize", JsonNamingPolicy.SnakeCaseLower.ConvertName(config.Input.Resize.ToString())),
        ("preprocessing", "RGB, resized to input_size x input_size (squash: the whole image; center_crop: its centred square), " +
            "x = (pixel 0..255 - mean) / std per channel, float32 NCHW"),
        ("backbone", config.Backbone),
    ];

    /// <summary>
    /// Turns modules into ONNX nodes, following the shape of the value that flows through: its channels (or
    /// vector length), and while it is a feature map its height and width, which TensorFlow SAME padding and
    /// flattening depend on. Node and initializer names are module paths.
    /// </summary>
    sealed class ModuleEmitter(OnnxGraph graph, int inputSize)
    {
        public long Channels { get; private set; } = 3;
        long _height = inputSize, _width = inputSize;
        (string Min, string Max)? _relu6Bounds;

        public string Emit(nn.Module module, string path, string x) => module switch
        {
            Sequential sequential => sequential.named_children().Aggregate(x, (value, child) => Emit(child.module, $"{path}/{child.name}", value)),
            InvertedResidual block => Block(block, path, x),
            ConvUnit unit => ConvUnit(unit, path, x),
            Conv2d conv => Conv(conv, path, x, PlainPads(conv, path)),
            MaxPool2d pool => MaxPool(pool, path, x),
            Linear linear => Gemm(linear, path, x),
            BatchNorm norm => BatchNormalization(norm, path, x),
            SqueezeExcitation excitation => SqueezeExcite(excitation, path, x),
            ReLU => graph.Node("Relu", $"{path}/Relu", [x]),
            Dropout => x, // identity at inference
            _ => throw new NotSupportedException($"ONNX export has no mapping for {module.GetType().Name} ({path})."),
        };

        /// <summary>The feature map [N,C,H,W] to a vector per image, as <see cref="HeadConfig.Pool"/> does.</summary>
        public string Pool(string map, Pooling pooling, string output)
        {
            if (pooling == Pooling.Flatten)
            {
                Channels *= _height * _width; // C, H, W order, as torch's flatten
                return graph.Node("Flatten", output, [map], OnnxGraph.Attribute("axis", 1L));
            }
            var pooled = graph.Node("GlobalAveragePool", $"{output}/GlobalAveragePool", [map]);
            return graph.Node("Flatten", output, [pooled], OnnxGraph.Attribute("axis", 1L));
        }

        string Block(InvertedResidual block, string path, string x)
        {
            var h = block.expand is null ? x : ConvUnit(block.expand, $"{path}/expand", x);
            h = ConvUnit(block.project, $"{path}/project", ConvUnit(block.depthwise, $"{path}/depthwise", h));
            return block.Residual ? graph.Node("Add", $"{path}/Add", [h, x]) : h;
        }

        string ConvUnit(ConvUnit unit, string path, string x)
        {
            // Explicit pads for the known input size, reproducing ConvUnit's TensorFlow SAME padding (the extra pixel after).
            var (top, bottom) = SamePadding(_height, unit.Kernel, unit.Stride);
            var (left, right) = SamePadding(_width, unit.Kernel, unit.Stride);
            var y = Conv(unit.conv, path, x, [top, left, bottom, right]);
            if (unit.bn is not null) y = BatchNormalization(unit.bn, $"{path}/bn", y);
            return unit.Activation switch
            {
                Act.Relu6 => Relu6(path, y),
                Act.Relu => graph.Node("Relu", $"{path}/Relu", [y]),
                _ => y,
            };
        }

        static (long Before, long After) SamePadding(long size, long kernel, long stride)
        {
            long outSize = (size + stride - 1) / stride;
            long total = Math.Max((outSize - 1) * stride + kernel - size, 0);
            return (total / 2, total - total / 2);
        }

        static long[] PlainPads(Conv2d conv, string path) =>
            conv is { padding_type: null, padding_mode: PaddingModes.Zeros, padding: { } padding }
                ? [padding[0], padding[1], padding[0], padding[1]]
                : throw new NotSupportedException($"ONNX export supports zero padding by size only ({path}).");

        /// <summary>A convolution with ONNX pads [top, left, bottom, right]; group = channels makes it depthwise.</summary>
        string Conv(Conv2d conv, string path, string x, long[] pads)
        {
            List<string> inputs = [x, Constant($"{path}/weight", conv.weight!)];
            if (conv.bias is not null) inputs.Add(Constant($"{path}/bias", conv.bias));
            Advance(conv.kernel_size, conv.stride, conv.dilation, pads);
            Channels = conv.out_channels;
            return graph.Node("Conv", $"{path}/Conv", inputs,
                OnnxGraph.Attribute("kernel_shape", conv.kernel_size),
                OnnxGraph.Attribute("strides", conv.stride),
                OnnxGraph.Attribute("dilations", conv.dilation),
                OnnxGraph.Attribute("pads", pads),
                OnnxGraph.Attribute("group", conv.groups));
        }

        string MaxPool(MaxPool2d pool, string path, string x)
        {
            if (pool.ceil_mode) throw new NotSupportedException($"ONNX export does not support ceil_mode pooling ({path}).");
            var stride = pool.stride is { Length: > 0 } s ? s : pool.kernel_size;
            var dilation = pool.dilation is { Length: > 0 } d ? d : [1L, 1L];
            long[] pads = pool.padding is { Length: > 0 } p ? [p[0], p[1], p[0], p[1]] : [0, 0, 0, 0];
            Advance(pool.kernel_size, stride, dilation, pads);
            return graph.Node("MaxPool", $"{path}/MaxPool", [x],
                OnnxGraph.Attribute("kernel_shape", pool.kernel_size),
                OnnxGraph.Attribute("strides", stride),
                OnnxGraph.Attribute("dilations", dilation),
                OnnxGraph.Attribute("pads", pads));
        }

        /// <summary>The feature map's height and width after a convolution or pooling window.</summary>
        void Advance(long[] kernel, long[] stride, long[] dilation, long[] pads)
        {
            _height = (_height + pads[0] + pads[2] - dilation[0] * (kernel[0] - 1) - 1) / stride[0] + 1;
            _width = (_width + pads[1] + pads[3] - dilation[1] * (kernel[1] - 1) - 1) / stride[1] + 1;
        }

        /// <summary>ReLU6 as Clip, whose bounds are inputs since opset 11; one pair of constants serves every node.</summary>
        string Relu6(string path, string x)
        {
            _relu6Bounds ??= (graph.Constant("relu6/min", [0f]), graph.Constant("relu6/max", [6f]));
            return graph.Node("Clip", $"{path}/Clip", [x, _relu6Bounds.Value.Min, _relu6Bounds.Value.Max]);
        }

        string Gemm(Linear linear, string path, string x)
        {
            List<string> inputs = [x, Constant($"{path}/weight", linear.weight!)];
            if (linear.bias is not null) inputs.Add(Constant($"{path}/bias", linear.bias));
            Channels = linear.out_features;
            // TorchSharp keeps the weight as [out, in]: y = x W^T + b.
            return graph.Node("Gemm", $"{path}/Gemm", inputs, OnnxGraph.Attribute("transB", 1L));
        }

        /// <summary>Inference batch norm with the running statistics (works on [N,C] and [N,C,H,W]).</summary>
        string BatchNormalization(BatchNorm norm, string path, string x)
        {
            if (norm.running_mean is null || norm.running_var is null)
                throw new NotSupportedException($"ONNX export needs running statistics for batch norm ({path}).");
            var channels = (int)norm.num_features;
            var scale = norm.weight is null ? graph.Constant($"{path}/scale", Enumerable.Repeat(1f, channels).ToArray(), channels)
                : Constant($"{path}/scale", norm.weight);
            var bias = norm.bias is null ? graph.Constant($"{path}/bias", new float[channels], channels)
                : Constant($"{path}/bias", norm.bias);
            return graph.Node("BatchNormalization", $"{path}/BatchNormalization",
                [x, scale, bias, Constant($"{path}/mean", norm.running_mean), Constant($"{path}/var", norm.running_var)],
                OnnxGraph.Attribute("epsilon", (float)norm.eps));
        }

        /// <summary>
        /// <see cref="SqueezeExcitation"/> on a pooled vector [N, C*P] (P positions per channel, 1 after global average
        /// pooling): view as [N, C, P], average over P, dense C/4 ReLU → dense C sigmoid, scale each channel, view back.
        /// </summary>
        string SqueezeExcite(SqueezeExcitation excitation, string path, string x)
        {
            long channels = excitation.squeeze.in_features, positions = Channels / channels;
            var perChannel = graph.Node("Reshape", $"{path}/per_channel", [x, graph.Int64Constant($"{path}/per_channel_shape", 0, channels, positions)]);
            var mean = graph.Node("ReduceMean", $"{path}/ReduceMean", [perChannel],
                OnnxGraph.Attribute("axes", [2L]), OnnxGraph.Attribute("keepdims", 0L));
            var squeezed = graph.Node("Relu", $"{path}/squeeze/Relu", [Gemm(excitation.squeeze, $"{path}/squeeze", mean)]);
            var scale = graph.Node("Sigmoid", $"{path}/excite/Sigmoid", [Gemm(excitation.excite, $"{path}/excite", squeezed)]);
            var perPosition = graph.Node("Unsqueeze", $"{path}/Unsqueeze", [scale, graph.Int64Constant($"{path}/position_axis", 2)]);
            var scaled = graph.Node("Mul", $"{path}/Mul", [perChannel, perPosition]);
            Channels = channels * positions;
            return graph.Node("Reshape", $"{path}/Reshape", [scaled, graph.Int64Constant($"{path}/vector_shape", 0, Channels)]);
        }

        string Constant(string name, Tensor tensor)
        {
            using var scope = NewDisposeScope();
            var values = tensor.detach().to(float32).cpu().contiguous().data<float>().ToArray();
            return graph.Constant(name, values, tensor.shape);
        }
    }
}
