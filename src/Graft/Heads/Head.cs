using TorchSharp;
using static TorchSharp.torch;

namespace Graft.Heads;

/// <summary>How the trunk's feature map [N,C,H,W] becomes the head's input vector.</summary>
public enum Pooling
{
    /// <summary>Global average pooling: [N, C].</summary>
    Gap,
    /// <summary>Flatten: [N, C*H*W] (keeps where things are; many more head weights).</summary>
    Flatten,
}

/// <summary>
/// The new classifier grafted onto the trunk, on pooled features: [squeeze-excitation] → [batch norm] →
/// [dense hidden + ReLU → [batch norm]] → dropout → dense to the classes (logits; softmax or sigmoid at prediction).
/// <see cref="InputChannels"/> is the pooled vector's length.
/// </summary>
public sealed record HeadConfig(int InputChannels, int Classes, int Hidden = 0, double Dropout = 0.2, bool BatchNorm = false,
    Pooling Pooling = Pooling.Gap)
{
    /// <summary>Two classes as one sigmoid output trained with binary cross-entropy (instead of a 2-way softmax).</summary>
    public bool Binary { get; init; }
    /// <summary>
    /// Multi-label: one sigmoid output per class, each a yes/no decision trained with binary cross-entropy, so an image
    /// may carry several classes or none (false in files written before it: single-label).
    /// </summary>
    public bool MultiLabel { get; init; }
    /// <summary>A squeeze-and-excitation block on the trunk's <see cref="TrunkChannels"/> channels before the head.</summary>
    public bool SqueezeExcite { get; init; }
    public int TrunkChannels { get; init; }

    public int Outputs => Binary ? 1 : Classes;

    public string Describe() =>
        $"{(Pooling == Pooling.Gap ? "global average pooling" : "flatten")} → {(SqueezeExcite ? "squeeze-and-excitation → " : "")}" +
        $"{(BatchNorm ? "batch norm → " : "")}" +
        (Hidden > 0 ? $"dense {Hidden} ReLU → {(BatchNorm ? "batch norm → " : "")}" : "") + $"dropout {Dropout:0.##} → " +
        (Binary ? "dense 1 sigmoid" : $"dense {Classes} {(MultiLabel ? "sigmoid" : "softmax")}");

    /// <summary>Pools a feature map [N,C,H,W] the way this head expects (a network that ends in a vector passes it on).</summary>
    public static Tensor Pool(Tensor map, Pooling pooling) => map.dim() == 2 ? map.alias() : pooling == Pooling.Gap ? map.mean([2, 3]) : map.flatten(1);

    public nn.Module<Tensor, Tensor> Build()
    {
        if (Binary && Classes != 2)
            throw new GraftException($"--binary needs exactly two classes; the data has {Classes}.", "Drop --binary to use a softmax output.");
        if (Binary && MultiLabel)
            throw new GraftException("A binary head decides between two classes, and multi-label data may carry both or neither.", "Train without the binary head: multi-label data has one sigmoid output per class.");
        var layers = new List<(string, nn.Module<Tensor, Tensor>)>();
        if (SqueezeExcite) layers.Add(("squeeze_excite", new SqueezeExcitation(TrunkChannels, InputChannels / TrunkChannels)));
        if (BatchNorm) layers.Add(("batch_norm", nn.BatchNorm1d(InputChannels)));
        // Dropout goes right before the layer that maps to the classes: on the pooled features when that is
        // the only dense layer (Keras's transfer-learning head), after the hidden layer otherwise (the Keras blog's).
        if (Hidden == 0) layers.Add(("dropout", nn.Dropout(Dropout)));
        int width = InputChannels;
        if (Hidden > 0)
        {
            layers.Add(("dense", nn.Linear(InputChannels, Hidden)));
            layers.Add(("relu", nn.ReLU()));
            if (BatchNorm) layers.Add(("dense_batch_norm", nn.BatchNorm1d(Hidden)));
            layers.Add(("dense_dropout", nn.Dropout(Dropout)));
            width = Hidden;
        }
        layers.Add(("predictions", nn.Linear(width, Outputs)));
        return nn.Sequential(layers);
    }
}

