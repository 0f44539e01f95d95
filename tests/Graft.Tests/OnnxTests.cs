using System.Text.Json;
using Graft.Backbones;
using Graft.Data;
using Graft.Engine;
using Graft.Export;
using Graft.Models;
using Graft.Training;
using Graft.Imaging;
using Graft.Runtime;
using Graft.Heads;
using Graft.Inference;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using static TorchSharp.torch;

namespace Graft.Tests;

public class OnnxTests
{
    const float Tolerance = 1e-4f;

    /// <summary>Runs the exported model in ONNX Runtime; the largest difference from the TorchSharp probabilities.</summary>
    static float MaxDifferenceFromTorch(TrainableClassifier model, InferenceSession session, float[] pixels)
    {
        int size = model.Config.Input.Size;
        long[] shape = [pixels.Length / (3 * size * size), 3, size, size];
        using var run = new RunOptions();
        using var input = OrtValue.CreateTensorValueFromMemory(pixels, shape);
        using var outputs = session.Run(run, [OnnxExport.ImagesInput], [input], [OnnxExport.ProbabilitiesOutput]);
        var actual = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        using var batch = tensor(pixels, shape);
        using var probabilities = model.Probabilities(batch);
        var expected = probabilities.data<float>().ToArray();
        Assert.Equal(expected.Length, actual.Length);
        return expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
    }

    static float[] LoadImages(IEnumerable<string> files, TrainableClassifier model) =>
        files.SelectMany(f => ImageLoader.Load(f, model.Config.Input)).ToArray();

