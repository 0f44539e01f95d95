using Graft.Imaging;

namespace Graft.Training;

/// <summary>
/// A fine-tuning recipe: everything fine-tuning's live phase does after the head has trained on cached features — what
/// of the trunk trains, the optimizer and its schedule, how the learning rates fall off with depth, the regularisers and
/// the augmentation. Recipes are rows (<see cref="Recipes"/>), measured against each other by <c>graft bench --accuracy</c>.
/// </summary>
public sealed record Recipe(string Name, string Description, UnfreezeSpec Unfreeze, FitOptions FineTune, LrSchedule Schedule,
    double DiscriminativeFactor, Augmentation Augmentation);

/// <summary>The fine-tuning recipes; <see cref="Default"/> is the one <c>--strategy fine-tune</c> uses unless told.</summary>
internal static class Recipes
{
    /// <summary>
    /// The Keras blog's and Keras's transfer-learning guide's: the top 2 blocks, SGD at 1e-4 with momentum, a constant rate,
    /// mild augmentation, batch norm of the trained blocks taking batch statistics.
    /// </summary>
    public static readonly Recipe TopBlocks = new("top-blocks",
        "the top 2 blocks; SGD 1e-4 with momentum, constant rate; mild augmentation (the Keras blog's)",
        UnfreezeSpec.Default, new FitOptions(Epochs: 10, LearningRate: 1e-4, Optimizer: OptimizerKind.Sgd), LrSchedule.Constant, 1.0,
        Augmentation.Default);

    /// <summary>
    /// The whole trunk, as the field fine-tunes today: AdamW with decoupled weight decay, a warm-up then cosine decay, rates
    /// that fall off with depth, label smoothing, every batch-norm layer in inference mode (Keras's rule: small batches give
    /// poor statistics), random-resized crops, and gradients accumulated over parts of the batch so memory stays bounded.
    /// </summary>
    public static readonly Recipe Deep = new("deep",
        "the whole trunk; AdamW 5e-4 (weight decay 0.05), 1 epoch of warm-up then cosine, rates x0.85 per block down, " +
        "label smoothing 0.1, batch norm frozen, random-resized crops and flips",
        new UnfreezeSpec(All: true),
        new FitOptions(Epochs: 10, LearningRate: 5e-4, Optimizer: OptimizerKind.AdamW)
        {
            WeightDecay = 0.05, WarmupEpochs = 1, LabelSmoothing = 0.1, FreezeBatchNorm = true, MicroBatch = 16,
        },
        LrSchedule.Cosine, 0.85,
        new Augmentation { RandomResizedCrop = true, CropMinArea = 0.35, HorizontalFlip = true });

    /// <summary>Every recipe, by name.</summary>
    public static readonly IReadOnlyList<Recipe> All = [Deep, TopBlocks];

    /// <summary>What <c>--strategy fine-tune</c> uses unless told.</summary>
    public static Recipe Default => Deep;

    /// <summary>The recipe of that name, or one line naming the known ones.</summary>
    public static Recipe Get(string name) => All.FirstOrDefault(r => r.Name == name)
        ?? throw new GraftException($"No fine-tuning recipe is called '{name}'.", $"Use one of: {string.Join(", ", All.Select(r => r.Name))}.");
}
