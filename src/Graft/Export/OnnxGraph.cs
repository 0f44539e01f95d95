using System.Runtime.InteropServices;

namespace Graft.Export;

/// <summary>
/// An ONNX model under construction, written straight into protobuf (field numbers from onnx.proto):
/// nodes in execution order, float initializers, inputs and outputs with a dynamic batch dimension "N",
/// then the ModelProto around the graph. Every value is named after the node or initializer that makes it.
/// </summary>
sealed class OnnxGraph
{
    public const int IrVersion = 8, Opset = 17;
    public const string BatchDim = "N";

    // TensorProto.DataType FLOAT, INT64, FLOAT16; AttributeProto.AttributeType FLOAT, INT, INTS.
    const int FloatType = 1, Int64Type = 7, Float16Type = 10, FloatAttribute = 1, IntAttribute = 2, IntsAttribute = 7;

    // GraphProto's repeated fields may come in any order and interleaved, so nodes and initializers
    // go straight into the graph message as they are made.
    readonly ProtoWriter _graph = new ProtoWriter().String(2, "graft");

    /// <summary>A constant float tensor (an initializer); returns its name.</summary>
    public string Constant(string name, ReadOnlySpan<float> values, params long[] dims) =>
        Initializer(name, FloatType, MemoryMarshal.AsBytes(values), dims);

    /// <summary>A constant of a tensor's values (as float32) and shape.</summary>
    public string Constant(string name, TorchSharp.torch.Tensor tensor)
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        var values = tensor.detach().to(TorchSharp.torch.float32).cpu().contiguous().data<float>().ToArray();
        return Constant(name, values, tensor.shape);
    }

    /// <summary>A float16 tensor kept in half precision (half the bytes), cast to float where it is used; returns the float value's name.</summary>
    public string HalfConstant(string name, TorchSharp.torch.Tensor tensor) =>
        Node("Cast", name, [Initializer($"{name}/half", Float16Type, Weights.Safetensors.Halves(tensor), tensor.shape)], Attribute("to", (long)FloatType));

    /// <summary>A constant 1-D int64 tensor, as shapes and axes are given to Reshape and Unsqueeze.</summary>
    public string Int64Constant(string name, params long[] values) =>
        Initializer(name, Int64Type, MemoryMarshal.AsBytes(values.AsSpan()), values.Length);

    string Initializer(string name, int dataType, ReadOnlySpan<byte> littleEndianData, params long[] dims)
    {
        var tensor = new ProtoWriter();
        foreach (var d in dims) tensor.Int(1, d);
        // raw_data is little-endian, which is the in-memory layout on every platform .NET and libtorch run on here.
        tensor.Int(2, dataType).String(8, name).Bytes(9, littleEndianData);
        _graph.Message(5, tensor);
        return name;
    }

    /// <summary>Adds a node with one output, named <paramref name="output"/>; returns that name.</summary>
    public string Node(string opType, string output, IEnumerable<string> inputs, params ProtoWriter[] attributes) =>
        Node(opType, [output], inputs, attributes)[0];

    /// <summary>Adds a node with several outputs (TopK's values and indices), the node named after the first; returns their names.</summary>
    public string[] Node(string opType, string[] outputs, IEnumerable<string> inputs, params ProtoWriter[] attributes)
    {
        var node = new ProtoWriter();
        foreach (var input in inputs) node.String(1, input);
        foreach (var output in outputs) node.String(2, output);
        node.String(3, outputs[0]).String(4, opType);
        foreach (var attribute in attributes) node.Message(5, attribute);
        _graph.Message(1, node);
        return outputs;
    }

    public void Input(string name, params long[] dimsAfterBatch) => _graph.Message(11, ValueInfo(name, dimsAfterBatch));

    public void Output(string name, params long[] dimsAfterBatch) => _graph.Message(12, ValueInfo(name, dimsAfterBatch));

    public byte[] ToModel(IEnumerable<(string Key, string Value)> metadata)
    {
        var model = new ProtoWriter()
            .Int(1, IrVersion)
            .String(2, "graft")
            .String(3, typeof(OnnxGraph).Assembly.GetName().Version?.ToString() ?? "")
            .Message(7, _graph)
            .Message(8, new ProtoWriter().String(1, "").Int(2, Opset)); // the default ai.onnx domain
        foreach (var (key, value) in metadata) model.Message(14, new ProtoWriter().String(1, key).String(2, value));
        return model.ToArray();
    }

    public static ProtoWriter Attribute(string name, long value) => new ProtoWriter().String(1, name).Int(20, IntAttribute).Int(3, value);

    public static ProtoWriter Attribute(string name, float value) => new ProtoWriter().String(1, name).Int(20, FloatAttribute).Float(2, value);

    public static ProtoWriter Attribute(string name, IEnumerable<long> values)
    {
        var attribute = new ProtoWriter().String(1, name).Int(20, IntsAttribute);
        foreach (var v in values) attribute.Int(8, v);
        return attribute;
    }

    /// <summary>ValueInfoProto of a float tensor [N, dims...].</summary>
    static ProtoWriter ValueInfo(string name, long[] dimsAfterBatch)
    {
        var shape = new ProtoWriter().Message(1, new ProtoWriter().String(2, BatchDim));
        foreach (var d in dimsAfterBatch) shape.Message(1, new ProtoWriter().Int(1, d));
        var tensorType = new ProtoWriter().Int(1, FloatType).Message(2, shape);
        return new ProtoWriter().String(1, name).Message(2, new ProtoWriter().Message(1, tensorType));
    }
}
