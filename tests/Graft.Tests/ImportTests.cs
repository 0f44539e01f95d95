using System.CommandLine;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Graft.Cli.Commands;
using Graft.Data;
using Graft.Models;
using Graft.Weights;
using Graft.Weights.Keras;
using Graft.Weights.Tfjs;
using Graft.Imaging;
using Graft.Inference;
using PureHDF;
using static TorchSharp.torch;

namespace Graft.Tests;

/// <summary>
/// graft import: whole Keras models (a Teachable Machine export, Keras full-model .h5 files) become normal Graft
/// models that predict what the originals predict. The references are independent: @tensorflow/tfjs running the
/// Teachable Machine model, and for .h5 files the keras-reference generator's own trunk outputs with the head
/// computed here in plain arithmetic.
/// </summary>
public class ImportTests(Xunit.Abstractions.ITestOutputHelper output)
{
    static string TeachableMachine => Assets.Shared("models/teachable-machine/model.json");

    static readonly string[] Images = ["cat.bmp", "grace_hopper.bmp", "hot_dog.jpg", "sunflower.bmp"];

    static float[] Probabilities(TrainableClassifier model, float[] chw, int count)
    {
        int size = model.Config.Input.Size;
        using var scope = NewDisposeScope();
        return model.Probabilities(tensor(chw, [count, 3, size, size])).data<float>().ToArray();
    }

    // ---- Teachable Machine ----

    [Fact]
    public void Teachable_machine_model_imports_and_predicts_as_tfjs_does()
    {
        using var dir = new TempDir();
        var log = new List<string>();
        using var model = ModelImport.Import(TeachableMachine, log: log.Add);

        Assert.Equal("mobilenet_v2_0.35", model.Config.Backbone);
        Assert.Equal(ModelImport.Strategy, model.Config.Strategy);
        Assert.Equal(["1", "2", "3"], model.Classes);
        Assert.Equal(410_208, model.Backbone.Trunk.Layers.Sum(l => l.KerasWeights.Sum(w => w.Shape.Aggregate(1L, (a, b) => a * b))));
        var head = model.Config.Head;
        Assert.Equal((1280, 3, 100, false, false), (head.InputChannels, head.Classes, head.Hidden, head.BatchNorm, head.Binary));
        // Teachable Machine crops the centre square and maps pixels with x / 127 - 1.
        Assert.Equal(224, model.Config.Input.Size);
        Assert.Equal([127f, 127f, 127f], model.Config.Input.Mean);
        Assert.Equal([127f, 127f, 127f], model.Config.Input.Std);
        Assert.Equal(ResizeMode.CenterCrop, model.Config.Input.Resize);
        Assert.Contains(log, l => l.Contains("loaded") && l.Contains("by name"));

        // The head holds the file's arrays: Keras's In x Out kernels transposed; the output layer has no bias in the file.
        var file = TfjsReader.Read(TeachableMachine);
        var state = model.Head.state_dict();
        AssertTransposed(file.Find("dense_Dense9")!.Arrays[0], state["dense.weight"]);
        Assert.Equal(file.Find("dense_Dense9")!.Arrays[1].Values, state["dense.bias"].data<float>().ToArray());
        Assert.Single(file.Find("dense_Dense10")!.Arrays);
        AssertTransposed(file.Find("dense_Dense10")!.Arrays[0], state["predictions.weight"]);
        Assert.All(state["predictions.bias"].data<float>().ToArray(), b => Assert.Equal(0f, b));

        // The same decoded pixels through tfjs (Teachable Machine's own normalization) and through the import.
        int size = 224, plane = size * size;
        var rgb = Images.Select(i => ImageLoader.LoadRgb(Assets.Shared($"images/imagenet/{i}"), size, ResizeMode.CenterCrop)).ToList();
        var expected = TfjsPredict(dir, TeachableMachine, rgb, size);
        var chw = new float[Images.Length * 3 * plane];
        for (int i = 0; i < Images.Length; i++) ImageLoader.Normalize(rgb[i], model.Config.Input, chw.AsSpan(i * 3 * plane, 3 * plane));
        var actual = Probabilities(model, chw, Images.Length);
        Assert.Equal(expected.Length, actual.Length);
        foreach (var line in log) output.WriteLine(line);
        output.WriteLine($"tfjs {string.Join(" ", expected)}; largest difference {expected.Zip(actual, (a, b) => Math.Abs(a - b)).Max():E2}");
        for (int k = 0; k < expected.Length; k++) Assert.True(Math.Abs(expected[k] - actual[k]) < 2e-5, $"probability {k}: tfjs {expected[k]}, Graft {actual[k]}");
        Assert.True(expected.Max() - expected.Min() > 0.1, "the reference probabilities should differ between classes and images");

        // A normal model file: saved and loaded, it gives the same probabilities.
        model.Save(dir["tm.graft"]);
        using var loaded = TrainableClassifier.Load(dir["tm.graft"]);
        Assert.Equal(ModelImport.Strategy, loaded.Config.Strategy);
        Assert.Equal(model.Classes, loaded.Classes);
        Assert.Equal(model.Config.Input, loaded.Config.Input with { Mean = model.Config.Input.Mean, Std = model.Config.Input.Std });
        var again = Probabilities(loaded, chw, Images.Length);
        for (int k = 0; k < actual.Length; k++) Assert.Equal(actual[k], again[k], 1e-6);
    }

