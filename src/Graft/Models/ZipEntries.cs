using System.IO.Compression;

namespace Graft.Models;

/// <summary>Whole-entry reads and writes for Graft's zip files (model files, checkpoints).</summary>
public static class ZipEntries
{
    public static void Write(ZipArchive zip, string name, byte[] data)
    {
        using var stream = zip.CreateEntry(name, CompressionLevel.Fastest).Open();
        stream.Write(data);
    }

    public static byte[] Read(ZipArchive zip, string name, string path)
    {
        var entry = zip.GetEntry(name) ?? throw new GraftException($"{path} lacks {name}.", "The file is incomplete: write it again.");
        using var stream = entry.Open();
        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        return memory.ToArray();
    }

    /// <summary>Writes a zip atomically: a temporary file beside the target, then a rename.</summary>
    public static void WriteAtomically(string path, Action<ZipArchive> fill)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temp = $"{full}.{Environment.ProcessId}.tmp";
        try
        {
            using (var file = File.Create(temp))
            using (var zip = new ZipArchive(file, ZipArchiveMode.Create))
                fill(zip);
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
