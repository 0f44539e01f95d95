using System.Reflection;
using System.Text.Json.Serialization;

namespace Graft.Training;

/// <summary>
/// How a run trains. JSON, the command line and model files spell them as their <see cref="StrategyNames.Name"/>:
/// "feature-extraction", "fine-tune", "scratch" and "auto".
/// </summary>
public enum Strategy
{
    /// <summary>A head on the frozen trunk's cached features.</summary>
    [JsonStringEnumMemberName("feature-extraction")] FeatureExtraction,
    /// <summary>Feature extraction, then the top of the trunk too, on augmented images.</summary>
    [JsonStringEnumMemberName("fine-tune")] FineTune,
    /// <summary>A small CNN from random weights.</summary>
    [JsonStringEnumMemberName("scratch")] Scratch,
    /// <summary>Let the advisor measure the data and choose.</summary>
    [JsonStringEnumMemberName("auto")] Auto,
}

/// <summary>The strategies' names, read off the enum's JSON names: one spelling for JSON, flags and model files.</summary>
internal static class StrategyNames
{
    /// <summary>Every strategy's name, in the enum's order.</summary>
    public static IReadOnlyList<string> All { get; } = Enum.GetValues<Strategy>().Select(Name).ToArray();

    /// <summary>"feature-extraction", "fine-tune", "scratch" or "auto".</summary>
    public static string Name(this Strategy strategy) =>
        typeof(Strategy).GetField(strategy.ToString())?.GetCustomAttribute<JsonStringEnumMemberNameAttribute>()?.Name ?? strategy.ToString();

    /// <summary>The strategy a name stands for; an unknown name is a <see cref="GraftException"/> listing the known ones.</summary>
    public static Strategy Parse(string name) =>
        Enum.GetValues<Strategy>().FirstOrDefault(s => s.Name() == name, (Strategy)(-1)) is var strategy && Enum.IsDefined(strategy)
            ? strategy
            : throw new GraftException($"Unknown strategy '{name}'.", $"Use one of: {string.Join(", ", All)}.");
}
