using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;

namespace Graft.Engine;

/// <summary>
/// The one place the native engine is prepared. Every entry point that touches tensors calls
/// <see cref="EnsureInitialized"/> first; it is cheap after the first call. Code that reaches TorchSharp without
/// it (building a network only to measure it) still gets the native library fixed, through the resolver below.
/// </summary>
internal static class TorchRuntime
{
    static readonly Lazy<nint> NativeGlue = new(PrepareNative, LazyThreadSafetyMode.ExecutionAndPublication);
    static readonly Lazy<bool> Initialized = new(Initialize, LazyThreadSafetyMode.ExecutionAndPublication);

    public static void EnsureInitialized() => _ = Initialized.Value;

    /// <summary>
    /// TorchSharp's P/Invokes of its glue library resolve here: prepared on first use, and the patched copy when the
    /// one beside the app does not load (0: TorchSharp's own search finds it).
    /// </summary>
#pragma warning disable CA2255 // a library's module initializer: TorchSharp may be reached before any Graft entry point
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void RouteTorchSharpGlue() =>
        NativeLibrary.SetDllImportResolver(typeof(torch).Assembly,
            (name, _, _) => name == NativeLibraryFix.GlueImportName ? NativeGlue.Value : 0);

    /// <summary>What must happen before libtorch loads. Calls no TorchSharp code, so the resolver can run it.</summary>
    static nint PrepareNative()
    {
        if (!OperatingSystem.IsLinux()) return 0;
        Allocator.TuneGlibcIfActive();
        // libtorch's OpenMP workers spin while waiting; with the input pipeline decoding on the same cores
        // that costs several-fold. Sleeping workers (read by libgomp when libtorch loads) degrade gracefully.
        Libc.SetEnv("OMP_WAIT_POLICY", "PASSIVE", overwrite: 0);
        return NativeLibraryFix.EnsureTorchSharpLoads();
    }

    static bool Initialize()
    {
        _ = NativeGlue.Value;
        torch.InitializeDeviceType(DeviceType.CPU);
        torch.set_num_threads(Environment.ProcessorCount);
        if (OperatingSystem.IsLinux()) LibTorchContext.NnpackEnabled = false;
        return true;
    }
}
