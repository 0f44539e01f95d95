using System.Security.Cryptography;
using Microsoft.ML.OnnxRuntime;

namespace Graft.Inference;

/// <summary>How an ONNX image model lays out its input (and a 4-D output): channels first or last.</summary>
public enum TensorLayout
{
    /// <summary>[N, 3, H, W] (PyTorch, ONNX's default).</summary>
    Nchw,
    /// <summary>[N, H, W, 3] (TensorFlow, Keras).</summary>
    Nhwc,
}

/// <summary>
/// An ONNX image model used as a frozen trunk: which output gives the features, how its input is laid out, and the
/// SHA-256 of the ONNX file (the model file carries the file itself, and checks it against this).
/// </summary>
/// <param name="File">The ONNX file's name when it was trained on (for people; the model file holds its bytes).</param>
/// <param name="Output">The output taken as features: a 4-D output is global-average-pooled, a 2-D one taken as it is.</param>
/// <param name="Layout">The input's layout (a 4-D output has the same).</param>
/// <param name="Sha256">SHA-256 of the ONNX file.</param>
public sealed record OnnxTrunkSpec(string File, string Output, TensorLayout Layout, string Sha256)
{
    /// <summary>What tells this trunk's features from another's of the same file, for feature-cache keys.</summary>
    internal string FeatureKey => $"{Output}|{Layout}";
}

/// <summary>
/// Runs an ONNX image model as a frozen trunk in ONNX Runtime: images prepared as Graft prepares them (CHW floats, back to
/// back) in, one feature vector per image out. The layout is converted, a model made for a fixed batch runs in batches of
/// that size, and a 4-D output is averaged over its positions. Training and the inference package both run trunks here.
/// </summary>
internal sealed class OnnxTrunk : IDisposable
{
    /// <summary>The model file's entry holding the ONNX trunk's file, verbatim.</summary>
    public const string Entry = "trunk.onnx";

    readonly SessionOptions _options;
    readonly InferenceSession _session;
    readonly string _input;
    /// <summary>The batch the model was made for (0: any).</summary>
    readonly int _batch;

