using System.Diagnostics;
using Graft.Training;
using Graft.Imaging;
using Graft.Weights;
using Spectre.Console;

namespace Graft.Bench;

/// <summary>
/// What the lab needs from the program that runs it: where human output and progress go, where weights and data
/// come from, how to write the JSON result and how to start the program again as a child (`graft ARGS`), which
/// the lab does so that a measurement's wall time and peak memory are its own.
/// </summary>
/// <param name="Out">Tables and the closing lines.</param>
/// <param name="Escape">Makes any text safe inside <paramref name="Out"/>'s markup.</param>
/// <param name="WriteJson">Writes the JSON result (one object on standard output); null: no JSON.</param>
/// <param name="Assets">Weights, sample data and the cache.</param>
/// <param name="Progress">Progress lines (its <see cref="Callbacks.Log"/>) and training progress.</param>
/// <param name="StartGraft">The process that runs `graft` with these arguments; the lab redirects its streams.</param>
public sealed record BenchHost(
    IAnsiConsole Out,
    Func<string, string> Escape,
    Action<object>? WriteJson,
    AssetResolver Assets,
    Callbacks Progress,
    Func<IReadOnlyList<string>, ProcessStartInfo> StartGraft)
{
    /// <summary>One line of progress.</summary>
    public void Log(string line) => Progress.Log?.Invoke(line);

    /// <summary>The asset mirror's folder <paramref name="kind"/>/<paramref name="name"/> (e.g. data/sign_digits), which <paramref name="bench"/> needs.</summary>
    public string Mirrored(string kind, string name, string bench) =>
        Assets.SearchRoots.Select(r => Path.Combine(r, kind, name)).FirstOrDefault(Directory.Exists)
        ?? throw new GraftException($"{bench} needs {kind}/{name} from the asset mirror, and it was not found.",
            "Restore the shared/ mirror, or leave the dataset out with --datasets.");
}