    static void AssertTransposed(WeightArray keras, Tensor torchWeight)
    {
        int inputs = keras.Shape[0], units = keras.Shape[1];
        Assert.Equal([units, inputs], torchWeight.shape);
        var values = torchWeight.data<float>().ToArray();
        for (int i = 0; i < inputs; i++)
            for (int o = 0; o < units; o++)
                Assert.Equal(keras.Values[i * units + o], values[o * inputs + i]);
    }

    /// <summary>
    /// Runs the model.json with @tensorflow/tfjs (tests/keras-reference/node_modules): RGB bytes (N x S x S x 3) are
    /// normalized as Teachable Machine does (x / 127 - 1) and the model's softmax output is returned.
    /// </summary>
    static float[] TfjsPredict(TempDir dir, string modelJson, IReadOnlyList<byte[]> rgb, int size)
    {
        File.WriteAllBytes(dir["pixels.u8"], rgb.SelectMany(b => b).ToArray());
        File.WriteAllText(dir["predict.cjs"], """
            const [tfjs, modelJson, pixels, count, size, out] = process.argv.slice(2);
            const tf = require(tfjs);
            const fs = require('fs'), path = require('path');
            const handler = { load: async () => {
              const json = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
              const data = Buffer.concat(json.weightsManifest.flatMap(g => g.paths.map(p => fs.readFileSync(path.join(path.dirname(modelJson), p)))));
              return { modelTopology: json.modelTopology, weightSpecs: json.weightsManifest.flatMap(g => g.weights),
                       weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) };
            } };
            (async () => {
              const model = await tf.loadLayersModel(handler);
              const bytes = fs.readFileSync(pixels);
              const x = tf.tensor4d(Int32Array.from(bytes), [+count, +size, +size, 3], 'int32').toFloat().div(tf.scalar(127)).sub(tf.scalar(1));
              const y = model.predict(x).dataSync();
              fs.writeFileSync(out, Buffer.from(y.buffer, y.byteOffset, y.byteLength));
            })().catch(e => { console.error(e); process.exit(1); });
            """);
        var tfjs = Path.Combine(KerasReference.Generator, "node_modules", "@tensorflow", "tfjs");
        KerasReference.Run("node", [dir["predict.cjs"], tfjs, modelJson, dir["pixels.u8"], rgb.Count.ToString(), size.ToString(), dir["probs.f32"]], dir.Path);
        var bytes = File.ReadAllBytes(dir["probs.f32"]);
        var values = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        return values;
    }

    // ---- Keras full-model .h5 files ----

