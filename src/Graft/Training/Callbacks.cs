using Graft.Heads;
namespace Graft.Training;

/// <summary>Where long work reports to; the library never prints.</summary>
/// <param name="Images">Progress of a pass over images.</param>
/// <param name="Epochs">Each epoch's metrics.</param>
/// <param name="Log">What a run did and decided, a line at a time (the split, the features, the advice, warnings).</param>
/// <param name="Detail">How it did it, for whoever asks (how a weight file's layers were matched): a line at a time.</param>
public sealed record Callbacks(IProgress<ImageProgress>? Images = null, IProgress<EpochProgress>? Epochs = null, Action<string>? Log = null,
    Action<string>? Detail = null)
{
    /// <summary>Reports nothing.</summary>
    public static readonly Callbacks None = new();
}
