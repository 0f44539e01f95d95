using System.Runtime.InteropServices;
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
    public const string ResizeVersion = "skia-linear-mipmap-1";

    public static readonly string[] Extensions = [".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"];

    static readonly SKSamplingOptions Sampling = new(SKFilterMode.Linear, SKMipmapMode.Linear);

    public static bool IsImageFile(string path) => Extensions.Contains(System.IO.Path.GetExtension(path).ToLowerInvariant());

    /// <summary>The image as RGB bytes (height x width x 3) resized to size x size.</summary>
    public static byte[] LoadRgb(string path, int size, ResizeMode resize)
    {
        using var decoded = Decode(path);
        using var bitmap = resize == ResizeMode.CenterCrop ? CenterSquare(decoded) : decoded.Copy();
        using var resized = bitmap.Width == size && bitmap.Height == size
            ? bitmap.Copy()
            : bitmap.Resize(new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Unpremul), Sampling);
        if (resized is null) throw new ImageDecodeException(path, "could not be resized");
        var rgba = MemoryMarshal.AsBytes(resized.GetPixelSpan());
        var rgb = new byte[size * size * 3];
        for (int i = 0, j = 0; i < rgb.Length; i += 3, j += 4)
        {
            rgb[i] = rgba[j]; rgb[i + 1] = rgba[j + 1]; rgb[i + 2] = rgba[j + 2];
        }
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
            for (int p = 0; p < plane; p++) dst[p] = (rgb[p * 3 + c] - mean) * inv;
        }
    }

    /// <summary>Decodes, resizes and normalizes one file into a new CHW float array.</summary>
    public static float[] Load(string path, ImageSpec spec)
    {
        var chw = new float[3 * spec.Size * spec.Size];
        Normalize(LoadRgb(path, spec.Size, spec.Resize), spec, chw);
        return chw;
    }

    /// <summary>The largest centred square of the image (Keras's crop_to_aspect_ratio).</summary>
    static SKBitmap CenterSquare(SKBitmap b)
    {
        int side = Math.Min(b.Width, b.Height);
        using var subset = new SKBitmap();
        b.ExtractSubset(subset, SKRectI.Create((b.Width - side) / 2, (b.Height - side) / 2, side, side));
        return subset.Copy();
    }

    static SKBitmap Decode(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new ImageDecodeException(path, e.Message); }
        if (bytes.Length == 0) throw new ImageDecodeException(path, "the file is empty");

        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(data) ?? throw new ImageDecodeException(path, "not a recognised image format");
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
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
