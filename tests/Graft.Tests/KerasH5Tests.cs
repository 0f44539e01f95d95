using System.Runtime.InteropServices;
using Graft.Weights;
using Graft.Weights.Keras;
using PureHDF;

namespace Graft.Tests;

public class KerasH5Tests
{
    static NamedWeights NoTop => LazyNoTop.Value;
    static readonly Lazy<NamedWeights> LazyNoTop = new(() => KerasH5Reader.Read(Assets.Shared("models/keras/mobilenet_2_5_224_tf_no_top.h5")));

    static readonly string[] BatchNormNames = ["gamma", "beta", "moving_mean", "moving_variance"];

    // ---- Keras's own files (legacy save_weights layout, Keras 2.0.4, fixed-length byte-string attributes) ----

    [Fact]
    public void Reads_keras_mobilenet_without_top()
    {
        Assert.Equal(KerasH5Reader.LegacyFormat, NoTop.Format);
        Assert.Equal("2.0.4 (tensorflow)", NoTop.KerasVersion);
        Assert.Null(NoTop.Topology);
        Assert.Equal(218_544, NoTop.ParameterCount);

        var conv1 = NoTop.Layers[0];
        Assert.Equal("conv1", conv1.Layer);
        var kernel = Assert.Single(conv1.Arrays);
        Assert.Equal("kernel", kernel.Name);
        Assert.Equal([3, 3, 3, 8], kernel.Shape);
        Assert.Contains(kernel.Values, v => v != 0);

        // The file stores these arrays contiguous, little-endian, row-major: their bytes must appear in it verbatim.
        var file = File.ReadAllBytes(NoTop.Source);
        foreach (var array in new[] { kernel, NoTop.Find("conv_pw_13")!.Arrays[0], NoTop.Find("conv_dw_7_bn")!.Arrays[3] })
            Assert.True(file.AsSpan().IndexOf(MemoryMarshal.AsBytes(array.Values.AsSpan())) >= 0, $"{array.Name} {array.ShapeText}");
    }

    [Fact]
    public void Keeps_the_model_order_of_layer_names_and_skips_weightless_layers()
    {
        // The file lists its groups alphabetically (conv_dw_10 before conv_dw_2); layer_names has the model order.
        string[] expected = ["conv1", "conv1_bn", .. Enumerable.Range(1, 13).SelectMany(i => new[] { $"conv_dw_{i}", $"conv_dw_{i}_bn", $"conv_pw_{i}", $"conv_pw_{i}_bn" })];
        Assert.Equal(expected, NoTop.Layers.Select(l => l.Layer));

        var bn = NoTop.Find("conv_dw_1_bn")!;
        Assert.Equal(BatchNormNames, bn.Arrays.Select(a => a.Name));
        Assert.All(bn.Arrays, a => Assert.Equal([8], a.Shape));
        Assert.All(bn.Arrays.Single(a => a.Name == "moving_variance").Values, v => Assert.True(v > 0));
        var depthwise = Assert.Single(NoTop.Find("conv_dw_13")!.Arrays);
        Assert.Equal(("depthwise_kernel", "3x3x256x1"), (depthwise.Name, depthwise.ShapeText));
        Assert.Equal("1x1x256x256", NoTop.Find("conv_pw_13")!.Arrays[0].ShapeText);
    }

    [Fact]
    public void Reads_keras_mobilenet_with_top()
    {
        var weights = KerasH5Reader.Read(Assets.Shared("models/keras/mobilenet_2_5_128_tf.h5"));
        Assert.Equal(475_544, weights.ParameterCount);
        Assert.Equal(55, weights.Layers.Count);
        Assert.Equal("conv1", weights.Layers[0].Layer);
        var head = weights.Layers[^1];
        Assert.Equal("conv_preds", head.Layer);
        Assert.Equal(["kernel", "bias"], head.Arrays.Select(a => a.Name));
        Assert.Equal(["1x1x256x1000", "1000"], head.Arrays.Select(a => a.ShapeText));
    }

