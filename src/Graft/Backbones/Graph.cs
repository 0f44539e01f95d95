using Graft.Backbones.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Graft.Backbones;

/// <summary>
/// One Keras layer in a network: its layer (null for the input), the nodes it reads, the block it belongs to
/// (the unit of unfreezing and of early features), and its output's channels and height/width at the size the
/// network was built for (0 once it is a vector).
/// </summary>
public sealed record GraphNode(string Name, Layer? Layer, int[] Inputs, string Block, int Channels, int Size);

/// <summary>
/// A network as Keras defines it: a graph of layer primitives in creation order (a valid execution order),
/// the last node its output. Modules are registered under their Keras names, so saved weights carry them.
/// Intermediate tensors are released as soon as their last reader has run.
/// </summary>
public sealed class Graph : nn.Module<Tensor, Tensor>
{
    public IReadOnlyList<GraphNode> Nodes { get; }
    readonly int[] _readers;

    public Graph(IReadOnlyList<GraphNode> nodes) : base("graph")
    {
        Nodes = nodes;
        _readers = new int[nodes.Count];
        foreach (var node in nodes)
            foreach (var i in node.Inputs) _readers[i]++;
        foreach (var node in nodes)
            if (node.Layer is { } layer) register_module(node.Name, layer);
    }

    public GraphNode Output => Nodes[^1];
    public int InputSize => Nodes[0].Size;
    public IEnumerable<Layer> Layers => Nodes.Select(n => n.Layer).OfType<Layer>();

    public override Tensor forward(Tensor images) => Run(images, null);

    /// <summary>Runs the network, showing each node's output to <paramref name="observe"/> (shapes for the summary).</summary>
    public Tensor Run(Tensor images, Action<GraphNode, Tensor>? observe)
    {
        var values = new Tensor?[Nodes.Count];
        var pending = (int[])_readers.Clone();
        values[0] = images;
        for (int i = 1; i < Nodes.Count; i++)
        {
            var node = Nodes[i];
            values[i] = node.Layer!.call(node.Inputs.Select(j => values[j]!).ToArray());
            observe?.Invoke(node, values[i]!);
            foreach (var j in node.Inputs)
                if (--pending[j] == 0 && j != 0) { values[j]!.Dispose(); values[j] = null; }
        }
        return values[^1]!;
    }

    /// <summary>The network up to and including the named node (its ancestors only), sharing this one's layers.</summary>
    public Graph Through(string name)
    {
        int last = Nodes.ToList().FindIndex(n => n.Name == name);
        if (last < 0) throw new ArgumentException($"No layer named {name}.", nameof(name));
        var keep = new bool[last + 1];
        keep[last] = true;
        for (int i = last; i >= 0; i--)
            if (keep[i]) foreach (var j in Nodes[i].Inputs) keep[j] = true;
        var index = new int[last + 1];
        var kept = new List<GraphNode>();
        for (int i = 0; i <= last; i++)
            if (keep[i])
            {
                index[i] = kept.Count;
                kept.Add(Nodes[i] with { Inputs = Nodes[i].Inputs.Select(j => index[j]).ToArray() });
            }
        return new Graph(kept);
    }

    /// <summary>
    /// The network after the named node, with that node's output as its input; sharing this one's layers. Together
    /// with <see cref="Through"/> it splits the network in two, which needs a node that every later layer reaches only
    /// through it (see <see cref="IsCut"/>).
    /// </summary>
    public Graph From(string name)
    {
        int cut = Nodes.ToList().FindIndex(n => n.Name == name);
        if (cut < 0 || !IsCut(cut)) throw new ArgumentException($"{name} does not split the network in two.", nameof(name));
        var input = Nodes[cut] with { Layer = null, Inputs = [] };
        return new Graph([input, .. Nodes.Skip(cut + 1).Select(n => n with { Inputs = n.Inputs.Select(j => j - cut).ToArray() })]);
    }

    /// <summary>Whether no layer after node <paramref name="cut"/> reads a node before it (a residual branch would).</summary>
    public bool IsCut(int cut) => Nodes.Skip(cut + 1).All(n => n.Inputs.All(j => j >= cut));

    /// <summary>Block names in execution order (the input's excluded).</summary>
    public IReadOnlyList<string> Blocks => Nodes.Skip(1).Select(n => n.Block).Distinct().ToList();

    /// <summary>
    /// The nodes in Keras's <c>model.layers</c> order: by depth from the output (deepest first), ties broken by
    /// the order a depth-first walk from the output first meets them (Keras's <c>_map_graph_network</c>). Keras
    /// saves weights in this order and loads by it; <c>model.summary()</c> and <c>layers[:N]</c> follow it.
    /// </summary>
    public IReadOnlyList<GraphNode> KerasOrder()
    {
        int n = Nodes.Count;
        var firstSeen = new int[n];
        Array.Fill(firstSeen, -1);
        var postOrder = new List<int>(n);
        var finished = new bool[n];
        int seen = 0;
        void Visit(int i)
        {
            if (finished[i]) return;
            if (firstSeen[i] < 0) firstSeen[i] = seen++;
            foreach (var j in Nodes[i].Inputs) Visit(j);
            finished[i] = true;
            postOrder.Add(i);
        }
        Visit(n - 1);
        var depth = new int[n];
        for (int k = postOrder.Count - 1; k >= 0; k--)
        {
            int i = postOrder[k];
            foreach (var j in Nodes[i].Inputs) depth[j] = Math.Max(depth[j], depth[i] + 1);
        }
        return postOrder.OrderByDescending(i => depth[i]).ThenBy(i => firstSeen[i]).Select(i => Nodes[i]).ToList();
    }
}
