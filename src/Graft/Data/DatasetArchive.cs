using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using Graft.Imaging;

namespace Graft.Data;

/// <summary>What a dataset folder holds: its content hash, file count and total size.</summary>
/// <param name="Hash">
/// SHA-256 of the UTF-8 text made of one line <c>relative/path&lt;TAB&gt;sha256hex\n</c> per file, sorted ordinally by
/// path (forward slashes): it names the files' bytes and places, so it holds for any zip or copy of the same data.
/// </param>
internal readonly record struct DatasetContent(string Hash, int Files, long Bytes);

/// <summary>Safe extraction of a dataset zip (a downloaded or user-supplied file, so untrusted) and content hashes.</summary>
internal static class DatasetArchive
{
    /// <summary>Most bytes a dataset may extract to: far above any sample dataset, far below a zip bomb's reach.</summary>
    public const long MaxBytes = 2L << 30;
    /// <summary>Most entries a zip may hold (Kaggle's train.zip has 25,000).</summary>
    public const int MaxEntries = 100_000;

    /// <summary>
    /// Extracts the entries <paramref name="layout"/> keeps (it maps an entry's name, with forward slashes, to its path
    /// in the dataset, or to null to leave it out) into <paramref name="folder"/>, created here. The whole zip is refused
    /// if any entry is a link or names a path outside the folder (<c>..</c>, absolute), if it has more than
    /// <paramref name="maxEntries"/> entries, or if what it extracts inflates past <paramref name="maxBytes"/>.
    /// </summary>
    public static void Extract(string zip, string folder, Func<string, string?> layout, long maxBytes = MaxBytes, int maxEntries = MaxEntries)
    {
        const string Fix = "Use an unmodified copy of the dataset's zip file.";
        try
        {
            using var archive = ZipFile.OpenRead(zip);
            if (archive.Entries.Count > maxEntries)
                throw new GraftException($"{zip} has {archive.Entries.Count:N0} entries, more than the {maxEntries:N0} a dataset may have.", Fix);
            // Every entry is checked before anything is written: a zip with one hostile entry is not the upstream file.
            foreach (var entry in archive.Entries)
                if (Unsafe(entry) is { } why) throw new GraftException($"{zip}: entry '{entry.FullName}' {why}; refused.", Fix);
            Directory.CreateDirectory(folder);
            var written = new HashSet<string>(StringComparer.Ordinal);
            long total = 0;
            var buffer = new byte[1 << 16];
            foreach (var entry in archive.Entries)
            {
                var name = entry.FullName.Replace('\\', '/');
                if (name.EndsWith('/') || layout(name) is not { } relative) continue;
                if (!written.Add(relative)) throw new GraftException($"{zip} holds {relative} twice.", Fix);
                var target = Path.Combine(folder, relative);
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                using var input = entry.Open();
                using var output = new FileStream(target, FileMode.CreateNew, FileAccess.Write);
                // Counted as inflated, not as declared: the declared length may lie.
                for (int n; (n = input.Read(buffer)) > 0;)
                {
                    if ((total += n) > maxBytes)
                        throw new GraftException($"{zip} extracts to more than {maxBytes:N0} bytes, more than a dataset may have.", Fix);
                    output.Write(buffer, 0, n);
                }
            }
        }
        catch (InvalidDataException e)
        {
            throw new GraftException($"{zip} is not a readable zip file ({GraftException.FirstLine(e.Message)}).", "Download it again: it is damaged or incomplete.");
        }
    }

    /// <summary>Why an entry may not be extracted, or null when it may.</summary>
    static string? Unsafe(ZipArchiveEntry entry)
    {
        var name = entry.FullName.Replace('\\', '/');
        // The high 16 bits of the external attributes are the Unix mode where the zip was made on Unix.
        if (((entry.ExternalAttributes >> 16) & 0xF000) == 0xA000) return "is a symbolic link";
        if (name.StartsWith('/') || name.Length >= 2 && name[1] == ':') return "is an absolute path";
        if (name.Split('/').Contains("..")) return "climbs out of the folder with '..'";
        return null;
    }

    /// <summary>
    /// A hash of the listing of the files under <paramref name="folder"/>: each one's path, size and last write time,
    /// without reading them. Equal listings mean the content hash computed for the first still holds.
    /// </summary>
    public static string Listing(string folder)
    {
        var lines = new StringBuilder();
        foreach (var file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var info = new FileInfo(file);
            lines.Append(file).Append('\t').Append(info.Length).Append('\t').Append(info.LastWriteTimeUtc.Ticks).Append('\n');
        }
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(lines.ToString())));
    }

    /// <summary>The content hash, file count and size of the files under <paramref name="folder"/>.</summary>
    public static DatasetContent Content(string folder)
    {
        var lines = new StringBuilder();
        long bytes = 0;
        var files = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Select(f => (Path: f, Relative: Path.GetRelativePath(folder, f).Replace(Path.DirectorySeparatorChar, '/')))
            .OrderBy(f => f.Relative, StringComparer.Ordinal).ToList();
        foreach (var (path, relative) in files)
        {
            using var stream = File.OpenRead(path);
            bytes += stream.Length;
            lines.Append(relative).Append('\t').Append(Convert.ToHexStringLower(SHA256.HashData(stream))).Append('\n');
        }
        return new(Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(lines.ToString()))), files.Count, bytes);
    }
}
