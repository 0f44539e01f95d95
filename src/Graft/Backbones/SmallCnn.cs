using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Graft.Backbones;

/// <summary>
/// The Keras blog's from-scratch baseline ("Building powerful image classification models using very little
/// data"): three 3x3 convolutions (32, 32, 64 filters, ReLU, 2x2 max-pooling) on 150x150 images; its head
/// (flatten → dense 64 ReLU → dropout 0.5 → output) is Graft's usual head with --head flatten --hidden 64.
/// It exists to show what pretraining buys.
/// </summary>
public static class SmallCnn
{
    public const int InputSize = 150;
    public const int Channels = 64;

    public static Sequential Trunk() => nn.Sequential(
        ("block_1", Block(3, 32)),
        ("block_2", Block(32, 32)),
        ("block_3", Block(32, Channels)));

    /// <summary>Spatial size of the trunk's output for a square input (valid convolutions, then halving).</summary>
    public static int OutputSize(int input) => (((input - 2) / 2 - 2) / 2 - 2) / 2;

    static Sequential Block(int inChannels, int outChannels) => nn.Sequential(
        ("conv", nn.Conv2d(inChannels, outChannels, 3)),
        ("relu", nn.ReLU(inplace: true)),
        ("pool", nn.MaxPool2d(2)));
}
