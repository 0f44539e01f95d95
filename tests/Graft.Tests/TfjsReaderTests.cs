using System.Buffers.Binary;
using System.Text.Json.Nodes;
using Graft.Weights;
using Graft.Weights.Tfjs;
using PureHDF;

namespace Graft.Tests;

public class TfjsReaderTests
{
    static NamedWeights MobileNet => LazyMobileNet.Value;
    static readonly Lazy<NamedWeights> LazyMobileNet = new(() => TfjsReader.Read(Assets.Shared("models/tfjs/mobilenet_v1_0.25_224/mobilenet_model.json")));

    [Fact]
    public void Reads_the_official_mobilenet_in_keras_order()
    {
        var w = MobileNet;
        Assert.Equal("tfjs-layers", w.Format);
        Assert.Equal("2.1.4 (tensorflow)", w.KerasVersion);
        Assert.Equal("Model", w.Topology!["class_name"]!.GetValue<string>());
        Assert.Equal(55, w.Layers.Count); // conv1 + 13 depthwise/pointwise pairs, each with its BN, + conv_preds
        Assert.Equal(137, w.Layers.Sum(l => l.Arrays.Count));
        Assert.Equal(475_544, w.ParameterCount);

        // The manifest lists layers alphabetically (conv_dw_1, conv_dw_10, ...); the reader follows the topology.
        Assert.Equal(["conv1", "conv1_bn", "conv_dw_1", "conv_dw_1_bn", "conv_pw_1", "conv_pw_1_bn", "conv_dw_2"],
            w.Layers.Take(7).Select(l => l.Layer));
        var stem = w.Layers[0].Arrays.Single();
        Assert.Equal(("kernel", "3x3x3x8"), (stem.Name, stem.ShapeText));
        Assert.Equal(["gamma", "beta", "moving_mean", "moving_variance"], w.Layers[1].Arrays.Select(a => a.Name));
        Assert.Equal("3x3x8x1", w.Find("conv_dw_1")!.Arrays[0].ShapeText);
        Assert.Equal("depthwise_kernel", w.Find("conv_dw_1")!.Arrays[0].Name);

        var top = w.Layers[^1];
        Assert.Equal("conv_preds", top.Layer);
        Assert.Equal(["1x1x256x1000", "1000"], top.Arrays.Select(a => a.ShapeText));
        Assert.Equal(218_544, w.Layers.Where(l => l.Layer != "conv_preds").Sum(l => l.Arrays.Sum(a => (long)a.Values.Length)));
    }

    [Fact]
    public void The_mobilenet_trunk_is_bit_identical_to_the_keras_file()
    {
        // The Keras HDF5 file lists its layers in model order (layer_names) and stores Keras's layouts.
        using var h5 = H5File.OpenRead(Assets.Shared("models/keras/mobilenet_2_5_224_tf_no_top.h5"));
        var kerasLayers = h5.Attribute("layer_names").Read<string[]>()
            .Select(name => (name, names: h5.Group(name).Attribute("weight_names")))
            .Where(l => l.names.Space.Dimensions is not [0]) // layers without weights store an empty float array
            .Select(l => (l.name, weights: l.names.Read<string[]>())).ToList();
        var trunk = MobileNet.Layers.Where(l => l.Layer != "conv_preds").ToList();

        Assert.Equal(kerasLayers.Select(l => l.name), trunk.Select(l => l.Layer));
        foreach (var ((name, weights), layer) in kerasLayers.Zip(trunk))
            foreach (var (weightName, array) in weights.Zip(layer.Arrays, (n, a) => (n, a)))
            {
                Assert.Equal(weightName.Split('/')[^1].Replace(":0", ""), array.Name);
                var dataset = h5.Group(name).Dataset(weightName);
                Assert.Equal(dataset.Space.Dimensions.Select(d => (int)d), array.Shape);
                Assert.Equal(dataset.Read<float[]>(), array.Values);
            }
    }

