using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace Graft.Training;

/// <summary>
/// The bottleneck cache: one small file of float32 features per image, in a folder per trunk
/// configuration. The folder is named by a hash of everything that changes the features (backbone weights,
/// input size, preprocessing, resize method, pooling); the file by the image file's content, so a renamed
/// or moved image still hits, and an edited one misses.
/// </summary>
public sealed class FeatureCache
{
    public string Folder { get; }
    public int Channels { get; }

    public FeatureCache(string cacheRoot, string trunkKey, int channels)
    {
        Channels = channels;
        Folder = Path.Combine(cacheRoot, "features", Hash(Encoding.UTF8.GetBytes(trunkKey))[..16]);
        Directory.CreateDirectory(Folder);
        var description = Path.Combine(Folder, "key.txt");
        if (!File.Exists(description)) File.WriteAllText(description, trunkKey + "\n");
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
        if (!File.Exists(path)) return null;
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length != Channels * sizeof(float)) return null; // truncated or from another layout: recompute
        return MemoryMarshal.Cast<byte, float>(bytes).ToArray();
    }

    public void Put(string contentKey, ReadOnlySpan<float> features)
    {
        var path = PathOf(contentKey);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = $"{path}.{Environment.ProcessId}.tmp";
        File.WriteAllBytes(temp, MemoryMarshal.AsBytes(features).ToArray());
        File.Move(temp, path, overwrite: true);
    }

    string PathOf(string key) => Path.Combine(Folder, key[..2], key + ".f32");

    static string Hash(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));
}
