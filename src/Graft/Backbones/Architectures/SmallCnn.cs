using Graft.Backbones.Layers;

namespace Graft.Backbones.Architectures;

/// <summary>
/// The Keras blog's from-scratch baseline ("Building powerful image classification models using very little
/// data"): three 3x3 convolutions (32, 32, 64 filters, ReLU, 2x2 max-pooling) on 150x150 images; its head
/// (flatten → dense 64 ReLU → dropout 0.5 → output) is Graft's usual head with --head flatten --hidden 64.
/// It exists to show what pretraining buys.
/// </summary>
internal static class SmallCnn
{
    public static Graph Build(ArchitectureOptions o)
    {
        var b = new GraphBuilder("small_cnn", o.InputSize, o.FoldedBatchNorm);
        int x = b.Input;
        int[] filters = [32, 32, 64];
        for (int i = 1; i <= 3; i++)
        {
            b.Block = $"block_{i}";
            x = b.Conv2D($"conv2d_{i}", x, filters[i - 1], 3, activation: Activation.Relu);
            x = b.MaxPooling2D($"max_pooling2d_{i}", x, 2, 2);
        }
        return b.Build();
    }
}