/// <summary>
/// Squeeze-and-excitation (Hu et al.) on pooled trunk features: global average → dense C/4 ReLU → dense C
/// sigmoid → scale each channel. Works on the pooled vector, [N, C] after global average pooling or
/// [N, C*H*W] after flattening: scaling channels commutes with pooling, so cached features suffice.
/// </summary>
internal sealed class SqueezeExcitation : nn.Module<Tensor, Tensor>
{
    public readonly TorchSharp.Modules.Linear squeeze, excite;
    readonly int _channels, _positions;

    public SqueezeExcitation(int channels, int positions) : base("squeeze_excite")
    {
        _channels = channels;
        _positions = positions;
        squeeze = nn.Linear(channels, Math.Max(1, channels / 4));
        excite = nn.Linear(Math.Max(1, channels / 4), channels);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var perChannel = x.reshape(x.shape[0], _channels, _positions);
        var scale = excite.call(squeeze.call(perChannel.mean([2])).relu()).sigmoid();
        return (perChannel * scale.unsqueeze(2)).reshape(x.shape[0], _channels * _positions).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// What the head's outputs mean: softmax over classes (targets: class indices [N]), or sigmoid outputs, each a yes/no
/// decision trained with binary cross-entropy: a binary head's one output (targets: class indices 0/1 [N]) or a
/// multi-label head's one per class (targets: multi-hot rows [N, classes] of 0 and 1, possibly mixed or smoothed).
/// </summary>
internal static class Objective
{
    /// <summary>
    /// Cross-entropy of the logits against their targets. <paramref name="classWeights"/> weighs each sample by its class
    /// (class indices), or, for multi-hot targets, each output's positive term (binary cross-entropy's pos_weight). With
    /// <paramref name="labelSmoothing"/> the target keeps 1 - s on its class and spreads s over all (for a sigmoid output: towards 0.5).
    /// </summary>
    public static Tensor Loss(Tensor logits, Tensor labels, Tensor? classWeights = null, double labelSmoothing = 0)
    {
        if (logits.shape[1] != 1 && !IsMultiHot(labels))
            return labelSmoothing > 0 ? nn.functional.cross_entropy(logits, labels, classWeights, label_smoothing: labelSmoothing)
                : nn.functional.cross_entropy(logits, labels, classWeights);
        using var scope = NewDisposeScope();
        var target = IsMultiHot(labels) ? labels : labels.to(ScalarType.Float32).unsqueeze(1);
        if (labelSmoothing > 0) target = target * (1 - labelSmoothing) + 0.5 * labelSmoothing;
        if (IsMultiHot(labels))
            return nn.functional.binary_cross_entropy_with_logits(logits, target, pos_weights: classWeights).MoveToOuterDisposeScope();
        var perSample = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction: nn.Reduction.None).squeeze(1);
        var loss = classWeights is null ? perSample.mean() : (perSample * classWeights.index_select(0, labels)).sum() / classWeights.index_select(0, labels).sum();
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Class probabilities [N, classes]: softmax; for a binary head, [1 - p, p]; for a multi-label head, each output's
    /// sigmoid (they need not sum to 1).
    /// </summary>
    public static Tensor Probabilities(Tensor logits, bool multiLabel = false)
    {
        if (multiLabel) return logits.sigmoid();
        if (logits.shape[1] != 1) return nn.functional.softmax(logits, 1);
        using var scope = NewDisposeScope();
        var p = logits.sigmoid();
        return cat([1 - p, p], 1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// How many of the samples the logits get right: the argmax class (a binary head: its output above 0.5); for
    /// multi-hot targets, every output's decision at 0.5 (exact match).
    /// </summary>
    public static long Correct(Tensor logits, Tensor labels)
    {
        using var scope = NewDisposeScope();
        var right = IsMultiHot(labels) ? logits.gt(0).eq(labels.gt(0.5)).all(1) : Predicted(logits).eq(labels);
        return right.sum().item<long>();
    }

    /// <summary>The predicted class of each sample (single-label heads).</summary>
    public static Tensor Predicted(Tensor logits) => logits.shape[1] == 1 ? logits.squeeze(1).gt(0).to(ScalarType.Int64) : logits.argmax(1);

    /// <summary>Multi-hot targets [N, classes] (floating point), as opposed to class indices [N].</summary>
    static bool IsMultiHot(Tensor labels) => labels.dim() == 2;
}
