using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Graft.Training;

/// <summary>What every fit shares: the optimizer for a set of parameter groups, and best-weights snapshots.</summary>
internal static class Optimizers
{
    public static OptimizerHelper Create(IReadOnlyList<ParameterGroup> groups, FitOptions o)
    {
        double Rate(ParameterGroup g) => o.LearningRate * g.LrMultiplier;
        double decay = o.WeightDecay;
        return o.Optimizer switch
        {
            OptimizerKind.Sgd => optim.SGD(groups.Select(g => new SGD.ParamGroup(g.Parameters, new SGD.Options { LearningRate = Rate(g), momentum = o.Momentum, weight_decay = decay })),
                o.LearningRate, momentum: o.Momentum, weight_decay: decay),
            // Keras's RMSprop defaults (rho 0.9, epsilon 1e-7), so settings carried over from Keras behave the same; PyTorch's rho is 0.99.
            OptimizerKind.RmsProp => optim.RMSProp(groups.Select(g => new RMSProp.ParamGroup(g.Parameters, new RMSProp.Options { LearningRate = Rate(g), alpha = 0.9, eps = 1e-7, weight_decay = decay })),
                o.LearningRate, alpha: 0.9, eps: 1e-7, weight_decay: decay),
            OptimizerKind.AdamW => optim.AdamW(groups.Select(g => new AdamW.ParamGroup(g.Parameters, new AdamW.Options { LearningRate = Rate(g), weight_decay = decay })),
                o.LearningRate, weight_decay: decay),
            _ => optim.Adam(groups.Select(g => new Adam.ParamGroup(g.Parameters, new Adam.Options { LearningRate = Rate(g), weight_decay = decay })), o.LearningRate, weight_decay: decay),
        };
    }

    /// <summary>A detached copy of a module's weights and buffers (the best epoch so far).</summary>
    public static Dictionary<string, Tensor> Snapshot(nn.Module module) => Snapshot(module.state_dict());

    /// <summary>A detached copy of named weights (a snapshot of a snapshot).</summary>
    public static Dictionary<string, Tensor> Snapshot(IReadOnlyDictionary<string, Tensor> weights) =>
        weights.ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    public static void Dispose(Dictionary<string, Tensor>? snapshot)
    {
        if (snapshot is null) return;
        foreach (var t in snapshot.Values) t.Dispose();
    }
}
