using Spectre.Console;
using System.CommandLine;
using Graft.Backbones;
using Graft.Engine;
using Graft.Weights;
using Graft.Runtime;

namespace Graft.Cli.Commands;

public static class DoctorCommand
{
    public static Command Create()
    {
        var json = Cli.JsonOption();
        var command = new Command("doctor", "Check the engine set-up: native library, allocator, threads, asset mirrors, Keras's cache, Graft's cache, the default backbone's weights.") { json };
        command.SetHandler((parse, _) =>
        {
            TorchRuntime.EnsureInitialized();
            var resolver = Cli.Assets;
            var backbone = BackboneRegistry.Default;
            var weights = backbone.SourceFor(resolver, backbone.InputSize, includeTop: false)!;
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
                default_backbone = new { name = backbone.Name, weights_file = weights.File.FileName, weights_path = resolver.FindLocal(weights.File) },
            };
            Cli.Out.MarkupLine($"native library: {Cli.Escape(report.native_library)}");
            Cli.Out.MarkupLine($"allocator:      {Cli.Escape(report.allocator_detail)}");
            Cli.Out.MarkupLine($"threads:        {report.threads}");
            Cli.Out.MarkupLine($"asset mirrors:  {Cli.Escape(string.Join(", ", report.asset_mirrors.DefaultIfEmpty("(none)")))}");
            Cli.Out.MarkupLine($"keras cache:    {Cli.Escape(string.Join(", ", report.keras_cache.DefaultIfEmpty($"(none; looked in {string.Join(", ", resolver.KerasCacheFolders)})")))}");
            Cli.Out.MarkupLine($"cache:          {Cli.Escape(report.cache)}");
            if (report.default_backbone.weights_path is { } here)
                Cli.Out.MarkupLine($"default backbone: {backbone.Name}, weights here: {Cli.Escape(here)}");
            else
            {
                // The problem and fixes of the error train would stop with, as the error line words them.
                var problem = $"{weights.File.FileName} is not on this machine" +
                    (resolver.AllowDownload ? "; train downloads it on first use." : " and downloads are disabled (GRAFT_OFFLINE).");
                var fixes = resolver.HowToGet(weights.File).Concat(Cli.CallerFixLines(CallerFix.WeightsFile, null)).ToList();
                Cli.Out.MarkupLine($"default backbone: {backbone.Name}, [yellow]weights missing[/]: {string.Join("\n", Cli.Lines(problem, fixes).Split('\n').Select(Cli.Escape))}");
            }
            if (parse.GetValue(json)) Cli.WriteJson(report);
            return Task.CompletedTask;
        });
        return command;
    }
}