    /// <summary>The keras-reference case mobilenet_a025_67 (MobileNet 0.25 at 67x67, seeded weights).</summary>
    static string Fixture => Path.Combine(KerasReference.Folder, "mobilenet_a025_67");

    static float[] ReadF32(string file)
    {
        var bytes = File.ReadAllBytes(Path.Combine(Fixture, file));
        var values = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        return values;
    }

    /// <summary>The generator's input [2,67,67,3] NHWC, as Graft's NCHW.</summary>
    static float[] FixtureInput()
    {
        var nhwc = ReadF32("input.f32");
        using var t = tensor(nhwc, [2, 67, 67, 3]).permute(0, 3, 1, 2).contiguous();
        return t.data<float>().ToArray();
    }

    [Fact]
    public void A_keras_model_with_only_a_trunk_is_refused()
    {
        var e = Assert.Throws<GraftException>(() => ModelImport.Import(Path.Combine(Fixture, "keras_model.h5")));
        Assert.Contains("no classifier head", e.Problem);
        Assert.Contains("keras_model.h5", e.Problem);
    }

    [Fact]
    public void Weights_only_files_are_refused_in_one_line()
    {
        var legacy = Assert.Throws<GraftException>(() => ModelImport.Import(Path.Combine(Fixture, "keras_legacy.h5")));
        Assert.Contains("no model topology", legacy.Problem);
        var tflite = Assert.Throws<GraftException>(() => ModelImport.Import(Assets.Shared("models/coral/tf2_mobilenet_v2_1.0_224_ptq.tflite")));
        Assert.Contains("TFLite", tflite.Problem);
        using var dir = new TempDir();
        using (var zip = System.IO.Compression.ZipFile.Open(dir["model.keras"], System.IO.Compression.ZipArchiveMode.Create))
            using (var entry = new StreamWriter(zip.CreateEntry("config.json").Open())) entry.Write("{}");
        var keras3 = Assert.Throws<GraftException>(() => ModelImport.Import(dir["model.keras"]));
        Assert.Contains(".keras archive", keras3.Problem);
        foreach (var e in new[] { legacy, tflite, keras3 }) Assert.DoesNotContain('\n', e.Message);
    }

    /// <summary>Seeded arrays for a synthetic head.</summary>
    sealed class Arrays(int seed)
    {
        readonly Random _rng = new(seed);
        public float[] Normal(int n, double std) => Enumerable.Range(0, n).Select(_ =>
            (float)(std * Math.Sqrt(-2 * Math.Log(1 - _rng.NextDouble())) * Math.Cos(2 * Math.PI * _rng.NextDouble()))).ToArray();
        public float[] Uniform(int n, double low, double high) => Enumerable.Range(0, n).Select(_ => (float)(low + (high - low) * _rng.NextDouble())).ToArray();
    }

    sealed record HeadLayer(JsonObject Json, (string Name, float[] Values, int[] Shape)[] Weights);

    static HeadLayer Layer(string cls, string name, JsonObject config, params (string, float[], int[])[] weights)
    {
        config["name"] = name;
        return new HeadLayer(new JsonObject { ["class_name"] = cls, ["name"] = name, ["config"] = config }, weights);
    }

