using Graft.Heads;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Graft.Export;

/// <summary>
/// The whole classifier's outputs beyond its probabilities, in ONNX: the temperature that calibrates them, each image's
/// out-of-distribution score ("ood_score" [N], as <see cref="OodDetector.Score"/> computes it), and the class activation
/// maps of a linear head on pooled features ("class_activation" [N, classes, rows, columns]).
/// </summary>
static class OnnxTrust
{
    /// <summary>The logits divided by the temperature (the logits themselves without one).</summary>
    public static string Scale(OnnxGraph graph, string logits, TemperatureScaling? scaling) =>
        scaling is { Temperature: var t } && t != 1 ? graph.Node("Div", "head/temperature", [logits, graph.Constant("temperature", [(float)t])]) : logits;

    /// <summary>
    /// The detector's score of each image [N], from the head's input [N, C*P], the scaled logits and the probabilities
    /// (what the head's output nodes already computed).
    /// </summary>
    public static string OodScore(OnnxGraph graph, OodDetector detector, string headInput, long headInputLength, string scaledLogits, bool binary,
        string probabilities, double temperature)
    {
        const string path = "ood";
        var config = detector.Config;
        var axis1 = OnnxGraph.Attribute("axes", [1L]);
        var noKeep = OnnxGraph.Attribute("keepdims", 0L);
        switch (config.Score)
        {
            case Heads.OodScore.Msp:
                return graph.Node("Sub", ModelOutput, [graph.Constant($"{path}/one", [1f]), graph.Node("ReduceMax", $"{path}/ReduceMax", [probabilities], axis1, noKeep)]);
            case Heads.OodScore.Energy:
            {
                var z = binary // a binary head's one logit is the two classes' [0, z]
                    ? graph.Node("Concat", $"{path}/logits", [graph.Node("Sub", $"{path}/zero", [scaledLogits, scaledLogits]), scaledLogits], OnnxGraph.Attribute("axis", 1L))
                    : scaledLogits;
                return graph.Node("Mul", ModelOutput, [graph.Node("ReduceLogSumExp", $"{path}/ReduceLogSumExp", [z], axis1, noKeep), graph.Constant($"{path}/minus_t", [(float)-temperature])]);
            }
        }
        var f = headInput;
        if (headInputLength != config.Channels) // flattened features: the per-channel means of the map
            f = graph.Node("ReduceMean", $"{path}/channel_means", [graph.Node("Reshape", $"{path}/per_channel", [headInput, graph.Int64Constant($"{path}/per_channel_shape", 0, config.Channels, -1)])],
                OnnxGraph.Attribute("axes", [2L]), noKeep);
        if (config.Score == Heads.OodScore.Knn)
        {
            var norm = graph.Node("Max", $"{path}/norm", [graph.Node("ReduceL2", $"{path}/ReduceL2", [f], axis1), graph.Constant($"{path}/epsilon", [1e-12f])]);
            var unit = graph.Node("Div", $"{path}/unit", [f, norm]);
            var similarity = graph.Node("MatMul", $"{path}/similarity", [unit, graph.HalfConstant($"{path}/references_t", detector.references!.t())]);
            var nearest = graph.Node("TopK", [$"{path}/nearest", $"{path}/nearest_index"], [similarity, graph.Int64Constant($"{path}/k", config.Neighbours)],
                OnnxGraph.Attribute("axis", 1L))[0];
            var kth = graph.Node("ReduceMin", $"{path}/kth", [nearest], axis1, noKeep);
            return graph.Node("Sub", ModelOutput, [graph.Constant($"{path}/one", [1f]), kth]);
        }
        // Mahalanobis: |f - m_k|^2 / rest + sum_i w_i (v_i . (f - m_k))^2, the smallest over classes, per channel.
        var means = detector.means!;
        var squares = graph.Node("ReduceSumSquare", $"{path}/squares", [f], axis1);
        var dot = graph.Node("MatMul", $"{path}/dot", [f, graph.Constant($"{path}/means_t", means.t())]);
        var squared = graph.Node("Add", $"{path}/squared", [graph.Node("Sub", $"{path}/cross", [squares, graph.Node("Mul", $"{path}/twice", [dot, graph.Constant($"{path}/two", [2f])])]),
            graph.Constant($"{path}/mean_squares", means.square().sum(1))]);
        var projected = graph.Node("Unsqueeze", $"{path}/projected", [graph.Node("MatMul", $"{path}/project", [f, graph.Constant($"{path}/directions_t", detector.directions!.t())]),
            graph.Int64Constant($"{path}/class_axis", 1)]);
        var difference = graph.Node("Sub", $"{path}/difference", [projected, graph.Constant($"{path}/mean_projections", means.matmul(detector.directions.t()))]);
        var along = graph.Node("ReduceSum", $"{path}/along", [graph.Node("Mul", $"{path}/weighted", [graph.Node("Mul", $"{path}/difference_squared", [difference, difference]),
            graph.Constant($"{path}/weights", detector.weights!)]), graph.Int64Constant($"{path}/direction_axis", 2)], noKeep);
        var distance = graph.Node("Add", $"{path}/distance", [graph.Node("Mul", $"{path}/isotropic", [squared, graph.Constant($"{path}/rest", detector.isotropic!)]), along]);
        return graph.Node("Div", ModelOutput, [graph.Node("ReduceMin", $"{path}/nearest_class", [distance], axis1, noKeep), graph.Constant($"{path}/channels", [(float)config.Channels])]);
    }

