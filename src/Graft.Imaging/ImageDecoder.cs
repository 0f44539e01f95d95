using System.Runtime.InteropServices;

namespace Graft.Imaging;

/// <summary>
/// A codec library behind one seam: it tells an encoded image's format and header from its bytes and decodes its
/// pixels, at a reduced scale where the codec can. Everything that opens an image (training, prediction, the audit's
/// header statistics, reports) goes through <see cref="ImageLoader.Decoder"/>; the planning above it (which scale,
/// which window, EXIF orientation, the pixel caps, resizing) is one piece of code whatever the decoder.
/// </summary>
/// <remarks>Implementations: <see cref="ImageDecoders.Vips"/> (libvips, the default) and <see cref="ImageDecoders.Skia"/> (SkiaSharp).</remarks>
public interface IImageDecoder
{
    /// <summary>The decoder's name, as <c>GRAFT_DECODER</c> spells it ("vips", "skia").</summary>
    string Name { get; }

    /// <summary>
    /// Reads the header of the encoded image in <paramref name="encoded"/> (copied: the span may be reused at once);
    /// the pixels are decoded later by the returned image.
    /// </summary>
    /// <param name="encoded">The file's bytes.</param>
    /// <param name="name">Names the image in errors (its path, or "stdin").</param>
    /// <exception cref="ImageDecodeException">No codec knows the format, or the header is damaged.</exception>
    IEncodedImage Open(ReadOnlySpan<byte> encoded, string name);
}

/// <summary>An encoded image whose header has been read; <see cref="Decode"/> decodes its pixels.</summary>
public interface IEncodedImage : IDisposable
{
    /// <summary>What the header says.</summary>
    ImageHeader Header { get; }

    /// <summary>
    /// The stored size a decode at <paramref name="scale"/> (0 &lt; scale ≤ 1) gives: JPEG at the DCT's 1/2, 1/4 and
    /// 1/8 (libjpeg's rounding up), WebP at any scale; the full size for formats that cannot decode smaller.
    /// </summary>
    (int Width, int Height) ScaledSize(double scale);

    /// <summary>
    /// The pixels at a size <see cref="ScaledSize"/> gave (or the full size): RGBA, 8 bits a channel, unpremultiplied,
    /// in sRGB (an embedded colour profile is converted), in the stored orientation. With <paramref name="acceptPartial"/>
    /// an image the codec could decode only in part (cut short, damaged data: libjpeg's warnings count) is returned as
    /// far as it decodes; without, it is an <see cref="ImageDecodeException"/>.
    /// </summary>
    DecodedPixels Decode(int width, int height, bool acceptPartial);
}

/// <summary>The encoded formats the decoders tell apart.</summary>
public enum ImageFormat
{
    /// <summary>Something a decoder reads that is none of the others (TIFF, HEIF, AVIF with libvips).</summary>
    Other,
    /// <summary>JPEG (JFIF, EXIF).</summary>
    Jpeg,
    /// <summary>PNG.</summary>
    Png,
    /// <summary>GIF (the first frame is decoded).</summary>
    Gif,
    /// <summary>Windows bitmap.</summary>
    Bmp,
    /// <summary>WebP.</summary>
    Webp,
}

/// <summary>The EXIF orientation: how the stored pixels are turned or mirrored for display (the values are EXIF's).</summary>
public enum ImageOrientation
{
    /// <summary>1: stored as displayed.</summary>
    Upright = 1,
    /// <summary>2: mirrored left to right.</summary>
    Mirrored = 2,
    /// <summary>3: turned 180 degrees.</summary>
    Rotate180 = 3,
    /// <summary>4: mirrored top to bottom.</summary>
    MirroredVertically = 4,
    /// <summary>5: mirrored along the main diagonal.</summary>
    Transposed = 5,
    /// <summary>6: to be turned 90 degrees clockwise for display.</summary>
    Rotate90Clockwise = 6,
    /// <summary>7: mirrored along the other diagonal.</summary>
    Transverse = 7,
    /// <summary>8: to be turned 90 degrees counter-clockwise for display.</summary>
    Rotate90CounterClockwise = 8,
}

/// <summary>What an image's header says; no pixel is decoded to know it.</summary>
/// <param name="Format">The encoded format.</param>
/// <param name="Width">The stored width (before EXIF orientation).</param>
/// <param name="Height">The stored height.</param>
/// <param name="Orientation">The EXIF orientation (<see cref="ImageOrientation.Upright"/> when there is none).</param>
public sealed record ImageHeader(ImageFormat Format, int Width, int Height, ImageOrientation Orientation)
{
    /// <summary>One grey channel (a greyscale JPEG or PNG).</summary>
    public bool Grayscale { get; init; }
    /// <summary>A CMYK JPEG (four ink channels, converted to RGB when decoded).</summary>
    public bool Cmyk { get; init; }
    /// <summary>An alpha channel (some pixels may be transparent).</summary>
    public bool HasAlpha { get; init; }
    /// <summary>An embedded colour profile other than sRGB (Display P3, Adobe RGB): the pixels are converted to sRGB when decoded.</summary>
    public bool NonSrgbProfile { get; init; }
    /// <summary>Frames of an animation (1 for a still image); the first is decoded.</summary>
    public int Frames { get; init; } = 1;

