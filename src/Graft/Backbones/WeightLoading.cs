using System.Text.RegularExpressions;
using Graft.Backbones.Layers;
using Graft.Weights;

namespace Graft.Backbones;

/// <summary>
/// Fills a network's layers from a weight file. By name when every weighted layer of the network is in the file
/// (a file's extra layers, such as the ImageNet top of a network built without it, are left unused); Keras 3
/// weight files name layers by class and counter (conv2d, conv2d_1, …), which is matched the same way; otherwise
/// by Keras's own rule: weighted layers in Keras's layer order, every array's shape checked. The description says
/// which rule was used; a file that fits neither way fails naming what is missing and what differs.
/// </summary>
internal static class WeightLoading
{
    public static string Fill(Graph network, NamedWeights file)
    {
        var order = network.KerasOrder();
        var keys = file.Format == Weights.Keras.KerasH5Reader.Keras3Format ? Keras3Keys(order) : order.ToDictionary(n => n.Name, n => n.Name);
        var layers = order.Select(n => n.Layer).OfType<Layer>().Where(l => l.KerasWeights.Count > 0).ToList();
        var stored = file.Layers.Where(l => l.Arrays.Count > 0).ToList();
        var byName = stored.GroupBy(l => l.Layer).ToDictionary(g => g.Key, g => g.First());
        var missing = layers.Where(l => !byName.ContainsKey(keys[l.Name])).Select(l => keys[l.Name]).ToList();
        if (missing.Count == 0)
        {
            var problems = layers.Select(l => Mismatch(l, byName[keys[l.Name]])).OfType<string>().ToList();
            if (problems.Count > 0)
                throw new GraftException($"{file.Source}: {problems[0]}{More(problems)}", "Check that the file is for this network and width (graft models).");
            foreach (var layer in layers) layer.Load(Shaped(layer, byName[keys[layer.Name]]));
            var used = layers.Select(l => keys[l.Name]).ToHashSet();
            var unused = stored.Where(l => !used.Contains(l.Layer)).Select(l => l.Layer).ToList();
            return $"loaded {layers.Count} layers by {(file.Format == Weights.Keras.KerasH5Reader.Keras3Format ? "Keras 3's class-and-counter names" : "name")}" +
                (unused.Count > 0 ? $"; not used: {Names(unused)}" : "");
        }

        string byNameProblem = $"by name, {missing.Count} of {layers.Count} weighted layers are missing ({Names(missing)})";
        if (stored.Count < layers.Count)
            throw new GraftException($"{file.Source}: {byNameProblem}; by Keras's layer order, the file has {stored.Count} weighted layers and the network {layers.Count}.",
                "Check that the file is for this network and width (graft models).");
        for (int i = 0; i < layers.Count; i++)
            if (Mismatch(layers[i], stored[i]) is { } problem)
                throw new GraftException($"{file.Source}: {byNameProblem}; by Keras's layer order, weighted layer {i + 1} ('{stored[i].Layer}' for '{layers[i].Name}') {problem}",
                    "Check that the file is for this network and width (graft models).");
        for (int i = 0; i < layers.Count; i++) layers[i].Load(Shaped(layers[i], stored[i]));
        int extra = stored.Count - layers.Count;
        return $"loaded {layers.Count} layers by Keras's layer order (the file's names differ, e.g. '{stored[0].Layer}' for '{layers[0].Name}'; every shape checked)" +
            (extra > 0 ? $"; not used: {Names(stored.Skip(layers.Count).Select(l => l.Layer).ToList())}" : "");
    }

    /// <summary>Why the stored arrays do not fit the layer, or null when they do.</summary>
    static string? Mismatch(Layer layer, LayerWeightSet stored)
    {
        var expected = layer.KerasWeights;
        if (stored.Arrays.Count != expected.Count)
            return $"layer '{layer.Name}' has {stored.Arrays.Count} arrays ({string.Join(", ", stored.Arrays.Select(a => a.Name))}); {layer.KerasClass} '{layer.Name}' needs {expected.Count} ({string.Join(", ", expected.Select(e => e.Name))}).";
        for (int k = 0; k < expected.Count; k++)
            if (!Fits(stored.Arrays[k].Shape, expected[k].Shape))
                return $"layer '{layer.Name}' array '{stored.Arrays[k].Name}' is {stored.Arrays[k].ShapeText}; {layer.KerasClass} needs {expected[k].Name} {string.Join("x", expected[k].Shape)}.";
        return null;
    }

    /// <summary>
    /// Shapes agree, or differ only by leading ones: a 1x1 convolution's kernel (1 x 1 x In x Out) is a dense kernel
    /// (In x Out), which is how TFLite and TF-slim files store the ImageNet classifier.
    /// </summary>
    static bool Fits(int[] stored, long[] expected) =>
        stored.SkipWhile(d => d == 1).Select(d => (long)d).SequenceEqual(expected.SkipWhile(d => d == 1));

    /// <summary>The stored arrays with the layer's own shapes (the same values; see <see cref="Fits"/>).</summary>
    static IReadOnlyList<WeightArray> Shaped(Layer layer, LayerWeightSet stored) =>
        stored.Arrays.Zip(layer.KerasWeights, (a, e) => a with { Shape = e.Shape.Select(d => (int)d).ToArray() }).ToList();

    /// <summary>
    /// Keras 3 stores layer i of class C as <c>layers/c</c>, <c>layers/c_1</c>, … (snake-cased class, counted over
    /// model.layers), not under the layer's name.
    /// </summary>
    static Dictionary<string, string> Keras3Keys(IReadOnlyList<GraphNode> order)
    {
        var seen = new Dictionary<string, int>();
        var keys = new Dictionary<string, string>();
        foreach (var node in order)
        {
            var snake = SnakeCase(node.Layer?.KerasClass ?? "InputLayer");
            int n = seen.GetValueOrDefault(snake);
            seen[snake] = n + 1;
            keys[node.Name] = n == 0 ? snake : $"{snake}_{n}";
        }
        return keys;
    }

    /// <summary>Keras's to_snake_case: Conv2D → conv2d, BatchNormalization → batch_normalization.</summary>
    static string SnakeCase(string name) =>
        Regex.Replace(Regex.Replace(name, "(.)([A-Z][a-z]+)", "$1_$2"), "([a-z])([A-Z])", "$1_$2").ToLowerInvariant();

    static string Names(IReadOnlyList<string> names) => string.Join(", ", names.Take(5)) + (names.Count > 5 ? $" and {names.Count - 5} more" : "");
    static string More(IReadOnlyList<string> problems) => problems.Count > 1 ? $" ({problems.Count - 1} more layers differ)" : "";
}