    public OnnxTrunkSpec Spec { get; }
    /// <summary>The ONNX file's bytes.</summary>
    public byte[] Model { get; }
    /// <summary>The input's height and width.</summary>
    public int Size { get; }
    /// <summary>Features per image.</summary>
    public int Channels { get; }
    /// <summary>The model's own metadata_props (what it says about its input).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>
    /// Opens an ONNX model as a trunk. What is null is read from the model: the output (its only one, or the metadata's
    /// "output"), the layout (where the input's shape shows 3 channels on one side, or the metadata's "layout") and the
    /// size (a fixed input size, or the metadata's "input_size").
    /// </summary>
    /// <param name="name">Names the model in errors.</param>
    /// <param name="cudaDevice">The GPU to run on; null: the CPU.</param>
    /// <exception cref="GraftException">The file is not an ONNX model ONNX Runtime loads, or what it does not say is not given.</exception>
    public OnnxTrunk(byte[] model, string name, string? output, TensorLayout? layout, int? size, int? cudaDevice = null)
    {
        Model = model;
        _options = ModelFile.SessionOptions(cudaDevice);
        try
        {
            try { _session = new InferenceSession(model, _options); }
            catch (OnnxRuntimeException e)
            {
                throw new GraftException($"{name} is not an ONNX model ONNX Runtime loads ({GraftException.FirstLine(e.Message)}).", "Pass an ONNX image model (.onnx).");
            }
            Metadata = _session.ModelMetadata.CustomMetadataMap;
            if (_session.InputMetadata.Count != 1)
                throw new GraftException($"{name} has {_session.InputMetadata.Count} inputs; a trunk takes one, the images.", "Pass an image model with a single input.");
            var (inputName, input) = _session.InputMetadata.First();
            _input = inputName;
            var dims = input.Dimensions;
            if (dims.Length != 4 || input.ElementDataType != Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float)
                throw new GraftException($"{name}'s input {inputName} is not a float image batch (4 dimensions).", "Pass an image model whose input is [N,3,H,W] or [N,H,W,3] floats.");
            var resolvedLayout = layout ?? Parse<TensorLayout>(Metadata.GetValueOrDefault("layout"))
                ?? (dims[1] == 3 && dims[3] != 3 ? TensorLayout.Nchw : dims[3] == 3 && dims[1] != 3 ? TensorLayout.Nhwc
                    : throw new GraftException($"{name} does not say whether its input is channels first or last.", "Give the layout (nchw or nhwc)."));
            int channelAxis = resolvedLayout == TensorLayout.Nchw ? 1 : 3;
            if (dims[channelAxis] is > 0 and not 3)
                throw new GraftException($"{name}'s input has {dims[channelAxis]} channels where its layout puts the colours; a trunk takes 3.", "Give the other layout, or pass an RGB image model.");
            int[] spatial = resolvedLayout == TensorLayout.Nchw ? [dims[2], dims[3]] : [dims[1], dims[2]];
            int? fixedSize = spatial[0] > 0 && spatial[0] == spatial[1] ? spatial[0] : null;
            if (spatial[0] > 0 && spatial[1] > 0 && spatial[0] != spatial[1])
                throw new GraftException($"{name} takes {spatial[0]}x{spatial[1]} images; Graft feeds square ones.", "Pass a model with a square or dynamic input size.");
            Size = size ?? fixedSize ?? ParseInt(Metadata.GetValueOrDefault("input_size"))
                ?? throw new GraftException($"{name} takes images of any size and does not say which it was made for.", "Give the input size.");
            if (fixedSize is { } s && s != Size)
                throw new GraftException($"{name} takes {s}x{s} images, not {Size}x{Size}.", $"Give the input size {s}, or none.");
            _batch = Math.Max(dims[0], 0);
            var outputs = _session.OutputMetadata.Keys.ToList();
            var chosen = output ?? Metadata.GetValueOrDefault("output") ?? (outputs.Count == 1 ? outputs[0]
                : throw new GraftException($"{name} has {outputs.Count} outputs and does not say which gives the features.", $"Name one of: {string.Join(", ", outputs)}."));
            // An output may also be named by the node that makes it (CNTK's Pooling395 makes Pooling395_Output_0).
            if (!outputs.Contains(chosen) && NodeOutputs(model).FirstOrDefault(n => n.Node == chosen).Outputs?.Intersect(outputs).ToList() is [var made]) chosen = made;
            if (!outputs.Contains(chosen))
                throw new GraftException($"{name} has no output {chosen}.", $"Name one of: {string.Join(", ", outputs)}.");
            if (_session.OutputMetadata[chosen].Dimensions.Length is not (2 or 4))
                throw new GraftException($"{name}'s output {chosen} has {_session.OutputMetadata[chosen].Dimensions.Length} dimensions; features are a vector (2) or a map (4).",
                    $"Name one of: {string.Join(", ", outputs)}.");
            Spec = new OnnxTrunkSpec(name, chosen, resolvedLayout, Convert.ToHexStringLower(SHA256.HashData(model)));
            Channels = Features(new float[3 * Size * Size], 1).Length;
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The features [n, <see cref="Channels"/>] of <paramref name="n"/> images given as CHW floats back to back.</summary>
    public float[] Features(ReadOnlySpan<float> images, int n)
    {
        int pixels = 3 * Size * Size;
        if (images.Length < n * pixels) throw new ArgumentException($"Expected {n} images of {pixels} values.", nameof(images));
        var result = new List<float>();
        using var run = new RunOptions();
        for (int start = 0; start < n; start += _batch > 0 ? _batch : n)
        {
            int count = _batch > 0 ? _batch : n, real = Math.Min(count, n - start);
            // A fixed batch is filled up with blank images; their features are dropped.
            var input = new float[count * pixels];
            var chunk = images.Slice(start * pixels, real * pixels);
            if (Spec.Layout == TensorLayout.Nchw) chunk.CopyTo(input);
            else ToChannelsLast(chunk, input, real);
            long[] shape = Spec.Layout == TensorLayout.Nchw ? [count, 3, Size, Size] : [count, Size, Size, 3];
            using var value = OrtValue.CreateTensorValueFromMemory(input, shape);
            using var outputs = _session.Run(run, [_input], [value], [Spec.Output]);
            var features = outputs[0].GetTensorDataAsSpan<float>();
            var dims = outputs[0].GetTensorTypeAndShape().Shape;
            for (int k = 0; k < real; k++) result.AddRange(Pool(features, dims, k));
        }
        return [.. result];
    }

    /// <summary>Image <paramref name="k"/>'s features: a 2-D output's row, or a 4-D output averaged over its positions.</summary>
    float[] Pool(ReadOnlySpan<float> output, long[] dims, int k)
    {
        if (dims.Length == 2) return output.Slice(k * (int)dims[1], (int)dims[1]).ToArray();
        bool first = Spec.Layout == TensorLayout.Nchw;
        int channels = (int)(first ? dims[1] : dims[3]), positions = (int)(dims[1] * dims[2] * dims[3]) / channels;
        var map = output.Slice(k * channels * positions, channels * positions);
        var pooled = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            double sum = 0;
            for (int p = 0; p < positions; p++) sum += first ? map[c * positions + p] : map[p * channels + c];
            pooled[c] = (float)(sum / positions);
        }
        return pooled;
    }

    void ToChannelsLast(ReadOnlySpan<float> chw, float[] hwc, int n)
    {
        int plane = Size * Size;
        for (int i = 0; i < n; i++)
            for (int c = 0; c < 3; c++)
                for (int p = 0; p < plane; p++) hwc[(i * plane + p) * 3 + c] = chw[(i * 3 + c) * plane + p];
    }

    /// <summary>Each node of the model's graph: its name and its outputs (ModelProto.graph, GraphProto.node, NodeProto's name and output fields).</summary>
    static IEnumerable<(string Node, string[] Outputs)> NodeOutputs(byte[] model)
    {
        foreach (var graph in Fields(model, 7))
            foreach (var node in Fields(graph, 1))
                yield return (Fields(node, 3).Select(Text).FirstOrDefault() ?? "", Fields(node, 2).Select(Text).ToArray());
    }

    static string Text(ReadOnlyMemory<byte> bytes) => System.Text.Encoding.UTF8.GetString(bytes.Span);

    /// <summary>The length-delimited fields numbered <paramref name="number"/> of a protobuf message (other fields skipped).</summary>
    static List<ReadOnlyMemory<byte>> Fields(ReadOnlyMemory<byte> message, int number)
    {
        var found = new List<ReadOnlyMemory<byte>>();
        var span = message.Span;
        int i = 0;
        ulong Varint(ReadOnlySpan<byte> b)
        {
            ulong value = 0;
            for (int shift = 0; i < b.Length; shift += 7)
            {
                byte x = b[i++];
                value |= (ulong)(x & 0x7f) << shift;
                if (x < 0x80) return value;
            }
            throw new InvalidDataException("A protobuf varint runs past the end of its message.");
        }
        while (i < span.Length)
        {
            ulong tag = Varint(span);
            switch (tag & 7)
            {
                case 0: Varint(span); break;
                case 1: i += 8; break;
                case 5: i += 4; break;
                case 2:
                    int length = checked((int)Varint(span));
                    if ((int)(tag >> 3) == number) found.Add(message.Slice(i, length));
                    i += length;
                    break;
                default: throw new InvalidDataException($"Protobuf wire type {tag & 7} is not one ONNX uses.");
            }
        }
        return found;
    }

    static T? Parse<T>(string? text) where T : struct, Enum => Enum.TryParse<T>(text, ignoreCase: true, out var value) ? value : null;

    static int? ParseInt(string? text) => int.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out int n) && n > 0 ? n : null;

    public void Dispose()
    {
        _session?.Dispose();
        _options?.Dispose();
    }
}
