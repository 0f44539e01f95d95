using TorchSharp;
using static TorchSharp.torch;

namespace Graft.Evaluation;

/// <summary>One line of a Keras-style summary; <see cref="Depth"/> 1 marks a layer inside a block.</summary>
public sealed record SummaryRow(string Name, string Type, long[] OutputShape, long Parameters, long TrainableParameters, int Depth)
{
    public string ShapeText => "(None, " + string.Join(", ", OutputShape.Skip(1)) + ")";
}

/// <summary>Layers, output shapes and parameter counts (trainable and not), found by running one dummy image.</summary>
public sealed record ModelSummary(string Title, IReadOnlyList<SummaryRow> Rows, long Total, long Trainable)
{
    public long NonTrainable => Total - Trainable;

    /// <summary>Summarises a trunk (its blocks and their layers), global average pooling and a head on the pooled features.</summary>
    public static ModelSummary Of(string title, nn.Module<Tensor, Tensor> trunk, nn.Module<Tensor, Tensor> head, int inputSize)
    {
        var shapes = new Dictionary<nn.Module, long[]>(ReferenceEqualityComparer.Instance);
        var removers = new List<Action>();
        var trunkRows = Describe(trunk, 0).ToList();
        var headRows = Describe(head, 0).ToList();
        foreach (var (module, _, _) in trunkRows.Concat(headRows))
            if (module is nn.Module<Tensor, Tensor> hookable)
            {
                var hook = hookable.register_forward_hook((m, _, output) => { shapes[m] = output.shape; return output; });
                removers.Add(hook.remove);
            }
        long[] pooledShape;
        try
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            bool wasTraining = trunk.training;
            trunk.eval(); head.eval();
            var pooled = trunk.forward(zeros(1, 3, inputSize, inputSize)).mean([2, 3]);
            pooledShape = pooled.shape;
            head.forward(pooled);
            if (wasTraining) trunk.train();
        }
        finally
        {
            foreach (var remove in removers) remove();
        }

        var rows = new List<SummaryRow>();
        foreach (var (module, name, depth) in trunkRows) rows.Add(Row(module, name, depth, shapes));
        rows.Add(new SummaryRow("global_average_pooling", "GlobalAveragePooling2D", pooledShape, 0, 0, 0));
        foreach (var (module, name, depth) in headRows) rows.Add(Row(module, name, depth, shapes));
        long total = Count(trunk, false) + Count(head, false);
        long trainable = Count(trunk, true) + Count(head, true);
        return new ModelSummary(title, rows, total, trainable);
    }

    /// <summary>The module's children (depth 0) and, for blocks, their layers (depth 1).</summary>
    static IEnumerable<(nn.Module Module, string Name, int Depth)> Describe(nn.Module parent, int depth)
    {
        foreach (var (name, child) in parent.named_children())
        {
            yield return (child, depth == 0 ? name : child.GetName(), depth);
            if (depth == 0 && child.named_children().Any(c => c.module is Backbones.ConvUnit))
                foreach (var inner in Describe(child, depth + 1)) yield return inner;
        }
    }

    static SummaryRow Row(nn.Module module, string name, int depth, Dictionary<nn.Module, long[]> shapes) =>
        new(name, module.GetType().Name, shapes.GetValueOrDefault(module, []), Count(module, false), Count(module, true), depth);

    static long Count(nn.Module module, bool trainableOnly) =>
        module.parameters().Where(p => !trainableOnly || p.requires_grad).Sum(p => p.numel());
}
