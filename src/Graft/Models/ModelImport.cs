using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Graft.Backbones;
using Graft.Backbones.Architectures;
using Graft.Backbones.Layers;
using Graft.Data;
using Graft.Training;
using Graft.Weights;
using Graft.Weights.Keras;
using Graft.Imaging;
using Graft.Heads;
using Graft.Inference;
using static TorchSharp.torch;

namespace Graft.Models;

/// <summary>
/// Turns a whole trained Keras model into an <see cref="TrainableClassifier"/>: a Teachable Machine export or any TF.js
/// layers model.json, or a Keras full-model .h5 (<c>model.save</c>). The model must be a keras.applications trunk
/// (nested as a Model or inlined) under a head Graft's <see cref="HeadConfig"/> can express. The trunk is found by
/// trying registry networks against the file's weights (every weighted layer's name and shape); the head is read from
/// the Keras topology after the trunk's feature layer and its arrays copied into the head Graft builds. The result
/// predicts what the original predicts, saves as a normal model file and can be trained further.
/// </summary>
internal static class ModelImport
{
    /// <summary>The <see cref="ModelConfig.Strategy"/> of an imported model.</summary>
    public const string Strategy = "imported";

    /// <summary>torch's BatchNorm1d epsilon, which Graft's heads use; Keras's own epsilon is folded into the variance.</summary>
    const double TorchBatchNormEpsilon = 1e-5;

    static readonly string[] Augmentations =
        ["RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast", "RandomBrightness"];

    /// <summary>
    /// Imports the model at <paramref name="path"/>. Class names come from <paramref name="labelsFile"/> (one per line),
    /// else a Teachable Machine metadata.json beside a model.json, else class_0 … class_N-1. What was found and how it
    /// maps goes to <paramref name="log"/>; anything Graft cannot represent exactly is a <see cref="GraftException"/>
    /// that names the layer.
    /// </summary>
    public static TrainableClassifier Import(string path, string? labelsFile = null, Action<string>? log = null)
    {
        if (!File.Exists(path))
            throw new GraftException($"{path} does not exist.", "Pass a Keras model (.h5 from model.save) or a TF.js / Teachable Machine model.json.");
        if (IsZip(path))
            throw new GraftException($"{path} is a Keras 3 .keras archive, which Graft does not read.",
                "Save the model in the HDF5 format: model.save('model.h5').");
        Engine.TorchRuntime.EnsureInitialized();
        var weights = WeightReaders.Read(path);
        if (weights.Topology is not { } topologyJson) throw NoTopology(path, weights.Format);

        var topology = Topology.Of(topologyJson);
        var metadata = TeachableMachine.Read(path);
        int size = InputSize(path, topologyJson, metadata);

        var trunk = FindTrunk(path, weights, topology, size);
        var (config, architecture, network) = (trunk.Config, trunk.Architecture, trunk.Network);
        weights = trunk.Weights;
        log?.Invoke($"trunk: {config.Name} ({config.Description}) at {size}x{size}, ending at {config.FeatureLayer}");

        ImageSpec? folded;
        using (network)
        {
            var trunkNames = network.Nodes.Skip(1).Select(n => n.Name).ToHashSet();
            int first = topology.Leaves.FindIndex(l => trunkNames.Contains(l.Name));
            folded = ModelPreprocessing(path, topology.Leaves, first, size, log);
            var outside = topology.Leaves.Take(trunk.FeatureIndex).Skip(first)
                .Where(l => !trunkNames.Contains(l.Name) && l.Class != "InputLayer").Select(l => $"{l.Name} ({l.Class})").ToList();
            if (outside.Count > 0)
                log?.Invoke($"trunk layers Graft builds without a layer of their own (weightless, e.g. explicit padding): {string.Join(", ", outside.Take(5))}" +
                    (outside.Count > 5 ? $" and {outside.Count - 5} more" : ""));
        }

        var head = ReadHead(path, topology.Leaves.Skip(trunk.FeatureIndex + 1).Where(l => l.Class != "InputLayer").ToList(), weights);

        ImageSpec input;
        if (folded is { } spec) input = spec;
        else if (metadata is not null) input = ImageSpec.Uniform(size, 127f, 127f) with { Resize = ResizeMode.CenterCrop }; // TM: x / 127 - 1, centre square
        else input = config.Spec(size);
        log?.Invoke($"input: {size}x{size} {(input.Bgr ? "BGR" : "RGB")}, (pixel - {Numbers(input.Mean)}) / {Numbers(input.Std)}, " +
            (input.Resize == ResizeMode.CenterCrop ? "centre square" : "whole image squashed") +
            (folded is not null ? " (the model's own preprocessing layers)" : metadata is not null ? " (Teachable Machine's preprocessing)" : $" ({config.Name}'s preprocess_input)"));

        var backbone = Backbone.Create(config, architecture, input);
        try
        {
            var report = WeightLoading.Fill(backbone.Network, weights);
            log?.Invoke($"{config.Name}: {report}");
            var (channels, positions) = backbone.FeatureShape(size);
            var labels = Labels(path, labelsFile, metadata, head.Classes);
            var headConfig = head.Config(channels, positions);
            var module = headConfig.Build();
            try { head.CopyInto(path, module, channels, (int)Math.Round(Math.Sqrt(positions))); }
            catch { module.Dispose(); throw; }
            foreach (var note in head.Notes) log?.Invoke(note);
            log?.Invoke($"head: {headConfig.Describe()}; {labels.Count} classes: {string.Join(", ", labels.Take(10))}{(labels.Count > 10 ? ", …" : "")}");
            var model = new ModelConfig(ModelConfig.CurrentFormat, config.Name, AssetResolver.Sha256Of(path), input, labels, headConfig,
                Strategy, new FitOptions(Epochs: 0), null, DateTime.UtcNow) { Architecture = architecture };
            return new TrainableClassifier(model, backbone, module, []);
        }
        catch
        {
            backbone.Dispose();
            throw;
        }
    }

