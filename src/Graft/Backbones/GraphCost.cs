using Graft.Backbones.Layers;

namespace Graft.Backbones;

/// <summary>What one layer costs per image: its multiply-accumulates and its other arithmetic.</summary>
internal sealed record LayerCost(string Name, string KerasClass, int InputSize, int OutputSize, long MultiplyAccumulates, long OtherOperations);

/// <summary>
/// The arithmetic of one forward pass of a network for one image, counted by walking its layer primitives.
/// <para>
/// <b>What is counted.</b> <see cref="MultiplyAccumulates"/> (MACs) covers the convolutions and dense layers
/// only, a bias add or activation not included — the quantity the literature publishes:
/// Conv2D k_h·k_w·(C_in/groups)·C_out·H_out·W_out; DepthwiseConv2D k_h·k_w·C·H_out·W_out; SeparableConv2D its
/// depthwise window (at the stride) plus its 1x1 pointwise C_in·C_out·H_out·W_out; Dense in·out (per position on a
/// map, as ConvNeXt's pointwise layers). Everything else — bias adds, batch norm (2 per element: scale, shift),
/// activations (1 per element, whatever the function: ReLU, swish, hard swish, GELU, sigmoid), pooling (one per
/// window pixel), global average pooling (one per input element), Add and Multiply (one per combined element),
/// InceptionResNetV2's scaled sum (2 per element: scale, add), Rescaling (one per element for its scale, one for its
/// offset), Normalization (2 per element: subtract, divide), LayerNormalization (6 per element: its two statistics,
/// normalizing, scale, shift), LayerScale (1 per element) — is <see cref="OtherOperations"/>, reported apart and not
/// in the FLOPs; padding, cropping, concatenation, reshapes and dropout (stochastic depth included) move data and
/// count nothing.
/// </para>
/// <para>
/// <b>Convention.</b> Papers and model zoos mostly count one multiply-accumulate as one "FLOP": He et al. 2015
/// give VGG-16 15.3 and ResNet-50 3.8 "billion FLOPs" (conv and fc multiply-adds), the MobileNet papers and
/// TF-slim's tables "multiply-adds"/"MACs" (MobileNetV2 1.0 at 224: 300 M), and fvcore counts one fused
/// multiply-add as one flop. Hardware FLOP/s count the multiply and the add apart, so <see cref="Flops"/> is
/// 2·MACs, the figure to divide by a measured GFLOP/s. By that reading VGG16 without its top at 224 is
/// 15.35 GMACs = 30.7 GFLOPs (15.47 GMACs with the three dense layers: the often-quoted "15.5"), Keras's
/// ResNet50 (v1: stride 2 on the first 1x1) 3.86 GMACs, MobileNetV2 1.0 0.30 GMACs.
/// </para>
/// </summary>
internal sealed record GraphCost(int InputSize, long MultiplyAccumulates, long OtherOperations, IReadOnlyList<LayerCost> Layers)
{
    /// <summary>Floating-point operations of the convolutions and dense layers: 2 per multiply-accumulate.</summary>
    public long Flops => 2 * MultiplyAccumulates;
    public double GigaMacs => MultiplyAccumulates / 1e9;
    public double GigaFlops => Flops / 1e9;

    /// <summary>
    /// The cost of <paramref name="graph"/> for one image of <paramref name="inputSize"/> x <paramref name="inputSize"/>
    /// (default: the size it was built for). Spatial sizes and channels are recomputed from the input through each
    /// layer's own rules (as <see cref="GraphBuilder"/> does), so no network needs rebuilding for another size.
    /// </summary>
    public static GraphCost Of(Graph graph, int? inputSize = null)
    {
        var nodes = graph.Nodes;
        var size = new int[nodes.Count];
        var channels = new int[nodes.Count];
        size[0] = inputSize ?? nodes[0].Size;
        channels[0] = nodes[0].Channels;
        var layers = new List<LayerCost>(nodes.Count - 1);
        long macs = 0, other = 0;
        for (int i = 1; i < nodes.Count; i++)
        {
            var node = nodes[i];
            var layer = node.Layer!;
            int first = node.Inputs[0], inSize = size[first], inChannels = channels[first];
            size[i] = inSize == 0 ? 0 : layer.OutputSize(inSize);
            channels[i] = layer.OutputChannels(node.Inputs.Select(j => channels[j]).ToArray(), inSize);
            var (m, o) = Count(layer, inSize, inChannels, size[i], channels[i], node.Inputs.Length);
            macs += m;
            other += o;
            layers.Add(new LayerCost(node.Name, layer.KerasClass, inSize, size[i], m, o));
        }
        return new GraphCost(size[0], macs, other, layers);
    }

    /// <summary>Positions of a map of height/width <paramref name="size"/> (a vector, size 0, is one position).</summary>
    static long Positions(int size) => size == 0 ? 1 : (long)size * size;

    static (long Macs, long Other) Count(Layer layer, int inSize, int inChannels, int outSize, int outChannels, int inputs)
    {
        long outElements = Positions(outSize) * outChannels;
        long bias, activation;
        switch (layer)
        {
            case Conv2D c:
                (bias, activation) = (c.bias is null ? 0 : outElements, c.Activation == Activation.Linear ? 0 : outElements);
                return ((long)c.Kernel.H * c.Kernel.W * (inChannels / c.Groups) * c.Filters * Positions(outSize), bias + activation);
            case DepthwiseConv2D d:
                (bias, activation) = (d.bias is null ? 0 : outElements, d.Activation == Activation.Linear ? 0 : outElements);
                return ((long)d.Kernel.H * d.Kernel.W * d.Channels * Positions(outSize), bias + activation);
            case SeparableConv2D s:
                (bias, activation) = (s.bias is null ? 0 : outElements, s.Activation == Activation.Linear ? 0 : outElements);
                long depthwise = (long)s.Kernel.H * s.Kernel.W * s.InChannels * Positions(outSize);
                long pointwise = (long)s.InChannels * s.Filters * Positions(outSize);
                return (depthwise + pointwise, bias + activation);
            case Dense f:
                // Keras applies a Dense to a map's last axis at every position; Keras applications only give it vectors.
                long positions = Positions(inSize);
                return ((long)inChannels * f.Units * positions, positions * f.Units * (f.Activation == Activation.Linear ? 1 : 2));
            case BatchNormalization:
                return (0, 2 * outElements);
            case ActivationLayer a:
                return (0, a.Activation == Activation.Linear ? 0 : outElements);
            case Pooling2D p:
                return (0, (long)p.Pool.H * p.Pool.W * outElements);
            case GlobalAveragePooling2D:
                return (0, Positions(inSize) * inChannels);
            case Add or Multiply:
                return (0, (inputs - 1) * outElements);
            case CustomScaleLayer:
                return (0, 2 * outElements);
            case Rescaling r:
                return (0, ((r.Scale.Any(v => v != 1) ? 1 : 0) + (r.Offset.Any(v => v != 0) ? 1 : 0)) * outElements);
            case Normalization:
                return (0, 2 * outElements);
            case LayerNormalization:
                return (0, 6 * outElements);
            case LayerScale:
                return (0, outElements);
            default:
                return (0, 0); // ZeroPadding2D, Cropping2D, Concatenate, Flatten, Reshape, Dropout: data movement only
        }
    }
}
