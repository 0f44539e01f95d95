namespace Graft.Weights.Tflite;

/// <summary>
/// Reads a TFLite model's weights as <see cref="NamedWeights"/>: one layer per weighted operator (CONV_2D,
/// DEPTHWISE_CONV_2D, FULLY_CONNECTED) in execution order, each with a "kernel" in Keras's layout and a "bias"
/// when the operator has one, dequantized to float32. Works for quantized (uint8, int8) and float (float32, or
/// float16 behind DEQUANTIZE) files.
/// </summary>
internal static class TfliteReader
{
    public static NamedWeights Read(string path)
    {
        var model = TfliteModel.Read(path);
        var ops = model.Operators.Where(o => o.Op is BuiltinOp.Conv2D or BuiltinOp.DepthwiseConv2D or BuiltinOp.FullyConnected).ToList();
        if (ops.Count == 0)
            throw new GraftException($"{path} has no convolution or fully-connected operators, so no weights to read.",
                "Pass the .tflite file of an image classifier or feature extractor.");

        // Float16 models keep their weights as float16 constants that a DEQUANTIZE op turns into the float32 input.
        var dequantized = model.Operators.Where(o => o.Op == BuiltinOp.Dequantize)
            .ToDictionary(o => o.Outputs[0], o => o.Inputs[0]);
        TfliteTensor Constant(int index)
        {
            var t = model.Tensors[index];
            if (model.RawData(t).Length > 0) return t;
            if (dequantized.TryGetValue(index, out int source) && model.RawData(model.Tensors[source]).Length > 0)
                return model.Tensors[source];
            throw new GraftException($"{path}: tensor '{t.Name}' feeds an operator's weights but holds no constant data.",
                "Graft reads weights stored in the file; convert the model with its weights as constants.");
        }

        var names = UniqueNames(ops.Select(o => Scopes(model.Tensors[o.Inputs[1]].Name)).ToList());
        var layers = ops.Select((op, i) =>
        {
            var arrays = new List<WeightArray> { Kernel(model, op, Constant(op.Inputs[1])) };
            if (op.Inputs.Length > 2 && op.Inputs[2] >= 0)
            {
                var bias = Constant(op.Inputs[2]);
                arrays.Add(new WeightArray("bias", bias.Shape, model.ToFloat(bias)));
            }
            return new LayerWeightSet(names[i], arrays);
        }).ToList();

        var input = model.Tensors[model.Inputs[0]];
        return new NamedWeights(path, "tflite", layers)
        {
            // Converters fold batch norm into the convolutions' kernels and biases, quantized or not.
            BatchNormFolded = true,
            InputMapping = InputMapping(input),
            InputSize = input.Shape is [_, var h, var w, _] && h == w ? h : null,
        };
    }

    /// <summary>The kernel in Keras's layout: Conv2D H x W x In x Out, DepthwiseConv2D H x W x C x multiplier, Dense In x Out.</summary>
    static WeightArray Kernel(TfliteModel model, TfliteOperator op, TfliteTensor w)
    {
        var values = model.ToFloat(w);
        var s = w.Shape;
        switch (op.Op)
        {
            case BuiltinOp.Conv2D: // OHWI
                return new WeightArray("kernel", [s[1], s[2], s[3], s[0]], Permute(values, s, [1, 2, 3, 0]));
            case BuiltinOp.DepthwiseConv2D:
                // 1 x H x W x (C * multiplier), output channel c * multiplier + m: the same element order as Keras's
                // H x W x C x multiplier, so only the shape changes. The input's channels give the multiplier
                // (the depth_multiplier option is not always filled in).
                int channels = model.Tensors[op.Inputs[0]].Shape is { Length: 4 } x ? x[3] : s[3] / (op.Conv?.DepthMultiplier ?? 1);
                return new WeightArray("kernel", [s[1], s[2], channels, s[3] / channels], values);
            default: // FULLY_CONNECTED: Out x In
                return new WeightArray("kernel", [s[1], s[0]], Permute(values, [1, s[0], s[1], 1], [0, 2, 1, 3]));
        }
    }

    /// <summary>
    /// The (mean, std) over 0..255 pixels that a quantized input implies: real = (q - zero_point) * scale, with
    /// q = pixel for uint8 inputs and q = pixel - 128 for int8 ones. Float inputs state nothing.
    /// </summary>
    static (float Mean, float Std)? InputMapping(TfliteTensor input)
    {
        var q = input.Quantization;
        if (!q.IsPresent) return null;
        long zero = q.ZeroPoint.FirstOrDefault();
        return input.Type switch
        {
            TensorType.UInt8 => (zero, 1f / q.Scale[0]),
            TensorType.Int8 => (zero + 128, 1f / q.Scale[0]),
            _ => null,
        };
    }

    /// <summary>TF helper scopes that can follow a layer's own scope in a weight tensor's name.</summary>
    static readonly HashSet<string> OpScopes = ["Conv2D", "MatMul", "BiasAdd", "ReadVariableOp", "weights_quant"];

    /// <summary>
    /// The name scopes of the layer a weight tensor belongs to, outermost first. TFLite names a fused tensor after
    /// every TF op it came from, joined by ';'; batch-norm names come first when BN was folded into the weights
    /// ("MobileNetV2/expanded_conv_1/depthwise/batch_norm/FusedBatchNormV3;...;MobileNetV2/expanded_conv_1/depthwise/depthwise"),
    /// so the first name that is not a batch norm's is the convolution's own. Its last part is the op
    /// (Conv2D, Conv2D_Fold, depthwise, MatMul, ...).
    /// </summary>
    static string[] Scopes(string tensorName)
    {
        var all = tensorName.Split(';');
        var own = all.FirstOrDefault(n => !n.Contains("batchnorm", StringComparison.OrdinalIgnoreCase) && !n.Contains("batch_norm")) ?? all[0];
        var parts = own.Split('/').SkipWhile(p => p == "StatefulPartitionedCall").ToList();
        if (parts.Count > 1) parts.RemoveAt(parts.Count - 1);
        while (parts.Count > 1 && OpScopes.Contains(parts[^1])) parts.RemoveAt(parts.Count - 1);
        return [.. parts];
    }

    /// <summary>
    /// Each layer's innermost scope ("mobilenetv2_1.00_224/block_1_expand" gives "block_1_expand", which is the Keras
    /// layer name for Keras-made files), widened by outer scopes only where that is needed to tell layers apart
    /// ("expanded_conv_1/expand" in TF-slim files); a weight shared by several operators gets Keras's "_1" suffixes.
    /// </summary>
    static List<string> UniqueNames(List<string[]> scopes)
    {
        var depth = Enumerable.Repeat(1, scopes.Count).ToArray();
        string Name(int i) => string.Join("/", scopes[i][^Math.Min(depth[i], scopes[i].Length)..]);
        while (true)
        {
            var widen = Enumerable.Range(0, scopes.Count).GroupBy(Name).Where(g => g.Count() > 1)
                .SelectMany(g => g).Where(i => depth[i] < scopes[i].Length).ToList();
            if (widen.Count == 0) break;
            foreach (int i in widen) depth[i]++;
        }
        var taken = new HashSet<string>();
        return Enumerable.Range(0, scopes.Count).Select(i =>
        {
            string name = Name(i);
            for (int k = 1; !taken.Add(name); k++) name = $"{Name(i)}_{k}";
            return name;
        }).ToList();
    }

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