    static bool IsZip(string path)
    {
        Span<byte> head = stackalloc byte[4];
        using var stream = File.OpenRead(path);
        return stream.Read(head) == 4 && (head.SequenceEqual("PK\u0003\u0004"u8) || head.SequenceEqual("PK\u0005\u0006"u8)); // an entry, or an empty archive
    }

    static GraftException NoTopology(string path, string format)
    {
        string what = format switch
        {
            "tflite" => "a TFLite file: it holds a converted graph's weights but no Keras layers to read a classifier head from",
            KerasH5Reader.Keras3Format => "a Keras 3 weights file (.weights.h5): it holds weights but no model topology",
            _ => "a weights-only file (no model topology, as save_weights writes)",
        };
        return new GraftException($"{path} is {what}.",
            "Import the whole model: Keras model.save('model.h5') or a TF.js / Teachable Machine model.json (to train on these weights: graft train --backbone NAME --weights FILE).");
    }

    // ---- the Keras topology ----

    /// <summary>One non-container layer of the topology, with its config and its whole JSON (for inbound nodes).</summary>
    sealed record KerasLayer(string Name, string Class, JsonObject Config, JsonObject Json);

    /// <summary>The topology's layers with nested Models and Sequentials expanded, in config order.</summary>
    sealed record Topology(List<KerasLayer> Leaves)
    {
        public static Topology Of(JsonNode root)
        {
            var topology = new Topology([]);
            topology.Collect(root);
            return topology;
        }

        void Collect(JsonNode? node)
        {
            if (node is not JsonObject o) return;
            var config = o["config"];
            // Keras 2.0 Sequential configs are the bare list of layers.
            var children = config as JsonArray ?? (config as JsonObject)?["layers"] as JsonArray;
            string? name = Text(o["name"]) ?? Text((config as JsonObject)?["name"]);
            string cls = Text(o["class_name"]) ?? "";
            if (children is not null)
            {
                foreach (var child in children) Collect(child);
                return;
            }
            Leaves.Add(new KerasLayer(name ?? $"layer_{Leaves.Count}", cls, config as JsonObject ?? [], o));
        }
    }

