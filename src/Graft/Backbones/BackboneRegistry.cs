using Graft.Backbones.Architectures;
using Graft.Weights;

namespace Graft.Backbones;

/// <summary>
/// Every backbone Graft knows: the networks of keras.applications with the weight files Keras downloads (and the
/// hashes it checks), Coral's and TF.js's files of the same networks, and the from-scratch baseline. Adding a
/// backbone is an architecture file plus a row here. A width is a name suffix (mobilenet_0.25; none means 1.0).
/// </summary>
internal static partial class BackboneRegistry
{
    const string Keras = "https://storage.googleapis.com/tensorflow/keras-applications/";
    const string Coral = "https://github.com/google-coral/test_data/raw/master/";

    public static readonly Asset ImageNetLabels = new("models/coral/imagenet_labels.txt", Coral + "imagenet_labels.txt",
        "b8aaeb5630c62626a7d124a05c0e14230a7ffdd2136a31d0190a4fb71c1d82f1");

    /// <summary>
    /// A file Keras downloads into ~/.keras/models/ (under <paramref name="savedAs"/> where Keras renames it, as
    /// NASNet's), with the MD5 it checks (null where Keras checks none).
    /// </summary>
    static Asset KerasFile(string folder, string file, string? md5, string? savedAs = null) =>
        new($"models/keras/{savedAs ?? file}", $"{Keras}{folder}/{file}", md5) { KerasCache = true };

    static WeightSource[] KerasPair(string folder, string stem, string topMd5, string noTopMd5) =>
    [
        new(KerasFile(folder, $"{stem}_notop.h5", noTopMd5), IncludesTop: false),
        new(KerasFile(folder, $"{stem}.h5", topMd5), IncludesTop: true),
    ];

    static WeightSource CoralFile(string file, string sha256, int size, bool top = true) =>
        new(new Asset($"models/coral/{file}", Coral + file, sha256), top, [size]);

    // Known SHA-256s of Keras files that ship in the asset mirror; Keras itself checks no hash for MobileNets.
    static readonly Dictionary<string, string> MirroredMobileNets = new()
    {
        ["mobilenet_2_5_128_tf.h5"] = "fe295db7f78635f1403127e3ba8cdc6237f83262bdb745063a67c1d81190c7f8",
        ["mobilenet_2_5_224_tf_no_top.h5"] = "dbdb03ee2a22fd895301636cd328b234bb3a9952358f436d82f46b81e0d5b0bf",
    };

    static IEnumerable<WeightSource> KerasMobileNet(double alpha)
    {
        string text = alpha switch { 1.0 => "1_0", 0.75 => "7_5", 0.5 => "5_0", _ => "2_5" };
        foreach (var size in new[] { 128, 160, 192, 224 })
            foreach (var top in new[] { false, true })
            {
                var file = $"mobilenet_{text}_{size}_tf{(top ? "" : "_no_top")}.h5";
                yield return new(KerasFile("mobilenet", file, MirroredMobileNets.GetValueOrDefault(file)), top, [size]);
            }
    }

    static IEnumerable<WeightSource> KerasMobileNetV2(double alpha)
    {
        string text = alpha.ToString("0.0#", System.Globalization.CultureInfo.InvariantCulture);
        foreach (var size in new[] { 96, 128, 160, 192, 224 })
            foreach (var top in new[] { false, true })
                yield return new(KerasFile("mobilenet_v2", $"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{text}_{size}{(top ? "" : "_no_top")}.h5", null), top, [size]);
    }

    static readonly WeightSource Tf2MobileNetV2 = CoralFile("tf2_mobilenet_v2_1.0_224_ptq.tflite", "5d3137241276e79c86d14a74fe43581398ae0e815191d3dba45495b810840e8c", 224);

    static readonly WeightSource TfjsMobileNet025 = new(new Asset("models/tfjs/mobilenet_v1_0.25_224/mobilenet_model.json",
        "https://storage.googleapis.com/tfjs-models/tfjs/mobilenet_v1_0.25_224/model.json",
        "27d5e755aac53db39ac5de066c3a1aff387f9c9061c64ddf9cf92e0bdd629a63"), IncludesTop: true, [224]);

