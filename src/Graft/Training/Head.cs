using TorchSharp;
using static TorchSharp.torch;

namespace Graft.Training;

/// <summary>How the trunk's feature map [N,C,H,W] becomes the head's input vector.</summary>
public enum Pooling
{
    /// <summary>Global average pooling: [N, C].</summary>
    Gap,
    /// <summary>Flatten: [N, C*H*W] (keeps where things are; many more head weights).</summary>
    Flatten,
}

/// <summary>
/// The new classifier grafted onto the trunk, on pooled features: [batch norm] → dropout →
/// [dense hidden + ReLU → [batch norm] → dropout] → dense to the classes (logits; softmax at prediction).
/// <see cref="InputChannels"/> is the pooled vector's length.
/// </summary>
public sealed record HeadConfig(int InputChannels, int Classes, int Hidden = 0, double Dropout = 0.2, bool BatchNorm = false,
    Pooling Pooling = Pooling.Gap)
{
    public string Describe() =>
        $"{(Pooling == Pooling.Gap ? "global average pooling" : "flatten")} → {(BatchNorm ? "batch norm → " : "")}dropout {Dropout:0.##} → " +
        (Hidden > 0 ? $"dense {Hidden} ReLU → {(BatchNorm ? "batch norm → " : "")}dropout {Dropout:0.##} → " : "") +
        $"dense {Classes} softmax";

    /// <summary>Pools a feature map [N,C,H,W] the way this head expects.</summary>
    public static Tensor Pool(Tensor map, Pooling pooling) => pooling == Pooling.Gap ? map.mean([2, 3]) : map.flatten(1);

    public nn.Module<Tensor, Tensor> Build()
    {
        var layers = new List<(string, nn.Module<Tensor, Tensor>)>();
        if (BatchNorm) layers.Add(("batch_norm", nn.BatchNorm1d(InputChannels)));
        layers.Add(("dropout", nn.Dropout(Dropout)));
        int width = InputChannels;
        if (Hidden > 0)
        {
            layers.Add(("dense", nn.Linear(InputChannels, Hidden)));
            layers.Add(("relu", nn.ReLU()));
            if (BatchNorm) layers.Add(("dense_batch_norm", nn.BatchNorm1d(Hidden)));
            layers.Add(("dense_dropout", nn.Dropout(Dropout)));
            width = Hidden;
        }
        layers.Add(("predictions", nn.Linear(width, Classes)));
        return nn.Sequential(layers);
    }
}
