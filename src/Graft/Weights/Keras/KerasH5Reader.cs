using System.Text.Json;
using System.Text.Json.Nodes;
using PureHDF;
using PureHDF.VOL.Native;

namespace Graft.Weights.Keras;

/// <summary>
/// Reads the weights of a Keras HDF5 file, whichever of its three layouts it has:
/// <list type="bullet">
/// <item>Keras 1/2 <c>save_weights</c> (and the <c>keras.applications</c> files): a root <c>layer_names</c> attribute,
/// one group per layer whose <c>weight_names</c> attribute lists its arrays, each at <c>&lt;layer&gt;/&lt;weight name&gt;</c>;</item>
/// <item>Keras 1/2/3 <c>model.save('x.h5')</c>: the same under <c>model_weights</c>, plus the <c>model_config</c> JSON;</item>
/// <item>Keras 3 <c>.weights.h5</c> (and Keras 2.13's): <c>layers/&lt;layer&gt;/vars/0, 1, …</c> (see <see cref="Keras3Layout"/>).</item>
/// </list>
/// Arrays keep Keras's layout (conv kernels H x W x In x Out, …) and become float32.
/// </summary>
internal static class KerasH5Reader
{
    public const string LegacyFormat = "keras-h5";
    public const string Keras3Format = "keras3-weights-h5";

