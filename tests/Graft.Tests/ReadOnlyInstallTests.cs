using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Graft.Backbones;
using Graft.Backbones.Architectures;
using Graft.Cli;
using Graft.Cli.Commands;
using Graft.Engine;
using Graft.Models;
using Graft.Training;
using Graft.Runtime;
using Graft.Heads;
using Graft.Inference;

namespace Graft.Tests;

/// <summary>
/// Graft installed where it cannot write (a read-only folder, another user's install): the libstdc++ fix goes to
/// Graft's cache and the install is left as it is. Also what a run checks before work about its outputs (free
/// space) and inputs (macOS metadata files named as images).
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")] // file modes, users, the ELF fix
public class ReadOnlyInstallTests
{
    const string Nobody = "65534";

    [Fact]
    public void A_read_only_install_runs_as_another_user_and_is_left_unchanged()
    {
        using var dir = new TempDir();
        string install = dir["install"], home = dir["home"], cache = dir["home/cache"];
        CopyInstall(AppContext.BaseDirectory, install);
        var glue = Directory.GetFiles(install, NativeLibraryFix.TorchSharpGlue, SearchOption.AllDirectories).Single();
        var shipped = ElfVersionNeeds.Read(glue);
        Assert.False(shipped.Requirements.Single(r => r.Version == "GLIBCXX_3.4.32").Weak);
        Assert.Equal(["libtorch.so", "libc10.so", "libtorch_cpu.so"], shipped.Needed.Take(3)); // loaded from the install for a copy elsewhere

        Directory.CreateDirectory(home);
        using (var model = Networks.ScratchModel(["red", "green", "blue"])) model.Save(Path.Combine(home, "m.graft"));
        TinyImages.WriteImage(Path.Combine(home, "x.png"), TinyImages.Palette[0].Color, 40, new Random(1));
        // The other user passes through the test folder and writes only in its home.
        File.SetUnixFileMode(dir.Path, (UnixFileMode)0b111_101_101);
        foreach (var entry in Directory.EnumerateFileSystemEntries(home, "*", SearchOption.AllDirectories).Append(home))
            File.SetUnixFileMode(entry, (UnixFileMode)0b111_111_111);
        SetWritable(install, false);
        try
        {
            RunReadOnly(install, home, cache, glue);
        }
        finally
        {
            SetWritable(install, true);
        }
    }