    [Fact]
    public void A_truncated_keras_file_is_a_graft_error()
    {
        using var dir = new TempDir();
        var bytes = File.ReadAllBytes(Assets.Shared("models/keras/mobilenet_2_5_224_tf_no_top.h5"));
        File.WriteAllBytes(dir["cut.h5"], bytes[..(bytes.Length / 3)]);
        var e = Assert.Throws<GraftException>(() => KerasH5Reader.Read(dir["cut.h5"]));
        Assert.Contains(dir["cut.h5"], e.Problem);
    }

    // ---- Synthetic legacy files written with PureHDF ----

    static readonly float[] KernelValues = [0.5f, -1.25f, 3f, 1e-7f, -0f, float.MaxValue, 2.75f, -8f, 0.1f, 7f, 9f, -3.5f];
    static readonly float[] BiasValues = [0.25f, -0.75f];
    static readonly double[] GammaValues = [1.0 / 3, 2.5]; // float64 in the file: read as (float)value
    static readonly Half[] BetaValues = [(Half)0.5, (Half)(-2.0)]; // float16 in the file

    /// <summary>
    /// A legacy save_weights layout: layer groups deliberately written in an order unlike layer_names, a layer
    /// without weights, TF-style "layer/name:0" weights, float64 and float16 arrays.
    /// </summary>
    static H5Group LegacyLayers(Action<H5Object, string, string[]> setNames)
    {
        var root = new H5Group();
        var bn = Layer(root, "bn", setNames, ["bn/gamma:0", "bn/beta:0"]);
        Put(bn, "bn/gamma:0", new H5Dataset(GammaValues, fileDims: [2]));
        Put(bn, "bn/beta:0", new H5Dataset(BetaValues, fileDims: [2]));
        Layer(root, "relu", setNames, []);
        var conv = Layer(root, "conv1", setNames, ["conv1/kernel:0", "conv1/bias:0"]);
        Put(conv, "conv1/kernel:0", new H5Dataset(KernelValues, fileDims: [1, 2, 3, 2]));
        Put(conv, "conv1/bias:0", new H5Dataset(BiasValues, fileDims: [2]));
        Layer(root, "input_1", setNames, []);
        setNames(root, "layer_names", ["input_1", "conv1", "relu", "bn"]);
        return root;
    }

    static H5Group Layer(H5Group root, string name, Action<H5Object, string, string[]> setNames, string[] weightNames)
    {
        var group = new H5Group();
        if (weightNames.Length == 0)
            group.Attributes["weight_names"] = new H5Attribute(Array.Empty<double>(), dimensions: [0]); // what numpy writes for []
        else
            setNames(group, "weight_names", weightNames);
        root[name] = group;
        return group;
    }

    static void Put(H5Group root, string path, object value)
    {
        var parts = path.Split('/');
        var group = root;
        foreach (var part in parts[..^1])
        {
            if (!group.TryGetValue(part, out var child)) group[part] = child = new H5Group();
            group = (H5Group)child;
        }
        group[parts[^1]] = value;
    }

    static void SetNames(H5Object owner, string name, string[] values) => owner.Attributes[name] = values;

    /// <summary>Keras splits attributes over 64 KB into name0, name1, …; here every list is split after its first entry.</summary>
    static void SetSplitNames(H5Object owner, string name, string[] values)
    {
        owner.Attributes[name + "0"] = values[..1];
        if (values.Length > 1) owner.Attributes[name + "1"] = values[1..];
    }

    static H5File AsFile(H5Group root, params (string Name, object Value)[] attributes)
    {
        var file = new H5File();
        foreach (var (name, value) in root) file[name] = value;
        foreach (var (name, value) in root.Attributes) file.Attributes[name] = value;
        foreach (var (name, value) in attributes) file.Attributes[name] = value;
        return file;
    }

    static void AssertLegacyLayers(NamedWeights weights)
    {
        Assert.Equal(["conv1", "bn"], weights.Layers.Select(l => l.Layer));
        var conv = weights.Layers[0].Arrays;
        Assert.Equal(["kernel", "bias"], conv.Select(a => a.Name));
        Assert.Equal([1, 2, 3, 2], conv[0].Shape);
        Assert.Equal(KernelValues, conv[0].Values);
        Assert.Equal(BiasValues, conv[1].Values);
        var bn = weights.Layers[1].Arrays;
        Assert.Equal(["gamma", "beta"], bn.Select(a => a.Name));
        Assert.Equal(GammaValues.Select(v => (float)v), bn[0].Values);
        Assert.Equal(BetaValues.Select(v => (float)v), bn[1].Values);
        Assert.Equal(KernelValues.Length + 6, weights.ParameterCount);
    }

