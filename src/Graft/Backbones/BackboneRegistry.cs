using Graft.Data;
using Graft.Weights;
using TorchSharp.Modules;

namespace Graft.Backbones;

public enum WeightFormat { None, Tflite }

/// <summary>
/// One backbone, in the style of timm's pretrained configs: the code reads these fields instead of
/// special-casing names. <see cref="Input"/> null means the weights file states its own input mapping
/// (quantized TFLite models do); <see cref="Weights"/> null means there are no pretrained weights
/// (an architecture trained from scratch). Features come from the trunk's last block, or from
/// <see cref="GenericFeatureBlock"/>, an earlier one whose features are more generic (for data unlike ImageNet).
/// </summary>
public sealed record BackboneConfig(
    string Name,
    string Description,
    Func<Sequential> BuildTrunk,
    int FeatureChannels,
    int InputSize,
    ImageSpec? Input,
    Asset? Weights,
    WeightFormat Format,
    int ImageNetClasses,
    Asset? Labels,
    string GenericFeatureBlock);

/// <summary>Every backbone Graft knows. Adding one is an architecture file plus a row here.</summary>
public static class BackboneRegistry
{
    const string Coral = "https://github.com/google-coral/test_data/raw/master/";

    static readonly Asset ImageNetLabels = new("models/coral/imagenet_labels.txt", Coral + "imagenet_labels.txt",
        "b8aaeb5630c62626a7d124a05c0e14230a7ffdd2136a31d0190a4fb71c1d82f1");

    public static IReadOnlyList<BackboneConfig> All { get; } =
    [
        new("mobilenet_v2",
            "MobileNetV2 1.0 @224, Keras/TF2 ImageNet weights (int8 per-channel TFLite, dequantized)",
            () => MobileNetV2.Trunk(alpha: 1.0), MobileNetV2.FeatureChannels(1.0), 224, null,
            new("models/coral/tf2_mobilenet_v2_1.0_224_ptq.tflite", Coral + "tf2_mobilenet_v2_1.0_224_ptq.tflite",
                "5d3137241276e79c86d14a74fe43581398ae0e815191d3dba45495b810840e8c"),
            WeightFormat.Tflite, 1001, ImageNetLabels, "block_12"),
        new("mobilenet_v2_slim",
            "MobileNetV2 1.0 @224, TF-slim ImageNet weights (uint8 per-tensor TFLite, dequantized)",
            () => MobileNetV2.Trunk(alpha: 1.0), MobileNetV2.FeatureChannels(1.0), 224, null,
            new("models/coral/mobilenet_v2_1.0_224_quant.tflite", Coral + "mobilenet_v2_1.0_224_quant.tflite",
                "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776"),
            WeightFormat.Tflite, 1001, ImageNetLabels, "block_12"),
        new("small_cnn",
            "The Keras blog's 3-conv baseline at 150x150, trained from scratch (no pretrained weights)",
            SmallCnn.Trunk, SmallCnn.Channels, SmallCnn.InputSize, ImageSpec.Uniform(SmallCnn.InputSize, 0, 255),
            null, WeightFormat.None, 0, null, "block_2"),
    ];

    public static BackboneConfig Get(string name) =>
        All.FirstOrDefault(b => string.Equals(b.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new GraftException($"Unknown backbone '{name}'.", $"Use one of: {string.Join(", ", All.Select(b => b.Name))} (see graft models).");

    public static bool Exists(string name) => All.Any(b => string.Equals(b.Name, name, StringComparison.OrdinalIgnoreCase));
}
