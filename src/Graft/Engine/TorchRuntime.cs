using TorchSharp;

namespace Graft.Engine;

/// <summary>
/// The one place the native engine is prepared. Every entry point that touches tensors calls
/// <see cref="EnsureInitialized"/> first; it is cheap after the first call.
/// </summary>
public static class TorchRuntime
{
    static readonly Lazy<bool> Initialized = new(Initialize, LazyThreadSafetyMode.ExecutionAndPublication);

    public static void EnsureInitialized() => _ = Initialized.Value;

    static bool Initialize()
    {
        if (OperatingSystem.IsLinux())
        {
            Allocator.TuneGlibcIfActive();
            // libtorch's OpenMP workers spin while waiting; with the input pipeline decoding on the same cores
            // that costs several-fold. Sleeping workers (read by libgomp when libtorch loads) degrade gracefully.
            Libc.SetEnv("OMP_WAIT_POLICY", "PASSIVE", overwrite: 0);
            NativeLibraryFix.EnsureTorchSharpLoads();
        }
        torch.InitializeDeviceType(DeviceType.CPU);
        torch.set_num_threads(Environment.ProcessorCount);
        if (OperatingSystem.IsLinux()) LibTorchContext.NnpackEnabled = false;
        return true;
    }
}
