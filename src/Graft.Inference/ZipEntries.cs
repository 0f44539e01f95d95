using System.Diagnostics;
using System.IO.Compression;

namespace Graft.Inference;

/// <summary>Whole-entry reads and writes for Graft's zip files (model files, checkpoints).</summary>
internal static class ZipEntries
{
    /// <summary>Adds an entry holding <paramref name="data"/>.</summary>
    public static void Write(ZipArchive zip, string name, byte[] data)
    {
        using var stream = zip.CreateEntry(name, CompressionLevel.Fastest).Open();
        stream.Write(data);
    }

    /// <summary>
    /// Reads a whole entry of at most <paramref name="maxBytes"/> (what the file's own description allows): a larger
    /// entry is refused before it is read, and one that inflates past what it declares is refused as soon as it does.
    /// </summary>
    public static byte[] Read(ZipArchive zip, string name, string path, long maxBytes = int.MaxValue)
    {
        maxBytes = Math.Min(maxBytes, Array.MaxLength);
        try
        {
            // The central directory is read on the first look-up: a damaged one throws here.
            var entry = zip.GetEntry(name) ?? throw new GraftException($"{path} lacks {name}.", "The file is incomplete: write it again.");
            if (entry.Length > maxBytes) throw TooLarge(path, name, maxBytes);
            using var stream = entry.Open();
            using var memory = new MemoryStream((int)Math.Min(entry.Length, 64 << 20)); // the declared length may lie
            var buffer = new byte[81920];
            for (int n; (n = stream.Read(buffer)) > 0;)
            {
                if (memory.Length + n > maxBytes) throw TooLarge(path, name, maxBytes);
                memory.Write(buffer, 0, n);
            }
            return memory.Length == memory.Capacity ? memory.GetBuffer() : memory.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new GraftException($"{path}: {name} is damaged ({e.Message}).", "The file is incomplete or corrupted: write it again or restore it from a backup.");
        }
    }

    static GraftException TooLarge(string path, string name, long maxBytes) =>
        new($"{path}: {name} is larger than the {maxBytes:N0} bytes the file's own description allows.",
            "The file is damaged or not a Graft file: write it again or restore it from a backup.");

    /// <summary>
    /// Writes a zip atomically: a temporary file beside the target, flushed to disk, then a rename. Temporary files
    /// that killed runs left beside the target (their process is gone) are removed first.
    /// </summary>
    public static void WriteAtomically(string path, Action<ZipArchive> fill) => WriteFileAtomically(path, file =>
    {
        using var zip = new ZipArchive(file, ZipArchiveMode.Create, leaveOpen: true);
        fill(zip);
    });

    /// <summary>Writes a file atomically: a temporary file beside it, flushed to disk, then a rename.</summary>
    public static void WriteFileAtomically(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        RemoveStaleTemporaries(full);
        var temp = $"{full}.{Environment.ProcessId}.tmp";
        try
        {
            using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                write(file);
                file.Flush(flushToDisk: true); // the rename must never expose a file whose data is still only in the page cache
            }
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>Deletes <c>FILE.PID.tmp</c> beside <paramref name="full"/> whose process no longer runs (a run killed while writing).</summary>
    static void RemoveStaleTemporaries(string full)
    {
        var folder = Path.GetDirectoryName(full)!;
        var prefix = Path.GetFileName(full) + ".";
        try
        {
            foreach (var stale in Directory.EnumerateFiles(folder, Path.GetFileName(full) + ".*.tmp"))
            {
                var middle = Path.GetFileName(stale)[prefix.Length..^".tmp".Length];
                if (!int.TryParse(middle, out int pid) || pid == Environment.ProcessId || IsRunning(pid)) continue;
                try { File.Delete(stale); }
                catch (IOException) { }
                catch (UnauthorizedAccessException) { }
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    static bool IsRunning(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException) { return false; } // no such process
        catch (InvalidOperationException) { return false; }
    }
}
