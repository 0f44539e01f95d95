using TorchSharp;
using static TorchSharp.torch;

namespace Graft.Training;

/// <summary>
/// The new classifier grafted onto the trunk, on pooled features: [batch norm] → dropout →
/// [dense hidden + ReLU → [batch norm] → dropout] → dense to the classes (logits; softmax at prediction).
/// </summary>
public sealed record HeadConfig(int InputChannels, int Classes, int Hidden = 0, double Dropout = 0.2, bool BatchNorm = false)
{
    public string Describe() =>
        $"global average pooling → {(BatchNorm ? "batch norm → " : "")}dropout {Dropout:0.##} → " +
        (Hidden > 0 ? $"dense {Hidden} ReLU → {(BatchNorm ? "batch norm → " : "")}dropout {Dropout:0.##} → " : "") +
        $"dense {Classes} softmax";

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
