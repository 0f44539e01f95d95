using Graft.Heads;
namespace Graft.Training;

/// <summary>Where long work reports to; the library never prints.</summary>
public sealed record Callbacks(IProgress<ImageProgress>? Images = null, IProgress<EpochProgress>? Epochs = null, Action<string>? Log = null)
{
    /// <summary>Reports nothing.</summary>
    public static readonly Callbacks None = new();
}
