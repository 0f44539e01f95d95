using System.Runtime.InteropServices;

namespace Graft.Engine;

/// <summary>
/// Settings of libtorch's global context that TorchSharp does not expose, called through their
/// C++ symbols (Itanium ABI: the member function takes the context as its first argument).
/// </summary>
internal static partial class LibTorchContext
{
    const string Lib = "libtorch_cpu.so";

    [LibraryImport(Lib, EntryPoint = "_ZN2at13globalContextEv")]
    private static partial nint GlobalContext();

    [LibraryImport(Lib, EntryPoint = "_ZN2at7Context20setUserEnabledNNPACKEb")]
    private static partial void SetUserEnabledNnpack(nint context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    [LibraryImport(Lib, EntryPoint = "_ZNK2at7Context17userEnabledNNPACKEv")]
    [return: MarshalAs(UnmanagedType.U1)]
    private static partial bool UserEnabledNnpack(nint context);

    /// <summary>
    /// NNPACK cannot initialise on CPUs it does not know; libtorch then retries and prints a warning on
    /// every eligible convolution. Turning it off skips the attempt (and the noise).
    /// </summary>
    public static bool NnpackEnabled
    {
        get => UserEnabledNnpack(GlobalContext());
        set => SetUserEnabledNnpack(GlobalContext(), value);
    }
}