    const string ModelOutput = Inference.ModelFile.OodScoreOutput;

    /// <summary>
    /// Every class's activation map [N, classes, rows, columns] from the trunk's feature map, when the head is linear on its
    /// global average (dropout, batch norm and one dense layer): the dense weights, batch norm folded in, as a 1x1
    /// convolution (CAM, Zhou et al. 2016; exact: the logit is the map's mean plus a constant). Null for other heads.
    /// </summary>
    public static string? ClassActivation(OnnxGraph graph, nn.Module head, Pooling pooling, string map, long channels)
    {
        using var scope = NewDisposeScope();
        if (pooling != Pooling.Gap || LinearWeights(head) is not { } weights || weights.shape[1] != channels) return null;
        if (weights.shape[0] == 1) weights = cat([-weights, weights], 0); // a binary head: evidence for the first class is evidence against the second
        return graph.Node("Conv", Inference.ModelFile.ClassActivationOutput, [map, graph.Constant("class_activation/weight", weights.reshape(weights.shape[0], channels, 1, 1))],
            OnnxGraph.Attribute("kernel_shape", [1L, 1L]));
    }

    /// <summary>
    /// The one matrix W [outputs, C] with logits = W x + b for a head that is linear in its input (dropout, batch norm,
    /// one dense layer, in any order before it); null when the head has anything else (a hidden layer, squeeze-excitation).
    /// </summary>
    public static Tensor? LinearWeights(nn.Module head)
    {
        using var _ = no_grad();
        Tensor? scale = null;
        Tensor? weights = null;
        IEnumerable<nn.Module> layers = head is Sequential ? head.named_children().Select(c => c.module) : [head];
        foreach (var child in layers)
            switch (child)
            {
                case TorchSharp.Modules.Dropout or Identity:
                    break;
                case BatchNorm norm when weights is null:
                    var s = (norm.weight?.detach() ?? ones_like(norm.running_mean!, device: norm.running_mean!.device)) / (norm.running_var! + norm.eps).sqrt();
                    scale = scale is null ? s : scale * s;
                    break;
                case Linear linear when weights is null:
                    weights = linear.weight!.detach();
                    break;
                default:
                    return null;
            }
        if (weights is null) return null;
        return (scale is null ? weights.clone() : weights * scale.unsqueeze(0)).to(float32);
    }
}
