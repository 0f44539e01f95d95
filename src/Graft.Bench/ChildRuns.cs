using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Graft.Models;
using Graft.Weights;

namespace Graft.Bench;

/// <summary>
/// `graft` run again as a child process, as a user runs it: its wall time and peak memory are its own. The host says
/// how to start it (<see cref="BenchHost.StartGraft"/>); here its streams are read and its JSON result parsed.
/// </summary>
static class ChildRuns
{
    /// <summary>
    /// Runs `graft train DATA --json` as its own process, with its bottleneck cache in <paramref name="cacheRoot"/>;
    /// returns its JSON result plus wall_seconds. The child's end-of-epoch lines go to <paramref name="epochLog"/>
    /// (the experiments run long).
    /// </summary>
    public static JsonElement Train(BenchHost host, string data, string cacheRoot, string[]? options = null, Action<string>? epochLog = null)
    {
        var start = Redirected(host.StartGraft(["train", data, "--json", "--out", Path.Combine(cacheRoot, "bench.graft"), .. options ?? []]));
        start.Environment[AssetResolver.CacheVariable] = cacheRoot;
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        string lastError = "";
        var stderr = Task.Run(async () =>
        {
            while (await process.StandardError.ReadLineAsync() is { } line)
            {
                if (line.StartsWith("epoch ", StringComparison.Ordinal) && line.Contains(" loss ")) epochLog?.Invoke("  " + line);
                if (line.StartsWith("graft: ", StringComparison.Ordinal)) lastError = line["graft: ".Length..];
            }
        });
        process.WaitForExit();
        stderr.Wait();
        double wall = clock.Elapsed.TotalSeconds;
        if (process.ExitCode != 0)
            throw new GraftException($"graft train {data} failed during the benchmark (exit {process.ExitCode}): {lastError}", "Run it alone to see the problem.");
        var node = JsonNode.Parse(LastLine(stdout.Result))!.AsObject();
        node["wall_seconds"] = wall;
        return JsonDocument.Parse(node.ToJsonString()).RootElement;
    }

    /// <summary>Runs `graft bench --measure-...` (one measurement's <paramref name="arguments"/>) as its own process; its JSON result, or why there is none.</summary>
    public static (T? Result, string? Error) Measure<T>(BenchHost host, IReadOnlyList<string> arguments) where T : class
    {
        using var process = Process.Start(Redirected(host.StartGraft(arguments)))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        var last = LastLine(stdout.Result);
        if (process.ExitCode == 0 && last.StartsWith('{'))
            return (JsonSerializer.Deserialize<T>(last, TrainableClassifier.Json), null);
        var reason = stderr.Result.Split('\n').Select(l => l.Trim()).LastOrDefault(l => l.StartsWith("graft: ", StringComparison.Ordinal))?["graft: ".Length..];
        return (null, reason ?? $"exit code {process.ExitCode}{(process.ExitCode == 137 ? " (killed: out of memory?)" : "")}");
    }

    static ProcessStartInfo Redirected(ProcessStartInfo start)
    {
        start.RedirectStandardOutput = start.RedirectStandardError = true;
        start.UseShellExecute = false;
        return start;
    }

    static string LastLine(string stdout) => stdout.TrimEnd().Split('\n')[^1];
}

/// <summary>A temporary folder for a run's cache and model file, deleted afterwards.</summary>
sealed class TempFolder : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("graft-bench-").FullName;
    public void Dispose() => Directory.Delete(Path, recursive: true);
}
