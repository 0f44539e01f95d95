using static TorchSharp.torch;

namespace Graft.Backbones.Layers;

/// <summary>
/// InceptionResNetV2's residual sum with a scaled branch, <c>x + up · scale</c>: Keras's <c>CustomScaleLayer</c>
/// (a <c>Lambda</c> named after its block before Keras 2.13); weightless, so files of either era load the same.
/// </summary>
internal sealed class CustomScaleLayer(string name, double scale) : Layer(name)
{
    public double Scale { get; } = scale;
    public override string KerasClass => "CustomScaleLayer";
    public override Tensor forward(Tensor[] inputs) => inputs[0].add(inputs[1], Scale);
}