    static string? Text(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    static double? Number(JsonNode? node) => node is JsonValue v && v.TryGetValue<double>(out var d) ? d : null;

    static bool Flag(JsonObject config, string key, bool fallback) =>
        config[key] is JsonValue v && v.TryGetValue<bool>(out var b) ? b : fallback;

    static string Numbers(float[] values) =>
        values.Distinct().Count() == 1 ? values[0].ToString("0.###", CultureInfo.InvariantCulture)
            : "[" + string.Join(", ", values.Select(v => v.ToString("0.###", CultureInfo.InvariantCulture))) + "]";

    /// <summary>The square input size: the topology's input shape, else Teachable Machine's imageSize, else 224.</summary>
    static int InputSize(string path, JsonNode topology, TeachableMachine? metadata)
    {
        var shapes = new List<int?[]>();
        FindInputShapes(topology, shapes);
        // The first input with a concrete size (an outer Input(shape=(None, None, 3)) leaves it to the nested trunk).
        if ((shapes.FirstOrDefault(s => s[1] is not null && s[2] is not null) ?? shapes.FirstOrDefault()) is { } shape)
        {
            if (shape[3] is { } c && c != 3)
                throw new GraftException($"{path} takes {c}-channel images; Graft's backbones take RGB (3 channels).", "Import a model trained on colour images.");
            if (shape[1] is { } h && shape[2] is { } w)
            {
                if (h != w) throw new GraftException($"{path} takes {h}x{w} images; Graft's models take square ones.", "Import a model with a square input.");
                return h;
            }
        }
        return metadata?.ImageSize ?? 224;
    }

    /// <summary>Every 4-dimensional batch_input_shape (Keras 2, TF.js) or batch_shape (Keras 3) in the topology, in order.</summary>
    static void FindInputShapes(JsonNode? node, List<int?[]> found)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var key in new[] { "batch_input_shape", "batch_shape" })
                    if (o[key] is JsonArray { Count: 4 } a)
                        found.Add(a.Select(d => Number(d) is { } v ? (int?)v : null).ToArray());
                foreach (var (_, child) in o) FindInputShapes(child, found);
                break;
            case JsonArray array:
                foreach (var child in array) FindInputShapes(child, found);
                break;
        }
    }

    // ---- the trunk ----

    sealed record TrunkMatch(BackboneConfig Config, ArchitectureOptions Architecture, NamedWeights Weights, Graph Network, int FeatureIndex);

    /// <summary>
    /// The registry network whose weighted layers are all in the file (names and shapes) and that, with the head after
    /// its feature layer, accounts for every weighted layer of the file; the first such row in registry order.
    /// </summary>
    static TrunkMatch FindTrunk(string path, NamedWeights fileWeights, Topology topology, int size)
    {
        var leafIndex = new Dictionary<string, int>();
        for (int i = 0; i < topology.Leaves.Count; i++) leafIndex.TryAdd(topology.Leaves[i].Name, i);
        var candidates = BackboneRegistry.All.Where(r => r.Pretrained && leafIndex.ContainsKey(r.FeatureLayer)).ToList();
        if (candidates.Count == 0)
            throw new GraftException($"{path}: no layer of the model is where a known backbone's trunk ends " +
                $"({string.Join(", ", BackboneRegistry.All.Where(r => r.Pretrained).Select(r => r.FeatureLayer).Distinct())}).",
                "Import a model built on a keras.applications network Graft knows (graft models), keeping its layer names.");

        (string Name, int Matched, int Total, string Example)? closest = null;
        string? partial = null;
        foreach (var row in candidates)
        {
            var architecture = new ArchitectureOptions(size);
            var weights = fileWeights;
            if (row.Filter is { } filter) (weights, architecture) = filter(weights, architecture);
            Graph network;
            try { network = row.Build(architecture); }
            catch (GraftException) { continue; } // e.g. an input too small for this network
            var stored = weights.Layers.Where(l => l.Arrays.Count > 0).GroupBy(l => l.Layer).ToDictionary(g => g.Key, g => g.First());
            var weighted = network.Layers.Where(l => l.KerasWeights.Count > 0).ToList();
            var misfits = weighted.Where(l => !stored.TryGetValue(l.Name, out var s) || !Fits(l, s)).ToList();
            if (misfits.Count > 0)
            {
                if (closest is null || weighted.Count - misfits.Count > closest.Value.Matched)
                    closest = (row.Name, weighted.Count - misfits.Count, weighted.Count, misfits[0].Name);
                network.Dispose();
                continue;
            }
            int feature = leafIndex[row.FeatureLayer];
            var explained = weighted.Select(l => l.Name).Concat(topology.Leaves.Skip(feature + 1).Select(l => l.Name)).ToHashSet();
            var unexplained = stored.Keys.Where(k => !explained.Contains(k)).ToList();
            if (unexplained.Count == 0) return new TrunkMatch(row, architecture, weights, network, feature);
            partial ??= $"{row.Name} matches, but the model has more weighted layers before its head: {string.Join(", ", unexplained.Take(5))}";
            network.Dispose();
        }
        if (partial is not null)
            throw new GraftException($"{path}: {partial}.", "Import a model whose trunk is a keras.applications network as Keras builds it.");
        throw new GraftException($"{path}: its weights fit none of Graft's backbones" +
            (closest is { } c ? $" (closest: {c.Name}, {c.Matched} of {c.Total} weighted layers fit; '{c.Example}' does not)." : "."),
            "Import a model built on a keras.applications network Graft knows (graft models), keeping its layer names.");
    }

    /// <summary>Same arrays in number and shape (leading ones aside, as a 1x1 convolution's kernel is a dense one).</summary>
    static bool Fits(Layer layer, LayerWeightSet stored) =>
        stored.Arrays.Count == layer.KerasWeights.Count &&
        stored.Arrays.Zip(layer.KerasWeights).All(p => p.First.Shape.SkipWhile(d => d == 1).Select(d => (long)d)
            .SequenceEqual(p.Second.Shape.SkipWhile(d => d == 1)));

    // ---- preprocessing inside the model ----

    /// <summary>
    /// The layers before the trunk: inputs and augmentation (identity at inference) are skipped, Rescaling and
    /// TFOpLambda arithmetic with a constant (preprocess_input inside the model) fold into the input mapping, a
    /// ZeroPadding2D right before the trunk is accepted where it equals TensorFlow's SAME padding of the stem
    /// convolution (older Keras applications). Returns the mapping when the model preprocesses itself.
    /// </summary>
    static ImageSpec? ModelPreprocessing(string path, List<KerasLayer> leaves, int first, int size, Action<string>? log)
    {
        double[] scale = [1, 1, 1], offset = [0, 0, 0];
        bool any = false;
        for (int i = 0; i < first; i++)
        {
            var layer = leaves[i];
            switch (layer.Class)
            {
                case "InputLayer":
                    continue;
                case var c when Augmentations.Contains(c):
                    log?.Invoke($"{layer.Name} ({c}): augmentation, nothing at inference");
                    continue;
                case "ZeroPadding2D" when i == first - 1 && IsStemSamePadding(layer, leaves[first], size):
                    continue;
                case "Rescaling":
                    {
                        var s = PerChannel(layer.Config["scale"], 1) ?? throw Unsupported(path, layer, "its scale is not a number or one per channel");
                        var o = PerChannel(layer.Config["offset"], 0) ?? throw Unsupported(path, layer, "its offset is not a number or one per channel");
                        for (int k = 0; k < 3; k++) { scale[k] *= s[k]; offset[k] = offset[k] * s[k] + o[k]; }
                        any = true;
                        continue;
                    }
                case "TFOpLambda":
                    {
                        var function = Text(layer.Config["function"]) ?? "";
                        var y = FindConstant(layer.Json["inbound_nodes"]) ?? throw Unsupported(path, layer, $"{function} has no constant operand");
                        for (int k = 0; k < 3; k++)
                            switch (function)
                            {
                                case "math.truediv" or "math.divide": scale[k] /= y; offset[k] /= y; break;
                                case "math.multiply": scale[k] *= y; offset[k] *= y; break;
                                case "math.subtract": offset[k] -= y; break;
                                case "math.add" or "__operators__.add": offset[k] += y; break;
                                default: throw Unsupported(path, layer, $"Graft reads only arithmetic with a constant here, not {function}");
                            }
                        any = true;
                        continue;
                    }
                default:
                    throw Unsupported(path, layer, "it comes before the trunk and is not input scaling (Rescaling, x / c - c) or augmentation");
            }
        }
        if (!any) return null;
        if (scale.Any(s => s <= 0))
            throw new GraftException($"{path}: the model's input scaling multiplies by {string.Join(", ", scale)}.", "Import a model whose preprocessing scales by a positive factor.");
        // x' = scale * p + offset = (p - mean) / std with std = 1 / scale, mean = -offset / scale.
        return new ImageSpec(size, offset.Zip(scale, (o, s) => (float)(-o / s) + 0f).ToArray(), scale.Select(s => (float)(1 / s)).ToArray());
    }

    static double[]? PerChannel(JsonNode? node, double fallback) => node switch
    {
        null => [fallback, fallback, fallback],
        JsonArray { Count: 3 } a when a.All(v => Number(v) is not null) => a.Select(v => Number(v)!.Value).ToArray(),
        JsonArray { Count: 1 } a when Number(a[0]) is { } one => [one, one, one],
        _ when Number(node) is { } v => [v, v, v],
        _ => null,
    };

    /// <summary>The scalar "y" operand of a TFOpLambda call (Keras 2 keeps it in the inbound node's keyword arguments).</summary>
    static double? FindConstant(JsonNode? node) => node switch
    {
        JsonObject o when Number(o["y"]) is { } y => y,
        JsonObject o => o.Select(p => FindConstant(p.Value)).FirstOrDefault(v => v is not null),
        JsonArray a => a.Select(FindConstant).FirstOrDefault(v => v is not null),
        _ => null,
    };

    static bool IsStemSamePadding(KerasLayer pad, KerasLayer conv, int size)
    {
        if (pad.Config["padding"] is not JsonArray { Count: 2 } p || p[0] is not JsonArray { Count: 2 } rows || p[1] is not JsonArray { Count: 2 } cols)
            return false;
        int kernel = conv.Config["kernel_size"] is JsonArray k && Number(k[0]) is { } kv ? (int)kv : 0;
        int stride = conv.Config["strides"] is JsonArray s && Number(s[0]) is { } sv ? (int)sv : 1;
        if (kernel == 0 || Text(conv.Config["padding"]) != "valid") return false;
        var (before, after) = Windows.SamePadding(size, kernel, stride);
        return Number(rows[0]) == before && Number(rows[1]) == after && Number(cols[0]) == before && Number(cols[1]) == after;
    }

    static GraftException Unsupported(string path, KerasLayer layer, string why) =>
        new($"{path}: layer '{layer.Name}' ({layer.Class}) cannot be imported: {why}.",
            "Graft imports a keras.applications trunk with a head of GlobalAveragePooling2D or Flatten, Dropout, BatchNormalization and at most two Dense layers.");

    // ---- the head ----

    sealed record DenseLayer(KerasLayer Layer, int Units, string Activation, float[] Kernel, int Inputs, float[]? Bias);

    /// <summary>Keras batch-norm arrays, gamma and beta filled in when the layer has no scale or center.</summary>
    sealed record BatchNormLayer(KerasLayer Layer, float[] Gamma, float[] Beta, float[] Mean, float[] Variance, double Epsilon);

    /// <summary>The head as read: pooling, [batch norm], [hidden dense ReLU, [batch norm]], dropout, the output dense.</summary>
    sealed record Head(Pooling Pooling, BatchNormLayer? Norm, DenseLayer? Hidden, BatchNormLayer? HiddenNorm, DenseLayer Output,
        double Dropout, bool Binary, List<string> Notes)
    {
        public int Classes => Binary ? 2 : Output.Units;

        public HeadConfig Config(int channels, int positions) =>
            new(Pooling == Pooling.Gap ? channels : channels * positions, Classes, Hidden?.Units ?? 0, Dropout, Norm is not null || HiddenNorm is not null, Pooling)
            {
                Binary = Binary,
                TrunkChannels = channels,
            };

        /// <summary>Copies the Keras arrays into the modules <see cref="HeadConfig.Build"/> made (Dense In x Out → Linear [Out, In]).</summary>
        public void CopyInto(string path, TorchSharp.torch.nn.Module<Tensor, Tensor> module, int channels, int side)
        {
            int width = Pooling == Pooling.Gap ? channels : channels * side * side;
            // Keras flattens an NHWC map (channels fastest), Graft an NCHW one: order[graft index] = Keras index.
            int[]? order = Pooling == Pooling.Gap ? null
                : Enumerable.Range(0, width).Select(g => { int c = g / (side * side), hw = g % (side * side); return hw * channels + c; }).ToArray();
            var state = module.state_dict();
            using var _ = no_grad();
            void Set(string key, float[] values)
            {
                var target = state[key];
                target.copy_(tensor(values, target.shape, device: target.device));
            }
            void SetNorm(string prefix, BatchNormLayer? norm, int features, int[]? rows)
            {
                if (norm is null)
                {
                    // Graft puts batch norm in both places or neither: the place Keras had none gets an identity.
                    Set(prefix + ".weight", Filled(features, 1));
                    Set(prefix + ".bias", Filled(features, 0));
                    Set(prefix + ".running_mean", Filled(features, 0));
                    Set(prefix + ".running_var", Filled(features, (float)(1 - TorchBatchNormEpsilon)));
                    return;
                }
                if (norm.Mean.Length != features)
                    throw new GraftException($"{path}: batch norm '{norm.Layer.Name}' has {norm.Mean.Length} channels where the head has {features} values.", "Import a model whose head Graft can express.");
                Set(prefix + ".weight", Permute(norm.Gamma, rows));
                Set(prefix + ".bias", Permute(norm.Beta, rows));
                Set(prefix + ".running_mean", Permute(norm.Mean, rows));
                // (x - mean) / sqrt(var + eps_keras) = (x - mean) / sqrt(var' + eps_torch) with var' = var + eps_keras - eps_torch.
                Set(prefix + ".running_var", Permute(norm.Variance.Select(v => (float)Math.Max(0, v + norm.Epsilon - TorchBatchNormEpsilon)).ToArray(), rows));
            }
            void SetDense(string prefix, DenseLayer dense, int inputs, int[]? rows)
            {
                if (dense.Inputs != inputs)
                    throw new GraftException($"{path}: dense layer '{dense.Layer.Name}' takes {dense.Inputs} inputs where the trunk and head give {inputs}.",
                        "Import a model whose head fits its trunk's output at this input size.");
                int units = dense.Units;
                var weight = new float[units * inputs];
                for (int i = 0; i < inputs; i++)
                {
                    int source = rows is null ? i : rows[i];
                    for (int o = 0; o < units; o++) weight[o * inputs + i] = dense.Kernel[source * units + o];
                }
                Set(prefix + ".weight", weight);
                Set(prefix + ".bias", dense.Bias ?? new float[units]);
            }

            bool batchNorm = Norm is not null || HiddenNorm is not null;
            if (batchNorm) SetNorm("batch_norm", Norm, width, order);
            if (Hidden is not null)
            {
                SetDense("dense", Hidden, width, order);
                if (batchNorm) SetNorm("dense_batch_norm", HiddenNorm, Hidden.Units, null);
                SetDense("predictions", Output, Hidden.Units, null);
            }
            else
            {
                SetDense("predictions", Output, width, order);
            }
        }

        static float[] Filled(int n, float value) => Enumerable.Repeat(value, n).ToArray();
        static float[] Permute(float[] values, int[]? rows) => rows is null ? values : rows.Select(r => values[r]).ToArray();
    }

    /// <summary>
    /// Reads the layers after the trunk as Graft's head: GlobalAveragePooling2D or Flatten; then, with dropout
    /// anywhere (identity at inference), [BatchNormalization] [Dense ReLU [BatchNormalization]] Dense softmax (or
    /// one sigmoid unit). An activation may be its own layer after its Dense.
    /// </summary>
    static Head ReadHead(string path, List<KerasLayer> layers, NamedWeights weights)
    {
        if (layers.Count == 0)
            throw new GraftException($"{path} has no classifier head: the model ends with its trunk.",
                "Import a model with its classifier (pooling and Dense layers after the trunk), or train one with graft train --weights FILE.");
        var pool = layers[0];
        Pooling pooling = pool.Class switch
        {
            "GlobalAveragePooling2D" when Flag(pool.Config, "keepdims", false) => throw Unsupported(path, pool, "it keeps the spatial dimensions (keepdims)"),
            "GlobalAveragePooling2D" => Pooling.Gap,
            "Flatten" => Pooling.Flatten,
            _ => throw Unsupported(path, pool, "the head must start with GlobalAveragePooling2D or Flatten"),
        };
        if (Text(pool.Config["data_format"]) is "channels_first")
            throw Unsupported(path, pool, "it pools channels-first maps");

        var notes = new List<string>();
        var dense = new List<DenseLayer>();
        var norms = new List<(BatchNormLayer Norm, int AfterDense)>();
        var dropouts = new List<(KerasLayer Layer, double Rate, int AfterDense)>();
        bool pendingActivation = false; // the last dense is linear and nothing but dropout has followed it
        foreach (var layer in layers.Skip(1))
        {
            switch (layer.Class)
            {
                case "Dropout":
                    dropouts.Add((layer, Number(layer.Config["rate"]) ?? 0, dense.Count));
                    break;
                case "BatchNormalization":
                    norms.Add((ReadNorm(path, layer, weights), dense.Count));
                    pendingActivation = false;
                    break;
                case "Dense":
                    if (dense.Count == 2) throw Unsupported(path, layer, "Graft's head has at most two Dense layers");
                    dense.Add(ReadDense(path, layer, weights));
                    pendingActivation = dense[^1].Activation == "linear";
                    break;
                case "Activation" or "ReLU" or "Softmax":
                    {
                        var activation = layer.Class switch
                        {
                            "Activation" => Text(layer.Config["activation"]) ?? "",
                            "Softmax" => "softmax",
                            _ => Number(layer.Config["max_value"]) is null && (Number(layer.Config["negative_slope"]) ?? 0) == 0
                                && (Number(layer.Config["threshold"]) ?? 0) == 0 ? "relu" : "clipped or leaky relu",
                        };
                        if (!pendingActivation)
                            throw Unsupported(path, layer, "an activation is only understood right after a linear Dense layer");
                        dense[^1] = dense[^1] with { Activation = activation };
                        pendingActivation = false;
                        break;
                    }
                default:
                    throw Unsupported(path, layer, "Graft's head has pooling, Dropout, BatchNormalization and Dense layers only");
            }
        }
        if (dense.Count == 0)
            throw new GraftException($"{path} has no classifier head: no Dense layer follows the trunk.", "Import a model with its classifier.");

        var output = dense[^1];
        var hidden = dense.Count == 2 ? dense[0] : null;
        if (hidden is not null && hidden.Activation != "relu")
            throw Unsupported(path, hidden.Layer, $"a hidden Dense layer must use ReLU, and this one uses {hidden.Activation}");
        bool binary = output.Activation == "sigmoid";
        if (binary ? output.Units != 1 : output.Activation != "softmax" || output.Units < 2)
            throw Unsupported(path, output.Layer, $"the output must be Dense softmax (2 or more units) or Dense sigmoid (1 unit); it has {output.Units} unit(s) with {output.Activation}");

        BatchNormLayer? norm = null, hiddenNorm = null;
        foreach (var (n, after) in norms)
        {
            if (after == 0 && norm is null) norm = n;
            else if (after == 1 && hidden is not null && hiddenNorm is null) hiddenNorm = n;
            else throw Unsupported(path, n.Layer, after == dense.Count ? "batch norm after the output layer has no place in Graft's head"
                : "Graft's head has batch norm on the pooled features and after the hidden layer only, once each");
        }

        // Dropout is identity at inference; its rate matters only to further training. Graft's head has one dropout,
        // right before the output layer.
        var kept = dropouts.LastOrDefault(d => d.AfterDense == dense.Count - 1);
        double rate = kept.Layer is null ? 0 : kept.Rate;
        foreach (var (layer, r, _) in dropouts.Where(d => d.Layer != kept.Layer))
            notes.Add($"{layer.Name} (Dropout {r:0.##}): no such dropout in Graft's head; it does nothing at inference, so predictions are unchanged");
        return new Head(pooling, norm, hidden, hiddenNorm, output, rate, binary, notes);
    }

    static DenseLayer ReadDense(string path, KerasLayer layer, NamedWeights weights)
    {
        var arrays = Arrays(path, layer, weights);
        bool useBias = Flag(layer.Config, "use_bias", true);
        if (arrays.Count != (useBias ? 2 : 1) || arrays[0].Shape.Length != 2)
            throw Unsupported(path, layer, $"its weights are {string.Join(", ", arrays.Select(a => $"{a.Name} {a.ShapeText}"))}, not a 2-D kernel{(useBias ? " and a bias" : "")}");
        var kernel = arrays[0];
        int units = kernel.Shape[1];
        if (useBias && arrays[1].Values.Length != units)
            throw Unsupported(path, layer, $"its bias has {arrays[1].Values.Length} values for {units} units");
        var activation = layer.Config["activation"] is { } a ? Text(a) ?? a.ToJsonString() : "linear";
        return new DenseLayer(layer, units, activation, kernel.Values, kernel.Shape[0], useBias ? arrays[1].Values : null);
    }

    static BatchNormLayer ReadNorm(string path, KerasLayer layer, NamedWeights weights)
    {
        var arrays = Arrays(path, layer, weights);
        bool scale = Flag(layer.Config, "scale", true), center = Flag(layer.Config, "center", true);
        var axis = layer.Config["axis"];
        if (axis is not null && !(Number(axis) is -1 or 1) && !(axis is JsonArray { Count: 1 } a && Number(a[0]) is -1 or 1))
            throw Unsupported(path, layer, "it normalizes over an axis other than the features");
        int expected = 2 + (scale ? 1 : 0) + (center ? 1 : 0);
        if (arrays.Count != expected)
            throw Unsupported(path, layer, $"it has {arrays.Count} arrays where Keras's settings (scale {scale}, center {center}) give {expected}");
        int i = 0, n = arrays[^1].Values.Length;
        var gamma = scale ? arrays[i++].Values : Enumerable.Repeat(1f, n).ToArray();
        var beta = center ? arrays[i++].Values : new float[n];
        return new BatchNormLayer(layer, gamma, beta, arrays[i].Values, arrays[i + 1].Values, Number(layer.Config["epsilon"]) ?? 1e-3);
    }

    static IReadOnlyList<WeightArray> Arrays(string path, KerasLayer layer, NamedWeights weights) =>
        weights.Layers.FirstOrDefault(l => l.Layer == layer.Name && l.Arrays.Count > 0)?.Arrays
            ?? throw new GraftException($"{path}: the file has no weights for layer '{layer.Name}' ({layer.Class}).", "Save the model again with its weights (model.save).");

    // ---- labels ----

    static IReadOnlyList<string> Labels(string path, string? labelsFile, TeachableMachine? metadata, int classes)
    {
        IReadOnlyList<string> labels;
        string source;
        if (labelsFile is not null)
        {
            if (!File.Exists(labelsFile)) throw new GraftException($"Labels file {labelsFile} does not exist.", "Pass a text file with one class name per line.");
            labels = File.ReadAllLines(labelsFile).Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
            source = labelsFile;
        }
        else if (metadata?.Labels is { } tm)
        {
            labels = tm;
            source = metadata.Path;
        }
        else
        {
            return Enumerable.Range(0, classes).Select(i => $"class_{i}").ToList();
        }
        if (labels.Count != classes)
            throw new GraftException($"{source} names {labels.Count} classes and the model {path} has {classes}.", "Pass a labels file with one line per class, in the model's output order (--labels FILE).");
        if (labels.Distinct().Count() != labels.Count)
            throw new GraftException($"{source} names a class twice.", "Give every class a distinct name.");
        return labels;
    }

    /// <summary>A Teachable Machine export's metadata.json (beside its model.json).</summary>
    sealed record TeachableMachine(string Path, IReadOnlyList<string>? Labels, int? ImageSize)
    {
        public static TeachableMachine? Read(string modelPath)
        {
            if (!modelPath.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return null;
            var path = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(modelPath))!, "metadata.json");
            if (!File.Exists(path)) return null;
            JsonObject root;
            try { root = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new JsonException("not an object"); }
            catch (JsonException e)
            {
                throw new GraftException($"{path} is not valid JSON ({e.Message.TrimEnd('.')}).", "Export the model from Teachable Machine again, or remove the file.");
            }
            if (root["tmVersion"] is null && !(Text(root["packageName"]) ?? "").Contains("teachablemachine", StringComparison.OrdinalIgnoreCase)) return null;
            if (root["grayscale"] is JsonValue g && g.TryGetValue<bool>(out var gray) && gray)
                throw new GraftException($"{path}: this Teachable Machine model takes grayscale images; Graft's backbones take RGB.", "Train the Teachable Machine project in colour.");
            var labels = root["labels"] is JsonArray a ? a.Select(l => Text(l) ?? l?.ToJsonString() ?? "").ToList() : null;
            int? size = Number(root["imageSize"]) is { } s ? (int)s : null;
            return new TeachableMachine(path, labels, size);
        }
    }
}
