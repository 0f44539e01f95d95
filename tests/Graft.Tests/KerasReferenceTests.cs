using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using Graft.Backbones;
using Graft.Engine;
using Graft.Evaluation;
using Graft.Models;
using Graft.Training;
using Graft.Runtime;
using Graft.Heads;
using Graft.Inference;
using static TorchSharp.torch;

namespace Graft.Tests;

/// <summary>
/// The fixtures of tests/keras-reference: an independent implementation of the keras.applications networks
/// (@tensorflow/tfjs, pure JavaScript) builds each with seeded random weights at a small, often odd, input, writes
/// the weights in the file layouts Keras users have (TF.js, legacy save_weights, Keras 1 and Keras 2.0 names,
/// split attributes, full-model files) and the outputs it computes. Generated once per generator version.
/// </summary>
public static class KerasReference
{
    static readonly Lazy<string> Generated = new(Generate);
    public static string Folder => Generated.Value;

    public static JsonElement Manifest(string testCase) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, testCase, "manifest.json"))).RootElement;

    /// <summary>A float32 file written NHWC, as a tensor in Graft's NCHW layout (vectors as they are).</summary>
    public static Tensor Read(string testCase, string key)
    {
        var file = Manifest(testCase).GetProperty("files").GetProperty(key);
        var shape = file.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
        var bytes = File.ReadAllBytes(Path.Combine(Folder, testCase, file.GetProperty("path").GetString()!));
        var values = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        var t = tensor(values, shape);
        return shape.Length == 4 ? t.permute(0, 3, 1, 2).contiguous() : t;
    }

    /// <summary>tests/keras-reference in the checkout, with its npm packages installed.</summary>
    public static string Generator => LazyGenerator.Value;
    static readonly Lazy<string> LazyGenerator = new(() =>
    {
        var dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "tests", "keras-reference", "generate.js")))
            dir = Path.GetDirectoryName(dir) ?? throw new DirectoryNotFoundException("tests/keras-reference not found above the test binaries.");
        var generator = Path.Combine(dir, "tests", "keras-reference");
        if (!Directory.Exists(Path.Combine(generator, "node_modules"))) Run("npm", ["ci", "--no-audit", "--no-fund"], generator);
        return generator;
    });

    static string Generate()
    {
        var generator = Generator;
        var version = Convert.ToHexStringLower(SHA256.HashData(
            new[] { "generate.js", "tfjs-keras-compat.js", "package-lock.json" }.SelectMany(f => File.ReadAllBytes(Path.Combine(generator, f))).ToArray()))[..16];
        var output = Path.Combine(Path.GetTempPath(), "graft-keras-reference", version);
        if (File.Exists(Path.Combine(output, "index.json"))) return output;
        var partial = output + $".{Environment.ProcessId}.partial";
        Run("node", ["generate.js", "--out", partial, .. Cases.SelectMany(c => new[] { "--case", c })], generator);
        if (!Directory.Exists(output)) Directory.Move(partial, output);
        return output;
    }

    /// <summary>Every case the tests use (the generator's extra resnet50_legacy_nopad follows a Keras topology Graft does not build).</summary>
    static readonly string[] Cases =
        ["vgg16", "vgg19", "resnet50", "resnet50_legacy", "inception_v3", "xception", "mobilenet_a025_67", "mobilenet_a050_64_top", "mobilenet_v2_a035_67", "mobilenet_v2_a100_64",
         "densenet121", "resnet50_v2", "inception_resnet_v2", "nasnet_mobile",
         "efficientnet_b0_top", "efficientnet_b3_64", "efficientnet_v2_b0_top", "efficientnet_v2_s_64", "mobilenet_v3_small_top", "mobilenet_v3_large_64",
         "convnext_tiny_67", "convnext_tiny_top"];

    /// <summary>Runs node or npm; a failure throws with what it printed.</summary>
    public static void Run(string program, string[] args, string workingDirectory)
    {
        var start = new ProcessStartInfo(program) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(10))) { process.Kill(true); throw new TimeoutException($"{program} did not finish"); }
        if (process.ExitCode != 0) throw new InvalidOperationException($"{program} {string.Join(' ', args)} failed: {stderr.Result}{stdout.Result}");
    }
}

