using System.Buffers.Binary;
using Google.FlatBuffers;

namespace Graft.Weights.Tflite;

internal enum TensorType : sbyte { Float32 = 0, Float16 = 1, Int32 = 2, UInt8 = 3, Int64 = 4, Int16 = 7, Int8 = 9 }

/// <summary>The TFLite builtin operators Graft reads; the codes are those of TensorFlow's schema.fbs.</summary>
internal enum BuiltinOp
{
    Add = 0, AveragePool2D = 1, Concatenation = 2, Conv2D = 3, DepthwiseConv2D = 4, Dequantize = 6,
    FullyConnected = 9, Logistic = 14, MaxPool2D = 17, Mul = 18, Relu = 19, Relu6 = 21, Reshape = 22,
    Softmax = 25, Pad = 34, Mean = 40, Squeeze = 43, Quantize = 114,
}

internal enum Padding { Same = 0, Valid = 1 }
internal enum Activation { None = 0, Relu = 1, ReluN1To1 = 2, Relu6 = 3 }

internal sealed record Quantization(float[] Scale, long[] ZeroPoint, int QuantizedDimension)
{
    public bool IsPresent => Scale.Length > 0;
}

internal sealed record TfliteTensor(int Index, string Name, int[] Shape, TensorType Type, int Buffer, Quantization Quantization);

/// <summary>The options of convolution-like operators (others leave them at their defaults).</summary>
internal sealed record ConvOptions(Padding Padding, int StrideH, int StrideW, Activation Activation, int DepthMultiplier);

internal sealed record TfliteOperator(BuiltinOp Op, int Code, int[] Inputs, int[] Outputs, ConvOptions? Conv);

/// <summary>
/// A TFLite flatbuffer read into plain records: tensors, operators in execution order (first subgraph),
/// and access to constant buffers as float32 (dequantized where the tensor is quantized).
/// Only the fields Graft needs are read; field numbers follow TensorFlow's lite/schema/schema.fbs.
/// </summary>
internal sealed class TfliteModel
{
    public string Source { get; }
    public IReadOnlyList<TfliteTensor> Tensors { get; }
    public IReadOnlyList<TfliteOperator> Operators { get; }
    public int[] Inputs { get; }
    public int[] Outputs { get; }
    readonly byte[] _bytes;
    readonly int[] _bufferDataPositions, _bufferDataLengths;

    TfliteModel(string source, byte[] bytes, List<TfliteTensor> tensors, List<TfliteOperator> ops,
        int[] inputs, int[] outputs, int[] bufferPositions, int[] bufferLengths)
    {
        Source = source; _bytes = bytes; Tensors = tensors; Operators = ops; Inputs = inputs; Outputs = outputs;
        _bufferDataPositions = bufferPositions; _bufferDataLengths = bufferLengths;
    }

    public static TfliteModel Read(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (IOException e) { throw new GraftException($"Cannot read {path}: {e.Message}.", "Check the path and permissions."); }
        return Parse(bytes, path);
    }

    public static TfliteModel Parse(byte[] bytes, string source)
    {
        if (bytes.Length < 8 || bytes[4] != 'T' || bytes[5] != 'F' || bytes[6] != 'L' || bytes[7] != '3')
            throw new GraftException($"{source} is not a TFLite model (no TFL3 identifier).", "Pass a .tflite file.");
        try { return ParseChecked(bytes, source); }
        // Damaged offsets and counts surface as range, overflow or empty-sequence errors of the flatbuffer walk.
        catch (Exception e) when (e is ArgumentException or IndexOutOfRangeException or OverflowException or InvalidOperationException)
        {
            throw new GraftException($"{source} is a damaged TFLite file ({e.Message}).", "Download it again; its SHA-256 should match the published one.");
        }
    }

