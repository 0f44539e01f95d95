using System.Buffers.Binary;
using Graft.Weights;
using Graft.Weights.Tflite;

namespace Graft.Tests;

public class TfliteTests
{
    static TfliteModel Tf2 => LazyTf2.Value;
    static TfliteModel Slim => LazySlim.Value;
    static readonly Lazy<TfliteModel> LazyTf2 = new(() => TfliteModel.Read(Assets.Shared("models/coral/tf2_mobilenet_v2_1.0_224_ptq.tflite")));
    static readonly Lazy<TfliteModel> LazySlim = new(() => TfliteModel.Read(Assets.Shared("models/coral/mobilenet_v2_1.0_224_quant.tflite")));

    [Fact]
    public void Reads_the_graph_of_the_tf2_model()
    {
        var ops = Tf2.Operators.GroupBy(o => o.Op).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(36, ops[BuiltinOp.Conv2D]);
        Assert.Equal(17, ops[BuiltinOp.DepthwiseConv2D]);
        Assert.Equal(10, ops[BuiltinOp.Add]);
        var input = Tf2.Tensors[Tf2.Inputs[0]];
        Assert.Equal([1, 224, 224, 3], input.Shape);
        Assert.Equal(TensorType.UInt8, input.Type);
        var output = Tf2.Tensors[Tf2.Outputs[0]];
        Assert.Equal([1, 1001], output.Shape);
        var stem = Tf2.Operators.First(o => o.Op == BuiltinOp.Conv2D);
        Assert.Equal(new ConvOptions(Padding.Same, 2, 2, Activation.Relu6, 1), stem.Conv);
    }

    [Fact]
    public void Input_mappings_come_from_the_input_quantization()
    {
        var (mean, std) = TfliteReader.Read(Tf2.Source).InputMapping!.Value;
        Assert.Equal(127f, mean);
        Assert.Equal(127.5f, std, 2); // (p - 127) * 2/255
        var (slimMean, slimStd) = TfliteReader.Read(Slim.Source).InputMapping!.Value;
        Assert.Equal(128f, slimMean);
        Assert.Equal(128f, slimStd, 3); // (p - 128) / 128
    }

    [Fact]
    public void Per_channel_int8_weights_use_their_own_channel_scale()
    {
        var conv = Tf2.Tensors[Tf2.Operators.First(o => o.Op == BuiltinOp.Conv2D).Inputs[1]]; // 32x3x3x3 OHWI int8
        Assert.Equal(32, conv.Quantization.Scale.Length);
        Assert.Equal(0, conv.Quantization.QuantizedDimension);
        var raw = Tf2.RawData(conv);
        var values = Tf2.ToFloat(conv);
        foreach (int i in new[] { 0, 26, 27, 500, 863 })
        {
            int channel = i / 27;
            Assert.Equal((sbyte)raw[i] * conv.Quantization.Scale[channel], values[i], 6);
        }
        Assert.NotEqual(conv.Quantization.Scale[0], conv.Quantization.Scale[1]);
    }

    [Fact]
    public void Int32_biases_and_uint8_weights_with_zero_points_dequantize()
    {
        var op = Slim.Operators.First(o => o.Op == BuiltinOp.Conv2D);
        var weights = Slim.Tensors[op.Inputs[1]];
        Assert.Single(weights.Quantization.Scale);
        long zero = weights.Quantization.ZeroPoint[0];
        Assert.NotEqual(0, zero);
        Assert.Equal((Slim.RawData(weights)[5] - zero) * weights.Quantization.Scale[0], Slim.ToFloat(weights)[5], 6);

        var bias = Slim.Tensors[op.Inputs[2]];
        Assert.Equal(TensorType.Int32, bias.Type);
        int q = BinaryPrimitives.ReadInt32LittleEndian(Slim.RawData(bias)[12..]);
        Assert.Equal(q * bias.Quantization.Scale[0], Slim.ToFloat(bias)[3], 6);
    }

    [Fact]
    public void A_file_that_is_not_tflite_is_rejected_with_its_name()
    {
        var e = Assert.Throws<GraftException>(() => TfliteModel.Parse(new byte[64], "broken.tflite"));
        Assert.Contains("broken.tflite", e.Message);
        var truncated = File.ReadAllBytes(Assets.Shared("models/coral/tf2_mobilenet_v2_1.0_224_ptq.tflite"))[..4096];
        var damaged = Assert.Throws<GraftException>(() => TfliteModel.Parse(truncated, "cut.tflite"));
        Assert.Contains("cut.tflite", damaged.Message);
    }
}