    [Fact]
    public void Reads_legacy_files_with_fixed_length_string_attributes()
    {
        using var dir = new TempDir();
        // A nonzero default string length makes PureHDF write fixed-length strings, as h5py does for numpy 'S' arrays.
        AsFile(LegacyLayers(SetNames), ("keras_version", "2.2.4"), ("backend", "tensorflow"))
            .Write(dir["fixed.h5"], new H5WriteOptions(DefaultStringLength: 32));
        using (var file = H5File.OpenRead(dir["fixed.h5"]))
            Assert.Equal(H5DataTypeClass.String, file.Attribute("layer_names").Type.Class);

        var weights = KerasH5Reader.Read(dir["fixed.h5"]);
        AssertLegacyLayers(weights);
        Assert.Equal(KerasH5Reader.LegacyFormat, weights.Format);
        Assert.Equal("2.2.4 (tensorflow)", weights.KerasVersion);
        Assert.Equal(dir["fixed.h5"], weights.Source);
    }

    [Fact]
    public void Reads_legacy_files_with_variable_length_string_attributes()
    {
        using var dir = new TempDir();
        AsFile(LegacyLayers(SetNames), ("keras_version", "2.13.1")).Write(dir["vlen.h5"]);
        using (var file = H5File.OpenRead(dir["vlen.h5"]))
            Assert.Equal(H5DataTypeClass.VariableLength, file.Attribute("layer_names").Type.Class);

        var weights = KerasH5Reader.Read(dir["vlen.h5"]);
        AssertLegacyLayers(weights);
        Assert.Equal("2.13.1", weights.KerasVersion);
    }

    [Fact]
    public void Reads_layer_and_weight_names_split_over_numbered_attributes()
    {
        using var dir = new TempDir();
        AsFile(LegacyLayers(SetSplitNames)).Write(dir["split.h5"]);
        using (var file = H5File.OpenRead(dir["split.h5"]))
            Assert.False(file.AttributeExists("layer_names"));

        var weights = KerasH5Reader.Read(dir["split.h5"]);
        AssertLegacyLayers(weights);
        Assert.Null(weights.KerasVersion);
    }

    [Fact]
    public void Reads_keras_1_weight_names()
    {
        using var dir = new TempDir();
        var root = new H5Group();
        var conv = Layer(root, "block1_conv1", SetNames, ["block1_conv1_W_1:0", "block1_conv1_b_1:0"]);
        conv["block1_conv1_W_1:0"] = new H5Dataset(KernelValues, fileDims: [3, 2, 1, 2]);
        conv["block1_conv1_b_1:0"] = BiasValues;
        SetNames(root, "layer_names", ["block1_conv1"]);
        AsFile(root, ("keras_version", "1.2.2")).Write(dir["vgg.h5"], new H5WriteOptions(DefaultStringLength: 24));

        var layer = Assert.Single(KerasH5Reader.Read(dir["vgg.h5"]).Layers);
        Assert.Equal(["W", "b"], layer.Arrays.Select(a => a.Name));
        Assert.Equal([3, 2, 1, 2], layer.Arrays[0].Shape);
        Assert.Equal(KernelValues, layer.Arrays[0].Values);
        Assert.Equal(BiasValues, layer.Arrays[1].Values);
    }

    [Theory]
    [InlineData("conv1", "conv1/kernel:0", "kernel")]
    [InlineData("bn", "bn/moving_mean:0", "moving_mean")]
    [InlineData("block1_conv1", "block1_conv1_W_1:0", "W")]
    [InlineData("bn_conv1", "bn_conv1_running_mean_3:0", "running_mean")]
    [InlineData("dense_1", "dense_1_W", "W")]
    [InlineData("model_1", "block1/conv_2/kernel:0", "kernel")]
    [InlineData("dense", "kernel", "kernel")]
    public void Short_weight_names(string layer, string weightName, string expected) =>
        Assert.Equal(expected, KerasWeightNames.ShortName(layer, weightName));