    static TfliteModel ParseChecked(byte[] bytes, string source)
    {
        var bb = new ByteBuffer(bytes);
        var model = new Fb(bb, bb.GetInt(0));

        var codes = model.Tables(1).Select(c =>
            // Codes above 127 live in builtin_code; deprecated_builtin_code saturates at 127.
            Math.Max((int)c.SByte(0, 0), c.Int(3, 0))).ToArray();

        var graph = model.Tables(2).Cast<Fb?>().FirstOrDefault()
            ?? throw new GraftException($"{source} is a damaged TFLite file (it has no subgraph).", "Download it again; its SHA-256 should match the published one.");
        var tensors = graph.Tables(0).Select((t, i) =>
        {
            var q = t.Table(4);
            var quant = q is null
                ? new Quantization([], [], 0)
                : new Quantization(q.Value.Floats(2), q.Value.Longs(3), q.Value.Int(6, 0));
            return new TfliteTensor(i, t.String(3) ?? $"tensor_{i}", t.Ints(0), (TensorType)t.SByte(1, 0), (int)t.UInt(2, 0), quant);
        }).ToList();

        var ops = graph.Tables(3).Select(o =>
        {
            int code = codes[o.UInt(0, 0)];
            var op = (BuiltinOp)code;
            ConvOptions? conv = null;
            if (op is BuiltinOp.Conv2D or BuiltinOp.DepthwiseConv2D or BuiltinOp.AveragePool2D or BuiltinOp.MaxPool2D)
            {
                var opt = o.Table(4);
                if (opt is { } x)
                    conv = op switch
                    {
                        // Conv2DOptions: padding, stride_w, stride_h, fused_activation_function
                        BuiltinOp.Conv2D => new ConvOptions((Padding)x.SByte(0, 0), x.Int(2, 0), x.Int(1, 0), (Activation)x.SByte(3, 0), 1),
                        // DepthwiseConv2DOptions: padding, stride_w, stride_h, depth_multiplier, fused_activation_function
                        BuiltinOp.DepthwiseConv2D => new ConvOptions((Padding)x.SByte(0, 0), x.Int(2, 0), x.Int(1, 0), (Activation)x.SByte(4, 0), x.Int(3, 1)),
                        // Pool2DOptions: padding, stride_w, stride_h, filter_width, filter_height, fused_activation_function
                        _ => new ConvOptions((Padding)x.SByte(0, 0), x.Int(2, 0), x.Int(1, 0), (Activation)x.SByte(5, 0), 1),
                    };
            }
            return new TfliteOperator(op, code, o.Ints(1), o.Ints(2), conv);
        }).ToList();

        var buffers = model.Tables(4).ToList();
        var positions = new int[buffers.Count];
        var lengths = new int[buffers.Count];
        for (int i = 0; i < buffers.Count; i++)
        {
            (positions[i], lengths[i]) = buffers[i].VectorSpan(0);
            if (lengths[i] == 0 && buffers[i].ULong(1, 0) > 1)
            {
                // Models over 2 GB keep data after the flatbuffer, addressed by offset and size.
                positions[i] = checked((int)buffers[i].ULong(1, 0));
                lengths[i] = checked((int)buffers[i].ULong(2, 0));
            }
        }
        return new TfliteModel(source, bytes, tensors, ops, graph.Ints(1), graph.Ints(2), positions, lengths);
    }

    public ReadOnlySpan<byte> RawData(TfliteTensor t) =>
        _bytes.AsSpan(_bufferDataPositions[t.Buffer], _bufferDataLengths[t.Buffer]);

