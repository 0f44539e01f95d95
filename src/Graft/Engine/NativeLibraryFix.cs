using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Graft.Weights;

namespace Graft.Engine;

/// <summary>
/// Makes TorchSharp's native glue load on systems whose libstdc++ is older than the one it was built
/// against. The loader names each missing version ("version `GLIBCXX_3.4.32' not found"); a copy of the
/// library with those requirements marked weak is written to Graft's cache (the install folder may be
/// read-only, or another user's) and TorchSharp is pointed at it (<see cref="TorchRuntime"/>). Where the library beside the app loads as
/// it is (newer systems, or an install patched in place by an older Graft), nothing is written.
/// </summary>
internal static partial class NativeLibraryFix
{
    public const string TorchSharpGlue = "libLibTorchSharp.so";

    /// <summary>The library name in TorchSharp's <c>[DllImport]</c>s.</summary>
    internal const string GlueImportName = "LibTorchSharp";

    /// <summary>What was done, for <c>graft doctor</c>.</summary>
    public static string Status { get; private set; } = "not checked";

    [GeneratedRegex(@"version `(GLIBCXX_[0-9.]+|CXXABI_[0-9.]+)' not found")]
    private static partial Regex MissingVersion();

    /// <summary>
    /// Loads the glue library (Linux), fixing it if needed; returns the handle of the patched copy, or 0 when the
    /// library TorchSharp finds itself loads.
    /// </summary>
    public static nint EnsureTorchSharpLoads()
    {
        if (!OperatingSystem.IsLinux()) { Status = "not needed (not Linux)"; return 0; }
        var shipped = FindInApp(TorchSharpGlue);
        if (shipped is null) { Status = $"{TorchSharpGlue} not found beside the app; left to TorchSharp"; return 0; }

        var shippedNeeds = ElfVersionNeeds.Read(shipped);
        // libtorch's own libraries, loaded from the app folder by path: a copy elsewhere finds them by soname
        // (its RUNPATH, $ORIGIN, would point into the cache).
        var folder = Path.GetDirectoryName(shipped)!;
        foreach (var dependency in shippedNeeds.Needed.Select(n => Path.Combine(folder, n)).Where(File.Exists))
            if (TryLoad(dependency, out _) is { } dependencyError)
                throw new GraftException($"The native library {dependency} does not load: {dependencyError}.",
                    "Check that the TorchSharp-cpu and libtorch-cpu packages are complete (dotnet restore).");

        string? error = TryLoad(shipped, out _);
        if (error is null)
        {
            var weakInPlace = WeakVersions(shippedNeeds);
            Status = weakInPlace.Count == 0 ? "loads as shipped" : $"patched earlier: {string.Join(", ", weakInPlace)} marked weak in {shipped}";
            return 0;
        }
        var weak = MissingVersions(error);
        if (weak.Count == 0)
            throw new GraftException($"The native library {shipped} does not load: {error}.",
                "Check that the TorchSharp-cpu and libtorch-cpu packages are complete (dotnet restore).");

        var copy = CopyPath(shipped);
        bool written = false;
        for (int attempt = 0; attempt < 4; attempt++)
        {
            var existing = ReadCopy(copy, shippedNeeds);
            if (existing is null || !weak.IsSubsetOf(existing))
            {
                // Versions another process marked stay marked: concurrent runs only ever add to the copy.
                weak.UnionWith(existing ?? []);
                WriteCopy(shipped, copy, shippedNeeds.WithWeak(weak), weak);
                written = true;
            }
            error = TryLoad(copy, out var handle);
            if (error is null)
            {
                // TorchSharp's own start-up probe (NativeLibrary.TryLoad by name, which no resolver sees) tries the
                // app folder's copy, which fails, then the bare name, which the loader matches to this copy's soname.
                Status = $"patched copy{(written ? "" : " (from an earlier run)")}: {string.Join(", ", WeakVersions(ElfVersionNeeds.Read(copy)))} " +
                    $"marked weak in {copy}; {shipped} is left as shipped";
                return handle;
            }
            var missing = MissingVersions(error);
            missing.ExceptWith(weak);
            if (missing.Count == 0)
                throw new GraftException($"The patched copy {copy} of {shipped} does not load: {error}.",
                    $"Set {AssetResolver.CacheVariable} to a folder on a filesystem that allows executable files (not mounted noexec).");
            weak.UnionWith(missing);
        }
        throw new GraftException($"The native library {shipped} still does not load after patching {string.Join(", ", weak)} in {copy}.",
            "Install a newer libstdc++ (GCC 13 or later).");
    }

    /// <summary>One copy per shipped file (its SHA-256), so that a TorchSharp update never meets a stale copy.</summary>
    static string CopyPath(string shipped)
    {
        using var stream = File.OpenRead(shipped);
        var hash = Convert.ToHexStringLower(SHA256.HashData(stream))[..16];
        return Path.Combine(Path.GetFullPath(AssetResolver.DefaultCacheRoot()), "native", hash, TorchSharpGlue);
    }

    /// <summary>The weak versions of a copy written earlier, or null when there is none (or it is not one).</summary>
    static HashSet<string>? ReadCopy(string copy, ElfVersionNeeds shipped)
    {
        if (!File.Exists(copy)) return null;
        try
        {
            var needs = ElfVersionNeeds.Read(copy);
            bool sameLibrary = needs.Requirements.Select(r => (r.Library, r.Version, r.FlagsOffset))
                .SequenceEqual(shipped.Requirements.Select(r => (r.Library, r.Version, r.FlagsOffset)));
            return sameLibrary ? WeakVersions(needs).ToHashSet() : null;
        }
        catch (Exception e) when (e is GraftException or IOException or ArgumentOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>Written beside its final name and renamed over it: a concurrent run sees no copy or a whole one.</summary>
    static void WriteCopy(string shipped, string copy, byte[] image, IEnumerable<string> weak)
    {
        var folder = Path.GetDirectoryName(copy)!;
        var temp = Path.Combine(folder, $".{TorchSharpGlue}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            Directory.CreateDirectory(folder);
            File.WriteAllBytes(temp, image);
            File.Move(temp, copy, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(temp); } catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException) { } // best effort
            throw new GraftException(
                $"{shipped} needs {string.Join(", ", weak)} marked weak for this system's older libstdc++; its folder is left untouched and " +
                $"the fixed copy goes to {folder}, which cannot be written either ({GraftException.FirstLine(e.Message).TrimEnd('.')}).",
                $"Set {AssetResolver.CacheVariable} to a folder you can write to, or install GCC 13's libstdc++.");
        }
    }

    static HashSet<string> MissingVersions(string loaderError) =>
        MissingVersion().Matches(loaderError).Select(m => m.Groups[1].Value).ToHashSet();

    static List<string> WeakVersions(ElfVersionNeeds needs) =>
        needs.Requirements.Where(r => r.Weak).Select(r => r.Version).ToList();

    static string? TryLoad(string path, out nint handle)
    {
        Libc.DlError(); // clear any stale error
        handle = Libc.DlOpen(path, Libc.RtldNow);
        return handle != 0 ? null : Libc.DlError() ?? "unknown dlopen error";
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