    [Fact]
    public void Reads_full_model_files_with_their_topology()
    {
        using var dir = new TempDir();
        const string config = """{"class_name": "Functional", "config": {"name": "model", "layers": [{"class_name": "Conv2D", "name": "conv1"}]}}""";
        var modelWeights = LegacyLayers(SetNames);
        modelWeights.Attributes["backend"] = "tensorflow";
        modelWeights.Attributes["keras_version"] = "2.4.0";
        var file = new H5File
        {
            ["model_weights"] = modelWeights,
            Attributes = new() { ["model_config"] = config, ["training_config"] = """{"loss": "mse"}""" },
        };
        Put(file, "optimizer_weights/training/Adam/iter:0", new long[] { 10 });
        file.Write(dir["model.h5"], new H5WriteOptions(DefaultStringLength: 256));

        var weights = KerasH5Reader.Read(dir["model.h5"]);
        AssertLegacyLayers(weights);
        Assert.Equal(KerasH5Reader.LegacyFormat, weights.Format);
        Assert.Equal("2.4.0 (tensorflow)", weights.KerasVersion);
        Assert.Equal("Functional", (string?)weights.Topology!["class_name"]);
        Assert.Equal("conv1", (string?)weights.Topology["config"]!["layers"]![0]!["name"]);
    }

    // ---- Keras 3 .weights.h5 ----

    static float[] Values(int count, float start) => Enumerable.Range(0, count).Select(i => start + i * 0.5f).ToArray();

    static H5Group Vars(params float[][] arrays)
    {
        var vars = new H5Group();
        foreach (var i in Enumerable.Range(0, arrays.Length).Reverse()) // written out of order on purpose
            vars[i.ToString()] = new H5Dataset(arrays[i], fileDims: [(ulong)arrays[i].Length]);
        return new H5Group { ["vars"] = vars };
    }

    [Fact]
    public void Reads_keras_3_weights_files()
    {
        using var dir = new TempDir();
        var mha = Vars();
        mha["_query_dense"] = Vars(Values(4, 40), Values(2, 44));
        mha["_key_dense"] = Vars(Values(4, 50));
        var nested = Vars();
        nested["layers"] = new H5Group { ["input_layer"] = Vars(), ["dense"] = Vars(Values(6, 60), Values(3, 66)) };
        var layers = new H5Group
        {
            ["multi_head_attention"] = mha,
            ["conv2d_10"] = Vars(Values(2, 10)),
            ["conv2d_2"] = Vars(Values(2, 2)),
            ["re_lu"] = Vars(),
            ["conv2d"] = Vars(Values(4, 0), Values(2, 4)),
            ["functional"] = nested,
            ["batch_normalization"] = Vars(Values(2, 20), Values(2, 21), Values(2, 22), Values(2, 23)),
            ["conv2d_1"] = Vars(Values(2, 1)),
            ["my_block"] = Vars(Enumerable.Range(0, 11).Select(i => Values(1, 100 + i)).ToArray()),
        };
        var file = new H5File
        {
            ["vars"] = new H5Group(),
            ["optimizer"] = Vars(Values(1, 999)),
            ["layers"] = layers,
        };
        file.Write(dir["model.weights.h5"]);

        var weights = KerasH5Reader.Read(dir["model.weights.h5"]);
        Assert.Equal(KerasH5Reader.Keras3Format, weights.Format);
        Assert.Null(weights.KerasVersion);
        // Classes alphabetically, each class in its counter order; a layer's own arrays, then its sublayers.
        Assert.Equal(["batch_normalization", "conv2d", "conv2d_1", "conv2d_2", "conv2d_10", "functional/layers/dense",
            "multi_head_attention/_key_dense", "multi_head_attention/_query_dense", "my_block"], weights.Layers.Select(l => l.Layer));

        Assert.Equal(BatchNormNames, weights.Find("batch_normalization")!.Arrays.Select(a => a.Name));
        var conv = weights.Find("conv2d")!.Arrays;
        Assert.Equal(["kernel", "bias"], conv.Select(a => a.Name));
        Assert.Equal(Values(4, 0), conv[0].Values);
        Assert.Equal([4], conv[0].Shape);
        Assert.Equal(Values(2, 4), conv[1].Values);
        Assert.Equal(["kernel"], weights.Find("conv2d_10")!.Arrays.Select(a => a.Name));
        Assert.Equal(["kernel", "bias"], weights.Find("functional/layers/dense")!.Arrays.Select(a => a.Name));
        Assert.Equal(Values(3, 66), weights.Find("functional/layers/dense")!.Arrays[1].Values);
        // Sublayers held in attributes have no class in their path: their arrays keep Keras's numbers.
        Assert.Equal(["0", "1"], weights.Find("multi_head_attention/_query_dense")!.Arrays.Select(a => a.Name));
        var block = weights.Find("my_block")!.Arrays;
        Assert.Equal(Enumerable.Range(0, 11).Select(i => i.ToString()), block.Select(a => a.Name));
        Assert.Equal(Enumerable.Range(0, 11).Select(i => 100f + i), block.Select(a => a.Values[0]));
        Assert.DoesNotContain(weights.Layers.SelectMany(l => l.Arrays), a => a.Values.Contains(999f)); // optimizer state
    }

