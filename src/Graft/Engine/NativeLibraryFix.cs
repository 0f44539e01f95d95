using System.Text.RegularExpressions;

namespace Graft.Engine;

/// <summary>
/// Makes TorchSharp's native glue load on systems whose libstdc++ is older than the one it was built
/// against. The loader names each missing version ("version `GLIBCXX_3.4.32' not found"); those
/// requirements are marked weak in the app's own copy of the library, which is rewritten atomically.
/// Where the library loads as it is (newer systems) the file is left untouched.
/// </summary>
public static partial class NativeLibraryFix
{
    public const string TorchSharpGlue = "libLibTorchSharp.so";

    /// <summary>What was done, for <c>graft doctor</c>.</summary>
    public static string Status { get; private set; } = "not checked";

    [GeneratedRegex(@"version `(GLIBCXX_[0-9.]+|CXXABI_[0-9.]+)' not found")]
    private static partial Regex MissingVersion();

    public static void EnsureTorchSharpLoads()
    {
        if (!OperatingSystem.IsLinux()) { Status = "not needed (not Linux)"; return; }
        var path = FindInApp(TorchSharpGlue);
        if (path is null) { Status = $"{TorchSharpGlue} not found beside the app; left to TorchSharp"; return; }

        var weakened = new List<string>();
        for (int attempt = 0; attempt < 4; attempt++)
        {
            string? error = TryLoad(path);
            if (error is null)
            {
                var weak = ElfVersionNeeds.Read(path).Requirements.Where(r => r.Weak).Select(r => r.Version).ToList();
                Status = weak.Count == 0 ? "loads as shipped"
                    : $"patched{(weakened.Count == 0 ? " earlier" : "")}: {string.Join(", ", weak)} marked weak in {path}";
                return;
            }
            var missing = MissingVersion().Matches(error).Select(m => m.Groups[1].Value).Except(weakened).ToList();
            if (missing.Count == 0)
                throw new GraftException($"The native library {path} does not load: {error}.",
                    "Check that the TorchSharp-cpu and libtorch-cpu packages are complete (dotnet restore).");
            WriteWeakened(path, missing);
            weakened.AddRange(missing);
        }
        throw new GraftException($"The native library {path} still does not load after patching {string.Join(", ", weakened)}.",
            "Install a newer libstdc++ (GCC 13 or later).");
    }

    static string? TryLoad(string path)
    {
        Libc.DlError(); // clear any stale error
        return Libc.DlOpen(path, Libc.RtldNow) != 0 ? null : Libc.DlError() ?? "unknown dlopen error";
    }

    static void WriteWeakened(string path, IEnumerable<string> versions)
    {
        var patched = ElfVersionNeeds.Read(path).WithWeak(versions);
        var temp = path + ".graft-tmp";
        try
        {
            File.WriteAllBytes(temp, patched);
            File.Move(temp, path, overwrite: true);
        }
        catch (UnauthorizedAccessException)
        {
            throw new GraftException($"{path} needs a one-time fix for this system's older libstdc++ but is read-only.",
                "Run graft once with write access to its install folder, or install GCC 13's libstdc++.");
        }
    }

    static string? FindInApp(string fileName)
    {
        var baseDir = AppContext.BaseDirectory;
        string[] candidates =
        [
            Path.Combine(baseDir, fileName),
            Path.Combine(baseDir, "runtimes", "linux-x64", "native", fileName),
        ];
        return candidates.FirstOrDefault(File.Exists);
    }
}