    [Fact]
    public void Pretrained_mobilenet_v2_gives_the_same_probabilities_in_onnx_runtime()
    {
        using var dir = new TempDir();
        using var model = TrainableClassifier.PretrainedImageNet("mobilenet_v2", Assets.Resolver);
        var path = dir["imagenet.onnx"];
        model.SaveOnnx(path);
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));

        using var session = new InferenceSession(path);
        var photos = new[] { "cat.bmp", "grace_hopper.bmp", "owl.jpg" }.Select(f => Assets.Shared($"images/imagenet/{f}"));
        float difference = MaxDifferenceFromTorch(model, session, LoadImages(photos, model));
        Assert.True(difference < Tolerance, $"max |ONNX - TorchSharp| = {difference}");

        Assert.Equal("graft", session.ModelMetadata.ProducerName);
        var images = session.InputMetadata[OnnxExport.ImagesInput];
        Assert.Equal([-1, 3, 224, 224], images.Dimensions);
        Assert.Equal("N", images.SymbolicDimensions[0]);
        Assert.Equal([-1, 1001], session.OutputMetadata[OnnxExport.ProbabilitiesOutput].Dimensions);

        var metadata = session.ModelMetadata.CustomMetadataMap;
        var classes = JsonSerializer.Deserialize<string[]>(metadata["classes"])!;
        Assert.Equal(model.Classes, classes);
        Assert.Equal("224", metadata["input_size"]);
        Assert.Equal(model.Config.Input.Mean, JsonSerializer.Deserialize<float[]>(metadata["mean"]));
        Assert.Equal(model.Config.Input.Std, JsonSerializer.Deserialize<float[]>(metadata["std"]));
        Assert.Equal("squash", metadata["resize"]);
        Assert.Equal("RGB", metadata["channel_order"]);
        Assert.Contains("EXIF orientation", metadata["orientation"]);
    }

    [Fact]
    public async Task Trained_head_with_hidden_layer_and_batch_norm_exports_exactly()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 6, classes: 3, size: 48);
        var options = new TrainOptions
        {
            CacheRoot = dir["cache"], ValidationSplit = 0.25, Hidden = 16, BatchNorm = true,
            Fit = new FitOptions(Epochs: 3, BatchSize: 4),
        };
        using var model = (await Learner.TrainAsync(dir["data"], options, Assets.Resolver)).Model;
        var path = dir["tiny.onnx"];
        model.SaveOnnx(path);

        using var session = new InferenceSession(path);
        var files = Directory.GetFiles(dir["data"], "*.png", SearchOption.AllDirectories).Order().Take(8);
        float difference = MaxDifferenceFromTorch(model, session, LoadImages(files, model));
        Assert.True(difference < Tolerance, $"max |ONNX - TorchSharp| = {difference}");

        var metadata = session.ModelMetadata.CustomMetadataMap;
        Assert.Equal(model.Classes, JsonSerializer.Deserialize<string[]>(metadata["classes"]));
        Assert.Equal("center_crop", metadata["resize"]);
    }

    [Fact]
    public void Small_cnn_with_flatten_squeeze_excitation_and_binary_head_exports_exactly()
    {
        var architecture = BackboneRegistry.Get("small_cnn");
        var backbone = Backbone.Create(architecture, new(150), architecture.Spec(150)); // untrained weights do as well as any
        var (channels, side) = (backbone.Trunk.Output.Channels, backbone.Trunk.Output.Size);
        var head = new HeadConfig(channels * side * side, 2, Hidden: 8, BatchNorm: true, Pooling: Pooling.Flatten)
            { Binary = true, SqueezeExcite = true, TrunkChannels = channels };
        var config = new ModelConfig(ModelConfig.CurrentFormat, architecture.Name, "", backbone.Input, ["cat", "dog"], head,
            "scratch", new FitOptions(), null, DateTime.UtcNow);
        using var model = new TrainableClassifier(config, backbone, head.Build(), []);

        using var session = new InferenceSession(model.ToOnnx());
        manual_seed(3);
        using var images = rand(3, 3, 150, 150);
        float difference = MaxDifferenceFromTorch(model, session, images.data<float>().ToArray());
        Assert.True(difference < Tolerance, $"max |ONNX - TorchSharp| = {difference}");
    }

    // 224 halves evenly down to 7 (SAME pads one pixel after); 97 gives odd sizes (one pixel on each side).
    [Theory]
    [InlineData(224)]
    [InlineData(97)]
    public void Onnx_trunk_runner_gives_the_torch_runner_features(int size)
    {
        using var backbone = Backbone.LoadPretrained(BackboneRegistry.Get("mobilenet_v2"), Assets.Resolver);
        using var onnx = new OnnxTrunkRunner(backbone.Trunk, size);
        var torchRunner = new TorchTrunkRunner(backbone.Trunk);
        using var scope = NewDisposeScope();
        manual_seed(7);
        var images = randn(4, 3, size, size);
        var expected = torchRunner.Features(images);
        var actual = onnx.Features(images);
        Assert.Equal([4L, 1280], actual.shape);
        float difference = (actual - expected).abs().max().item<float>();
        Assert.True(difference < Tolerance, $"max |ONNX - TorchSharp| = {difference}");
    }

    /// <summary>
    /// The primitives the classic families added — dense concatenation, pre-activation batch norm, a 1x1 pooling at
    /// stride 2, the scaled residual sum, NASNet's pad-and-crop shift and strided separable convolutions — give ONNX
    /// Runtime libtorch's feature maps (fresh weights, odd sizes; relative to the features' scale).
    /// </summary>
    [Theory]
    [InlineData("densenet121", 65)]
    [InlineData("resnet50_v2", 65)]
    [InlineData("inception_resnet_v2", 75)]
    [InlineData("nasnet_mobile", 63)]
    public void Every_classic_family_runs_the_same_in_onnx_runtime(string name, int size)
    {
        manual_seed(11);
        using var network = Networks.Build(name, size);
        using var onnx = new OnnxTrunkRunner(network, size, pooling: null);
        using var scope = NewDisposeScope();
        var images = randn(2, 3, size, size);
        var expected = new TorchTrunkRunner(network, pooling: null).Features(images);
        var actual = onnx.Features(images);
        Assert.Equal(expected.shape, actual.shape);
        float difference = (actual - expected).abs().max().item<float>() / expected.abs().max().item<float>();
        Assert.True(difference < Tolerance, $"max |ONNX - TorchSharp| / max |TorchSharp| = {difference}");
    }

    [Fact]
    public void Onnx_trunk_runner_flattens_like_the_torch_runner()
    {
        var architecture = BackboneRegistry.Get("small_cnn");
        using var backbone = Backbone.Create(architecture, new(150), architecture.Spec(150));
        using var onnx = new OnnxTrunkRunner(backbone.Trunk, 150, Pooling.Flatten);
        var torchRunner = new TorchTrunkRunner(backbone.Trunk, Pooling.Flatten);
        using var scope = NewDisposeScope();
        manual_seed(5);
        var images = rand(2, 3, 150, 150);
        var expected = torchRunner.Features(images);
        var actual = onnx.Features(images);
        Assert.Equal(expected.shape, actual.shape);
        float difference = (actual - expected).abs().max().item<float>();
        Assert.True(difference < Tolerance, $"max |ONNX - TorchSharp| = {difference}");
    }

    /// <summary>A layer outside the closed set of primitives.</summary>
    sealed class Squash() : Backbones.Layers.Layer("squash")
    {
        public override string KerasClass => "Squash";
        public override Tensor forward(Tensor[] inputs) => inputs[0].sigmoid();
    }

    [Fact]
    public void A_layer_without_an_onnx_mapping_is_named()
    {
        TorchRuntime.EnsureInitialized();
        var builder = new GraphBuilder("test", 8, foldedBatchNorm: false);
        builder.Add(new Squash(), builder.Input);
        using var trunk = builder.Build();
        var e = Assert.Throws<NotSupportedException>(() => OnnxExport.TrunkModel(trunk, 8));
        Assert.Contains("Squash", e.Message);
        Assert.Contains("trunk/squash", e.Message);
    }

    [Fact]
    public void Export_from_the_command_line_writes_a_file_onnx_runtime_loads()
    {
        using var dir = new TempDir();
        var path = dir["mobilenet_v2.onnx"];
        var run = GraftCli.Run(null, "export", "mobilenet_v2", "--onnx", path, "--json");
        Assert.True(run.ExitCode == 0, run.Stderr);
        var result = JsonDocument.Parse(run.LastLine).RootElement;
        Assert.Equal(path, result.GetProperty("onnx").GetString());
        Assert.Equal(new FileInfo(path).Length, result.GetProperty("bytes").GetInt64());
        Assert.Equal(1001, result.GetProperty("classes").GetArrayLength());
        Assert.Equal(224, result.GetProperty("input_size").GetInt32());
        Assert.Contains(path, run.Stdout);

        using var session = new InferenceSession(path);
        Assert.Equal([-1, 1001], session.OutputMetadata[OnnxExport.ProbabilitiesOutput].Dimensions);
    }
}
