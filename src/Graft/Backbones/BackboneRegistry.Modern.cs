using Graft.Backbones.Architectures;
using Graft.Weights;

namespace Graft.Backbones;

/// <summary>
/// The registry's rows for Keras's newer families: EfficientNet, EfficientNetV2, MobileNetV3 and ConvNeXt. They carry
/// their preprocessing as layers (<see cref="Preprocessing.Raw"/>: pixels 0..255 go in) and their files' hashes
/// as Keras's WEIGHTS_HASHES give them (MD5, or SHA-256 for ConvNeXt). Methods, not fields: the rows are built
/// while <see cref="All"/> is initialized.
/// </summary>
internal static partial class BackboneRegistry
{
    static IEnumerable<BackboneConfig> ModernFamilies() => [.. EfficientNets(), .. EfficientNetV2s(), .. MobileNetV3s(), .. ConvNeXts()];

    /// <summary>Keras's file pair at <paramref name="baseUrl"/>: NAME.h5 (with the top) and NAME_notop.h5, with their hashes.</summary>
    static WeightSource[] KerasPairAt(string baseUrl, string stem, string topHash, string noTopHash) =>
    [
        new(new Asset($"models/keras/{stem}_notop.h5", $"{baseUrl}{stem}_notop.h5", noTopHash) { KerasCache = true }, IncludesTop: false),
        new(new Asset($"models/keras/{stem}.h5", $"{baseUrl}{stem}.h5", topHash) { KerasCache = true }, IncludesTop: true),
    ];

    static IEnumerable<BackboneConfig> EfficientNets()
    {
        // keras.applications.efficientnet: variant, width, depth, dropout, default size, keras.io's top-1, (top, notop) MD5s.
        (string V, double Width, double Depth, double Dropout, int Size, double Top1, string Top, string NoTop)[] variants =
        [
            ("b0", 1.0, 1.0, 0.2, 224, 0.771, "902e53a9f72be733fc0bcb005b3ebbac", "50bc09e76180e00e4465e1a485ddc09d"),
            ("b1", 1.0, 1.1, 0.2, 240, 0.791, "1d254153d4ab51201f1646940f018540", "74c4e6b3e1f6a1eea24c589628592432"),
            ("b2", 1.1, 1.2, 0.3, 260, 0.801, "b15cce36ff4dcbd00b6dd88e7857a6ad", "111f8e2ac8aa800a7a99e3239f7bfb39"),
            ("b3", 1.2, 1.4, 0.3, 300, 0.816, "ffd1fdc53d0ce67064dc6a9c7960ede0", "af6d107764bb5b1abb91932881670226"),
            ("b4", 1.4, 1.8, 0.4, 380, 0.829, "18c95ad55216b8f92d7e70b3a046e2fc", "ebc24e6d6c33eaebbd558eafbeedf1ba"),
            ("b5", 1.6, 2.2, 0.4, 456, 0.836, "ace28f2a6363774853a83a0b21b9421a", "38879255a25d3c92d5e44e04ae6cec6f"),
            ("b6", 1.8, 2.6, 0.5, 528, 0.84, "165f6e37dce68623721b423839de8be5", "9ecce42647a20130c1f39a5d4cb75743"),
            ("b7", 2.0, 3.1, 0.5, 600, 0.843, "8c03f828fec3ef71311cd463b6759d99", "cbcfe4450ddf6f3ad90b1b398090fe4a"),
        ];
        foreach (var v in variants)
            yield return new()
            {
                Name = $"efficientnet_{v.V}",
                Description = $"EfficientNet {v.V.ToUpperInvariant()} (Keras; rescaling and ImageNet normalization in the model)",
                Build = EfficientNet.Variant($"efficientnet_{v.V}", v.Width, v.Depth, v.Dropout),
                InputSize = v.Size,
                Preprocessing = Preprocessing.Raw,
                Weights = KerasPairAt("https://storage.googleapis.com/keras-applications/", $"efficientnet{v.V}", v.Top, v.NoTop),
                FeatureLayer = "top_activation",
                GenericFeatureBlock = EfficientNet.LastBlock(5, v.Depth),
                ImageNetTop1 = v.Top1,
            };
    }