    /// <summary>Whether the orientation swaps width and height (90 or 270 degrees, transposed or not).</summary>
    public bool Transposed => Orientation is ImageOrientation.Transposed or ImageOrientation.Rotate90Clockwise
        or ImageOrientation.Transverse or ImageOrientation.Rotate90CounterClockwise;

    /// <summary>The width as displayed (EXIF orientation applied).</summary>
    public int DisplayWidth => Transposed ? Height : Width;
    /// <summary>The height as displayed (EXIF orientation applied).</summary>
    public int DisplayHeight => Transposed ? Width : Height;

    /// <summary>An orientation read from a file: EXIF's 1 to 8, anything else upright.</summary>
    public static ImageOrientation OrientationOf(int exif) => exif is >= 1 and <= 8 ? (ImageOrientation)exif : ImageOrientation.Upright;
}

/// <summary>
/// Decoded pixels in native memory (a phone photo's would be large-object-heap garbage as an array): RGBA, 8 bits a
/// channel, rows <see cref="RowBytes"/> apart. Dispose to free them.
/// </summary>
public sealed unsafe class DecodedPixels : IDisposable
{
    readonly Action<IntPtr>? _free;
    IntPtr _address;

    DecodedPixels(IntPtr address, int width, int height, int rowBytes, Action<IntPtr>? free) =>
        (_address, Width, Height, RowBytes, _free) = (address, width, height, rowBytes, free);

    /// <summary>New, uninitialised pixels of this size; an <see cref="ImageDecodeException"/> naming <paramref name="name"/> when the memory cannot be had.</summary>
    public static DecodedPixels Allocate(int width, int height, string name)
    {
        nuint bytes = (nuint)width * (nuint)height * 4;
        void* address;
        try { address = NativeMemory.Alloc(bytes); }
        catch (OutOfMemoryException) { throw new ImageDecodeException(name, $"not enough memory to decode its {width}x{height} pixels") { MayRetry = true }; }
        return new DecodedPixels((IntPtr)address, width, height, width * 4, null);
    }

    /// <summary>Pixels a codec allocated (<paramref name="free"/> releases them; rows packed).</summary>
    public static DecodedPixels Adopt(IntPtr address, int width, int height, Action<IntPtr> free) => new(address, width, height, width * 4, free);

    /// <summary>The width in pixels.</summary>
    public int Width { get; }
    /// <summary>The height in pixels.</summary>
    public int Height { get; }
    /// <summary>Bytes from one row to the next.</summary>
    public int RowBytes { get; }
    /// <summary>The first pixel's address.</summary>
    public IntPtr Address => _address != 0 ? _address : throw new ObjectDisposedException(nameof(DecodedPixels));
    /// <summary>All rows.</summary>
    public Span<byte> Span => new((void*)Address, checked(RowBytes * Height));

    /// <summary>Whether every pixel's alpha is 0: an image (or an animation's first frame) with nothing to see.</summary>
    public bool FullyTransparent()
    {
        var span = Span;
        for (int y = 0; y < Height; y++)
        {
            var row = span.Slice(y * RowBytes, Width * 4);
            for (int i = 3; i < row.Length; i += 4)
                if (row[i] != 0) return false;
        }
        return true;
    }

    /// <summary>Frees the pixels.</summary>
    public void Dispose()
    {
        var address = Interlocked.Exchange(ref _address, 0);
        if (address == 0) return;
        if (_free is null) NativeMemory.Free((void*)address);
        else _free(address);
    }
}

/// <summary>The decoders, and which one Graft uses unless told otherwise.</summary>
public static class ImageDecoders
{
    /// <summary>SkiaSharp (Skia's codecs: libjpeg-turbo, libpng, libwebp, its own GIF and BMP).</summary>
    public static IImageDecoder Skia { get; } = new SkiaDecoder();

    /// <summary>libvips through NetVips (libjpeg-turbo with shrink-on-load, libspng, libwebp, cgif/libnsgif, also TIFF, HEIF and AVIF).</summary>
    public static IImageDecoder Vips { get; } = new VipsDecoder();

    /// <summary>Every decoder, by name.</summary>
    public static IReadOnlyList<IImageDecoder> All { get; } = [Vips, Skia];

    /// <summary>
    /// The default: libvips, the faster of the two at the same pixels (docs/benchmarks.md, "Decoders"), unless the
    /// environment variable <c>GRAFT_DECODER</c> names another ("skia" or "vips", read at start-up).
    /// </summary>
    /// <exception cref="GraftException">The variable names no decoder.</exception>
    public static IImageDecoder Default => Environment.GetEnvironmentVariable("GRAFT_DECODER") is { Length: > 0 } name ? Named(name) : Vips;

    /// <summary>The decoder called <paramref name="name"/> (case-insensitive).</summary>
    /// <exception cref="GraftException">No decoder has that name.</exception>
    public static IImageDecoder Named(string name) =>
        All.FirstOrDefault(d => d.Name.Equals(name.Trim(), StringComparison.OrdinalIgnoreCase))
        ?? throw new GraftException($"GRAFT_DECODER={name} names no image decoder.", $"Use one of: {string.Join(", ", All.Select(d => d.Name))}.");
}
