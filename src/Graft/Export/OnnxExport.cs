using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using Graft.Backbones;
using Graft.Models;
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

    /// <summary>The whole classifier: images → trunk → global average pooling → head → softmax.</summary>
    public static byte[] ClassifierModel(ImageClassifier model)
    {
        var input = model.Config.Input;
        var graph = new OnnxGraph();
        var emitter = new ModuleEmitter(graph, input.Size);
        graph.Input(ImagesInput, 3, input.Size, input.Size);
        var features = emitter.GlobalAveragePool(emitter.Emit(model.Backbone.Trunk, "trunk", ImagesInput), "trunk/pooled");
        var logits = emitter.Emit(model.Head, "head", features);
        if (emitter.Channels != model.Classes.Count)
            throw new InvalidOperationException($"The head gives {emitter.Channels} outputs for {model.Classes.Count} classes.");
        graph.Node("Softmax", ProbabilitiesOutput, [logits], OnnxGraph.Attribute("axis", 1L));
        graph.Output(ProbabilitiesOutput, model.Classes.Count);
        return graph.ToModel(Metadata(model.Config));
    }

    /// <summary>The trunk and global average pooling only: images [N,3,S,S] → features [N, C] (what the head trains on).</summary>
    public static byte[] TrunkModel(Sequential trunk, int inputSize)
    {
        var graph = new OnnxGraph();
        var emitter = new ModuleEmitter(graph, inputSize);
        graph.Input(ImagesInput, 3, inputSize, inputSize);
        emitter.GlobalAveragePool(emitter.Emit(trunk, "trunk", ImagesInput), FeaturesOutput);
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
    /// Turns modules into ONNX nodes, following the shape of the value that flows through (channels, and the
    /// spatial size that TensorFlow SAME padding depends on). Node and initializer names are module paths.
    /// </summary>
    sealed class ModuleEmitter(OnnxGraph graph, int inputSize)
    {
        public long Channels { get; private set; } = 3;
        int _size = inputSize;
        (string Min, string Max)? _relu6Bounds;

        public string Emit(nn.Module module, string path, string x) => module switch
        {
            Sequential sequential => sequential.named_children().Aggregate(x, (value, child) => Emit(child.module, $"{path}/{child.name}", value)),
            InvertedResidual block => Block(block, path, x),
            ConvUnit unit => Conv(unit, path, x),
            Linear linear => Gemm(linear, path, x),
            BatchNorm norm => BatchNormalization(norm, path, x),
            ReLU => graph.Node("Relu", $"{path}/Relu", [x]),
            Dropout => x, // identity at inference
            _ => throw new NotSupportedException($"ONNX export has no mapping for {module.GetType().Name} ({path})."),
        };

        public string GlobalAveragePool(string x, string output)
        {
            var pooled = graph.Node("GlobalAveragePool", $"{output}/GlobalAveragePool", [x]);
            return graph.Node("Flatten", output, [pooled], OnnxGraph.Attribute("axis", 1L));
        }

        string Block(InvertedResidual block, string path, string x)
        {
            var h = block.expand is null ? x : Conv(block.expand, $"{path}/expand", x);
            h = Conv(block.project, $"{path}/project", Conv(block.depthwise, $"{path}/depthwise", h));
            return block.Residual ? graph.Node("Add", $"{path}/Add", [h, x]) : h;
        }

        string Conv(ConvUnit unit, string path, string x)
        {
            var conv = unit.conv;
            // Explicit pads for the known input size, reproducing ConvUnit's TensorFlow SAME padding
            // (extra pixel after); ONNX's pads are [top, left, bottom, right].
            long outSize = (_size + unit.Stride - 1) / unit.Stride;
            long total = Math.Max((outSize - 1) * unit.Stride + unit.Kernel - _size, 0);
            long before = total / 2, after = total - before;
            _size = (int)outSize;
            List<string> inputs = [x, Constant($"{path}/weight", conv.weight!)];
            if (conv.bias is not null) inputs.Add(Constant($"{path}/bias", conv.bias));
            var y = graph.Node("Conv", $"{path}/Conv", inputs,
                OnnxGraph.Attribute("kernel_shape", conv.kernel_size),
                OnnxGraph.Attribute("strides", conv.stride),
                OnnxGraph.Attribute("pads", [before, before, after, after]),
                OnnxGraph.Attribute("group", conv.groups));
            Channels = conv.out_channels;
            if (unit.bn is not null) y = BatchNormalization(unit.bn, $"{path}/bn", y);
            return unit.Activation switch
            {
                Act.Relu6 => Relu6(path, y),
                Act.Relu => graph.Node("Relu", $"{path}/Relu", [y]),
                _ => y,
            };
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

        string Constant(string name, Tensor tensor)
        {
            using var scope = NewDisposeScope();
            var values = tensor.detach().to(float32).cpu().contiguous().data<float>().ToArray();
            return graph.Constant(name, values, tensor.shape);
        }
    }
}