    public static NamedWeights Read(string path)
    {
        if (!File.Exists(path))
            throw new GraftException($"Keras weight file {path} does not exist.", "Check the path.");
        NativeFile file;
        try { file = H5File.OpenRead(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new GraftException($"Cannot read {path}: {Reason(e)}.", "Check the path and permissions.");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new GraftException($"{path} is not an HDF5 file ({Reason(e)}).",
                "Pass a Keras weight file (.h5 from model.save_weights or model.save, or a Keras 3 .weights.h5).");
        }
        using (file)
        {
            NamedWeights weights;
            try { weights = Read(file, path); }
            catch (Exception e) when (e is not (GraftException or OutOfMemoryException))
            {
                // PureHDF reports every structural problem (truncation, bad headers) as a plain Exception.
                throw new GraftException($"{path} is a damaged HDF5 file ({Reason(e)}).", "Download or save the file again.");
            }
            if (weights.Layers.Count == 0)
                throw new GraftException($"{path} is a Keras file without any weight arrays.", "Save the weights of a built model (call it on data first).");
            return weights;
        }
    }

    static NamedWeights Read(NativeFile file, string path)
    {
        if (ReadStringList(file, "layer_names", path) is { } layerNames)
            return new NamedWeights(path, LegacyFormat, ReadLegacyLayers(file, layerNames, path))
            {
                KerasVersion = KerasVersion(file, path),
            };

        if (file.LinkExists("model_weights"))
        {
            var group = file.Group("model_weights");
            var names = ReadStringList(group, "layer_names", path)
                ?? throw NotKeras(path, "its model_weights group has no layer_names attribute");
            return new NamedWeights(path, LegacyFormat, ReadLegacyLayers(group, names, path))
            {
                KerasVersion = KerasVersion(file, path) ?? KerasVersion(group, path),
                Topology = ReadTopology(file, path),
            };
        }

        if (Keras3Layout.Recognizes(file))
            return new NamedWeights(path, Keras3Format, Keras3Layout.ReadLayers(file, path));

        throw NotKeras(path, "it has no layer_names attribute, model_weights group or layers group");
    }

    /// <summary>
    /// Layers in <c>layer_names</c> order (Keras loads legacy files by that order); weightless layers are left out. A
    /// nested model (a Keras application inside a full model) is one group whose weight names carry its own layers'
    /// names ("conv1/kernel:0", "conv1_bn/gamma:0"): it comes out as one set per inner layer, in the file's order.
    /// </summary>
    static List<LayerWeightSet> ReadLegacyLayers(IH5Group root, IReadOnlyList<string> layerNames, string path)
    {
        var layers = new List<LayerWeightSet>();
        foreach (var layer in layerNames)
        {
            if (!root.LinkExists(layer) || root.Get(layer) is not IH5Group group)
                throw new GraftException($"{path} lists layer '{layer}' but has no group for it.", "The file is incomplete: save or download it again.");
            var weightNames = ReadStringList(group, "weight_names", path) ?? [];
            if (weightNames.Count == 0) continue;
            var arrays = new List<(string Scope, WeightArray Array)>(weightNames.Count);
            foreach (var weightName in weightNames)
            {
                // h5py turned the slashes of names such as "conv1/kernel:0" into nested groups.
                var datasetPath = $"{layer}/{weightName}";
                if (!root.LinkExists(datasetPath) || root.Get(datasetPath) is not IH5Dataset dataset)
                    throw new GraftException($"{path} lists weight '{weightName}' of layer '{layer}' but has no dataset {datasetPath}.",
                        "The file is incomplete: save or download it again.");
                var scopes = weightName.Split('/')[..^1];
                var scope = scopes.Length > 0 ? scopes[^1] : layer;
                arrays.Add((scope, ReadArray(dataset, KerasWeightNames.ShortName(scope, weightName), path, datasetPath)));
            }
            if (arrays.Select(a => a.Scope).Distinct().Count() == 1)
                layers.Add(new LayerWeightSet(layer, arrays.Select(a => a.Array).ToList()));
            else
                layers.AddRange(arrays.GroupBy(a => a.Scope).Select(g => new LayerWeightSet(g.Key, g.Select(a => a.Array).ToList())));
        }
        return layers;
    }

    /// <summary>A weight array with the dataset's shape and its values row-major as float32.</summary>
    internal static WeightArray ReadArray(IH5Dataset dataset, string name, string path, string datasetPath)
    {
        var shape = dataset.Space.Dimensions.Select(d => checked((int)d)).ToArray();
        var type = dataset.Type;
        float[] values = (type.Class, type.Size) switch
        {
            (H5DataTypeClass.FloatingPoint, 4) => dataset.Read<float[]>(),
            (H5DataTypeClass.FloatingPoint, 8) => Array.ConvertAll(dataset.Read<double[]>(), v => (float)v),
            (H5DataTypeClass.FloatingPoint, 2) => Array.ConvertAll(dataset.Read<Half[]>(), v => (float)v),
            // A Normalization layer's count of adapted samples (EfficientNet's files) is an int64 scalar.
            (H5DataTypeClass.FixedPoint, 8) => Array.ConvertAll(dataset.Read<long[]>(), v => (float)v),
            _ => throw new GraftException(
                $"{path}: dataset {datasetPath} holds {type.Size}-byte {type.Class} values; Graft reads float16, float32 and float64 weights (and int64 counts).",
                "Save the model's weights in float32 (Keras's default dtype policy)."),
        };
        return new WeightArray(name, shape, values);
    }

    /// <summary>
    /// A list-of-strings attribute, or null when absent. Keras splits one that would overflow HDF5's 64 KB object
    /// header into name0, name1, …; h5py wrote them as fixed-length byte strings, newer writers as variable-length
    /// strings (PureHDF decodes both as UTF-8 and drops the padding). An empty list is a 0-length float64 array.
    /// </summary>
    static IReadOnlyList<string>? ReadStringList(IH5Object owner, string name, string path)
    {
        if (owner.AttributeExists(name)) return ReadStrings(owner.Attribute(name), path);
        if (!owner.AttributeExists(name + "0")) return null;
        var all = new List<string>();
        for (int chunk = 0; owner.AttributeExists($"{name}{chunk}"); chunk++)
            all.AddRange(ReadStrings(owner.Attribute($"{name}{chunk}"), path));
        return all;
    }

    static string[] ReadStrings(IH5Attribute attribute, string path)
    {
        var space = attribute.Space;
        if (space.Type == H5DataspaceType.Null || space.Dimensions.Any(d => d == 0)) return [];
        if (attribute.Type.Class is not (H5DataTypeClass.String or H5DataTypeClass.VariableLength))
            throw NotKeras(path, $"its attribute '{attribute.Name}' holds {attribute.Type.Class} values, not names");
        return attribute.Read<string[]>();
    }

    static string? ReadString(IH5Object owner, string name, string path) =>
        ReadStringList(owner, name, path) is [var value, ..] ? value : null;

    static string? KerasVersion(IH5Object owner, string path)
    {
        var version = ReadString(owner, "keras_version", path);
        var backend = ReadString(owner, "backend", path);
        return version is null ? null : backend is null ? version : $"{version} ({backend})";
    }

    static JsonNode? ReadTopology(IH5Object root, string path)
    {
        if (ReadString(root, "model_config", path) is not { } json) return null;
        try { return JsonNode.Parse(json); }
        catch (JsonException e)
        {
            throw new GraftException($"{path} has a model_config that is not valid JSON ({Reason(e)}).", "Save the model again with model.save.");
        }
    }

    static string Reason(Exception e) => e.Message.TrimEnd('.');

    internal static GraftException NotKeras(string path, string why) =>
        new($"{path} is an HDF5 file but not a Keras weight file: {why}.",
            "Pass a file written by Keras's model.save_weights or model.save (.h5), or a Keras 3 .weights.h5.");
}