    /// <summary>
    /// The tensor's values as float32 in its own layout: float tensors as stored, quantized ones as
    /// (q - zero_point) * scale, per channel along quantized_dimension when there are several scales.
    /// </summary>
    public float[] ToFloat(TfliteTensor t)
    {
        var raw = RawData(t).ToArray();
        int count = t.Shape.Aggregate(1, (a, b) => a * b);
        var values = new float[count];
        switch (t.Type)
        {
            case TensorType.Float32:
                for (int i = 0; i < count; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(raw.AsSpan(i * 4));
                return values;
            case TensorType.Float16:
                for (int i = 0; i < count; i++) values[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(raw.AsSpan(i * 2));
                return values;
            case TensorType.UInt8:
                Dequantize(t, values, i => raw[i]);
                return values;
            case TensorType.Int8:
                Dequantize(t, values, i => (sbyte)raw[i]);
                return values;
            case TensorType.Int32:
                Dequantize(t, values, i => BinaryPrimitives.ReadInt32LittleEndian(raw.AsSpan(i * 4)));
                return values;
            default:
                throw new GraftException($"{Source}: tensor '{t.Name}' has type {t.Type}, which Graft cannot read.",
                    "Use a float32, float16, uint8, int8 or int32 model.");
        }
    }

    void Dequantize(TfliteTensor t, float[] values, Func<int, long> read)
    {
        var q = t.Quantization;
        if (!q.IsPresent)
        {
            for (int i = 0; i < values.Length; i++) values[i] = read(i);
            return;
        }
        // Elements sharing one scale are contiguous runs of `inner` elements, cycling over the channels.
        int inner = 1;
        for (int d = q.QuantizedDimension + 1; d < t.Shape.Length; d++) inner *= t.Shape[d];
        int channels = q.Scale.Length;
        for (int i = 0; i < values.Length; i++)
        {
            int c = channels == 1 ? 0 : (i / inner) % channels;
            long zero = q.ZeroPoint.Length == 0 ? 0 : q.ZeroPoint[Math.Min(c, q.ZeroPoint.Length - 1)];
            values[i] = (read(i) - zero) * q.Scale[c];
        }
    }

    /// <summary>A minimal typed view of a flatbuffer table (vtable lookups by field number).</summary>
    readonly struct Fb(ByteBuffer bb, int pos)
    {
        readonly Table _t = new(pos, bb);

        int Field(int id) => _t.__offset(4 + 2 * id);

        public sbyte SByte(int id, sbyte d) { int o = Field(id); return o != 0 ? bb.GetSbyte(_t.bb_pos + o) : d; }
        public int Int(int id, int d) { int o = Field(id); return o != 0 ? bb.GetInt(_t.bb_pos + o) : d; }
        public uint UInt(int id, uint d) { int o = Field(id); return o != 0 ? bb.GetUint(_t.bb_pos + o) : d; }
        public ulong ULong(int id, ulong d) { int o = Field(id); return o != 0 ? bb.GetUlong(_t.bb_pos + o) : d; }
        public string? String(int id) { int o = Field(id); return o != 0 ? _t.__string(_t.bb_pos + o) : null; }

        public Fb? Table(int id)
        {
            int o = Field(id);
            return o != 0 ? new Fb(bb, _t.__indirect(_t.bb_pos + o)) : null;
        }

        public IEnumerable<Fb> Tables(int id)
        {
            int o = Field(id);
            if (o == 0) yield break;
            int start = _t.__vector(o), n = _t.__vector_len(o);
            for (int i = 0; i < n; i++) yield return new Fb(bb, _t.__indirect(start + i * 4));
        }

        public (int Position, int Length) VectorSpan(int id)
        {
            int o = Field(id);
            return o == 0 ? (0, 0) : (_t.__vector(o), _t.__vector_len(o));
        }

        public int[] Ints(int id) => Read(id, 4, static (b, p) => b.GetInt(p));
        public long[] Longs(int id) => Read(id, 8, static (b, p) => b.GetLong(p));
        public float[] Floats(int id) => Read(id, 4, static (b, p) => b.GetFloat(p));

        T[] Read<T>(int id, int size, Func<ByteBuffer, int, T> get)
        {
            var (start, n) = VectorSpan(id);
            var result = new T[n];
            for (int i = 0; i < n; i++) result[i] = get(_t.bb, start + i * size);
            return result;
        }
    }
}