    [Fact]
    public void Files_and_folders_the_user_cannot_read_are_skipped_or_refused_in_one_line()
    {
        if (!AsAnotherUser) return; // as root every file is readable; the run needs another user (CI runs as root with setpriv)
        using var dir = new TempDir();
        string photos = dir["photos"], home = dir["home"];
        TinyImages.WriteClassFolders(photos, perClass: 4, size: 32);
        Directory.CreateDirectory(home);
        foreach (var entry in Directory.EnumerateFileSystemEntries(dir.Path, "*", SearchOption.AllDirectories).Append(dir.Path))
            File.SetUnixFileMode(entry, (UnixFileMode)(Directory.Exists(entry) ? 0b111_111_111 : 0b110_110_110));
        var secret = Directory.GetFiles(Path.Combine(photos, "red")).Order(StringComparer.Ordinal).First();
        File.SetUnixFileMode(secret, UnixFileMode.UserRead | UnixFileMode.UserWrite); // root's alone
        var env = new Dictionary<string, string> { ["HOME"] = home, ["DOTNET_CLI_HOME"] = home, [Weights.AssetResolver.CacheVariable] = Path.Combine(home, "cache") };

        var skipped = RunInstalled(AppContext.BaseDirectory, env, "train", photos, "--strategy", "scratch", "--epochs", "1", "--out", Path.Combine(home, "m.graft"));
        Assert.True(skipped.ExitCode == 0, skipped.Stderr);
        Assert.Contains(Path.GetFileName(secret), skipped.Stdout + skipped.Stderr); // listed as skipped, with its reason

        File.SetUnixFileMode(Path.Combine(photos, "green"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var refused = RunInstalled(AppContext.BaseDirectory, env, "train", photos, "--strategy", "scratch", "--epochs", "1", "--out", Path.Combine(home, "n.graft"));
        Assert.Equal(2, refused.ExitCode);
        var line = Assert.Single(refused.Stderr.Trim().Split('\n'));
        Assert.Contains(Path.Combine(photos, "green"), line);
        Assert.DoesNotContain("internal error", line);
    }

    static void RunReadOnly(string install, string home, string cache, string glue)
    {
        var before = Snapshot(install);
        var env = new Dictionary<string, string> { ["HOME"] = home, ["DOTNET_CLI_HOME"] = home, [Weights.AssetResolver.CacheVariable] = cache };

        var doctor = RunInstalled(install, env, "doctor", "--json");
        Assert.True(doctor.ExitCode == 0, doctor.Stderr);
        var status = JsonNode.Parse(doctor.LastLine)!["native_library"]!.GetValue<string>();
        bool patched = status.StartsWith("patched copy:");
        if (patched)
        {
            var copy = Assert.Single(Directory.GetFiles(Path.Combine(cache, "native"), NativeLibraryFix.TorchSharpGlue, SearchOption.AllDirectories));
            Assert.Contains(copy, status);
            Assert.True(ElfVersionNeeds.Read(copy).Requirements.Single(r => r.Version == "GLIBCXX_3.4.32").Weak);
            var written = File.GetLastWriteTimeUtc(copy);

            var predict = RunInstalled(install, env, "predict", Path.Combine(home, "m.graft"), Path.Combine(home, "x.png"));
            Assert.True(predict.ExitCode == 0, predict.Stderr);
            Assert.Contains("x.png: ", predict.Stdout);
            Assert.Equal(written, File.GetLastWriteTimeUtc(copy)); // reused, not written again
        }
        else Assert.Equal("loads as shipped", status);
        Assert.Equal(before, Snapshot(install));

        // With no writable place for the copy either: one line naming both, and the way out.
        if (patched && AsAnotherUser)
        {
            var nowhere = Path.Combine(install, "cache");
            var refused = RunInstalled(install, new Dictionary<string, string>(env) { [Weights.AssetResolver.CacheVariable] = nowhere }, "doctor");
            Assert.Equal(2, refused.ExitCode);
            var line = Assert.Single(refused.Stderr.Trim().Split('\n'));
            Assert.Contains(glue, line);
            Assert.Contains(nowhere, line);
            Assert.Contains("Set GRAFT_CACHE to a folder you can write to", line);
            Assert.Equal(before, Snapshot(install));
        }
    }

    [Fact]
    public void An_output_on_a_filesystem_short_of_space_is_refused_before_work_starts()
    {
        using var dir = new TempDir();
        TinyImages.WriteImage(dir["x.png"], TinyImages.Palette[0].Color, 40, new Random(1));
        var full = GraftCli.Run(new Dictionary<string, string> { [OutputPaths.MinimumFreeVariable] = long.MaxValue.ToString() },
            "embed", "mobilenet_v2", dir["x.png"], "--out", dir["out/features.csv"]);
        Assert.Equal(2, full.ExitCode);
        var line = Assert.Single(full.Stderr.Trim().Split('\n'));
        Assert.Contains($"--out {dir["out/features.csv"]}: only ", line);
        Assert.Contains($"free on the filesystem holding {dir.Path}", line);
        Assert.False(Directory.Exists(dir["out"]));

        // Training finds out before it trains, not when it saves.
        TinyImages.WriteClassFolders(dir["photos"], perClass: 3, size: 32);
        var train = GraftCli.Run(new Dictionary<string, string> { [OutputPaths.MinimumFreeVariable] = long.MaxValue.ToString(), ["GRAFT_CACHE"] = dir["cache"] },
            "train", dir["photos"], "--out", dir["models/m.graft"]);
        Assert.Equal(2, train.ExitCode);
        Assert.Contains("--out", Assert.Single(train.Stderr.Trim().Split('\n')));
        Assert.DoesNotContain("epoch", train.Stderr + train.Stdout);
        Assert.False(Directory.Exists(dir["cache"]));

        var garbled = GraftCli.Run(new Dictionary<string, string> { [OutputPaths.MinimumFreeVariable] = "lots" },
            "embed", "mobilenet_v2", dir["x.png"], "--out", dir["features.csv"]);
        Assert.Equal(2, garbled.ExitCode);
        Assert.Contains("GRAFT_MIN_FREE_BYTES=lots is not a number", Assert.Single(garbled.Stderr.Trim().Split('\n')));

        // The default bound (64 MB) passes on this disk.
        Assert.Equal(dir["a.csv"], OutputPaths.File("--csv", dir["a.csv"]));
        Assert.Equal(dir["report"], OutputPaths.Folder("--report", dir["report"]));
    }

    [Fact]
    public void AppleDouble_files_named_on_the_command_line_are_skipped_with_a_note()
    {
        using var dir = new TempDir();
        using (var model = Networks.ScratchModel(["red", "green", "blue"])) model.Save(dir["m.graft"]);
        Directory.CreateDirectory(dir["photos"]);
        TinyImages.WriteImage(dir["photos/x.png"], TinyImages.Palette[0].Color, 40, new Random(1));
        // A resource fork as macOS writes it beside each file copied to a FAT or network disk.
        File.WriteAllBytes(dir["photos/._x.png"], [0x00, 0x05, 0x16, 0x07, 0x00, 0x02, 0x00, 0x00, .. new byte[74]]);

        // A folder's walk skips it as a hidden file.
        Assert.Equal([dir["photos/x.png"]], PredictCommand.ExpandInputs([dir["photos"]]));

        foreach (var command in new[] { "predict", "embed" })
        {
            var named = GraftCli.Run(null, command, dir["m.graft"], dir["photos/._x.png"], dir["photos/x.png"]);
            Assert.True(named.ExitCode == 0, named.Stderr);
            Assert.Contains($"note: skipped {dir["photos/._x.png"]}: macOS metadata, not an image.", named.Stderr.ReplaceLineEndings(""));
            Assert.Contains($"{dir["photos/x.png"]}: ", named.Stdout);
            Assert.DoesNotContain($"{dir["photos/._x.png"]}: ", named.Stdout);

            var only = GraftCli.Run(null, command, dir["m.graft"], dir["photos/._x.png"]);
            Assert.Equal(2, only.ExitCode);
            var line = Assert.Single(only.Stderr.Trim().Split('\n'));
            Assert.Contains($"{dir["photos/._x.png"]} is macOS metadata", line);
            Assert.Contains(dir["photos/x.png"], line);
        }
    }

    /// <summary>Root (as in CI containers) ignores file modes, so the install runs as nobody there.</summary>
    static bool AsAnotherUser => Environment.IsPrivilegedProcess && File.Exists("/usr/bin/setpriv");

    static GraftCli.Result RunInstalled(string install, IDictionary<string, string> env, params string[] args)
    {
        var start = new ProcessStartInfo(AsAnotherUser ? "/usr/bin/setpriv" : "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (AsAnotherUser)
            foreach (var a in new[] { $"--reuid={Nobody}", $"--regid={Nobody}", "--clear-groups", "dotnet" }) start.ArgumentList.Add(a);
        start.ArgumentList.Add(Path.Combine(install, "Graft.Cli.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["GRAFT_OFFLINE"] = "1";
        foreach (var (k, v) in env) start.Environment[k] = v;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2))) { process.Kill(true); throw new TimeoutException("graft did not finish"); }
        return new GraftCli.Result(process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>
    /// The app folder as an install: small files copied, libtorch and the other large libraries linked (read-only to
    /// the other user all the same), and the TorchSharp glue as the NuGet package ships it, never patched.
    /// </summary>
    static void CopyInstall(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            if (Path.GetFileName(file) == NativeLibraryFix.TorchSharpGlue) File.Copy(ShippedGlue(), target);
            else if (new FileInfo(file).Length > 8 << 20) File.CreateSymbolicLink(target, file);
            else File.Copy(file, target);
        }
    }

    static string ShippedGlue()
    {
        var version = typeof(TorchSharp.torch).Assembly.GetName().Version!;
        var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p ? p
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        return Path.Combine(packages, "torchsharp", $"{version.Major}.{version.Minor}.{version.Build}", "runtimes", "linux-x64", "native", NativeLibraryFix.TorchSharpGlue);
    }

    /// <summary>chmod -R a-w (or u+w, to delete it), leaving links alone: their targets are the test's own output.</summary>
    static void SetWritable(string root, bool writable)
    {
        const UnixFileMode write = UnixFileMode.UserWrite | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite;
        foreach (var entry in Entries(root))
            File.SetUnixFileMode(entry, writable ? File.GetUnixFileMode(entry) | UnixFileMode.UserWrite : File.GetUnixFileMode(entry) & ~write);
    }

    static IEnumerable<string> Entries(string root) =>
        Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories).Append(root).Where(e => new FileInfo(e).LinkTarget is null);

    /// <summary>Every entry of the install: its contents' hash (files), its target (links), or that it is a folder.</summary>
    static SortedDictionary<string, string> Snapshot(string root)
    {
        var entries = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories))
        {
            var info = new FileInfo(entry);
            entries[Path.GetRelativePath(root, entry)] = info.LinkTarget is { } target ? "-> " + target
                : Directory.Exists(entry) ? "folder"
                : Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(entry))) + " " + File.GetUnixFileMode(entry);
        }
        return entries;
    }

}