    static IEnumerable<BackboneConfig> EfficientNetV2s()
    {
        // keras.applications.efficientnet_v2: variant, stages, width, depth, default size, keras.io's top-1, (top, notop) MD5s.
        (string V, EfficientNetV2.Stage[] Stages, double Width, double Depth, int Size, double Top1, string Top, string NoTop)[] variants =
        [
            ("b0", EfficientNetV2.B, 1.0, 1.0, 224, 0.787, "21ecbf6da12460d5c40bb2f29ceb2188", "893217f2bb855e2983157299931e43ff"),
            ("b1", EfficientNetV2.B, 1.0, 1.1, 240, 0.798, "069f0534ff22adf035c89e2d9547a9dc", "0e80663031ca32d657f9caa404b6ec37"),
            ("b2", EfficientNetV2.B, 1.1, 1.2, 260, 0.805, "424e49f28180edbde1e94797771950a7", "1dfe2e7a5d45b6632553a8961ea609eb"),
            ("b3", EfficientNetV2.B, 1.2, 1.4, 300, 0.82, "1f1fc43bd98a6e4fd8fdfd551e02c7a0", "f6abf7b5849ac99a89b50dd3fd532856"),
            ("s", EfficientNetV2.S, 1.0, 1.0, 384, 0.839, "e1d88a8495beba45748fedd0cecbe016", "af0682fb74e8c54910f2d4393339c070"),
            ("m", EfficientNetV2.M, 1.0, 1.0, 480, 0.853, "a3bf6aa3276309f4fc6a34aa114c95cd", "1b8dc055df72dde80d614482840fe342"),
            ("l", EfficientNetV2.L, 1.0, 1.0, 480, 0.857, "27e6d408b53c7ebc868fefa357689935", "b0b66b5c863aef5b46e8608fe1711615"),
        ];
        foreach (var v in variants)
        {
            bool b = v.V.StartsWith('b');
            yield return new()
            {
                Name = $"efficientnet_v2_{v.V}",
                Description = $"EfficientNetV2 {v.V.ToUpperInvariant()} (Keras; " +
                    (b ? "rescaling and ImageNet normalization in the model)" : "rescaling to [-1, 1] in the model)"),
                Build = EfficientNetV2.Variant($"efficientnet_v2_{v.V}", v.Stages, v.Width, v.Depth, imageNetNormalization: b),
                InputSize = v.Size,
                Preprocessing = Preprocessing.Raw,
                Weights = KerasPairAt(Keras + "efficientnet_v2/", $"efficientnetv2-{v.V}", v.Top, v.NoTop),
                FeatureLayer = "top_activation",
                GenericFeatureBlock = EfficientNetV2.LastBlock(v.Stages, 5, v.Depth),
                ImageNetTop1 = v.Top1,
            };
        }
    }

