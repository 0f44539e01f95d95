using System.Text;

namespace Graft.Engine;

/// <summary>
/// libtorch allocates and frees large activation buffers on every batch. glibc's default malloc hands
/// them back to the kernel each time, and the page faults of re-touching them dominate. jemalloc with decay
/// disabled keeps the pages; it must be preloaded, so the CLI re-executes itself with it. Where jemalloc is missing
/// (or in a process we cannot restart, like a test host) glibc is tuned in-process instead: no mmap for large
/// blocks, no trimming, which recovers part of the difference (`graft bench` names the allocator it ran with).
/// </summary>
internal static class Allocator
{
    public const string JemallocConfig = "dirty_decay_ms:-1,muzzy_decay_ms:-1,retain:true";
    /// <summary>Set to "system" to keep glibc's malloc (tuned), e.g. to compare.</summary>
    public const string ChoiceVariable = "GRAFT_ALLOCATOR";
    const string ReexecMarker = "GRAFT_ALLOCATOR_REEXEC";

    static readonly string[] JemallocPaths =
    [
        "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
        "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
        "/usr/lib64/libjemalloc.so.2",
        "/usr/lib/libjemalloc.so.2",
        "/usr/local/lib/libjemalloc.so.2",
    ];

    public static string? FindJemalloc() => JemallocPaths.FirstOrDefault(File.Exists);

    /// <summary>Whether jemalloc is mapped into this process (i.e. it was preloaded).</summary>
    public static bool JemallocActive =>
        OperatingSystem.IsLinux() && File.ReadAllText("/proc/self/maps").Contains("libjemalloc");

    public static string Describe() =>
        JemallocActive ? "jemalloc (preloaded)"
        : OperatingSystem.IsLinux() ? "glibc malloc, tuned in-process" + (FindJemalloc() is null ? " (install libjemalloc2: faster)" : "")
        : "system default";

    /// <summary>
    /// Replaces the current process with itself, jemalloc preloaded. Returns only when that is not
    /// possible or not wanted (already done, not Linux, jemalloc missing, GRAFT_ALLOCATOR=system).
    /// </summary>
    public static void ReexecWithJemallocIfPossible()
    {
        if (!OperatingSystem.IsLinux() || JemallocActive) return;
        if (Environment.GetEnvironmentVariable(ReexecMarker) is not null) return;
        if (Environment.GetEnvironmentVariable(ChoiceVariable) is "system" or "glibc") return;
        var jemalloc = FindJemalloc();
        if (jemalloc is null) return;

        var argv = ReadNulSeparated("/proc/self/cmdline");
        var env = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value ?? "");
        var preload = env.GetValueOrDefault("LD_PRELOAD");
        env["LD_PRELOAD"] = string.IsNullOrEmpty(preload) ? jemalloc : $"{jemalloc}:{preload}";
        env.TryAdd("MALLOC_CONF", JemallocConfig);
        env[ReexecMarker] = "1";
        var envp = env.Select(kv => $"{kv.Key}={kv.Value}").Cast<string?>().Append(null).ToArray();
        Libc.ExecVe("/proc/self/exe", argv.Cast<string?>().Append(null).ToArray(), envp);
        // execve only returns on failure: carry on with glibc.
    }

    /// <summary>Keeps glibc from returning large blocks to the kernel after each use.</summary>
    public static void TuneGlibcIfActive()
    {
        if (!OperatingSystem.IsLinux() || JemallocActive) return;
        const int M_TRIM_THRESHOLD = -1, M_TOP_PAD = -2, M_MMAP_MAX = -4, M_ARENA_MAX = -8;
        Libc.MallOpt(M_MMAP_MAX, 0);
        Libc.MallOpt(M_TRIM_THRESHOLD, int.MaxValue);
        Libc.MallOpt(M_TOP_PAD, 64 << 20);
        Libc.MallOpt(M_ARENA_MAX, 1);
    }

    static string[] ReadNulSeparated(string path) =>
        Encoding.UTF8.GetString(File.ReadAllBytes(path)).TrimEnd('\0').Split('\0');
}
