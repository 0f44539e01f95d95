using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Graft.Heads;
using Graft.Imaging;
using Graft.Export;

namespace Graft.Training;

/// <summary>
/// The bottleneck cache: one small file of float32 features per image, in a folder per trunk
/// configuration. The folder is named by a hash of everything that changes the features (backbone weights,
/// input size, preprocessing, resize method, pooling); the file by the image file's content, so a renamed
/// or moved image still hits, and an edited one misses. Each file ends with a checksum of its key and
/// features: a damaged entry (flipped bytes, another entry's content) is a miss and is recomputed. The cache
/// is optional: when it cannot be written (disk full, read-only), <see cref="WriteError"/> says why and
/// features are computed without it.
/// </summary>
internal sealed class FeatureCache
{
    /// <summary>
    /// The trunk key of a backbone's weights, input, pooling and feature block (its cache folder is named by it);
    /// an int8 trunk's features are keyed apart, by their calibration (float keys are as before int8 existed).
    /// </summary>
    public static string TrunkKey(string backbone, string weightsSha256, ImageSpec input, Pooling pooling, string? featureBlock, Int8Calibration? int8 = null) =>
        $"{backbone}|{weightsSha256}|{input.Key}|{pooling}|{featureBlock ?? "all"}" + (int8 is null ? "" : $"|int8|{int8.Hash}");

    public string Folder { get; }
    public int Channels { get; }
    /// <summary>Why the cache stopped writing (null while it works): the run goes on without caching.</summary>
    public string? WriteError { get; private set; }

    const int ChecksumBytes = 8;

    public FeatureCache(string cacheRoot, string trunkKey, int channels)
    {
        Channels = channels;
        Folder = Path.Combine(cacheRoot, "features", Hash(Encoding.UTF8.GetBytes(trunkKey))[..16]);
        try
        {
            Directory.CreateDirectory(Folder);
            var description = Path.Combine(Folder, "key.txt");
            if (!File.Exists(description)) File.WriteAllText(description, trunkKey + "\n");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            WriteError = $"{Folder}: {e.Message}";
        }
    }

    /// <summary>The content key of an image file (SHA-256 of its bytes).</summary>
    public static string ContentKey(string imagePath)
    {
        using var stream = File.OpenRead(imagePath);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    public float[]? TryGet(string contentKey)
    {
        var path = PathOf(contentKey);
        byte[] bytes;
        try
        {
            if (!File.Exists(path)) return null;
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; } // unreadable: recompute
        int data = Channels * sizeof(float);
        if (bytes.Length != data + ChecksumBytes) return null; // truncated, or from another layout: recompute
        if (!Checksum(contentKey, bytes.AsSpan(0, data)).SequenceEqual(bytes.AsSpan(data))) return null; // damaged: recompute
        return MemoryMarshal.Cast<byte, float>(bytes.AsSpan(0, data)).ToArray();
    }

    /// <summary>Stores an entry; a failure to write (disk full, no permission) turns the cache off for writing, with the reason in <see cref="WriteError"/>.</summary>
    public void Put(string contentKey, ReadOnlySpan<float> features)
    {
        if (WriteError is not null) return;
        var path = PathOf(contentKey);
        var temp = $"{path}.{Environment.ProcessId}.tmp";
        var data = MemoryMarshal.AsBytes(features);
        var bytes = new byte[data.Length + ChecksumBytes];
        data.CopyTo(bytes);
        Checksum(contentKey, data).CopyTo(bytes.AsSpan(data.Length));
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(temp, bytes);
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            WriteError ??= e.Message;
            try { File.Delete(temp); } // best effort: the disk may be full or read-only
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>
    /// Why an image with this content could not be decoded when a run tried (null: no run found it undecodable): the next
    /// run skips it with the same reason, without decoding it again. Keyed by the decoder and whether partly decoded
    /// images are accepted, which change the verdict.
    /// </summary>
    public string? TryGetUndecodable(string contentKey)
    {
        try
        {
            var path = UndecodablePath(contentKey);
            return File.Exists(path) ? File.ReadAllText(path).Trim() is { Length: > 0 } reason ? reason : null : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; } // unreadable: decode again
    }

    /// <summary>Marks an image's content as undecodable, with the decoder's reason; like <see cref="Put"/>, a failure to write turns writing off.</summary>
    public void PutUndecodable(string contentKey, string reason)
    {
        if (WriteError is not null) return;
        var path = UndecodablePath(contentKey);
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, reason + "\n");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { WriteError ??= e.Message; }
    }

    static string UndecodableTag => ImageLoader.Decoder.Name + (ImageLoader.AcceptPartialImages ? "-partial" : "");

    string UndecodablePath(string key) => Path.Combine(Folder, key[..2], $"{key}.{UndecodableTag}.bad");

    /// <summary>The first bytes of SHA-256 over the key and the features: ties an entry to its image and detects damage.</summary>
    static byte[] Checksum(string contentKey, ReadOnlySpan<byte> features)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.ASCII.GetBytes(contentKey));
        hash.AppendData(features);
        return hash.GetHashAndReset()[..ChecksumBytes];
    }

    string PathOf(string key) => Path.Combine(Folder, key[..2], key + ".f32");

    static string Hash(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));
}
