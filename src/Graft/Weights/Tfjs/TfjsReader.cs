using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Graft.Weights.Tfjs;

/// <summary>
/// Reads a TF.js "layers" model (model.json plus binary shards, as tfjs-layers' <c>model.save</c> and
/// <c>tensorflowjs_converter --output_format tfjs_layers_model</c> write it) as <see cref="NamedWeights"/>.
/// TF.js keeps Keras's own array layouts, so arrays pass through unchanged apart from dequantization.
/// </summary>
internal static class TfjsReader
{
    public static NamedWeights Read(string modelJsonPath)
    {
        var root = ParseJson(modelJsonPath);
        if (root["format"] is JsonValue format && format.ToString() == "graph-model")
            throw new GraftException($"{modelJsonPath} is a TF.js graph model, which has no Keras layers to read weights by.",
                "Export a layers model instead (tensorflowjs_converter --output_format tfjs_layers_model, or model.save in TF.js).");
        if (root["weightsManifest"] is not JsonArray manifest)
            throw new GraftException($"{modelJsonPath} has no weightsManifest.", "Pass the model.json of a TF.js layers model.");

        // Converters wrap the Keras config as {keras_version, backend, model_config}; tfjs-layers saves it bare.
        var topologyRoot = root["modelTopology"] as JsonObject;
        var topology = topologyRoot?["model_config"] ?? topologyRoot;
        var layerOrder = new Dictionary<string, int>();
        CollectLayerNames(topology, layerOrder);

        // A weight is named "<layer>/<weight>", with outer scopes in front when it sits in a nested model. Its layer
        // is the innermost scope the topology names a layer (falling back to the innermost scope); layers that
        // would then share a name keep their full scope path.
        var groups = ReadManifest(modelJsonPath, manifest)
            .GroupBy(a => a.Name.LastIndexOf('/') is var slash and > 0 ? a.Name[..slash] : a.Name)
            .Select(g =>
            {
                var scopes = g.Key.Split('/');
                var arrays = g.Select(a => a with { Name = a.Name[(a.Name.LastIndexOf('/') + 1)..] }).ToList();
                return (Path: g.Key, Layer: scopes.LastOrDefault(layerOrder.ContainsKey) ?? scopes[^1], Arrays: arrays);
            }).ToList();
        var clashing = groups.GroupBy(g => g.Layer).Where(c => c.Count() > 1).Select(c => c.Key).ToHashSet();

        // Layers go in the topology's order, which is Keras's (its by-order loading relies on it); the manifest
        // need not follow it (the converted MobileNet lists its layers alphabetically). OrderBy is stable.
        var layers = groups
            .OrderBy(g => layerOrder.GetValueOrDefault(g.Layer, int.MaxValue))
            .Select(g => new LayerWeightSet(clashing.Contains(g.Layer) ? g.Path : g.Layer, g.Arrays))
            .ToList();

        string? version = (topologyRoot?["keras_version"] as JsonValue)?.ToString();
        string? backend = (topologyRoot?["backend"] as JsonValue)?.ToString();
        return new NamedWeights(modelJsonPath, "tfjs-layers", layers)
        {
            Topology = topology?.DeepClone(),
            KerasVersion = version is null ? null : backend is null ? version : $"{version} ({backend})",
        };
    }

