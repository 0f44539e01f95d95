using TorchSharp.Modules;
using static TorchSharp.torch;
using Graft.Heads;

namespace Graft.Training;

/// <summary>What both trainers share: the optimizer for a set of parameter groups, and best-weights snapshots.</summary>
internal static class Optimizers
{
    public static OptimizerHelper Create(IReadOnlyList<ParameterGroup> groups, FitOptions o) => o.Optimizer switch
    {
        OptimizerKind.Sgd => optim.SGD(groups.Select(g => new SGD.ParamGroup(g.Parameters, new SGD.Options { LearningRate = o.LearningRate * g.LrMultiplier, momentum = o.Momentum })), o.LearningRate, momentum: o.Momentum),
        // Keras's RMSprop defaults (rho 0.9, epsilon 1e-7), so settings carried over from Keras behave the same; PyTorch's rho is 0.99.
        OptimizerKind.RmsProp => optim.RMSProp(groups.Select(g => new RMSProp.ParamGroup(g.Parameters, new RMSProp.Options { LearningRate = o.LearningRate * g.LrMultiplier, alpha = 0.9, eps = 1e-7 })), o.LearningRate, alpha: 0.9, eps: 1e-7),
        _ => optim.Adam(groups.Select(g => new Adam.ParamGroup(g.Parameters, new Adam.Options { LearningRate = o.LearningRate * g.LrMultiplier })), o.LearningRate),
    };

    /// <summary>A detached copy of a module's weights and buffers (the best epoch so far).</summary>
    public static Dictionary<string, Tensor> Snapshot(nn.Module module) =>
        module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    public static void Dispose(Dictionary<string, Tensor>? snapshot)
    {
        if (snapshot is null) return;
        foreach (var t in snapshot.Values) t.Dispose();
    }
}
