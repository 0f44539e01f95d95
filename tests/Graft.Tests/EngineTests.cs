using Graft.Engine;
using Graft.Runtime;
using static TorchSharp.torch;

namespace Graft.Tests;

public class EngineTests
{
    static string ShippedGlue() =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages", "torchsharp", "0.107.0",
            "runtimes", "linux-x64", "native", NativeLibraryFix.TorchSharpGlue);

    [Fact]
    public void Shipped_glue_library_asks_for_GLIBCXX_3_4_32_and_weakening_marks_only_that()
    {
        var needs = ElfVersionNeeds.Read(ShippedGlue());
        var glibcxx32 = Assert.Single(needs.Requirements, r => r.Version == "GLIBCXX_3.4.32");
        Assert.Equal("libstdc++.so.6", glibcxx32.Library);
        Assert.False(glibcxx32.Weak);

        var patched = ElfVersionNeeds.Parse(needs.WithWeak(["GLIBCXX_3.4.32"]), "patched");
        Assert.True(Assert.Single(patched.Requirements, r => r.Version == "GLIBCXX_3.4.32").Weak);
        var others = patched.Requirements.Where(r => r.Version != "GLIBCXX_3.4.32").ToList();
        Assert.NotEmpty(others);
        Assert.All(others, r => Assert.Equal(needs.Requirements.Single(o => o.FlagsOffset == r.FlagsOffset).Weak, r.Weak));
    }

    [Fact]
    public void Elf_reader_rejects_a_file_that_is_not_elf()
    {
        var e = Assert.Throws<GraftException>(() => ElfVersionNeeds.Parse(new byte[100], "x.so"));
        Assert.Contains("x.so", e.Message);
    }

    [Fact]
    public void Engine_initialises_torch_runs_and_nnpack_is_off()
    {
        TorchRuntime.EnsureInitialized();
        Assert.Matches("^(loads as shipped|patched)", NativeLibraryFix.Status);
        using var x = ones(2, 3);
        Assert.Equal(6f, x.sum().item<float>());
        Assert.False(LibTorchContext.NnpackEnabled);
        Assert.Equal(Environment.ProcessorCount, get_num_threads());
    }

    [Fact]
    public void Glue_library_loaded_is_weakened_exactly_when_this_libstdcxx_lacks_the_version()
    {
        TorchRuntime.EnsureInitialized();
        var mapped = File.ReadAllLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).Last()).ToList();
        var libstdcxx = mapped.First(p => p.Contains("libstdc++.so"));
        bool systemHasIt = System.Text.Encoding.Latin1.GetString(File.ReadAllBytes(libstdcxx)).Contains("GLIBCXX_3.4.32\0");
        var loaded = mapped.Distinct().Single(p => Path.GetFileName(p) == NativeLibraryFix.TorchSharpGlue);
        var requirement = ElfVersionNeeds.Read(loaded).Requirements.Single(r => r.Version == "GLIBCXX_3.4.32");
        Assert.Equal(!systemHasIt, requirement.Weak);
    }

    [Fact]
    public void In_process_allocator_fix_is_applied_when_jemalloc_is_not_preloaded()
    {
        TorchRuntime.EnsureInitialized();
        if (Allocator.JemallocActive) Assert.Contains("jemalloc", Allocator.Describe());
        else Assert.StartsWith("glibc malloc, tuned", Allocator.Describe());
    }

    [Fact]
    public void Cli_runs_with_jemalloc_when_installed_and_tuned_glibc_when_asked()
    {
        var auto = GraftCli.Run(null, "doctor", "--json");
        Assert.Equal(0, auto.ExitCode);
        Assert.Contains(Allocator.FindJemalloc() is null ? "\"allocator\":\"glibc-tuned\"" : "\"allocator\":\"jemalloc\"", auto.LastLine);
        Assert.DoesNotContain("NNPACK", auto.Stderr);

        var system = GraftCli.Run(new Dictionary<string, string> { [Allocator.ChoiceVariable] = "system" }, "doctor", "--json");
        Assert.Equal(0, system.ExitCode);
        Assert.Contains("\"allocator\":\"glibc-tuned\"", system.LastLine);
    }
}