public class KerasReferenceTests
{
    /// <summary>The registry backbone each generated case is an instance of.</summary>
    internal static string Backbone(string testCase) => testCase switch
    {
        "resnet50_legacy" => "resnet50",
        "mobilenet_a025_67" => "mobilenet_0.25",
        "mobilenet_a050_64_top" => "mobilenet_0.5",
        "mobilenet_v2_a035_67" => "mobilenet_v2_0.35",
        "mobilenet_v2_a100_64" => "mobilenet_v2",
        "efficientnet_b0_top" => "efficientnet_b0",
        "efficientnet_b3_64" => "efficientnet_b3",
        "efficientnet_v2_b0_top" => "efficientnet_v2_b0",
        "efficientnet_v2_s_64" => "efficientnet_v2_s",
        "mobilenet_v3_small_top" => "mobilenet_v3_small",
        "mobilenet_v3_large_64" => "mobilenet_v3_large",
        "convnext_tiny_67" or "convnext_tiny_top" => "convnext_tiny",
        _ => testCase,
    };

    internal static Backbone Load(string testCase, string file)
    {
        var manifest = KerasReference.Manifest(testCase);
        var path = Path.Combine(KerasReference.Folder, testCase, manifest.GetProperty("files").GetProperty(file).GetProperty("path").GetString()!);
        return Backbones.Backbone.LoadPretrained(BackboneRegistry.Get(Backbone(testCase)), Assets.Resolver,
            includeTop: manifest.GetProperty("include_top").GetBoolean(), inputSize: manifest.GetProperty("input_size").GetInt32(), weightsFile: path);
    }

    /// <summary>max |actual - expected| relative to the largest expected magnitude.</summary>
    static float RelativeError(Tensor actual, Tensor expected)
    {
        Assert.Equal(expected.shape, actual.shape);
        return (actual - expected).abs().max().item<float>() / expected.abs().max().item<float>();
    }

    [Theory]
    [InlineData("vgg16", "keras_legacy")]
    [InlineData("vgg16", "keras1")] // Keras 1 weight names (block1_conv1_W_1:0), as VGG16's real file
    [InlineData("vgg16", "tfjs")]
    [InlineData("vgg19", "keras_legacy")]
    [InlineData("resnet50", "keras_legacy")]
    [InlineData("resnet50", "keras_model")] // model.save() layout
    [InlineData("resnet50", "tfjs")]
    [InlineData("resnet50_legacy", "keras_legacy")] // res2a_branch2a names, batch-norm epsilon 1e-3
    [InlineData("inception_v3", "keras_legacy")]
    [InlineData("inception_v3", "keras20")] // Keras 2.0's automatic names (conv2d_1 …): loaded by Keras's layer order
    [InlineData("inception_v3", "tfjs")]
    [InlineData("xception", "keras_legacy")]
    [InlineData("xception", "keras_split")] // layer_names0, layer_names1, …
    [InlineData("xception", "tfjs")]
    [InlineData("mobilenet_a025_67", "keras_legacy")]
    [InlineData("mobilenet_a025_67", "keras_model")]
    [InlineData("mobilenet_a025_67", "tfjs")]
    [InlineData("mobilenet_a050_64_top", "keras_legacy")]
    [InlineData("mobilenet_a050_64_top", "tfjs")]
    [InlineData("mobilenet_v2_a035_67", "keras_legacy")]
    [InlineData("mobilenet_v2_a035_67", "tfjs")]
    [InlineData("mobilenet_v2_a100_64", "keras_legacy")]
    [InlineData("densenet121", "keras_legacy")]
    [InlineData("densenet121", "tfjs")]
    [InlineData("resnet50_v2", "keras_legacy")]
    [InlineData("resnet50_v2", "tfjs")]
    [InlineData("inception_resnet_v2", "keras_legacy")]
    [InlineData("inception_resnet_v2", "tfjs")]
    [InlineData("nasnet_mobile", "keras_legacy")]
    [InlineData("nasnet_mobile", "tfjs")]
    [InlineData("efficientnet_b0_top", "keras_legacy")] // Normalization's int64 count; the Rescaling that divides by √variance again
    [InlineData("efficientnet_b0_top", "tfjs")]
    [InlineData("efficientnet_b3_64", "keras_legacy")]
    [InlineData("efficientnet_v2_b0_top", "keras_legacy")]
    [InlineData("efficientnet_v2_b0_top", "tfjs")]
    [InlineData("efficientnet_v2_s_64", "keras_legacy")]
    [InlineData("mobilenet_v3_small_top", "keras_legacy")]
    [InlineData("mobilenet_v3_small_top", "tfjs")]
    [InlineData("mobilenet_v3_large_64", "keras_legacy")]
    [InlineData("convnext_tiny_67", "keras_legacy")] // the stem and downsampling blocks in nested groups, as Keras saves Sequential blocks
    [InlineData("convnext_tiny_67", "tfjs")]
    [InlineData("convnext_tiny_top", "keras_legacy")]
    public void Features_match_the_independent_implementation(string testCase, string file)
    {
        using var backbone = Load(testCase, file);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var input = KerasReference.Read(testCase, "input");
        var features = backbone.Trunk.forward(input);
        float error = RelativeError(features, KerasReference.Read(testCase, "features"));
        Assert.True(error < 1e-3, $"{testCase}/{file}: relative error {error}; {backbone.LoadReport}");

        // The frozen-trunk runner of feature extraction (ONNX Runtime) gives the same pooled features.
        using var runner = new OnnxTrunkRunner(backbone.Trunk, (int)input.shape[2]);
        Assert.True(RelativeError(runner.Features(input), KerasReference.Read(testCase, "pooled")) < 1e-3);

        if (backbone.HasTop)
        {
            var probabilities = backbone.Network.forward(input).softmax(1);
            Assert.True(RelativeError(probabilities, KerasReference.Read(testCase, "probs")) < 1e-3);
            // The whole network with its top in ONNX Runtime too (its classifier's logits, unpooled).
            using var network = new OnnxTrunkRunner(backbone.Network, (int)input.shape[2], pooling: null);
            Assert.True(RelativeError(network.Features(input).softmax(1), KerasReference.Read(testCase, "probs")) < 1e-3);
        }
    }

