using Graft.Backbones.Architectures;
using Graft.Data;
using Graft.Weights;
using Graft.Imaging;

namespace Graft.Backbones;

/// <summary>How a network wants its pixels, as Keras's <c>preprocess_input</c> modes name them.</summary>
public enum Preprocessing
{
    /// <summary>RGB → BGR, minus the ImageNet mean per channel, no scaling (VGG, ResNet50).</summary>
    Caffe,
    /// <summary>x / 127.5 − 1 (Inception, Xception, MobileNets).</summary>
    Tf,
    /// <summary>x / 255 (the from-scratch network).</summary>
    Unit,
    /// <summary>x / 255, minus the ImageNet mean (0.485, 0.456, 0.406), over its std (0.229, 0.224, 0.225) per RGB channel (DenseNet).</summary>
    Torch,
    /// <summary>
    /// Pixels 0..255 as they are: the network scales and normalizes them in its own first layers (Rescaling,
    /// Normalization), and Keras's preprocess_input is a pass-through (EfficientNets, MobileNetV3, ConvNeXt).
    /// </summary>
    Raw,
}

/// <summary>
/// One place a backbone's pretrained weights come from: the file (mirror path, upstream URL, the hash Keras
/// checks), whether it holds the ImageNet top, and the input sizes it was made for (null: any).
/// </summary>
public sealed record WeightSource(Asset File, bool IncludesTop, int[]? InputSizes = null);

/// <summary>
/// One backbone, in the style of timm's pretrained configs: named fields over defaults, read by generic code
/// that never special-cases a network's name. Channel counts are measured from the built network.
/// </summary>
public sealed record BackboneConfig
{
    public required string Name { get; init; }
    public required string Description { get; init; }
    /// <summary>Builds the network (Keras's application function).</summary>
    public required Func<ArchitectureOptions, Graph> Build { get; init; }
    /// <summary>Renames a weight file's layers to the architecture's, and states what the file implies (timm's checkpoint filter).</summary>
    public Func<NamedWeights, ArchitectureOptions, (NamedWeights, ArchitectureOptions)>? Filter { get; init; }
    public int InputSize { get; init; } = 224;
    /// <summary>Keras's minimum input size without the top.</summary>
    public int MinInputSize { get; init; } = 32;
    public Preprocessing Preprocessing { get; init; } = Preprocessing.Tf;
    /// <summary>Where pretrained weights come from, in order of preference; empty: trained from scratch.</summary>
    public IReadOnlyList<WeightSource> Weights { get; init; } = [];
    /// <summary>The layer whose output is the trunk's feature map (the last before the top).</summary>
    public required string FeatureLayer { get; init; }
    /// <summary>
    /// Where the trunk ends when the network is built with its top, if not at <see cref="FeatureLayer"/>: Keras's
    /// ConvNeXt without its top ends in a per-position LayerNormalization its top lacks (the top normalizes pooled
    /// features instead), so with the top the trunk ends at the last block.
    /// </summary>
    public string? FeatureLayerWithTop { get; init; }
    /// <summary>An earlier block whose features are more generic (for data unlike ImageNet).</summary>
    public string? GenericFeatureBlock { get; init; }
    public string ClassifierLayer { get; init; } = "predictions";
    public Asset? Labels { get; init; } = BackboneRegistry.ImageNetLabels;
    /// <summary>The backbone used when none is named.</summary>
    public bool IsDefault { get; init; }
    /// <summary>
    /// Keras's published ImageNet top-1 accuracy of the network with its weights (keras.io/api/applications; for the
    /// MobileNetV3s the table in Keras's docstring), 0..1; null where Keras publishes none (other widths, other weights).
    /// </summary>
    public double? ImageNetTop1 { get; init; }

    public bool Pretrained => Weights.Count > 0;

    /// <summary>What an image must look like for this network at a given size.</summary>
    public ImageSpec Spec(int size) => Spec(Preprocessing, size);

    /// <summary>What an image must look like for a network that wants <paramref name="preprocessing"/>, at a given size.</summary>
    public static ImageSpec Spec(Preprocessing preprocessing, int size) => preprocessing switch
    {
        // Mean and std are in the network's channel order (BGR for caffe).
        Preprocessing.Caffe => new ImageSpec(size, [103.939f, 116.779f, 123.68f], [1f, 1f, 1f]) { Bgr = true },
        Preprocessing.Unit => ImageSpec.Uniform(size, 0, 255),
        // Keras divides by 255 first; the same map on 0..255 pixels has mean and std 255 times as large.
        Preprocessing.Torch => new ImageSpec(size, [0.485f * 255, 0.456f * 255, 0.406f * 255], [0.229f * 255, 0.224f * 255, 0.225f * 255]),
        Preprocessing.Raw => ImageSpec.Uniform(size, 0, 1),
        _ => ImageSpec.Uniform(size, 127.5f, 127.5f),
    };

    /// <summary>The weight sources that serve an input size, with or without the top, best first.</summary>
    public IEnumerable<WeightSource> SourcesFor(int size, bool includeTop)
    {
        // Keras's rule: the file made for this size (MobileNets have one per size), then a file for any size; for a
        // size no file was made for, the default size's file (Keras loads the 224 one), then the rest in row order.
        return Weights.Where(w => w.IncludesTop || !includeTop)
            .OrderBy(w => w.InputSizes is null ? 1 : w.InputSizes.Contains(size) ? 0 : w.InputSizes.Contains(InputSize) ? 2 : 3);
    }

    /// <summary>
    /// The weight file loading uses for an input size: the first source already on this machine (mirror, Keras's
    /// cache, Graft's cache), else the preferred one, to be downloaded; null when none serves (no top to be had).
    /// </summary>
    public WeightSource? SourceFor(AssetResolver resolver, int size, bool includeTop)
    {
        var sources = SourcesFor(size, includeTop).ToList();
        return sources.FirstOrDefault(s => resolver.FindLocal(s.File) is not null) ?? sources.FirstOrDefault();
    }
}
