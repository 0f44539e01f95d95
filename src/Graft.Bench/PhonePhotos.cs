using Graft.Imaging;
using Graft.Weights;
using SkiaSharp;

namespace Graft.Bench;

/// <summary>
/// A benchmark set of phone-camera photos: 4032x3024 (12 MP) JPEGs at quality 90 with 4:2:0 chroma, made from the
/// shared ImageNet photos (<c>images/imagenet/</c> in the asset mirror) by cropping a random 4:3 window, upscaling it
/// (Mitchell cubic) and adding camera-like noise (luminance noise whose variance grows with brightness, as shot noise
/// does, plus weaker chroma noise). Decoding them costs what decoding a real phone photo costs: a file of a few MB
/// whose entropy-coded data must be read in full at any decode scale.
/// Deterministic: photo i of a seed is always the same; files already in the folder are reused.
/// </summary>
public static class PhonePhotos
{
    public const int Width = 4032, Height = 3024, Quality = 90;

    /// <summary>Writes (or reuses) <paramref name="count"/> photos in <paramref name="folder"/> and returns their paths; the sources come from <paramref name="assets"/>' mirror.</summary>
    public static IReadOnlyList<string> Generate(string folder, int count, int seed, AssetResolver? assets = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        Directory.CreateDirectory(folder);
        var paths = Enumerable.Range(0, count).Select(i => Path.Combine(folder, $"phone-{seed}-{i:D4}.jpg")).ToArray();
        var missing = Enumerable.Range(0, count).Where(i => !File.Exists(paths[i])).ToArray();
        if (missing.Length == 0) return paths;

        var sources = LoadSources(assets ?? AssetResolver.Default);
        try
        {
            Parallel.ForEach(missing, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount },
                i => Write(sources[i % sources.Count], paths[i], seed, i));
        }
        finally { foreach (var s in sources) s.Dispose(); }
        return paths;
    }

    /// <summary>The shared ImageNet photos, in name order.</summary>
    static List<SKImage> LoadSources(AssetResolver assets)
    {
        var folder = assets.SearchRoots.Select(r => Path.Combine(r, "images", "imagenet")).FirstOrDefault(Directory.Exists)
            ?? throw new GraftException("The phone-photo benchmark needs the shared ImageNet photos (images/imagenet/ in the asset mirror), and none was found.",
                "Put the shared/ mirror beside the checkout or set GRAFT_ASSETS to it.");
        var sources = new List<SKImage>();
        foreach (var file in Directory.EnumerateFiles(folder).Where(ImageLoader.IsImageFile).Order(StringComparer.Ordinal))
        {
            using var bitmap = SKBitmap.Decode(file);
            if (bitmap is not null) sources.Add(SKImage.FromBitmap(bitmap));
        }
        return sources.Count > 0 ? sources
            : throw new GraftException($"{folder} holds no readable images.", "Restore the shared/ mirror's images/imagenet/ folder.");
    }

    static void Write(SKImage source, string path, int seed, int index)
    {
        var rng = new Random(unchecked(seed * 7919 + index * 104729 + 17));

        // A random 4:3 window of 70-100% of the largest one the source holds, maybe mirrored.
        double maxW = Math.Min(source.Width, source.Height * 4.0 / 3);
        double fraction = Math.Sqrt(0.7 + 0.3 * rng.NextDouble());
        float w = (float)(maxW * fraction), h = w * 3 / 4;
        float x = (float)(rng.NextDouble() * (source.Width - w)), y = (float)(rng.NextDouble() * (source.Height - h));
        bool mirror = rng.Next(2) == 1;

        var info = new SKImageInfo(Width, Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var bitmap = new SKBitmap(info);
        using (var canvas = new SKCanvas(bitmap))
        {
            if (mirror) canvas.Scale(-1, 1, Width / 2f, 0);
            canvas.DrawImage(source, SKRect.Create(x, y, w, h), SKRect.Create(0, 0, Width, Height), new SKSamplingOptions(SKCubicResampler.Mitchell));
        }
        AddNoise(bitmap, seed, index);

        var temp = path + $".{Environment.ProcessId}.{index}.tmp";
        try
        {
            using (var pixmap = bitmap.PeekPixels())
            using (var stream = new SKFileWStream(temp))
            {
                var options = new SKJpegEncoderOptions(Quality, SKJpegEncoderDownsample.Downsample420, SKJpegEncoderAlphaOption.Ignore);
                if (!pixmap.Encode(stream, options)) throw new IOException($"could not encode {path}");
            }
            File.Move(temp, path, overwrite: true); // whole files only: an interrupted run leaves nothing to reuse
        }
        finally { if (File.Exists(temp)) File.Delete(temp); }
    }

    /// <summary>
    /// Sensor-like noise: per pixel a luminance deviate with variance 3 + 0.06 x level (about 3.3 grey levels at
    /// mid-grey) and per-channel chroma deviates of half that. Deviates are sums of four uniform bytes (close to
    /// Gaussian), from a xorshift generator seeded per row, so rows can be filled in any order.
    /// </summary>
    static unsafe void AddNoise(SKBitmap bitmap, int seed, int index)
    {
        byte* pixels = (byte*)bitmap.GetPixels();
        int stride = bitmap.RowBytes, width = bitmap.Width;
        const float toUnit = 1f / 147.8f; // standard deviation of a sum of four uniform bytes
        Span<float> sigma = stackalloc float[256];
        for (int v = 0; v < 256; v++) sigma[v] = MathF.Sqrt(3f + 0.06f * v) * toUnit;

        for (int row = 0; row < bitmap.Height; row++)
        {
            ulong state = unchecked(((ulong)(uint)seed << 40) ^ ((ulong)(uint)index << 20) ^ (ulong)row ^ 0x9E3779B97F4A7C15UL);
            byte* p = pixels + (long)row * stride;
            for (int col = 0; col < width; col++, p += 4)
            {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                ulong r1 = state;
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                ulong r2 = state;
                float Deviate(ulong bits, int shift) =>
                    (int)((bits >> shift) & 0xff) + (int)((bits >> (shift + 8)) & 0xff) + (int)((bits >> (shift + 16)) & 0xff) + (int)((bits >> (shift + 24)) & 0xff) - 510;
                int level = (p[0] * 77 + p[1] * 150 + p[2] * 29) >> 8;
                float s = sigma[level];
                float luma = Deviate(r1, 0) * s;
                float half = 0.5f * s;
                p[0] = Clamp(p[0] + luma + Deviate(r1, 32) * half);
                p[1] = Clamp(p[1] + luma + Deviate(r2, 0) * half);
                p[2] = Clamp(p[2] + luma + Deviate(r2, 32) * half);
            }
        }

        static byte Clamp(float v) => (byte)Math.Clamp((int)(v + 0.5f), 0, 255);
    }
}