    /// <summary>
    /// A Keras 2 full-model .h5 (model.save) from the fixture's trunk and the given layers: the trunk nested as one
    /// Model layer (its weights in one group, trainable arrays first as Keras saves them) or inlined (one group per
    /// layer); the given layers follow in a chain.
    /// </summary>
    static string WriteModel(TempDir dir, string file, bool nested, IReadOnlyList<HeadLayer> before, IReadOnlyList<HeadLayer> head)
    {
        var trunkFile = KerasH5Reader.Read(Path.Combine(Fixture, "keras_model.h5"));
        var trunkConfig = trunkFile.Topology!.DeepClone().AsObject();
        var trunkLayers = trunkConfig["config"]!["layers"]!.AsArray();
        string trunkName = trunkConfig["config"]!["name"]!.GetValue<string>();
        string trunkOutput = trunkLayers[^1]!["name"]!.GetValue<string>();
        var layers = new JsonArray();
        var layerNames = new List<string>();
        var groups = new H5Group();

        void AddGroup(string name, IEnumerable<(string WeightName, float[] Values, int[] Shape)> weights)
        {
            var group = new H5Group();
            var list = weights.ToList();
            group.Attributes["weight_names"] = list.Count == 0 ? new H5Attribute(Array.Empty<double>(), dimensions: [0]) : new H5Attribute(list.Select(w => w.WeightName).ToArray());
            foreach (var (weightName, values, shape) in list)
            {
                var parts = weightName.Split('/');
                var target = group;
                foreach (var part in parts[..^1])
                {
                    if (!target.TryGetValue(part, out var child)) target[part] = child = new H5Group();
                    target = (H5Group)child;
                }
                target[parts[^1]] = new H5Dataset(values, fileDims: shape.Select(d => (ulong)d).ToArray());
            }
            groups[name] = group;
            layerNames.Add(name);
        }
        static JsonArray Inbound(string from) => new(new JsonArray(new JsonArray(from, 0, 0, new JsonObject())));

        string previous;
        if (nested)
        {
            layers.Add(new JsonObject
            {
                ["class_name"] = "InputLayer", ["name"] = "input_2",
                ["config"] = new JsonObject { ["batch_input_shape"] = new JsonArray(null, 67, 67, 3), ["dtype"] = "float32", ["name"] = "input_2" },
                ["inbound_nodes"] = new JsonArray(),
            });
            AddGroup("input_2", []);
            previous = "input_2";
            foreach (var layer in before)
            {
                var json = (JsonObject)layer.Json.DeepClone();
                json["inbound_nodes"] = Inbound(previous);
                layers.Add(json);
                AddGroup(layer.Json["name"]!.GetValue<string>(), []);
                previous = layer.Json["name"]!.GetValue<string>();
            }
            trunkConfig["name"] = trunkName;
            trunkConfig["inbound_nodes"] = Inbound(previous);
            layers.Add(trunkConfig);
            // Keras saves a nested model's weights as one list: every trainable array, then the moving statistics.
            var all = trunkFile.Layers.SelectMany(l => l.Arrays.Select(a => (WeightName: $"{l.Layer}/{a.Name}:0", a.Values, a.Shape, Statistic: a.Name.StartsWith("moving_")))).ToList();
            AddGroup(trunkName, all.Where(w => !w.Statistic).Concat(all.Where(w => w.Statistic)).Select(w => (w.WeightName, w.Values, w.Shape)));
            previous = trunkName;
        }
        else
        {
            foreach (var layer in trunkLayers)
            {
                layers.Add(layer!.DeepClone());
                var name = layer["name"]!.GetValue<string>();
                AddGroup(name, trunkFile.Find(name)?.Arrays.Select(a => ($"{name}/{a.Name}:0", a.Values, a.Shape)) ?? []);
            }
            previous = trunkOutput;
        }
        foreach (var layer in head)
        {
            var json = (JsonObject)layer.Json.DeepClone();
            json["inbound_nodes"] = Inbound(previous);
            layers.Add(json);
            var name = layer.Json["name"]!.GetValue<string>();
            AddGroup(name, layer.Weights.Select(w => ($"{name}/{w.Name}:0", w.Values, w.Shape)));
            previous = name;
        }
        var inputName = nested ? "input_2" : trunkLayers[0]!["name"]!.GetValue<string>();
        var modelConfig = new JsonObject
        {
            ["class_name"] = "Functional",
            ["config"] = new JsonObject
            {
                ["name"] = "classifier", ["layers"] = layers,
                ["input_layers"] = new JsonArray(new JsonArray(inputName, 0, 0)),
                ["output_layers"] = new JsonArray(new JsonArray(previous, 0, 0)),
            },
        };
        groups.Attributes["layer_names"] = layerNames.ToArray();
        groups.Attributes["backend"] = "tensorflow";
        groups.Attributes["keras_version"] = "2.13.1";
        var h5 = new H5File
        {
            ["model_weights"] = groups,
            Attributes = new() { ["model_config"] = modelConfig.ToJsonString(), ["keras_version"] = "2.13.1", ["backend"] = "tensorflow" },
        };
        var path = dir[file];
        h5.Write(path);
        return path;
    }

