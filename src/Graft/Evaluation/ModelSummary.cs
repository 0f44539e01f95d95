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

    /// <summary>A backbone's trunk and a head: on an ONNX trunk, the ONNX model as one row (its weights are not counted here), then the head.</summary>
    public static ModelSummary Of(string title, Backbone backbone, int inputSize, nn.Module<Tensor, Tensor> head, Pooling pooling)
    {
        if (backbone.Onnx is not { } onnx) return Of(title, backbone.Trunk, inputSize, head, pooling);
        using var scope = NewDisposeScope();
        List<SummaryRow> rows =
        [
            new("input", "InputLayer", [1, inputSize, inputSize, 3], 0, 0),
            new(onnx.Spec.File, $"ONNX model ({onnx.Spec.Output}, pooled)", [1, onnx.Channels], 0, 0),
            .. HeadRows(head, zeros(1, onnx.Channels, device: TorchDevices.Of(head))),
        ];
        return new ModelSummary(title, rows, rows.Sum(r => r.Parameters), rows.Sum(r => r.TrainableParameters));
    }

    public static ModelSummary Of(string title, Graph network, int inputSize, nn.Module<Tensor, Tensor>? head = null, Pooling pooling = Pooling.Gap)
    {
        var shapes = new Dictionary<string, long[]> { [network.Nodes[0].Name] = [1, inputSize, inputSize, 3] };
        bool wasTraining = network.training;
        using var scope = NewDisposeScope();
        Tensor map;
        try
        {
            using var _ = no_grad();
            network.eval();
            map = network.Run(zeros(1, 3, inputSize, inputSize, device: TorchDevices.Of(network)), (node, output) => shapes[node.Name] = KerasShape(output.shape));
        }
        finally
        {
            if (wasTraining) network.train();
        }

        var rows = network.KerasOrder().Select(node => node.Layer is { } layer
            ? new SummaryRow(node.Name, layer.KerasClass, shapes[node.Name], Count(layer, false) + layer.StatisticsCount, Count(layer, true))
            : new SummaryRow(node.Name, "InputLayer", shapes[node.Name], 0, 0)).ToList();
        if (head is not null)
        {
            var pooled = HeadConfig.Pool(map, pooling);
            rows.Add(new SummaryRow(pooling == Pooling.Gap ? "global_average_pooling" : "flatten",
                pooling == Pooling.Gap ? "GlobalAveragePooling2D" : "Flatten", pooled.shape, 0, 0));
            rows.AddRange(HeadRows(head, pooled));
        }
        long total = rows.Sum(r => r.Parameters), trainable = rows.Sum(r => r.TrainableParameters);
        return new ModelSummary(title, rows, total, trainable);
    }

    /// <summary>The head's modules on <paramref name="features"/>, each with its output shape (from a forward hook) and parameters.</summary>
    static IEnumerable<SummaryRow> HeadRows(nn.Module<Tensor, Tensor> head, Tensor features)
    {
        var shapes = new Dictionary<nn.Module, long[]>(ReferenceEqualityComparer.Instance);
        var removers = new List<Action>();
        foreach (var (_, child) in head.named_children())
            if (child is nn.Module<Tensor, Tensor> hookable)
            {
                var hook = hookable.register_forward_hook((m, _, output) => { shapes[m] = output.shape; return output; });
                removers.Add(hook.remove);
            }
        try
        {
            using var _ = no_grad();
            head.eval();
            head.forward(features).Dispose();
        }
        finally
        {
            foreach (var remove in removers) remove();
        }
        return head.named_children().Select(c => new SummaryRow(c.name, c.module.GetType().Name, shapes.GetValueOrDefault(c.module, []), Count(c.module, false), Count(c.module, true))).ToList();
    }

    /// <summary>[N, C, H, W] as Keras prints it, (N, H, W, C); vectors as they are.</summary>
    static long[] KerasShape(long[] shape) => shape.Length == 4 ? [shape[0], shape[2], shape[3], shape[1]] : shape;

    static long Count(nn.Module module, bool trainableOnly) =>
        module.parameters().Where(p => !trainableOnly || p.requires_grad).Sum(p => p.numel());
}