    static readonly Dictionary<double, WeightSource[]> CoralMobileNets = new()
    {
        [0.25] = [CoralFile("mobilenet_v1_0.25_128_quant.tflite", "cb273c23ee76374b05b9583177e28aa19744858a7679c56a250e83d0333da785", 128)],
        [0.5] = [CoralFile("mobilenet_v1_0.5_160_quant.tflite", "3cc6d2ca460abd2e0f699a6d0d2550c6b61c6e3b0e27a3616e384ea74cb86f43", 160)],
        [0.75] = [CoralFile("mobilenet_v1_0.75_192_quant.tflite", "41daeb22fdcf947e0e5ec32373aa9df7c31f3ef45dbd0ef7b5940fbce3c20f6a", 192)],
        [1.0] = [CoralFile("mobilenet_v1_1.0_224_quant_embedding_extractor.tflite", "f409ef4f73fcbb9667841965623c5c8524aac33d41b9bf5f3667161fb4a76319", 224, top: false)],
    };

    static BackboneConfig MobileNetRow(double alpha) => new()
    {
        Name = alpha == 1.0 ? "mobilenet" : $"mobilenet_{alpha:0.0#}",
        Description = $"MobileNet v1 {alpha:0.0#} (Keras)",
        Build = MobileNet.WithAlpha(alpha),
        Weights = [.. KerasMobileNet(alpha), .. alpha == 0.25 ? [TfjsMobileNet025] : Array.Empty<WeightSource>(), .. CoralMobileNets[alpha]],
        FeatureLayer = "conv_pw_13_relu",
        GenericFeatureBlock = "block_11",
        ImageNetTop1 = alpha == 1.0 ? 0.704 : null,
    };

    static BackboneConfig MobileNetV2Row(double alpha) => new()
    {
        Name = alpha == 1.0 ? "mobilenet_v2" : $"mobilenet_v2_{alpha:0.0#}",
        Description = $"MobileNetV2 {alpha:0.0#} (Keras)" + (alpha == 1.0 ? "; offline: Coral's int8 TFLite of the same Keras model" : ""),
        Build = MobileNetV2.WithAlpha(alpha),
        Weights = [.. KerasMobileNetV2(alpha), .. alpha == 1.0 ? [Tf2MobileNetV2] : Array.Empty<WeightSource>()],
        FeatureLayer = "out_relu",
        GenericFeatureBlock = "block_12",
        IsDefault = alpha == 1.0,
        ImageNetTop1 = alpha == 1.0 ? 0.713 : null,
    };

    /// <summary>ResNet50/101/152 (v1, caffe) or ResNet50V2/101V2/152V2 (pre-activation, tf): Keras's file stems drop the v2's underscore.</summary>
    static BackboneConfig ResNetRow(int depth, bool v2, Func<ArchitectureOptions, Graph> build, string topMd5, string noTopMd5, int genericBlock, double top1) => new()
    {
        Name = $"resnet{depth}{(v2 ? "_v2" : "")}",
        Description = $"ResNet{depth}{(v2 ? "V2" : "")} (Keras)",
        Build = build,
        Preprocessing = v2 ? Preprocessing.Tf : Preprocessing.Caffe,
        Weights = KerasPair("resnet", $"resnet{depth}{(v2 ? "v2" : "")}_weights_tf_dim_ordering_tf_kernels", topMd5, noTopMd5),
        FeatureLayer = v2 ? "post_relu" : "conv5_block3_out",
        GenericFeatureBlock = $"conv4_block{genericBlock}",
        ImageNetTop1 = top1,
    };

    static BackboneConfig DenseNetRow(int depth, Func<ArchitectureOptions, Graph> build, string topMd5, string noTopMd5, int genericBlock, double top1) => new()
    {
        Name = $"densenet{depth}",
        Description = $"DenseNet{depth} (Keras)",
        Build = build,
        Preprocessing = Preprocessing.Torch,
        Weights = KerasPair("densenet", $"densenet{depth}_weights_tf_dim_ordering_tf_kernels", topMd5, noTopMd5),
        FeatureLayer = "relu",
        GenericFeatureBlock = $"conv4_block{genericBlock}",
        ImageNetTop1 = top1,
    };