    static double[] Dense(double[] x, float[] kernel, float[]? bias, int units)
    {
        var y = new double[units];
        for (int o = 0; o < units; o++)
        {
            double sum = bias?[o] ?? 0;
            for (int i = 0; i < x.Length; i++) sum += x[i] * kernel[i * units + o];
            y[o] = sum;
        }
        return y;
    }

    [Fact]
    public void Keras_model_with_a_nested_trunk_and_a_hidden_layer_predicts_as_computed()
    {
        using var dir = new TempDir();
        var r = new Arrays(7);
        const int channels = 256, hidden = 16, classes = 3;
        float[] gamma = r.Uniform(channels, 0.5, 1.5), beta = r.Normal(channels, 0.1), mean = r.Normal(channels, 0.3), variance = r.Uniform(channels, 0.2, 1.5);
        float[] k1 = r.Normal(channels * hidden, Math.Sqrt(2.0 / channels)), b1 = r.Normal(hidden, 0.1);
        float[] k2 = r.Normal(hidden * classes, Math.Sqrt(1.0 / hidden)), b2 = r.Normal(classes, 0.1);
        var path = WriteModel(dir, "nested.h5", nested: true,
            before:
            [
                Layer("RandomFlip", "random_flip", new JsonObject { ["mode"] = "horizontal" }),
                Layer("Rescaling", "rescaling", new JsonObject { ["scale"] = 1.0 / 255, ["offset"] = 0.0 }),
            ],
            head:
            [
                Layer("GlobalAveragePooling2D", "global_average_pooling2d", new JsonObject { ["data_format"] = "channels_last" }),
                Layer("BatchNormalization", "batch_normalization", new JsonObject { ["axis"] = new JsonArray(-1), ["epsilon"] = 0.001, ["center"] = true, ["scale"] = true },
                    ("gamma", gamma, [channels]), ("beta", beta, [channels]), ("moving_mean", mean, [channels]), ("moving_variance", variance, [channels])),
                Layer("Dense", "dense", new JsonObject { ["units"] = hidden, ["activation"] = "linear", ["use_bias"] = true },
                    ("kernel", k1, [channels, hidden]), ("bias", b1, [hidden])),
                Layer("ReLU", "re_lu", new JsonObject { ["max_value"] = null, ["negative_slope"] = 0.0, ["threshold"] = 0.0 }),
                Layer("Dropout", "dropout", new JsonObject { ["rate"] = 0.3 }),
                Layer("Dense", "predictions", new JsonObject { ["units"] = classes, ["activation"] = "softmax", ["use_bias"] = true },
                    ("kernel", k2, [hidden, classes]), ("bias", b2, [classes])),
            ]);
        File.WriteAllLines(dir["labels.txt"], ["ant", "bee", "wasp", ""]);

        var log = new List<string>();
        using var model = ModelImport.Import(path, dir["labels.txt"], log.Add);
        Assert.Equal("mobilenet_0.25", model.Config.Backbone);
        Assert.Equal(["ant", "bee", "wasp"], model.Classes);
        var head = model.Config.Head;
        Assert.Equal((256, 3, 16, 0.3, true, false), (head.InputChannels, head.Classes, head.Hidden, head.Dropout, head.BatchNorm, head.Binary));
        // Rescaling(1/255) inside the model: pixels reach the trunk as p / 255.
        Assert.Equal(67, model.Config.Input.Size);
        Assert.Equal([0f, 0f, 0f], model.Config.Input.Mean);
        Assert.All(model.Config.Input.Std, s => Assert.Equal(255f, s, 1e-3f));
        Assert.Contains(log, l => l.Contains("random_flip"));
        foreach (var line in log) output.WriteLine(line);

        // Expected: the generator's pooled trunk features, then the head in plain arithmetic.
        var pooled = ReadF32("pooled.f32");
        var actual = Probabilities(model, FixtureInput(), 2);
        for (int n = 0; n < 2; n++)
        {
            var x = Enumerable.Range(0, channels).Select(c => (pooled[n * channels + c] - mean[c]) / Math.Sqrt(variance[c] + 1e-3) * gamma[c] + beta[c]).ToArray();
            var h = Dense(x, k1, b1, hidden).Select(v => Math.Max(0, v)).ToArray();
            var logits = Dense(h, k2, b2, classes);
            var exp = logits.Select(v => Math.Exp(v - logits.Max())).ToArray();
            for (int c = 0; c < classes; c++)
                Assert.True(Math.Abs(exp[c] / exp.Sum() - actual[n * classes + c]) < 1e-4, $"image {n} class {c}: expected {exp[c] / exp.Sum()}, got {actual[n * classes + c]}");
        }
        Assert.True(actual.Max() - actual.Min() > 0.05, "the probabilities should not be uniform");

        model.Save(dir["nested.graft"]);
        using var loaded = TrainableClassifier.Load(dir["nested.graft"]);
        var again = Probabilities(loaded, FixtureInput(), 2);
        for (int k = 0; k < actual.Length; k++) Assert.Equal(actual[k], again[k], 1e-6);

        // It trains on as any Graft head: every head parameter gets a gradient.
        loaded.Head.train();
        using (var scope = NewDisposeScope())
        {
            var features = loaded.Trunk.Features(tensor(FixtureInput(), [2, 3, 67, 67]));
            Graft.Heads.Objective.Loss(loaded.Head.forward(features), tensor(new long[] { 0, 2 })).backward();
            Assert.All(loaded.Head.parameters(), p => Assert.True(p.grad is { } g && g.abs().sum().item<float>() > 0));
        }
    }

