using static TorchSharp.torch;

namespace Graft.Backbones.Layers;

/// <summary>
/// Keras Cropping2D with explicit ((top, bottom), (left, right)): NASNet's adjust blocks pad a row and a column at
/// the end and crop one at the start, shifting the map by a pixel before a strided 1x1 pooling.
/// </summary>
internal sealed class Cropping2D(string name, int top, int bottom, int left, int right) : Layer(name)
{
    public (int Top, int Bottom, int Left, int Right) Crops { get; } = (top, bottom, left, right);
    public override string KerasClass => "Cropping2D";
    public override int OutputSize(int input) => input - Crops.Top - Crops.Bottom; // square inputs, as ZeroPadding2D
    public override Tensor forward(Tensor[] inputs)
    {
        var x = inputs[0];
        var (top, bottom, left, right) = Crops;
        return x[TensorIndex.Ellipsis, TensorIndex.Slice(top, x.shape[2] - bottom), TensorIndex.Slice(left, x.shape[3] - right)].contiguous();
    }
}