    [Theory]
    [InlineData("vgg16")]
    [InlineData("vgg19")]
    [InlineData("resnet50")]
    [InlineData("inception_v3")]
    [InlineData("xception")]
    [InlineData("mobilenet_a025_67")]
    [InlineData("mobilenet_a050_64_top")]
    [InlineData("mobilenet_v2_a035_67")]
    [InlineData("mobilenet_v2_a100_64")]
    [InlineData("densenet121")]
    [InlineData("resnet50_v2")]
    [InlineData("inception_resnet_v2")]
    [InlineData("nasnet_mobile")]
    [InlineData("efficientnet_b0_top")]
    [InlineData("efficientnet_b3_64")]
    [InlineData("efficientnet_v2_b0_top")]
    [InlineData("efficientnet_v2_s_64")]
    [InlineData("mobilenet_v3_small_top")]
    [InlineData("mobilenet_v3_large_64")]
    [InlineData("convnext_tiny_67")]
    [InlineData("convnext_tiny_top")]
    public void Summary_lists_the_layers_keras_lists(string testCase)
    {
        var manifest = KerasReference.Manifest(testCase);
        var config = BackboneRegistry.Get(Backbone(testCase));
        int size = manifest.GetProperty("input_size").GetInt32();
        using var backbone = Backbones.Backbone.Create(config, new(size, manifest.GetProperty("include_top").GetBoolean()), config.Spec(size));
        foreach (var p in backbone.Network.parameters()) p.requires_grad = true;
        var summary = ModelSummary.Of(testCase, backbone.Network, size);

        var expected = manifest.GetProperty("layers").EnumerateArray().ToList();
        Assert.Equal(expected.Select(l => l.GetProperty("name").GetString()), summary.Rows.Select(r => r.Name));
        Assert.Equal(expected.Select(l => l.GetProperty("class_name").GetString()), summary.Rows.Select(r => r.Type));
        Assert.Equal(expected.Select(l => string.Join(",", l.GetProperty("output_shape").EnumerateArray().Skip(1).Select(d => d.GetInt64()))),
            summary.Rows.Select(r => string.Join(",", r.OutputShape.Skip(1))));
        Assert.Equal(expected.Select(l => l.GetProperty("params").GetInt64()), summary.Rows.Select(r => r.Parameters));
        var parameters = manifest.GetProperty("params");
        Assert.Equal(parameters.GetProperty("total").GetInt64(), summary.Total);
        Assert.Equal(parameters.GetProperty("non_trainable").GetInt64(), summary.NonTrainable);
    }

    /// <summary>Six photos of each class of the shared ants-and-bees set: a test-sized training run.</summary>
    static string HymenopteraSample(TempDir dir)
    {
        foreach (var cls in new[] { "ants", "bees" })
        {
            Directory.CreateDirectory(dir[$"data/{cls}"]);
            foreach (var file in Directory.GetFiles(Assets.Shared($"data/hymenoptera/train/{cls}"), "*.jpg").Order(StringComparer.Ordinal).Take(6))
                File.Copy(file, dir[$"data/{cls}/{Path.GetFileName(file)}"]);
        }
        return dir["data"];
    }