    [Fact]
    public void Keras_model_with_an_inlined_trunk_flatten_and_a_sigmoid_output_predicts_as_computed()
    {
        using var dir = new TempDir();
        var r = new Arrays(11);
        const int features = 2 * 2 * 256;
        float[] kernel = r.Normal(features, Math.Sqrt(1.0 / features)), bias = [0.2f];
        var path = WriteModel(dir, "inlined.h5", nested: false, before: [],
            head:
            [
                Layer("Flatten", "flatten", new JsonObject { ["data_format"] = "channels_last" }),
                Layer("Dropout", "dropout", new JsonObject { ["rate"] = 0.5 }),
                Layer("Dense", "dense", new JsonObject { ["units"] = 1, ["activation"] = "sigmoid", ["use_bias"] = true },
                    ("kernel", kernel, [features, 1]), ("bias", bias, [1])),
            ]);

        using var model = ModelImport.Import(path);
        Assert.Equal("mobilenet_0.25", model.Config.Backbone);
        Assert.Equal(["class_0", "class_1"], model.Classes);
        var head = model.Config.Head;
        Assert.Equal((features, 2, 0, 0.5, true, Graft.Heads.Pooling.Flatten), (head.InputChannels, head.Classes, head.Hidden, head.Dropout, head.Binary, head.Pooling));
        Assert.Equal([127.5f, 127.5f, 127.5f], model.Config.Input.Mean); // mobilenet's preprocess_input, applied outside the model

        // Keras flattens the NHWC map, channels fastest: the generator's features file is in that order.
        var map = ReadF32("features.f32");
        var actual = Probabilities(model, FixtureInput(), 2);
        for (int n = 0; n < 2; n++)
        {
            var x = map.Skip(n * features).Take(features).Select(v => (double)v).ToArray();
            double p = 1 / (1 + Math.Exp(-Dense(x, kernel, bias, 1)[0]));
            Assert.True(Math.Abs(1 - p - actual[n * 2]) < 1e-4 && Math.Abs(p - actual[n * 2 + 1]) < 1e-4, $"image {n}: expected {p}, got {actual[n * 2 + 1]}");
        }

        model.Save(dir["inlined.graft"]);
        using var loaded = TrainableClassifier.Load(dir["inlined.graft"]);
        var again = Probabilities(loaded, FixtureInput(), 2);
        for (int k = 0; k < actual.Length; k++) Assert.Equal(actual[k], again[k], 1e-6);
    }

