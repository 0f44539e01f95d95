namespace Graft.Weights.Tflite;

/// <summary>
/// Turns a TFLite model's weighted operators (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED), in execution
/// order, into dequantized float32 <see cref="LayerWeights"/> in PyTorch layout; and reads the input mapping
/// a quantized model expects (real = (q - zero_point) * scale).
/// </summary>
public static class TfliteLayers
{
    public static List<LayerWeights> Read(TfliteModel model)
    {
        var layers = new List<LayerWeights>();
        foreach (var op in model.Operators)
        {
            if (op.Op is not (BuiltinOp.Conv2D or BuiltinOp.DepthwiseConv2D or BuiltinOp.FullyConnected)) continue;
            var w = model.Tensors[op.Inputs[1]];
            float[]? bias = op.Inputs.Length > 2 && op.Inputs[2] >= 0 ? model.ToFloat(model.Tensors[op.Inputs[2]]) : null;
            var values = model.ToFloat(w);
            var s = w.Shape;
            string name = ShortName(w.Name);
            int stride = op.Conv?.StrideH ?? 1;
            layers.Add(op.Op switch
            {
                // TFLite conv filters are OHWI; PyTorch wants OIHW.
                BuiltinOp.Conv2D => new LayerWeights(name, LayerKind.Conv, [s[0], s[3], s[1], s[2]], Permute(values, s, [0, 3, 1, 2]), bias, stride),
                // Depthwise filters are 1 x H x W x C; PyTorch wants C x 1 x H x W.
                BuiltinOp.DepthwiseConv2D => new LayerWeights(name, LayerKind.Depthwise, [s[3], 1, s[1], s[2]], Permute(values, s, [3, 0, 1, 2]), bias, stride),
                _ => new LayerWeights(name, LayerKind.Dense, [s[0], s[1]], values, bias, 1),
            });
        }
        return layers;
    }

    /// <summary>The (mean, std) over 0..255 pixels that the model's uint8 input quantization implies, if it has one.</summary>
    public static (float Mean, float Std)? InputMapping(TfliteModel model)
    {
        var input = model.Tensors[model.Inputs[0]];
        if (input.Type != TensorType.UInt8 || !input.Quantization.IsPresent) return null;
        // real = (p - zero_point) * scale = (p - mean) / std
        return (input.Quantization.ZeroPoint.FirstOrDefault(), 1f / input.Quantization.Scale[0]);
    }

    /// <summary>TFLite tensor names join every fused op's name with ';'; the first is the layer's own.</summary>
    static string ShortName(string name) => name.Split(';')[0];

    /// <summary>Copies a 4-D array into a new contiguous array with its axes reordered (out axis i = in axis order[i]).</summary>
    static float[] Permute(float[] src, int[] shape, int[] order)
    {
        var outShape = order.Select(o => shape[o]).ToArray();
        var inStrides = new int[4];
        inStrides[3] = 1;
        for (int d = 2; d >= 0; d--) inStrides[d] = inStrides[d + 1] * shape[d + 1];
        var dst = new float[src.Length];
        int n = 0;
        for (int a = 0; a < outShape[0]; a++)
            for (int b = 0; b < outShape[1]; b++)
                for (int c = 0; c < outShape[2]; c++)
                    for (int d = 0; d < outShape[3]; d++)
                        dst[n++] = src[a * inStrides[order[0]] + b * inStrides[order[1]] + c * inStrides[order[2]] + d * inStrides[order[3]]];
        return dst;
    }
}
