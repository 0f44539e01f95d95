using Graft.Heads;
using TorchSharp;
using static TorchSharp.torch;

namespace Graft.Models;

/// <summary>A model's head grown to more classes: the earlier classes keep their weights, the new ones start as a fresh head's.</summary>
internal static class HeadGrowth
{
    /// <summary>
    /// A classifier of <paramref name="grown"/>'s classes (the model's first, in its order) on the model's backbone: every head
    /// weight is copied, and the last dense layer's rows of the earlier classes too; the new classes' rows are those of a head
    /// built fresh from <paramref name="seed"/>. The model gives up its backbone to the new classifier (its head stays its own).
    /// </summary>
    public static TrainableClassifier Grow(TrainableClassifier model, ModelConfig grown, int seed)
    {
        if (grown.Classes.Count < model.Classes.Count || !grown.Classes.Take(model.Classes.Count).SequenceEqual(model.Classes))
            throw new ArgumentException("The grown model's classes must begin with the model's, in its order.", nameof(grown));
        manual_seed(seed);
        var head = grown.Head.Build().to(model.Device);
        using (no_grad())
        {
            var fresh = head.state_dict();
            foreach (var (name, earlier) in model.Head.state_dict())
            {
                var target = fresh.TryGetValue(name, out var t) && t.dim() == earlier.dim() && t.shape.Skip(1).SequenceEqual(earlier.shape.Skip(1)) && t.shape[0] >= earlier.shape[0]
                    ? t : throw new ArgumentException($"The grown head has no place for the model's {name}.", nameof(grown));
                if (target.shape[0] != earlier.shape[0] && !name.StartsWith("predictions.", StringComparison.Ordinal))
                    throw new ArgumentException($"Only the class layer grows; {name} would change shape.", nameof(grown));
                target.narrow(0, 0, earlier.shape[0]).copy_(earlier);
            }
        }
        model.ResetTrunkRunner();
        return new TrainableClassifier(grown, model.Backbone, head, []);
    }
}