    [Fact]
    public void Reads_a_teachable_machine_export()
    {
        var w = TfjsReader.Read(Assets.Shared("models/teachable-machine/model.json"));
        Assert.Equal("tfjs-layers 1.3.1 (tensor_flow.js)", w.KerasVersion);
        Assert.Equal("Sequential", w.Topology!["class_name"]!.GetValue<string>());

        var trunk = w.Layers.Where(l => !l.Layer.StartsWith("dense_Dense")).ToList();
        Assert.Equal(410_208, trunk.Sum(l => l.Arrays.Sum(a => (long)a.Values.Length)));
        Assert.Equal("Conv1", trunk[0].Layer);
        Assert.Equal("3x3x3x16", trunk[0].Arrays.Single().ShapeText);
        // The export saves trainable weights first and the BN statistics last; each layer gets its own back in order.
        Assert.Equal(["gamma", "beta", "moving_mean", "moving_variance"], w.Find("bn_Conv1")!.Arrays.Select(a => a.Name));
        Assert.Equal("expanded_conv_depthwise", trunk[2].Layer);
        Assert.Equal("3x3x16x1", trunk[2].Arrays.Single().ShapeText);
        Assert.Equal("Conv_1_bn", trunk[^1].Layer);
        Assert.Equal("1280", trunk[^1].Arrays[0].ShapeText);

        // The user's head comes after the trunk, as in the topology.
        Assert.Equal(["dense_Dense9", "dense_Dense10"], w.Layers.Skip(trunk.Count).Select(l => l.Layer));
        Assert.Equal(["1280x100", "100"], w.Find("dense_Dense9")!.Arrays.Select(a => a.ShapeText));
        Assert.Equal(["100x3"], w.Find("dense_Dense10")!.Arrays.Select(a => a.ShapeText));
    }

    /// <summary>
    /// A small model.json in the converter's format: group 1 split over two shards (uint8 and uint16 affine
    /// quantization inside a nested model, plus optimizer state to skip), group 2 with float16 quantization and
    /// float32, and two nested layers that share the name "dense".
    /// </summary>
    static string WriteTinyModel(TempDir dir, Action<JsonObject>? edit = null)
    {
        var group1 = new List<byte>();
        group1.AddRange([0, 1, 2, 255]);                                               // outer/dense_1/kernel, uint8 2x2
        foreach (ushort q in new ushort[] { 0, 65535 }) group1.AddRange(LittleEndian(q)); // outer/dense_1/bias, uint16
        group1.AddRange(LittleEndian(7f));                                            // Adam/iter (optimizer)
        foreach (float v in new[] { 1f, -2.5f, 0.1f }) group1.AddRange(LittleEndian((Half)v)); // conv/kernel, float16
        File.WriteAllBytes(dir["group1-shard1of2.bin"], group1.Take(5).ToArray());
        File.WriteAllBytes(dir["group1-shard2of2.bin"], group1.Skip(5).ToArray());

        var group2 = new List<byte>();
        group2.AddRange(LittleEndian(0.75f));                                         // conv/bias, float32
        group2.AddRange(LittleEndian(1f));                                            // a/dense/kernel
        group2.AddRange(LittleEndian(2f));                                            // b/dense/kernel
        File.WriteAllBytes(dir["group2-shard1of1.bin"], group2.ToArray());

        var json = JsonNode.Parse("""
        {
          "format": "layers-model",
          "modelTopology": {"class_name": "Sequential", "keras_version": "tfjs-layers 4.22.0", "config": {"name": "s", "layers": [
            {"class_name": "Conv2D", "config": {"name": "conv"}},
            {"class_name": "Sequential", "config": {"name": "outer", "layers": [{"class_name": "Dense", "config": {"name": "dense_1"}}]}}]}},
          "weightsManifest": [
            {"paths": ["group1-shard1of2.bin", "group1-shard2of2.bin"], "weights": [
              {"name": "outer/dense_1/kernel", "shape": [2, 2], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1}},
              {"name": "outer/dense_1/bias", "shape": [2], "dtype": "float32", "quantization": {"dtype": "uint16", "scale": 0.25, "min": 10}},
              {"name": "Adam/iter", "shape": [], "dtype": "float32", "group": "optimizer"},
              {"name": "conv/kernel", "shape": [1, 1, 1, 3], "dtype": "float32", "quantization": {"dtype": "float16"}}]},
            {"paths": ["group2-shard1of1.bin"], "weights": [
              {"name": "conv/bias", "shape": [1], "dtype": "float32"},
              {"name": "a/dense/kernel", "shape": [1, 1], "dtype": "float32"},
              {"name": "b/dense/kernel", "shape": [1, 1], "dtype": "float32"}]}]
        }
        """)!.AsObject();
        edit?.Invoke(json);
        File.WriteAllText(dir["model.json"], json.ToJsonString());
        return dir["model.json"];
    }

