using Graft.Data;
using static TorchSharp.torch;

namespace Graft.Training;

/// <summary>
/// What the network is trained towards for a set of images: their class indices [N] (single-label), or, for multi-label
/// data, multi-hot rows [N, <see cref="Classes"/>] with 1 at every class an image carries.
/// </summary>
internal sealed record Targets(int Classes, bool MultiLabel)
{
    public static readonly Targets SingleLabel = new(0, false);

    public static Targets For(ImageDataset dataset) => new(dataset.Classes.Count, dataset.MultiLabel);

    public Tensor Of(IReadOnlyList<LabeledImage> images, Device device)
    {
        if (!MultiLabel) return tensor(images.Select(i => (long)i.Label).ToArray(), device: device);
        var hot = new float[images.Count * Classes];
        for (int i = 0; i < images.Count; i++)
            foreach (int c in images[i].Labels) hot[i * Classes + c] = 1;
        return tensor(hot, [images.Count, Classes], device: device);
    }
}
