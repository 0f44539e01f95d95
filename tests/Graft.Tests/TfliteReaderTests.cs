using System.Buffers.Binary;
using Google.FlatBuffers;
using Graft.Weights;
using Graft.Weights.Tflite;

namespace Graft.Tests;

public class TfliteReaderTests
{
    static string Coral(string file) => Assets.Shared($"models/coral/{file}");

    [Fact]
    public void Reads_mobilenet_v1_025_in_keras_layout()
    {
        var path = Coral("mobilenet_v1_0.25_128_quant.tflite");
        var w = TfliteReader.Read(path);
        Assert.Equal("tflite", w.Format);
        Assert.True(w.BatchNormFolded);
        Assert.Equal(128, w.InputSize);
        Assert.Equal((128f, 128f), w.InputMapping); // (p - 128) * 0.0078125

        Assert.Equal(28, w.Layers.Count); // 14 convolutions (stem, 13 pointwise) + 13 depthwise + the 1x1 classifier
        Assert.Equal("Conv2d_0", w.Layers[0].Layer);
        Assert.Equal(["3x3x3x8", "8"], w.Layers[0].Arrays.Select(a => a.ShapeText));
        Assert.Equal(["kernel", "bias"], w.Layers[0].Arrays.Select(a => a.Name));
        Assert.Equal("Conv2d_1_depthwise", w.Layers[1].Layer);
        Assert.Equal("3x3x8x1", w.Layers[1].Arrays[0].ShapeText);
        Assert.Equal("Conv2d_1_pointwise", w.Layers[2].Layer);
        Assert.Equal("1x1x8x16", w.Layers[2].Arrays[0].ShapeText);
        Assert.Equal("Conv2d_13_pointwise", w.Layers[^2].Layer);
        Assert.Equal("Conv2d_1c_1x1", w.Layers[^1].Layer);
        Assert.Equal(["1x1x256x1001", "1001"], w.Layers[^1].Arrays.Select(a => a.ShapeText));

        // The Keras MobileNet 0.25 trunk has 218,544 parameters; folding its 27 batch norms (2,736 channels) keeps
        // one bias per channel instead of four statistics: 218,544 - 3 * 2,736. The classifier adds 256 * 1001 + 1001.
        Assert.Equal(218_544 - 3 * 2_736, w.Layers.SkipLast(1).Sum(l => l.Arrays.Sum(a => (long)a.Values.Length)));
        Assert.Equal(218_544 - 3 * 2_736 + 257_257, w.ParameterCount);

        // Values: TFLite's OHWI becomes HWIO; the depthwise 1 x H x W x C keeps its element order.
        var model = TfliteModel.Read(path);
        var convs = model.Operators.Where(o => o.Op is BuiltinOp.Conv2D or BuiltinOp.DepthwiseConv2D).ToList();
        var ohwi = model.ToFloat(model.Tensors[convs[0].Inputs[1]]);   // 8 x 3 x 3 x 3
        var hwio = w.Layers[0].Arrays[0].Values;                        // 3 x 3 x 3 x 8
        for (int o = 0; o < 8; o++)
            for (int h = 0; h < 3; h++)
                for (int x = 0; x < 3; x++)
                    for (int i = 0; i < 3; i++)
                        Assert.Equal(ohwi[((o * 3 + h) * 3 + x) * 3 + i], hwio[((h * 3 + x) * 3 + i) * 8 + o]);
        Assert.Equal(model.ToFloat(model.Tensors[convs[1].Inputs[1]]), w.Layers[1].Arrays[0].Values);
        Assert.Equal(model.ToFloat(model.Tensors[convs[0].Inputs[2]]), w.Layers[0].Arrays[1].Values);
    }