    /// <summary>NASNet's files: Keras saves NASNet-mobile.h5 as nasnet_mobile.h5 (and so on) in its cache.</summary>
    static BackboneConfig NasNetRow(string size, Func<ArchitectureOptions, Graph> build, int inputSize, string topMd5, string noTopMd5,
        string featureLayer, string genericBlock, double top1) => new()
    {
        Name = $"nasnet_{size}",
        Description = $"NASNet{char.ToUpperInvariant(size[0])}{size[1..]} (Keras)",
        Build = build,
        InputSize = inputSize,
        Weights =
        [
            new(KerasFile("nasnet", $"NASNet-{size}-no-top.h5", noTopMd5, $"nasnet_{size}_no_top.h5"), IncludesTop: false),
            new(KerasFile("nasnet", $"NASNet-{size}.h5", topMd5, $"nasnet_{size}.h5"), IncludesTop: true),
        ],
        FeatureLayer = featureLayer,
        GenericFeatureBlock = genericBlock,
        ImageNetTop1 = top1,
    };

    public static IReadOnlyList<BackboneConfig> All { get; } =
    [
        MobileNetV2Row(1.0), MobileNetV2Row(0.35), MobileNetV2Row(0.5), MobileNetV2Row(0.75), MobileNetV2Row(1.3), MobileNetV2Row(1.4),
        new()
        {
            Name = "mobilenet_v2_slim",
            Description = "MobileNetV2 1.0 @224, TF-slim ImageNet weights (Coral's uint8 TFLite)",
            Build = MobileNetV2.WithAlpha(1.0),
            Weights = [CoralFile("mobilenet_v2_1.0_224_quant.tflite", "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776", 224)],
            FeatureLayer = "out_relu",
            GenericFeatureBlock = "block_12",
        },
        MobileNetRow(1.0), MobileNetRow(0.25), MobileNetRow(0.5), MobileNetRow(0.75),
        new()
        {
            Name = "vgg16", Description = "VGG16 (Keras)", Build = Vgg.Vgg16, Preprocessing = Preprocessing.Caffe,
            Weights = KerasPair("vgg16", "vgg16_weights_tf_dim_ordering_tf_kernels", "64373286793e3c8b2b4e3219cbf3544b", "6d6bbae143d832006294945121d1f1fc"),
            FeatureLayer = "block5_pool", GenericFeatureBlock = "block4", ImageNetTop1 = 0.713,
        },
        new()
        {
            Name = "vgg19", Description = "VGG19 (Keras)", Build = Vgg.Vgg19, Preprocessing = Preprocessing.Caffe,
            Weights = KerasPair("vgg19", "vgg19_weights_tf_dim_ordering_tf_kernels", "cbe5617147190e668d6c5d5026f83318", "253f8cb515780f3b799900260a226db6"),
            FeatureLayer = "block5_pool", GenericFeatureBlock = "block4", ImageNetTop1 = 0.713,
        },
        new()
        {
            Name = "resnet50", Description = "ResNet50 (Keras; also reads the first Keras file with res2a_branch2a names)",
            Build = ResNet.ResNet50, Filter = ResNet.Filter, Preprocessing = Preprocessing.Caffe,
            Weights = KerasPair("resnet", "resnet50_weights_tf_dim_ordering_tf_kernels", "2cb95161c43110f7111970584f804107", "4d473c1dd8becc155b73f8504c6f6626"),
            FeatureLayer = "conv5_block3_out", GenericFeatureBlock = "conv4_block6", ImageNetTop1 = 0.749,
        },
        ResNetRow(101, v2: false, ResNet.ResNet101, "f1aeb4b969a6efcfb50fad2f0c20cfc5", "88cf7a10940856eca736dc7b7e228a21", genericBlock: 23, top1: 0.764),
        ResNetRow(152, v2: false, ResNet.ResNet152, "100835be76be38e30d865e96f2aaae62", "ee4c566cf9a93f14d82f913c2dc6dd0c", genericBlock: 36, top1: 0.766),
        // The pre-activation ResNets halve the map in each stage's last block, so stage 4's second-to-last block is the last at 1/16.
        ResNetRow(50, v2: true, ResNetV2.ResNet50V2, "3ef43a0b657b3be2300d5770ece849e0", "fac2f116257151a9d068a22e544a4917", genericBlock: 5, top1: 0.760),
        ResNetRow(101, v2: true, ResNetV2.ResNet101V2, "6343647c601c52e1368623803854d971", "c0ed64b8031c3730f411d2eb4eea35b5", genericBlock: 22, top1: 0.772),
        ResNetRow(152, v2: true, ResNetV2.ResNet152V2, "a49b44d1979771252814e80f8ec446f9", "ed17cf2e0169df9d443503ef94b23b33", genericBlock: 35, top1: 0.780),
        DenseNetRow(121, DenseNet.DenseNet121, "9d60b8095a5708f2dcce2bca79d332c7", "30ee3e1110167f948a6b9946edeeb738", genericBlock: 24, top1: 0.750),
        DenseNetRow(169, DenseNet.DenseNet169, "d699b8f76981ab1b30698df4c175e90b", "b8c4d4c20dd625c148057b9ff1c1176b", genericBlock: 32, top1: 0.762),
        DenseNetRow(201, DenseNet.DenseNet201, "1ceb130c1ea1b78c3bf6114dbdfd8807", "c13680b51ded0fb44dff2d8f86ac8bb1", genericBlock: 48, top1: 0.773),
        new()
        {
            Name = "inception_v3", Description = "InceptionV3 (Keras)", Build = InceptionV3.Build, InputSize = 299, MinInputSize = 75,
            Weights = KerasPair("inception_v3", "inception_v3_weights_tf_dim_ordering_tf_kernels", "9a0d58056eeedaa3f26cb7ebd46da564", "bcbd6486424b2319ff4ef7d526e38f63"),
            FeatureLayer = "mixed10", GenericFeatureBlock = "mixed7", ImageNetTop1 = 0.779,
        },
        new()
        {
            Name = "inception_resnet_v2", Description = "InceptionResNetV2 (Keras)", Build = InceptionResNetV2.Build, InputSize = 299, MinInputSize = 75,
            Weights = KerasPair("inception_resnet_v2", "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels", "e693bd0210a403b3192acc6073ad2e96", "d19885ff4a710c122648d3b5c3b684e4"),
            FeatureLayer = "conv_7b_ac", GenericFeatureBlock = "block17_20", ImageNetTop1 = 0.803,
        },
        new()
        {
            Name = "xception", Description = "Xception (Keras)", Build = Xception.Build, InputSize = 299, MinInputSize = 71,
            Weights = KerasPair("xception", "xception_weights_tf_dim_ordering_tf_kernels", "0a58e3b7378bc2990ea3b43d5981f1f6", "b0042744bf5b25fce3cb969f33bebb97"),
            FeatureLayer = "block14_sepconv2_act", GenericFeatureBlock = "block12", ImageNetTop1 = 0.790,
        },
        // The last normal cell before the last reduction is the last at 1/16 of the input.
        NasNetRow("mobile", NASNet.NASNetMobile, 224, "020fb642bf7360b370c678b08e0adf61", "1ed92395b5b598bdda52abe5c0dbfd63", "activation_187", "normal_8", 0.744),
        NasNetRow("large", NASNet.NASNetLarge, 331, "11577c9a518f0070763c2b964a382f17", "d81d89dc07e6e56530c4e77faddd61b5", "activation_259", "normal_12", 0.825),
        .. ModernFamilies(),
        new()
        {
            Name = "small_cnn", Description = "The Keras blog's 3-conv baseline at 150x150, trained from scratch (no pretrained weights)",
            Build = SmallCnn.Build, InputSize = 150, Preprocessing = Preprocessing.Unit, Labels = null,
            FeatureLayer = "max_pooling2d_3", GenericFeatureBlock = "block_2",
        },
    ];

    public static BackboneConfig Default => All.First(b => b.IsDefault);

    public static BackboneConfig Get(string name) =>
        All.FirstOrDefault(b => string.Equals(b.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new GraftException($"Unknown backbone '{name}'.", $"Use one of: {string.Join(", ", All.Select(b => b.Name))} (see graft models).");

    public static bool Exists(string name) => All.Any(b => string.Equals(b.Name, name, StringComparison.OrdinalIgnoreCase));
}
