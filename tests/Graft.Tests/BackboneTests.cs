using Graft.Backbones;
using Graft.Backbones.Layers;
using Graft.Models;
using Graft.Training;
using Graft.Heads;
using Graft.Inference;
using static TorchSharp.torch;

namespace Graft.Tests;

public class BackboneTests
{
    static async Task<Prediction> PredictOne(string backbone, string image)
    {
        using var model = TrainableClassifier.PretrainedImageNet(backbone, Assets.Resolver);
        var predictions = await model.PredictAsync([Assets.Shared($"images/imagenet/{image}")], 3, []);
        return Assert.Single(predictions);
    }

    [Fact]
    public async Task Pretrained_mobilenet_v2_recognises_coral_test_images()
    {
        var cat = await PredictOne("mobilenet_v2", "cat.bmp");
        Assert.Equal("Egyptian cat", cat.Label); // class 286
        Assert.True(cat.Confidence >= 0.6, $"cat confidence {cat.Confidence}");
        var hopper = await PredictOne("mobilenet_v2", "grace_hopper.bmp");
        Assert.Equal("military uniform", hopper.Label);
        Assert.True(hopper.Confidence >= 0.65, $"grace_hopper confidence {hopper.Confidence}");
    }

    [Fact]
    public async Task Tf_slim_uint8_model_loads_the_same_way()
    {
        var cat = await PredictOne("mobilenet_v2_slim", "cat.bmp");
        Assert.Equal("Egyptian cat", cat.Label);
        Assert.True(cat.Confidence >= 0.7, $"cat confidence {cat.Confidence}");
    }

    [Fact]
    public void Imagenet_labels_have_background_first()
    {
        using var model = TrainableClassifier.PretrainedImageNet("mobilenet_v2", Assets.Resolver);
        Assert.Equal(1001, model.Classes.Count);
        Assert.Equal("background", model.Classes[0]);
        Assert.Equal("Egyptian cat", model.Classes[286]);
    }

    [Fact]
    public void Same_padding_puts_the_extra_pixel_after()
    {
        Engine.TorchRuntime.EnsureInitialized();
        using var conv = new Conv2D("t", 1, 1, (3, 3), (2, 2), Padding.Same, useBias: true, Activation.Linear);
        conv.Load([new("kernel", [3, 3, 1, 1], Enumerable.Repeat(1f, 9).ToArray()), new("bias", [1], [0f])]);
        using var x = arange(16, dtype: float32).reshape(1, 1, 4, 4);
        using var y = conv.call([x]);
        Assert.Equal([1L, 1, 2, 2], y.shape);
        // TF SAME on 4x4, 3x3 stride 2: pad (0 before, 1 after); first window is rows 0-2, cols 0-2.
        Assert.Equal(0 + 1 + 2 + 4 + 5 + 6 + 8 + 9 + 10, y[0, 0, 0, 0].item<float>());
        // Last window: rows 2-4 and cols 2-4, where row/col 4 is padding.
        Assert.Equal(10 + 11 + 14 + 15, y[0, 0, 1, 1].item<float>());
    }

    [Fact]
    public void Trunk_outputs_1280_channels_at_a_32nd_of_the_input_and_starts_frozen()
    {
        using var backbone = Backbone.LoadPretrained(BackboneRegistry.Get("mobilenet_v2"), Assets.Resolver);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var map = backbone.Trunk.forward(zeros(2, 3, 96, 96));
        Assert.Equal([2L, 1280, 3, 3], map.shape);
        Assert.True(map.is_contiguous());
        Assert.All(backbone.Trunk.parameters(), p => Assert.False(p.requires_grad));
        Assert.Equal("Conv1", backbone.BlockNames[0]);
        Assert.Equal("Conv_1", backbone.BlockNames[^1]);
        Assert.Equal(19, backbone.BlockNames.Count);
    }

    [Fact]
    public void Unknown_backbone_names_the_known_ones()
    {
        var e = Assert.Throws<GraftException>(() => BackboneRegistry.Get("resnet9000"));
        Assert.Contains("mobilenet_v2", e.Message);
    }

    [Fact]
    public void Missing_weights_offline_name_the_file_url_and_both_caches()
    {
        using var dir = new TempDir();
        var resolver = new Weights.AssetResolver([dir.Path], dir["cache"], allowDownload: false, kerasCacheFolders: [dir["keras"]]);
        var e = Assert.Throws<GraftException>(() => Backbone.LoadPretrained(BackboneRegistry.Get("vgg16"), resolver));
        Assert.Contains("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", e.Message);
        Assert.Contains("https://storage.googleapis.com/tensorflow/keras-applications/vgg16/", e.Message);
        Assert.Contains("MD5 6d6bbae143d832006294945121d1f1fc", e.Message);
        Assert.Contains(dir["cache"], e.Message);
        Assert.Contains(dir["keras"], e.Message);
        Assert.Equal(CallerFix.WeightsFile, e.CallerFix); // the library names no flag; the CLI words it

        // The CLI: the problem on one line, then each fix on its own short line, --weights FILE last.
        var lines = Cli.Cli.ErrorOf(e).Message.Split('\n');
        Assert.Equal("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 is not on this machine and downloads are disabled (GRAFT_OFFLINE).", lines[0]);
        Assert.Equal(5, lines.Length);
        Assert.StartsWith("  Download https://storage.googleapis.com/tensorflow/keras-applications/vgg16/", lines[1]);
        Assert.Equal($"  Or copy it into Keras's cache, {dir["keras"]}.", lines[2]);
        Assert.Equal("  Or pass a weight file you have: --weights FILE.", lines[^1]);
        Assert.Contains("GRAFT_ASSETS", e.Fixes[^1]);
    }

    [Fact]
    public void A_mirror_file_with_the_wrong_hash_is_refused()
    {
        using var dir = new TempDir();
        var asset = BackboneRegistry.Get("mobilenet_v2").Weights.Single(w => w.File.FileName.EndsWith(".tflite")).File;
        Directory.CreateDirectory(Path.GetDirectoryName(dir[asset.RelativePath])!);
        File.WriteAllText(dir[asset.RelativePath], "not the model");
        var resolver = new Weights.AssetResolver([dir.Path], dir["cache"], allowDownload: false);
        var e = Assert.Throws<GraftException>(() => resolver.Resolve(asset));
        Assert.Contains("SHA-256", e.Message);
    }

    /// <summary>Keras's choice of a MobileNet's file: the one made for the input size, else the 224 one.</summary>
    [Fact]
    public void A_size_without_its_own_file_takes_the_default_sizes_file_as_keras_does()
    {
        string First(string backbone, int size) => BackboneRegistry.Get(backbone).SourcesFor(size, includeTop: false).First().File.FileName;
        Assert.Equal("mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_160_no_top.h5", First("mobilenet_v2_0.35", 160));
        Assert.Equal("mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5", First("mobilenet_v2_0.35", 150));
        Assert.Equal("mobilenet_7_5_224_tf_no_top.h5", First("mobilenet_0.75", 96));
    }
}