    [Fact]
    public void Names_layers_after_their_scopes_in_every_coral_file()
    {
        var tf2 = TfliteReader.Read(Coral("tf2_mobilenet_v2_1.0_224_ptq.tflite"));
        Assert.Equal(53, tf2.Layers.Count);
        // Its depthwise weights are named after the folded batch norm first; the convolution's own name follows.
        Assert.Equal(["Conv2d_0_0", "expanded_conv_1/depthwise", "expanded_conv_1/project", "expanded_conv_2/expand"],
            tf2.Layers.Take(4).Select(l => l.Layer));
        Assert.Equal(["Conv2d_18_1", "Conv2d_1x1_output"], tf2.Layers.TakeLast(2).Select(l => l.Layer));
        Assert.Equal("3x3x32x1", tf2.Layers[1].Arrays[0].ShapeText);
        Assert.Equal("1x1x32x16", tf2.Layers[2].Arrays[0].ShapeText);
        Assert.Equal((127f, 127.5f), (tf2.InputMapping!.Value.Mean, MathF.Round(tf2.InputMapping.Value.Std, 2)));

        var slim = TfliteReader.Read(Coral("mobilenet_v2_1.0_224_quant.tflite"));
        Assert.Equal(["Conv", "expanded_conv/depthwise", "expanded_conv/project", "expanded_conv_1/expand"],
            slim.Layers.Take(4).Select(l => l.Layer));
        Assert.Equal(["Conv_1", "Conv2d_1c_1x1"], slim.Layers.TakeLast(2).Select(l => l.Layer));

        var extractor = TfliteReader.Read(Coral("mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"));
        Assert.Equal(27, extractor.Layers.Count);
        Assert.Equal("Conv2d_13_pointwise", extractor.Layers[^1].Layer);
        Assert.Equal("1x1x1024x1024", extractor.Layers[^1].Arrays[0].ShapeText);

        foreach (var file in new[] { "mobilenet_v1_0.5_160_quant.tflite", "mobilenet_v1_0.75_192_quant.tflite" })
        {
            var w = TfliteReader.Read(Coral(file));
            Assert.Equal(28, w.Layers.Count);
            Assert.Equal(w.Layers.Count, w.Layers.Select(l => l.Layer).Distinct().Count());
            Assert.All(w.Layers, l => Assert.Equal(4, l.Arrays[0].Shape.Length));
        }
        Assert.Equal(160, TfliteReader.Read(Coral("mobilenet_v1_0.5_160_quant.tflite")).InputSize);
    }