    static byte[] LittleEndian(float v) { var b = new byte[4]; BinaryPrimitives.WriteSingleLittleEndian(b, v); return b; }
    static byte[] LittleEndian(Half v) { var b = new byte[2]; BinaryPrimitives.WriteHalfLittleEndian(b, v); return b; }
    static byte[] LittleEndian(ushort v) { var b = new byte[2]; BinaryPrimitives.WriteUInt16LittleEndian(b, v); return b; }

    [Fact]
    public void Dequantizes_uint8_uint16_and_float16_weights()
    {
        using var dir = new TempDir();
        var w = TfjsReader.Read(WriteTinyModel(dir));

        Assert.Equal(["conv", "dense_1", "a/dense", "b/dense"], w.Layers.Select(l => l.Layer));
        Assert.Null(w.Find("Adam"));
        Assert.Equal("tfjs-layers 4.22.0", w.KerasVersion);

        var dense = w.Find("dense_1")!;
        Assert.Equal(["kernel", "bias"], dense.Arrays.Select(a => a.Name));
        Assert.Equal("2x2", dense.Arrays[0].ShapeText);
        Assert.Equal([-1f, -0.5f, 0f, 126.5f], dense.Arrays[0].Values);   // q * 0.5 - 1
        Assert.Equal([10f, 16393.75f], dense.Arrays[1].Values);          // q * 0.25 + 10

        var conv = w.Find("conv")!;
        Assert.Equal([1f, -2.5f, (float)(Half)0.1f], conv.Arrays[0].Values);
        Assert.Equal([0.75f], conv.Arrays[1].Values);
        Assert.Equal([1f], w.Find("a/dense")!.Arrays.Single().Values);
        Assert.Equal([2f], w.Find("b/dense")!.Arrays.Single().Values);
    }

    [Fact]
    public void A_missing_or_short_shard_names_the_file()
    {
        using var dir = new TempDir();
        var path = WriteTinyModel(dir);

        File.Delete(dir["group1-shard2of2.bin"]);
        var missing = Assert.Throws<GraftException>(() => TfjsReader.Read(path));
        Assert.Contains("group1-shard2of2.bin", missing.Problem);

        WriteTinyModel(dir);
        File.WriteAllBytes(dir["group2-shard1of1.bin"], File.ReadAllBytes(dir["group2-shard1of1.bin"])[..^1]);
        var shortShard = Assert.Throws<GraftException>(() => TfjsReader.Read(path));
        Assert.Contains("group2-shard1of1.bin", shortShard.Problem);
        Assert.Contains("11 bytes", shortShard.Problem);
        Assert.Contains("need 12", shortShard.Problem);
    }

    [Fact]
    public void Bad_json_unknown_dtypes_and_incomplete_quantization_are_refused()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["broken.json"], """{"modelTopology": {""");
        Assert.Contains("broken.json", Assert.Throws<GraftException>(() => TfjsReader.Read(dir["broken.json"])).Problem);

        var complex = WriteTinyModel(dir, j => j["weightsManifest"]![1]!["weights"]![0]!["dtype"] = "complex64");
        Assert.Contains("complex64", Assert.Throws<GraftException>(() => TfjsReader.Read(complex)).Problem);

        var noMin = WriteTinyModel(dir, j => j["weightsManifest"]![0]!["weights"]![0]!["quantization"]!.AsObject().Remove("min"));
        Assert.Contains("outer/dense_1/kernel", Assert.Throws<GraftException>(() => TfjsReader.Read(noMin)).Problem);

        var graph = WriteTinyModel(dir, j => j["format"] = "graph-model");
        Assert.Contains("graph model", Assert.Throws<GraftException>(() => TfjsReader.Read(graph)).Problem);
    }
}
