using Spectre.Console;
using System.CommandLine;
using Graft.Engine;
using Graft.Weights;
using Graft.Runtime;

namespace Graft.Cli.Commands;

public static class DoctorCommand
{
    public static Command Create()
    {
        var json = Cli.JsonOption();
        var command = new Command("doctor", "Check the engine set-up: native library, allocator, threads, asset mirrors, Keras's cache, Graft's cache.") { json };
        command.SetHandler((parse, _) =>
        {
            TorchRuntime.EnsureInitialized();
            var resolver = Cli.Assets;
            var report = new
            {
                native_library = NativeLibraryFix.Status,
                allocator = Allocator.JemallocActive ? "jemalloc" : OperatingSystem.IsLinux() ? "glibc-tuned" : "system",
                allocator_detail = Allocator.Describe(),
                threads = TorchSharp.torch.get_num_threads(),
                nnpack = LibTorchContext.NnpackEnabled,
                asset_mirrors = resolver.SearchRoots,
                keras_cache = resolver.KerasCacheFolders.Where(Directory.Exists).ToList(),
                cache = resolver.CacheRoot,
            };
            Cli.Out.MarkupLine($"native library: {Cli.Escape(report.native_library)}");
            Cli.Out.MarkupLine($"allocator:      {Cli.Escape(report.allocator_detail)}");
            Cli.Out.MarkupLine($"threads:        {report.threads}");
            Cli.Out.MarkupLine($"asset mirrors:  {Cli.Escape(string.Join(", ", report.asset_mirrors.DefaultIfEmpty("(none)")))}");
            Cli.Out.MarkupLine($"keras cache:    {Cli.Escape(string.Join(", ", report.keras_cache.DefaultIfEmpty($"(none; looked in {string.Join(", ", resolver.KerasCacheFolders)})")))}");
            Cli.Out.MarkupLine($"cache:          {Cli.Escape(report.cache)}");
            if (parse.GetValue(json)) Cli.WriteJson(report);
            return Task.CompletedTask;
        });
        return command;
    }
}