    static IEnumerable<BackboneConfig> MobileNetV3s()
    {
        // keras.applications.mobilenet_v3's default weights (alpha 1.0, not minimalistic, 224), (top, notop) MD5s, the
        // top-1 of its docstring's table.
        (string V, Func<Architectures.ArchitectureOptions, Graph> Build, string Top, string NoTop, string Generic, double Top1)[] variants =
        [
            ("small", MobileNetV3.BuildSmall, "8768d4c2e7dee89b9d02b2d03d65d862", "d3e8ec802a04aa4fc771ee12a9a9b836", "expanded_conv_7", 0.681),
            ("large", MobileNetV3.BuildLarge, "59e551e166be033d707958cf9e29a6a7", "07fb09a5933dd0c8eaafa16978110389", "expanded_conv_11", 0.756),
        ];
        foreach (var v in variants)
        {
            string stem = $"weights_mobilenet_v3_{v.V}_224_1.0_float";
            yield return new()
            {
                Name = $"mobilenet_v3_{v.V}",
                Description = $"MobileNetV3 {char.ToUpperInvariant(v.V[0])}{v.V[1..]} 1.0 (Keras; rescaling to [-1, 1] in the model)",
                Build = v.Build,
                Preprocessing = Preprocessing.Raw,
                Weights =
                [
                    new(new Asset($"models/keras/{stem}_no_top_v2.h5", $"{Keras}mobilenet_v3/{stem}_no_top_v2.h5", v.NoTop) { KerasCache = true }, IncludesTop: false),
                    new(new Asset($"models/keras/{stem}.h5", $"{Keras}mobilenet_v3/{stem}.h5", v.Top) { KerasCache = true }, IncludesTop: true),
                ],
                FeatureLayer = MobileNetV3.FeatureLayer(large: v.V == "large"),
                GenericFeatureBlock = v.Generic,
                ImageNetTop1 = v.Top1,
            };
        }
    }

    static IEnumerable<BackboneConfig> ConvNeXts()
    {
        // keras.applications.convnext: variant, blocks and channels per stage, keras.io's top-1, (top, notop) SHA-256s.
        int[] deep = [3, 3, 27, 3];
        (string V, int[] Depths, int[] Channels, double Top1, string Top, string NoTop)[] variants =
        [
            ("tiny", [3, 3, 9, 3], [96, 192, 384, 768], 0.813,
                "8ae6e78ce2933352b1ef4008e6dd2f17bc40771563877d156bc6426c7cf503ff", "d547c096cabd03329d7be5562c5e14798aa39ed24b474157cef5e85ab9e49ef1"),
            ("small", deep, [96, 192, 384, 768], 0.823,
                "ce1277d8f1ee5a0ef0e171469089c18f5233860ceaf9b168049cb9263fd7483c", "6fc8009faa2f00c1c1dfce59feea9b0745eb260a7dd11bee65c8e20843da6eab"),
            ("base", deep, [128, 256, 512, 1024], 0.853,
                "52cbb006d3dadd03f6e095a8ca1aca47aecdd75acb4bc74bce1f5c695d0086e6", "40a20c5548a5e9202f69735ecc06c990e6b7c9d2de39f0361e27baeb24cb7c45"),
            ("large", deep, [192, 384, 768, 1536], 0.863,
                "070c5ed9ed289581e477741d3b34beffa920db8cf590899d6d2c67fba2a198a6", "96f02b6f0753d4f543261bc9d09bed650f24dd6bc02ddde3066135b63d23a1cd"),
            ("xlarge", deep, [256, 512, 1024, 2048], 0.867,
                "c1f5ccab661354fc3a79a10fa99af82f0fbf10ec65cb894a3ae0815f17a889ee", "de3f8a54174130e0cecdc71583354753d557fcf1f4487331558e2a16ba0cfe05"),
        ];
        foreach (var v in variants)
        {
            string name = $"convnext_{v.V}";
            yield return new()
            {
                Name = name,
                Description = $"ConvNeXt {char.ToUpperInvariant(v.V[0])}{v.V[1..]} (Keras; ImageNet normalization in the model" +
                    (v.V is "tiny" or "small" ? ")" : "; ImageNet-21k pretrained, fine-tuned on ImageNet-1k)") +
                    "; with the top the trunk ends at the last block, before the top's normalization of pooled features",
                Build = ConvNeXt.Variant(name, v.Depths, v.Channels),
                Preprocessing = Preprocessing.Raw,
                Weights = KerasPairAt(Keras + "convnext/", name, v.Top, v.NoTop),
                FeatureLayer = "layer_normalization",
                FeatureLayerWithTop = ConvNeXt.LastAdd(v.Depths),
                GenericFeatureBlock = $"{name}_stage_2_block_{v.Depths[2] - 1}",
                ImageNetTop1 = v.Top1,
            };
        }
    }
}
