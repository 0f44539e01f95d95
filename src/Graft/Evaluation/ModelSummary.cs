using Graft.Backbones;
using Graft.Engine;
using Graft.Training;
using Graft.Heads;
using TorchSharp;
using static TorchSharp.torch;

namespace Graft.Evaluation;

/// <summary>One line of a Keras-style summary: layer name, Keras class, output shape (channels last, as Keras prints it).</summary>
internal sealed record SummaryRow(string Name, string Type, long[] OutputShape, long Parameters, long TrainableParameters)
{
    public string ShapeText => "(None, " + string.Join(", ", OutputShape.Skip(1)) + ")";
}

/// <summary>
/// Layers, output shapes and parameter counts as Keras's <c>model.summary()</c> gives them: the network's layers in
/// Keras's order, batch norm's moving statistics counted as non-trainable parameters; then Graft's pooling and
/// head when there is one. Shapes come from running one blank image.
/// </summary>
internal sealed record ModelSummary(string Title, IReadOnlyList<SummaryRow> Rows, long Total, long Trainable)
{
    public long NonTrainable => Total - Trainable;

    public static ModelSummary Of(string title, Graph network, int inputSize, nn.Module<Tensor, Tensor>? head = null, Pooling pooling = Pooling.Gap)
    {
        var shapes = new Dictionary<string, long[]> { [network.Nodes[0].Name] = [1, inputSize, inputSize, 3] };
        var headShapes = new Dictionary<nn.Module, long[]>(ReferenceEqualityComparer.Instance);
        var removers = new List<Action>();
        foreach (var (_, child) in head?.named_children() ?? [])
            if (child is nn.Module<Tensor, Tensor> hookable)
            {
                var hook = hookable.register_forward_hook((m, _, output) => { headShapes[m] = output.shape; return output; });
                removers.Add(hook.remove);
            }
        long[] pooledShape = [];
        bool wasTraining = network.training;
        try
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            network.eval();
            var map = network.Run(zeros(1, 3, inputSize, inputSize, device: TorchDevices.Of(network)), (node, output) => shapes[node.Name] = KerasShape(output.shape));
            if (head is not null)
            {
                head.eval();
                var pooled = HeadConfig.Pool(map, pooling);
                pooledShape = pooled.shape;
                head.forward(pooled);
            }
        }
        finally
        {
            foreach (var remove in removers) remove();
            if (wasTraining) network.train();
        }

        var rows = network.KerasOrder().Select(node => node.Layer is { } layer
            ? new SummaryRow(node.Name, layer.KerasClass, shapes[node.Name], Count(layer, false) + layer.StatisticsCount, Count(layer, true))
            : new SummaryRow(node.Name, "InputLayer", shapes[node.Name], 0, 0)).ToList();
        if (head is not null)
        {
            rows.Add(new SummaryRow(pooling == Pooling.Gap ? "global_average_pooling" : "flatten",
                pooling == Pooling.Gap ? "GlobalAveragePooling2D" : "Flatten", pooledShape, 0, 0));
            foreach (var (name, child) in head.named_children())
                rows.Add(new SummaryRow(name, child.GetType().Name, headShapes.GetValueOrDefault(child, []), Count(child, false), Count(child, true)));
        }
        long total = rows.Sum(r => r.Parameters), trainable = rows.Sum(r => r.TrainableParameters);
        return new ModelSummary(title, rows, total, trainable);
    }

    /// <summary>[N, C, H, W] as Keras prints it, (N, H, W, C); vectors as they are.</summary>
    static long[] KerasShape(long[] shape) => shape.Length == 4 ? [shape[0], shape[2], shape[3], shape[1]] : shape;

    static long Count(nn.Module module, bool trainableOnly) =>
        module.parameters().Where(p => !trainableOnly || p.requires_grad).Sum(p => p.numel());
}