    /// <summary>
    /// Every network trains a head on real photos, saves, and predicts the same after loading; with the seeds'
    /// unfreezing by Keras layer name for fine-tuning. (Random weights from the fixtures: the pipeline, not the accuracy.)
    /// </summary>
    [Theory]
    [InlineData("vgg16", "keras1", Strategy.FineTune, "block5_conv1")] // the Keras blog's experiment 3
    [InlineData("resnet50", "keras_legacy", Strategy.FineTune, "conv5_block1_1_conv")]
    [InlineData("inception_v3", "keras20", Strategy.FineTune, "mixed9")]
    [InlineData("xception", "keras_legacy", Strategy.FeatureExtraction, null)]
    [InlineData("vgg19", "keras_legacy", Strategy.FeatureExtraction, null)]
    [InlineData("mobilenet_a025_67", "tfjs", Strategy.FeatureExtraction, null)]
    [InlineData("mobilenet_v2_a035_67", "keras_legacy", Strategy.FineTune, "block_15")]
    [InlineData("densenet121", "keras_legacy", Strategy.FineTune, "conv5_block16_1_conv")]
    [InlineData("resnet50_v2", "tfjs", Strategy.FeatureExtraction, null)]
    [InlineData("nasnet_mobile", "keras_legacy", Strategy.FineTune, "normal_conv_1_12")] // each cell reads the two before: no layer splits NASNet, its frozen cells run in libtorch too
    [InlineData("efficientnet_b0_top", "keras_legacy", Strategy.FineTune, "block7a")] // a file with the top: its classifier left unused
    [InlineData("efficientnet_v2_b0_top", "tfjs", Strategy.FineTune, "block6h")]
    [InlineData("mobilenet_v3_large_64", "tfjs", Strategy.FeatureExtraction, null)]
    public async Task Every_network_trains_on_photos_and_round_trips(string testCase, string file, Strategy strategy, string? unfreezeFrom)
    {
        using var dir = new TempDir();
        var manifest = KerasReference.Manifest(testCase);
        var options = new TrainOptions
        {
            Backbone = Backbone(testCase),
            WeightsFile = Path.Combine(KerasReference.Folder, testCase, manifest.GetProperty("files").GetProperty(file).GetProperty("path").GetString()!),
            InputSize = manifest.GetProperty("input_size").GetInt32(),
            Strategy = strategy,
            Unfreeze = unfreezeFrom is null ? null : new UnfreezeSpec(FromLayer: unfreezeFrom),
            // No validation images: fine-tuning is then kept whatever it reaches (nothing to compare the head with), so its weights can be checked.
            ValidationSplit = 0,
            Fit = new FitOptions(Epochs: 2, BatchSize: 4),
            FineTune = new FitOptions(Epochs: 1, BatchSize: 4, LearningRate: 1e-4, Optimizer: OptimizerKind.Sgd),
            Pooling = testCase == "vgg16" ? Pooling.Flatten : null, // the blog's flatten head
            CacheRoot = dir["cache"],
        };
        var result = await Learner.TrainAsync(HymenopteraSample(dir), options, Assets.Resolver);
        Assert.Equal(12, result.Model.Config.Dataset!.TrainImages);
        Assert.Equal(manifest.GetProperty("input_size").GetInt32(), result.Model.Config.Input.Size);
        if (unfreezeFrom is not null)
        {
            using var original = Load(testCase, file);
            var tuned = result.Model.Backbone.Trunk.state_dict();
            var before = original.Trunk.state_dict();
            // Layers before the named one keep their weights; the named one trained.
            var firstTrained = result.Model.Backbone.Trunk.Nodes.First(n => n.Name == unfreezeFrom || n.Block == unfreezeFrom).Name;
            Assert.False(tuned[$"{firstTrained}.weight"].allclose(before[$"{firstTrained}.weight"], rtol: 0, atol: 0));
            var frozen = original.Trunk.Nodes.First(n => n.Layer?.named_parameters().Any(p => p.name == "weight") == true).Name;
            Assert.True(tuned[$"{frozen}.weight"].allclose(before[$"{frozen}.weight"], rtol: 0, atol: 0));
        }

        result.Model.Save(dir["model.graft"]);
        using var loaded = TrainableClassifier.Load(dir["model.graft"]);
        var files = Directory.GetFiles(dir["data"], "*.jpg", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        var a = await result.Model.PredictAsync(files, 2, []);
        var b = await loaded.PredictAsync(files, 2, []);
        Assert.Equal(a.Select(p => (p.Label, p.Confidence)), b.Select(p => (p.Label, p.Confidence)));
    }
}