    [Fact]
    public void Reads_keras_2_13_weights_files()
    {
        using var dir = new TempDir();
        new H5File
        {
            ["vars"] = new H5Group(),
            ["_layer_checkpoint_dependencies"] = new H5Group { ["dense"] = Vars(Values(6, 1), Values(3, 7)), ["dense_1"] = Vars(Values(3, 9)) },
        }.Write(dir["old.weights.h5"]);

        var weights = KerasH5Reader.Read(dir["old.weights.h5"]);
        Assert.Equal(KerasH5Reader.Keras3Format, weights.Format);
        Assert.Equal(["dense", "dense_1"], weights.Layers.Select(l => l.Layer));
        Assert.Equal(Values(3, 7), weights.Find("dense")!.Arrays.Single(a => a.Name == "bias").Values);
    }

    // ---- Bad inputs ----

    [Fact]
    public void A_file_that_is_not_hdf5_is_a_graft_error()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["weights.h5"], "this is not an HDF5 file, just some text that is long enough to look at");
        var e = Assert.Throws<GraftException>(() => KerasH5Reader.Read(dir["weights.h5"]));
        Assert.Contains(dir["weights.h5"], e.Problem);
        Assert.Contains("not an HDF5 file", e.Problem);
        Assert.NotEmpty(e.Fix);
    }

    [Fact]
    public void Hdf5_without_keras_structure_is_a_graft_error()
    {
        using var dir = new TempDir();
        new H5File { ["data"] = new H5Group { ["x"] = new float[] { 1, 2 } }, Attributes = new() { ["title"] = "measurements" } }.Write(dir["data.h5"]);
        var e = Assert.Throws<GraftException>(() => KerasH5Reader.Read(dir["data.h5"]));
        Assert.Contains(dir["data.h5"], e.Problem);
        Assert.Contains("not a Keras weight file", e.Problem);
    }

    [Fact]
    public void A_missing_dataset_is_a_graft_error()
    {
        using var dir = new TempDir();
        var root = new H5Group();
        var conv = Layer(root, "conv1", SetNames, ["conv1/kernel:0", "conv1/bias:0"]);
        Put(conv, "conv1/kernel:0", KernelValues);
        SetNames(root, "layer_names", ["conv1"]);
        AsFile(root).Write(dir["partial.h5"]);

        var e = Assert.Throws<GraftException>(() => KerasH5Reader.Read(dir["partial.h5"]));
        Assert.Contains(dir["partial.h5"], e.Problem);
        Assert.Contains("conv1/conv1/bias:0", e.Problem);
    }

    [Fact]
    public void A_keras_file_without_weights_is_a_graft_error()
    {
        using var dir = new TempDir();
        var root = new H5Group();
        Layer(root, "input_1", SetNames, []);
        Layer(root, "flatten", SetNames, []);
        SetNames(root, "layer_names", ["input_1", "flatten"]);
        AsFile(root).Write(dir["empty.h5"]);

        var e = Assert.Throws<GraftException>(() => KerasH5Reader.Read(dir["empty.h5"]));
        Assert.Contains("without any weight arrays", e.Problem);
    }

    [Fact]
    public void A_missing_file_is_a_graft_error()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<GraftException>(() => KerasH5Reader.Read(dir["nothing.h5"]));
        Assert.Contains(dir["nothing.h5"], e.Problem);
    }
}