    [Fact]
    public void Reads_a_float_model_with_float16_weights_behind_dequantize()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir["tiny.tflite"], TinyModel(TensorType.Float32));
        var w = TfliteReader.Read(dir["tiny.tflite"]);

        Assert.Equal(["block_1_expand", "depthwise_conv2d", "dense"], w.Layers.Select(l => l.Layer));
        Assert.True(w.BatchNormFolded);
        Assert.Null(w.InputMapping);
        Assert.Equal(4, w.InputSize);

        // CONV_2D: OHWI 3x2x2x2 holding 0..23 becomes HWIO 2x2x2x3.
        var conv = w.Layers[0];
        Assert.Equal(["kernel", "bias"], conv.Arrays.Select(a => a.Name));
        Assert.Equal("2x2x2x3", conv.Arrays[0].ShapeText);
        for (int h = 0; h < 2; h++)
            for (int x = 0; x < 2; x++)
                for (int i = 0; i < 2; i++)
                    for (int o = 0; o < 3; o++)
                        Assert.Equal(o * 8 + h * 4 + x * 2 + i, conv.Arrays[0].Values[((h * 2 + x) * 2 + i) * 3 + o]);
        Assert.Equal([0.5f, 1.5f, 2.5f], conv.Arrays[1].Values);

        // DEPTHWISE_CONV_2D, multiplier 2 over 3 channels: 1x2x2x6 float16 becomes 2x2x3x2, element order kept.
        var depthwise = w.Layers[1].Arrays.Single();
        Assert.Equal("2x2x3x2", depthwise.ShapeText);
        Assert.Equal(Enumerable.Range(0, 24).Select(k => k * 0.25f), depthwise.Values);

        // FULLY_CONNECTED: Out x In 2x24 holding 100 + k becomes In x Out 24x2.
        var dense = w.Layers[2].Arrays.Single();
        Assert.Equal("24x2", dense.ShapeText);
        for (int i = 0; i < 24; i++)
            for (int o = 0; o < 2; o++)
                Assert.Equal(100 + o * 24 + i, dense.Values[i * 2 + o]);
    }

    [Fact]
    public void An_int8_input_maps_pixels_shifted_by_128()
    {
        using var dir = new TempDir();
        // real = (q - (-1)) / 127.5 with q = pixel - 128, i.e. (pixel - 127) / 127.5
        File.WriteAllBytes(dir["int8.tflite"], TinyModel(TensorType.Int8, inputScale: 1 / 127.5f, inputZero: -1));
        var (mean, std) = TfliteReader.Read(dir["int8.tflite"]).InputMapping!.Value;
        Assert.Equal(127f, mean);
        Assert.Equal(127.5f, std, 3);
    }

    /// <summary>
    /// A tiny TFLite flatbuffer written field by field after TensorFlow's lite/schema/schema.fbs:
    /// DEQUANTIZE (float16 depthwise weights), CONV_2D with bias, DEPTHWISE_CONV_2D (multiplier 2), FULLY_CONNECTED.
    /// </summary>
    static byte[] TinyModel(TensorType inputType, float inputScale = 0, long inputZero = 0)
    {
        var b = new FlatBufferBuilder(1024);

        int IntVector(params int[] xs)
        {
            b.StartVector(4, xs.Length, 4);
            for (int i = xs.Length - 1; i >= 0; i--) b.AddInt(xs[i]);
            return b.EndVector().Value;
        }
        int TableVector(List<int> tables)
        {
            b.StartVector(4, tables.Count, 4);
            for (int i = tables.Count - 1; i >= 0; i--) b.AddOffset(tables[i]);
            return b.EndVector().Value;
        }
        int Buffer(byte[] data) // Buffer { data:[ubyte] (0) }
        {
            int vector = 0;
            if (data.Length > 0)
            {
                b.StartVector(1, data.Length, 16);
                for (int i = data.Length - 1; i >= 0; i--) b.AddByte(data[i]);
                vector = b.EndVector().Value;
            }
            b.StartTable(1);
            if (vector != 0) b.AddOffset(0, vector, 0);
            return b.EndTable();
        }
        int Tensor(string name, int[] shape, TensorType type, int buffer, float scale = 0, long zero = 0)
        {
            int quantization = 0;
            if (scale != 0) // QuantizationParameters { min (0), max (1), scale (2), zero_point (3), ..., quantized_dimension (6) }
            {
                b.StartVector(4, 1, 4); b.AddFloat(scale); int scales = b.EndVector().Value;
                b.StartVector(8, 1, 8); b.AddLong(zero); int zeros = b.EndVector().Value;
                b.StartTable(7); b.AddOffset(2, scales, 0); b.AddOffset(3, zeros, 0); quantization = b.EndTable();
            }
            int nameOffset = b.CreateString(name).Value, shapeOffset = IntVector(shape);
            // Tensor { shape (0), type (1), buffer (2), name (3), quantization (4) }
            b.StartTable(5);
            b.AddOffset(0, shapeOffset, 0);
            b.AddSbyte(1, (sbyte)type, 0);
            b.AddUint(2, (uint)buffer, 0);
            b.AddOffset(3, nameOffset, 0);
            if (quantization != 0) b.AddOffset(4, quantization, 0);
            return b.EndTable();
        }
        int Operator(int opcode, int[] inputs, int[] outputs, byte optionsType = 0, int options = 0)
        {
            int ins = IntVector(inputs), outs = IntVector(outputs);
            // Operator { opcode_index (0), inputs (1), outputs (2), builtin_options_type (3), builtin_options (4) }
            b.StartTable(5);
            b.AddUint(0, (uint)opcode, 0);
            b.AddOffset(1, ins, 0);
            b.AddOffset(2, outs, 0);
            if (options != 0) { b.AddByte(3, optionsType, 0); b.AddOffset(4, options, 0); }
            return b.EndTable();
        }
        int OperatorCode(BuiltinOp op) // OperatorCode { deprecated_builtin_code (0), ..., builtin_code (3) }
        {
            b.StartTable(4); b.AddSbyte(0, (sbyte)op, 0); b.AddInt(3, (int)op, 0);
            return b.EndTable();
        }

        var buffers = new List<int>
        {
            Buffer([]), // buffer 0: the empty sentinel every model starts with
            Buffer(Floats(Enumerable.Range(0, 24).Select(k => (float)k))), // conv kernel, OHWI 3x2x2x2
            Buffer(Floats([0.5f, 1.5f, 2.5f])),                               // conv bias
            Buffer(Enumerable.Range(0, 24).SelectMany(k => Bytes((Half)(k * 0.25f))).ToArray()), // depthwise, float16
            Buffer(Floats(Enumerable.Range(0, 48).Select(k => 100f + k))),   // dense kernel, Out x In 2x24
        };
        var tensors = new List<int>
        {
            Tensor("serving_default_input:0", [1, 4, 4, 2], inputType, 0, inputScale, inputZero), // 0
            // Keras-made names put the folded batch norm first; the layer is the convolution's scope.
            Tensor("mobilenetv2_1.00_224/block_1_expand_BN/FusedBatchNormV3;mobilenetv2_1.00_224/block_1_expand/Conv2D",
                [3, 2, 2, 2], TensorType.Float32, 1),                                                // 1
            Tensor("model/conv2d/BiasAdd/ReadVariableOp", [3], TensorType.Float32, 2),              // 2
            Tensor("model/conv2d/Relu", [1, 3, 3, 3], TensorType.Float32, 0),                       // 3
            Tensor("model/depthwise_conv2d/depthwise_fp16", [1, 2, 2, 6], TensorType.Float16, 3),   // 4
            Tensor("model/depthwise_conv2d/depthwise", [1, 2, 2, 6], TensorType.Float32, 0),        // 5
            Tensor("model/depthwise_conv2d/Relu", [1, 2, 2, 6], TensorType.Float32, 0),             // 6
            Tensor("model/dense/MatMul;model/dense/BiasAdd", [2, 24], TensorType.Float32, 4),       // 7
            Tensor("Identity", [1, 2], TensorType.Float32, 0),                                      // 8
        };

        // Conv2DOptions { padding (0), stride_w (1), stride_h (2), fused_activation_function (3) }: VALID, 1, 1, RELU
        b.StartTable(4); b.AddSbyte(0, 1, 0); b.AddInt(1, 1, 0); b.AddInt(2, 1, 0); b.AddSbyte(3, 1, 0);
        int convOptions = b.EndTable();
        // DepthwiseConv2DOptions { padding, stride_w, stride_h, depth_multiplier (3), fused_activation_function (4) }
        b.StartTable(5); b.AddSbyte(0, 1, 0); b.AddInt(1, 1, 0); b.AddInt(2, 1, 0); b.AddInt(3, 2, 0); b.AddSbyte(4, 1, 0);
        int depthwiseOptions = b.EndTable();
        var operators = new List<int>
        {
            Operator(0, [4], [5]),
            Operator(1, [0, 1, 2], [3], optionsType: 1, convOptions),          // BuiltinOptions.Conv2DOptions = 1
            Operator(2, [3, 5, -1], [6], optionsType: 2, depthwiseOptions),    // BuiltinOptions.DepthwiseConv2DOptions = 2
            Operator(3, [6, 7, -1], [8]),
        };
        var codes = new List<int>
        {
            OperatorCode(BuiltinOp.Dequantize), OperatorCode(BuiltinOp.Conv2D),
            OperatorCode(BuiltinOp.DepthwiseConv2D), OperatorCode(BuiltinOp.FullyConnected),
        };

        int tensorVector = TableVector(tensors), inputVector = IntVector(0), outputVector = IntVector(8), operatorVector = TableVector(operators);
        // SubGraph { tensors (0), inputs (1), outputs (2), operators (3) }
        b.StartTable(4);
        b.AddOffset(0, tensorVector, 0); b.AddOffset(1, inputVector, 0); b.AddOffset(2, outputVector, 0); b.AddOffset(3, operatorVector, 0);
        int subgraph = b.EndTable();

        int codeVector = TableVector(codes), subgraphVector = TableVector([subgraph]), bufferVector = TableVector(buffers);
        // Model { version (0), operator_codes (1), subgraphs (2), description (3), buffers (4) }
        b.StartTable(5);
        b.AddUint(0, 3, 0); b.AddOffset(1, codeVector, 0); b.AddOffset(2, subgraphVector, 0); b.AddOffset(4, bufferVector, 0);
        b.Finish(b.EndTable(), "TFL3");
        return b.SizedByteArray();
    }

    static byte[] Floats(IEnumerable<float> values) => values.SelectMany(v =>
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteSingleLittleEndian(bytes, v);
        return bytes;
    }).ToArray();

    static byte[] Bytes(Half v)
    {
        var bytes = new byte[2];
        BinaryPrimitives.WriteHalfLittleEndian(bytes, v);
        return bytes;
    }
}
