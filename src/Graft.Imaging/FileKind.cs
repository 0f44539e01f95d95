using System.Runtime.InteropServices;

namespace Graft.Imaging;

/// <summary>
/// What kind of file a path names (links followed). Only regular files are read: opening a named pipe (FIFO) waits
/// for a writer for ever, a socket cannot be opened at all, and a device such as /dev/zero never ends.
/// </summary>
public static partial class FileKind
{
    /// <summary>
    /// What <paramref name="path"/> is when it is not a regular file ("a named pipe (FIFO)", "a socket", "a character
    /// device", "a block device", "a folder"); null for a regular file, a path that does not exist (opening it says
    /// so), or where the system cannot tell (outside Linux).
    /// </summary>
    public static unsafe string? NotRegular(string path)
    {
        const int AtFdCwd = -100, StatxType = 1, ModeOffset = 28;
        byte* buffer = stackalloc byte[256]; // struct statx: the same layout on every Linux architecture
        try
        {
            if (Statx(AtFdCwd, path, 0, StatxType, buffer) != 0) return null;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { return null; }
        int mode = *(ushort*)(buffer + ModeOffset) & 0xF000;
        return mode switch
        {
            0x8000 => null,
            0x1000 => "a named pipe (FIFO)",
            0xC000 => "a socket",
            0x2000 => "a character device",
            0x6000 => "a block device",
            0x4000 => "a folder",
            _ => "not a regular file",
        };
    }

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int Statx(int dirFd, string path, int flags, uint mask, byte* buffer);
}
