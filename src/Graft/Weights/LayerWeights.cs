namespace Graft.Weights;

public enum LayerKind { Conv, Depthwise, Dense }

/// <summary>
/// One layer's float weights as a reader found them, already in PyTorch layout:
/// conv OIHW, depthwise C x 1 x H x W, dense [out, in]. Backbones map these onto their layers.
/// </summary>
public sealed record LayerWeights(string Name, LayerKind Kind, int[] Shape, float[] Weight, float[]? Bias, int Stride)
{
    public string ShapeText => string.Join("x", Shape);
}
