using System.Runtime.InteropServices;

namespace Graft.Engine;

/// <summary>The few glibc calls the engine set-up needs (Linux only).</summary>
static partial class Libc
{
    const string Lib = "libc.so.6";
    public const int RtldNow = 2;

    [LibraryImport(Lib, EntryPoint = "dlopen", StringMarshalling = StringMarshalling.Utf8)]
    public static partial nint DlOpen(string path, int flags);

    [LibraryImport(Lib, EntryPoint = "dlerror")]
    public static partial nint DlErrorPtr();

    [LibraryImport(Lib, EntryPoint = "mallopt")]
    public static partial int MallOpt(int param, int value);

    [LibraryImport(Lib, EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int SetEnv(string name, string value, int overwrite);

    [LibraryImport(Lib, EntryPoint = "execve", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int ExecVe(string path, string?[] argv, string?[] envp);

    public static string? DlError() => Marshal.PtrToStringUTF8(DlErrorPtr());
}