    static JsonObject ParseJson(string path)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(path));
        }
        catch (IOException e)
        {
            throw new GraftException($"Cannot read {path}: {e.Message.TrimEnd('.')}.", "Check the path and permissions.");
        }
        catch (JsonException e)
        {
            throw new GraftException($"{path} is not valid JSON ({e.Message.TrimEnd('.')}).", "Pass the model.json of a TF.js layers model; download it again if it is cut short.");
        }
        return root as JsonObject ?? throw new GraftException($"{path} is not a TF.js model.json (its top level is not an object).",
            "Pass the model.json of a TF.js layers model.");
    }

    /// <summary>Layer names in the Keras config's order, containers before the layers they hold.</summary>
    static void CollectLayerNames(JsonNode? layer, Dictionary<string, int> order)
    {
        var config = (layer as JsonObject)?["config"];
        if (config is JsonObject c && c["name"] is JsonValue name) order.TryAdd(name.ToString(), order.Count);
        // Keras 2.0 Sequential configs are the bare list of layers.
        var children = config as JsonArray ?? (config as JsonObject)?["layers"] as JsonArray;
        foreach (var child in children ?? []) CollectLayerNames(child, order);
    }

    /// <summary>
    /// Decodes every weight of the manifest, in manifest order. Each group's shards are concatenated and hold the
    /// group's weights back to back; optimizer state saved alongside the model is skipped.
    /// </summary>
    static List<WeightArray> ReadManifest(string jsonPath, JsonArray manifest)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(jsonPath))!;
        var result = new List<WeightArray>();
        foreach (var group in manifest)
        {
            if (group is not JsonObject g || g["paths"] is not JsonArray paths || g["weights"] is not JsonArray weights)
                throw Malformed(jsonPath, "a weight group without paths or weights");
            var files = paths.Select(p => Path.Combine(dir, p?.ToString() ?? throw Malformed(jsonPath, "an empty shard path"))).ToList();
            var specs = weights.Select(w => WeightSpec.Parse(jsonPath, w)).ToList();

            var data = ReadShards(jsonPath, files);
            long needed = specs.Sum(s => s.ByteLength);
            if (data.Length < needed)
                throw new GraftException(
                    $"{jsonPath}: the weight shards {string.Join(", ", files.Select(Path.GetFileName))} hold {data.Length:N0} bytes, but their weights need {needed:N0}.",
                    "The download is incomplete: fetch the shard files again.");

            int offset = 0;
            foreach (var spec in specs)
            {
                var values = spec.Decode(data.AsSpan(offset, spec.ByteLength));
                offset += spec.ByteLength;
                if (spec.Group != "optimizer") result.Add(new WeightArray(spec.Name, spec.Shape, values));
            }
        }
        return result;
    }

    static byte[] ReadShards(string jsonPath, List<string> files)
    {
        var parts = files.Select(f =>
        {
            try { return File.ReadAllBytes(f); }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                throw new GraftException($"{jsonPath} lists the weight file {Path.GetFileName(f)}, which is missing ({f}).",
                    "Download every shard the model.json lists and keep them beside it.");
            }
            catch (IOException e)
            {
                throw new GraftException($"Cannot read the weight file {f}: {e.Message.TrimEnd('.')}.", "Check the path and permissions.");
            }
        }).ToList();
        var data = new byte[parts.Sum(p => (long)p.Length)];
        int at = 0;
        foreach (var p in parts) { p.CopyTo(data, at); at += p.Length; }
        return data;
    }

    static GraftException Malformed(string jsonPath, string what) =>
        new($"{jsonPath} has {what} in its weightsManifest.", "Pass the model.json of a TF.js layers model; download it again if it was edited or cut short.");

    /// <summary>One manifest entry: <c>{name, shape, dtype, group?, quantization?: {dtype, scale?, min?}}</c> (tfjs-core io/types.ts).</summary>
    sealed record WeightSpec(string Source, string Name, int[] Shape, string Dtype, string? Group,
        string? QuantDtype, double? Scale, double? Min)
    {
        public int Count { get; } = Shape.Aggregate(1, (a, b) => a * b);

        /// <summary>Bytes per stored value: the quantized type's when quantized, else the dtype's.</summary>
        int ValueSize => (QuantDtype, Dtype) switch
        {
            ("uint8", _) => 1,
            ("uint16" or "float16", _) => 2,
            (null, "float16") => 2,
            (null, "float32" or "int32") => 4,
            _ => throw new GraftException(
                $"{Source}: weight '{Name}' is stored as {QuantDtype ?? Dtype}, which Graft cannot read.",
                "Re-export the model with float32 weights (or uint8, uint16 or float16 quantization)."),
        };

        public int ByteLength => checked(Count * ValueSize);

        public static WeightSpec Parse(string source, JsonNode? w)
        {
            try
            {
                if (w?["name"]?.GetValue<string>() is not { } name || w["shape"] is not JsonArray shape)
                    throw Malformed(source, $"a weight without a name or shape ({w?.ToJsonString()})");
                var q = w["quantization"] as JsonObject;
                var dims = shape.Select(d => d!.GetValue<int>()).ToArray();
                // A shape is checked before anything is sized by it: no negative dimension, at most 2 GB of values.
                long count = 1;
                foreach (int d in dims)
                {
                    if (d < 0) throw Malformed(source, $"a weight '{name}' with a negative dimension ({shape.ToJsonString()})");
                    count *= d;
                    if (count > int.MaxValue / 4) throw Malformed(source, $"a weight '{name}' of impossible size ({shape.ToJsonString()})");
                }
                return new WeightSpec(source, name, dims,
                    w["dtype"]?.GetValue<string>() ?? "float32", w["group"]?.GetValue<string>(),
                    q?["dtype"]?.GetValue<string>(), q?["scale"]?.GetValue<double>(), q?["min"]?.GetValue<double>());
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException or NullReferenceException)
            {
                throw Malformed(source, $"a malformed weight entry ({w?.ToJsonString()})");
            }
        }

        /// <summary>Values as float32, following tfjs-core's decodeWeights: affine uint8/uint16 is q * scale + min.</summary>
        public float[] Decode(ReadOnlySpan<byte> bytes)
        {
            var values = new float[Count];
            switch (QuantDtype)
            {
                case "uint8" or "uint16":
                    // tfjs requires both for the affine types (only float16 quantization goes without them).
                    if (Scale is not { } scale || Min is not { } min)
                        throw new GraftException($"{Source}: weight '{Name}' is quantized to {QuantDtype} without its scale and min.",
                            "Re-export the model with the TF.js converter; its quantized weights always carry both.");
                    for (int i = 0; i < Count; i++)
                    {
                        int q = QuantDtype == "uint8" ? bytes[i] : BinaryPrimitives.ReadUInt16LittleEndian(bytes[(2 * i)..]);
                        double v = q * scale + min;
                        values[i] = (float)(Dtype == "int32" ? Math.Floor(v + 0.5) : v); // JS Math.round, as tfjs
                    }
                    return values;
                case "float16":
                    return Halves(bytes, values);
            }
            switch (Dtype)
            {
                case "float16":
                    return Halves(bytes, values);
                case "int32":
                    for (int i = 0; i < Count; i++) values[i] = BinaryPrimitives.ReadInt32LittleEndian(bytes[(4 * i)..]);
                    return values;
                default:
                    for (int i = 0; i < Count; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes[(4 * i)..]);
                    return values;
            }
        }

        static float[] Halves(ReadOnlySpan<byte> bytes, float[] values)
        {
            for (int i = 0; i < values.Length; i++) values[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(bytes[(2 * i)..]);
            return values;
        }
    }
}
