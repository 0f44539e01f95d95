using SkiaSharp;

namespace Graft.Data;

/// <summary>An image file that could not be read; the dataset skips it and lists it in the summary.</summary>
public sealed class ImageDecodeException(string path, string reason)
    : GraftException($"{path}: {reason}.", "Remove the file or replace it with a JPEG, PNG, BMP or GIF image.")
{
    public string Path { get; } = path;
    public string Reason { get; } = reason;
}

/// <summary>
/// Decodes JPEG, PNG, BMP, GIF (first frame) and WebP with SkiaSharp, converts to RGB and resizes to the
/// network's square input, either squashing the whole image or cropping its centred square first.
/// Training, evaluation and prediction all go through here, so an image is resized the same way everywhere.
/// </summary>
public static class ImageLoader
{
    /// <summary>Changes whenever the pixels produced for a file change; part of the feature-cache key.</summary>
    public const string ResizeVersion = "triangle-1";

    public static readonly string[] Extensions = [".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"];

    public static bool IsImageFile(string path) => Extensions.Contains(System.IO.Path.GetExtension(path).ToLowerInvariant());

    /// <summary>
    /// The image as RGB bytes (height x width x 3) resized to size x size; with an augmentation, randomly
    /// transformed by it (<paramref name="rng"/> makes the draw reproducible).
    /// </summary>
    public static byte[] LoadRgb(string path, int size, ResizeMode resize, Augmentation? augmentation = null, Random? rng = null)
    {
        using var bitmap = Decode(path, size);
        int w = bitmap.Width, h = bitmap.Height;
        rng ??= Random.Shared;
        var (x, y, cw, ch) = augmentation?.CropWindow(w, h, rng) ?? (resize == ResizeMode.CenterCrop
            ? ((w - Math.Min(w, h)) / 2, (h - Math.Min(w, h)) / 2, Math.Min(w, h), Math.Min(w, h))
            : (0, 0, w, h));
        var rgb = Resampler.ResizeRgba(bitmap.GetPixelSpan(), bitmap.RowBytes, x, y, cw, ch, size, size);
        augmentation?.Apply(rgb, size, rng);
        return rgb;
    }

    /// <summary>Writes RGB bytes as a normalized CHW float image into <paramref name="chw"/> (3 x size x size).</summary>
    public static void Normalize(ReadOnlySpan<byte> rgb, ImageSpec spec, Span<float> chw)
    {
        int plane = spec.Size * spec.Size;
        for (int c = 0; c < 3; c++)
        {
            float mean = spec.Mean[c], inv = 1f / spec.Std[c];
            var dst = chw.Slice(c * plane, plane);
            int source = spec.Bgr ? 2 - c : c;
            for (int p = 0; p < plane; p++) dst[p] = (rgb[p * 3 + source] - mean) * inv;
        }
    }

    /// <summary>Decodes, resizes (and optionally augments) and normalizes one file into a new CHW float array.</summary>
    public static float[] Load(string path, ImageSpec spec, Augmentation? augmentation = null, Random? rng = null)
    {
        var chw = new float[3 * spec.Size * spec.Size];
        LoadInto(path, spec, chw, augmentation, rng);
        return chw;
    }

    /// <summary>As <see cref="Load"/>, into a slice of a batch buffer (no per-image array to collect).</summary>
    public static void LoadInto(string path, ImageSpec spec, Span<float> chw, Augmentation? augmentation = null, Random? rng = null) =>
        Normalize(LoadRgb(path, spec.Size, spec.Resize, augmentation, rng), spec, chw);

    /// <summary>Writes a JPEG thumbnail whose longer side is <paramref name="maxSide"/> (for reports).</summary>
    public static void WriteThumbnail(string source, string target, int maxSide)
    {
        using var bitmap = Decode(source, maxSide);
        double scale = Math.Min(1.0, (double)maxSide / Math.Max(bitmap.Width, bitmap.Height));
        var info = new SKImageInfo(Math.Max(1, (int)(bitmap.Width * scale)), Math.Max(1, (int)(bitmap.Height * scale)), SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var small = bitmap.Resize(info, new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
        using var image = SKImage.FromBitmap(small);
        using var data = image.Encode(SKEncodedImageFormat.Jpeg, 85);
        File.WriteAllBytes(target, data.ToArray());
    }

    /// <summary>
    /// Decodes to RGBA. Large JPEGs are decoded at a reduced scale (libjpeg's DCT scaling, much faster)
    /// as long as the short side stays at least twice the target, so the final resize still smooths.
    /// </summary>
    static SKBitmap Decode(string path, int target)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new ImageDecodeException(path, e.Message); }
        if (bytes.Length == 0) throw new ImageDecodeException(path, "the file is empty");

        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(data) ?? throw new ImageDecodeException(path, "not a recognised image format");
        var dimensions = codec.Info.Size;
        int shortSide = Math.Min(dimensions.Width, dimensions.Height);
        if (shortSide >= 4 * target)
        {
            var scaled = codec.GetScaledDimensions(2f * target / shortSide);
            if (Math.Min(scaled.Width, scaled.Height) >= 2 * target) dimensions = scaled;
        }
        var info = new SKImageInfo(dimensions.Width, dimensions.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var bitmap = new SKBitmap(info);
        var result = codec.GetPixels(info, bitmap.GetPixels());
        if (result is not (SKCodecResult.Success or SKCodecResult.IncompleteInput))
        {
            bitmap.Dispose();
            throw new ImageDecodeException(path, $"the image data is damaged ({result})");
        }
        return bitmap;
    }
}