    [Theory]
    [InlineData("GlobalMaxPooling2D", "global_max_pooling2d")]
    [InlineData("Dense3", "dense_2")]
    [InlineData("Tanh", "dense")]
    public void Heads_graft_cannot_express_are_refused_naming_the_layer(string kind, string layer)
    {
        using var dir = new TempDir();
        var r = new Arrays(3);
        HeadLayer Dense(string name, int inputs, int units, string activation) => Layer("Dense", name,
            new JsonObject { ["units"] = units, ["activation"] = activation, ["use_bias"] = true },
            ("kernel", r.Normal(inputs * units, 0.1), [inputs, units]), ("bias", r.Normal(units, 0.1), [units]));
        var gap = Layer("GlobalAveragePooling2D", "global_average_pooling2d", new JsonObject());
        HeadLayer[] head = kind switch
        {
            "GlobalMaxPooling2D" => [Layer("GlobalMaxPooling2D", "global_max_pooling2d", new JsonObject()), Dense("dense", 256, 3, "softmax")],
            "Dense3" => [gap, Dense("dense", 256, 8, "relu"), Dense("dense_1", 8, 8, "relu"), Dense("dense_2", 8, 3, "softmax")],
            _ => [gap, Dense("dense", 256, 8, "tanh"), Dense("dense_1", 8, 3, "softmax")],
        };
        var path = WriteModel(dir, "bad.h5", nested: false, before: [], head: head);
        var e = Assert.Throws<GraftException>(() => ModelImport.Import(path));
        Assert.Contains($"'{layer}'", e.Problem);
    }

    // ---- the command line ----

    [Fact]
    public async Task Import_then_predict_from_the_command_line()
    {
        using var dir = new TempDir();
        var model = dir["tm.graft"];
        // The import command runs in this process (its registration in Program.cs is the CLI's); predict runs as users run it.
        var stdout = new StringWriter();
        var console = Console.Out;
        Console.SetOut(stdout);
        int exit;
        try
        {
            exit = await new RootCommand { ImportCommand.Create() }.Parse(["import", TeachableMachine, "--out", model, "--json"]).InvokeAsync();
        }
        finally
        {
            Console.SetOut(console);
        }
        Assert.Equal(0, exit);
        var imported = JsonDocument.Parse(stdout.ToString().TrimEnd().Split('\n')[^1]).RootElement;
        Assert.Equal(model, imported.GetProperty("model").GetString());
        Assert.Equal("mobilenet_v2_0.35", imported.GetProperty("backbone").GetString());
        Assert.Equal(410_208, imported.GetProperty("trunk_params").GetInt64());
        Assert.Equal(["1", "2", "3"], imported.GetProperty("classes").EnumerateArray().Select(c => c.GetString()));

        var predict = GraftCli.Run(null, "predict", model, Assets.Shared("images/imagenet/cat.bmp"), "--json");
        Assert.True(predict.ExitCode == 0, predict.Stderr);
        var p = JsonDocument.Parse(predict.LastLine).RootElement.GetProperty("predictions")[0];
        Assert.Contains(p.GetProperty("label").GetString(), new[] { "1", "2", "3" });
        Assert.Equal(3, p.GetProperty("top").GetArrayLength());

        using var direct = ModelImport.Import(TeachableMachine);
        var expected = await direct.PredictAsync([Assets.Shared("images/imagenet/cat.bmp")], 3, []);
        Assert.Equal(expected[0].Label, p.GetProperty("label").GetString());
        Assert.Equal(expected[0].Confidence, p.GetProperty("confidence").GetSingle(), 1e-5f);
    }
}
