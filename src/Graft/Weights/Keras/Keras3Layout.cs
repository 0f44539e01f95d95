using PureHDF;

namespace Graft.Weights.Keras;

/// <summary>
/// The layout Keras 3's <c>saving_lib</c> (<c>H5IOStore</c>) writes for <c>model.save_weights('x.weights.h5')</c>
/// and inside <c>.keras</c> archives: each saveable object gets a group whose <c>vars</c> subgroup holds its arrays
/// as datasets "0", "1", … in the layer's own order. A model's layers sit in its <c>layers</c> container, each named
/// after its class, not the layer's name ("conv2d", "conv2d_1", "batch_normalization", …), so the paths do not depend
/// on auto-generated names. Sublayers held in attributes sit under their attribute name ("_query_dense"), nested
/// models under their own <c>layers</c>. Keras 2.13 wrote the same with <c>_layer_checkpoint_dependencies</c>
/// in place of <c>layers</c>.
///
/// Order caveat: h5py does not track creation order (Keras does not ask it to), so the file lists a group's
/// children alphabetically and the order of the model's layers is lost. Keras itself loads by path, not order.
/// We restore what can be restored: within one class, the counter Keras appended is the model order (conv2d,
/// conv2d_1, …, conv2d_10); across classes the order is alphabetical by class. A loader should therefore match
/// the n-th layer of a class in its model to the group "&lt;class&gt;" / "&lt;class&gt;_n", not rely on the overall order.
/// Only the layer containers are read: the optimizer's and metrics' variables saved beside them are not weights.
/// </summary>
static class Keras3Layout
{
    static readonly string[] Containers = ["layers", "_layer_checkpoint_dependencies"];

    public static bool Recognizes(IH5Group root) => Containers.Any(root.LinkExists);

    public static List<LayerWeightSet> ReadLayers(IH5Group root, string path)
    {
        var layers = new List<LayerWeightSet>();
        foreach (var name in Containers.Where(root.LinkExists))
            if (root.Get(name) is IH5Group container)
                VisitContainer(container, name, "", layers, path);
        return layers;
    }

    /// <summary>A container's children are named by class and counter: order them by class, then counter.</summary>
    static void VisitContainer(IH5Group container, string h5Path, string prefix, List<LayerWeightSet> layers, string path)
    {
        var children = Subgroups(container)
            .OrderBy(g => KerasWeightNames.Keras3ClassName(g.Name), StringComparer.Ordinal)
            .ThenBy(g => KerasWeightNames.Keras3Counter(g.Name));
        foreach (var child in children)
            VisitSaveable(child, $"{h5Path}/{child.Name}", prefix + child.Name, KerasWeightNames.Keras3ClassName(child.Name), layers, path);
    }

    /// <summary>
    /// A saveable's own arrays, then its children in the order Keras walks them: the layers container first,
    /// then attributes alphabetically with private ("_…") ones last (saving_lib's _walk_saveable and _name_key).
    /// </summary>
    static void VisitSaveable(IH5Group group, string h5Path, string layer, string? className, List<LayerWeightSet> layers, string path)
    {
        if (group.LinkExists("vars") && group.Get("vars") is IH5Group vars)
        {
            var datasets = vars.Children().OfType<IH5Dataset>()
                .OrderBy(d => int.TryParse(d.Name, out var i) ? i : int.MaxValue)
                .ThenBy(d => d.Name, StringComparer.Ordinal)
                .ToList();
            if (datasets.Count > 0)
            {
                var names = className is null ? null : KerasWeightNames.Keras3Names(className, datasets.Count);
                var arrays = datasets.Select((d, i) => KerasH5Reader.ReadArray(d, names?[i] ?? d.Name, path, $"{h5Path}/vars/{d.Name}")).ToList();
                layers.Add(new LayerWeightSet(layer, arrays));
            }
        }

        var children = Subgroups(group).Where(g => g.Name != "vars")
            .OrderBy(g => Containers.Contains(g.Name) ? 0 : g.Name.StartsWith('_') ? 2 : 1)
            .ThenBy(g => g.Name, StringComparer.Ordinal);
        foreach (var child in children)
        {
            // A saveable always has "vars" (Keras creates it even when empty); a container never does.
            if (child.LinkExists("vars"))
                VisitSaveable(child, $"{h5Path}/{child.Name}", $"{layer}/{child.Name}", null, layers, path);
            else
                VisitContainer(child, $"{h5Path}/{child.Name}", $"{layer}/{child.Name}/", layers, path);
        }
    }

    static IEnumerable<IH5Group> Subgroups(IH5Group group) => group.Children().OfType<IH5Group>();
}
