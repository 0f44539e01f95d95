using SkiaSharp;

namespace Graft.Imaging;

/// <summary>An image file that could not be read; the dataset skips it and lists it in the summary.</summary>
public sealed class ImageDecodeException(string path, string reason)
    : GraftException($"{path}: {reason}.", "Remove the file or replace it with a JPEG, PNG, BMP or GIF image.")
{
    /// <summary>The file (or the name given for an image in memory).</summary>
    public string Path { get; } = path;
    /// <summary>What is wrong with it, in a few words.</summary>
    public string Reason { get; } = reason;

    /// <summary>
    /// Whether decoding it again may succeed (the file could not be read, or memory ran short): false when its content
    /// is what fails, which a cache may then remember.
    /// </summary>
    public bool MayRetry { get; init; }

    const string PartialFix = "Set GRAFT_ACCEPT_PARTIAL_IMAGES=1 to use partly decoded images";

    /// <summary>An image that ends before its pixels do (<paramref name="how"/>: "the file is cut short", ...).</summary>
    public static ImageDecodeException Incomplete(string path, string how) =>
        new(path, $"the image is incomplete ({how}; only part of it decodes). {PartialFix}");

    /// <summary>An image whose data is damaged (<paramref name="how"/>: the codec's words).</summary>
    public static ImageDecodeException Damaged(string path, string how) =>
        new(path, $"the image data is damaged ({how}). {PartialFix}");
}

/// <summary>
/// Decodes JPEG, PNG, BMP, GIF (first frame) and WebP through the <see cref="Decoder"/> (libvips or SkiaSharp, one
/// seam: <see cref="IImageDecoder"/>), converts to RGB and resizes to the
/// network's square input, either squashing the whole image or cropping its centred square first.
/// Training, evaluation and prediction all go through here, so an image is resized the same way everywhere; the
/// planning below (scale, window, orientation, caps) is the same whatever the decoder.
/// </summary>
/// <remarks>
/// Large images are decoded at a reduced scale where the codec can do it cheaply: JPEG in the DCT domain
/// (libjpeg-turbo's 1/2, 1/4 and 1/8 scaling: a 12 MP phone photo decodes at 1/8 into 1/64 of the pixels; the bench's
/// phone_photos rows measure the speed), WebP through libwebp's scaled decoding (PNG, BMP and GIF decoders cannot scale). The
/// scale is the smallest that still leaves the window of the image that becomes the output (the centred square,
/// the whole image, or random-resized-crop's window) at least <see cref="ResizeMargin"/> times the output size in
/// each direction; the antialiased resize then does the rest as before. The window is chosen in the original
/// image's pixels (so a seed draws the same window whatever the scale) and mapped onto the decoded pixels to a
/// fraction of a pixel. The affine augmentations (shift, zoom, rotation, shear) transform the already resized
/// image (Keras's order) and so need no margin here.
/// <para>
/// EXIF orientation (a phone photo stored sideways and tagged "rotate 90") is applied everywhere: widths, heights
/// and windows are those of the image as displayed, and the decoded (already reduced) pixels are rotated or mirrored
/// before the resize.
/// </para>
/// <para>
/// An image the codec could decode only in part (a truncated file, or damaged data: the rest would come out grey;
/// libjpeg's warnings count, where the decoder sees them) is a bad image (<see cref="ImageDecodeException"/>), unless
/// <see cref="AcceptPartialImages"/> is set; so is a JPEG whose data is too short to hold its declared size. An image
/// whose decoded size exceeds <see cref="MaxDecodedPixels"/> (after reduced-scale decoding), or whose pixels cannot
/// be allocated, is a bad image too: it is refused from its header, before any allocation. So is a file that is not a
/// regular file (a named pipe, a device): it is never opened. An image whose pixels are all transparent (a GIF's blank
/// first frame) has nothing to classify: a bad image too.
/// </para>
/// <para>
/// Colours are sRGB: an embedded profile that is not sRGB (a phone's Display P3) is converted by either decoder.
/// </para>
/// </remarks>
public static partial class ImageLoader
{
    /// <summary>Changes whenever the pixels produced for a file change; part of the feature-cache key.</summary>
    /// <remarks>
    /// 2: JPEGs (and WebPs) whose window is at least 2.5 times the target decode at reduced scale.
    /// 3: EXIF orientation is applied.
    /// 4: libvips decodes by default, and colour profiles other than sRGB are converted.
    /// </remarks>
    public const string ResizeVersion = "triangle-4";

    /// <summary>
    /// The decoder every image goes through: <see cref="ImageDecoders.Default"/> (libvips unless the environment
    /// variable <c>GRAFT_DECODER</c> says "skia"), or the one set here.
    /// </summary>
    public static IImageDecoder Decoder
    {
        get => Scoped.Value ?? (_decoder ??= ImageDecoders.Default);
        set => _decoder = value;
    }

    static IImageDecoder? _decoder;
    static readonly AsyncLocal<IImageDecoder?> Scoped = new();

    /// <summary>
    /// Uses <paramref name="decoder"/> for this flow of work only (what it awaits, runs in tasks and in parallel
    /// loops) until disposed: the tests and the decoder bench compare decoders side by side.
    /// </summary>
    internal static IDisposable Using(IImageDecoder decoder)
    {
        var previous = Scoped.Value;
        Scoped.Value = decoder;
        return new Restore(() => Scoped.Value = previous);
    }

    sealed class Restore(Action restore) : IDisposable
    {
        public void Dispose() => restore();
    }

    /// <summary>The largest file read: 2 GB.</summary>
    const long MaxFileBytes = int.MaxValue;

    /// <summary>
    /// Whether images the codec decoded only in part (truncated files, damaged data, libjpeg's warnings) are used as decoded,
    /// the missing part grey, instead of being skipped as bad images. Off by default; set the environment variable
    /// <c>GRAFT_ACCEPT_PARTIAL_IMAGES=1</c> (read at start-up) or this property to opt in.
    /// </summary>
    public static bool AcceptPartialImages { get; set; } = Environment.GetEnvironmentVariable("GRAFT_ACCEPT_PARTIAL_IMAGES") is "1" or "true" or "yes";

    /// <summary>
    /// The most pixels an image may decode into (after reduced-scale decoding): 100 megapixels, 400 MB of RGBA.
    /// Larger images (e.g. a PNG whose header claims 60000x60000, or a 20000x20000 PNG, which cannot decode at a
    /// reduced scale) are bad images, refused from the header before any allocation. JPEGs of up to 6.4 gigapixels
    /// pass, as they decode at 1/8.
    /// </summary>
    public const long MaxDecodedPixels = 100_000_000;

    /// <summary>
    /// The most pixels an image may claim in its header: 1 gigapixel, five times the largest camera sensors. A JPEG
    /// claiming 65000x65000 would still decode at 1/8 into 66 megapixels (264 MB per core while training): refused.
    /// </summary>
    public const long MaxDeclaredPixels = 1_000_000_000;

    /// <summary>
    /// How many times the output size the window must still span in decoded pixels. At 1 the DCT scaling does all
    /// of the reducing when the window lands just above the output, and its filter (sharper than the triangle)
    /// shows: up to 1.5 grey levels of mean difference from a full decode + resize (an 800x600 JPEG decoded at 1/4
    /// for a 150 input). At 1.25 the triangle filter keeps a share of the work and the difference stays under 0.6
    /// on average (every size from 613x460 to 4032x3024, inputs 150, 224 and 299); a 12 MP photo still decodes at
    /// 1/8 for 224 and 299 inputs.
    /// </summary>
    const double ResizeMargin = 1.25;

    /// <summary>The file extensions Graft reads (lower case).</summary>
    public static readonly string[] Extensions = [".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"];

    /// <summary>Whether the file's extension is one Graft reads (the content is checked when it is decoded).</summary>
    public static bool IsImageFile(string path) => Extensions.Contains(System.IO.Path.GetExtension(path).ToLowerInvariant());

    /// <summary>
    /// The image as RGB bytes (height x width x 3) resized to size x size; with an augmentation, randomly
    /// transformed by it (<paramref name="rng"/> makes the draw reproducible). <paramref name="fullDecode"/>
    /// decodes every pixel of the file instead of at a reduced scale (for comparisons: the results differ by
    /// half a grey level on average). <paramref name="acceptPartial"/> overrides <see cref="AcceptPartialImages"/>
    /// for this call.
    /// </summary>
    public static byte[] LoadRgb(string path, int size, ResizeMode resize, Augmentation? augmentation = null, Random? rng = null, bool fullDecode = false,
        bool? acceptPartial = null)
    {
        using var image = EncodedImage.Open(path, Decoder);
        return Rgb(image, size, resize, augmentation, rng, fullDecode, acceptPartial);
    }

    /// <summary>Decodes, resizes and normalizes an encoded image held in memory (an upload, a stream's bytes); <paramref name="name"/> names it in errors.</summary>
    public static float[] Load(ReadOnlySpan<byte> encoded, string name, ImageSpec spec)
    {
        using var image = EncodedImage.FromBytes(encoded, name, Decoder);
        var chw = new float[3 * spec.Size * spec.Size];
        Normalize(Rgb(image, spec.Size, spec.Resize, null, null, false, null), spec, chw);
        return chw;
    }

    static byte[] Rgb(EncodedImage image, int size, ResizeMode resize, Augmentation? augmentation, Random? rng, bool fullDecode, bool? acceptPartial)
    {
        rng ??= Random.Shared;
        var window = augmentation?.CropWindow(image.Width, image.Height, rng) ?? Window(image.Width, image.Height, resize);
        var plan = fullDecode ? image.FullScale : image.Plan(window.W, window.H, size, size);
        using var pixels = image.Decode(plan, acceptPartial ?? AcceptPartialImages);
        var (x, y, w, h) = image.Map(plan, window);
        var rgb = Resampler.ResizeRgba(pixels.Span, pixels.RowBytes, pixels.Width, pixels.Height, x, y, w, h, size, size);
        augmentation?.Apply(rgb, size, rng);
        return rgb;
    }

    /// <summary>
    /// The size <see cref="LoadRgb"/> decodes the file at for these arguments (an augmentation's random window
    /// decides it too: pass a generator in the same state); reads only the header.
    /// </summary>
    public static (int Width, int Height) DecodedSize(string path, int size, ResizeMode resize, Augmentation? augmentation = null, Random? rng = null)
    {
        using var image = EncodedImage.Open(path, Decoder);
        var window = augmentation?.CropWindow(image.Width, image.Height, rng ?? Random.Shared) ?? Window(image.Width, image.Height, resize);
        var plan = image.Plan(window.W, window.H, size, size);
        return image.Oriented(plan);
    }

    /// <summary>What the file's header says (format, stored size, EXIF orientation, colour facts); no pixel is decoded.</summary>
    /// <exception cref="ImageDecodeException">The file cannot be read, or no decoder knows it.</exception>
    public static ImageHeader ReadHeader(string path)
    {
        using var image = EncodedImage.Open(path, Decoder);
        return image.Header;
    }

    /// <summary>The window of a width x height image that becomes the output: its centred square, or all of it.</summary>
    static (int X, int Y, int W, int H) Window(int width, int height, ResizeMode resize)
    {
        int side = Math.Min(width, height);
        return resize == ResizeMode.CenterCrop ? ((width - side) / 2, (height - side) / 2, side, side) : (0, 0, width, height);
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

    /// <summary>As <see cref="Load(string, ImageSpec, Augmentation?, Random?)"/>, into a slice of a batch buffer (no per-image array to collect).</summary>
    public static void LoadInto(string path, ImageSpec spec, Span<float> chw, Augmentation? augmentation = null, Random? rng = null) =>
        Normalize(LoadRgb(path, spec.Size, spec.Resize, augmentation, rng), spec, chw);

    /// <summary>Writes the square the network sees (decoded, cropped or squashed, resized; before normalization) as a JPEG.</summary>
    public static void WriteNetworkInput(string source, string target, int size, ResizeMode resize)
    {
        using var bitmap = RgbBitmap(LoadRgb(source, size, resize), size);
        WriteJpeg(bitmap, target, 90);
    }

    static void WriteJpeg(SKBitmap bitmap, string target, int quality)
    {
        using var encoded = SKImage.FromBitmap(bitmap);
        using var data = encoded.Encode(SKEncodedImageFormat.Jpeg, quality);
        File.WriteAllBytes(target, data.ToArray());
    }

    /// <summary>A bitmap of <see cref="LoadRgb"/>'s bytes (size x size x 3).</summary>
    public static SKBitmap RgbBitmap(byte[] rgb, int size)
    {
        var bitmap = new SKBitmap(new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var dst = bitmap.GetPixelSpan();
        for (int i = 0, j = 0; i < rgb.Length; i += 3, j += 4)
        {
            dst[j] = rgb[i]; dst[j + 1] = rgb[i + 1]; dst[j + 2] = rgb[i + 2]; dst[j + 3] = 255;
        }
        return bitmap;
    }

    /// <summary>Writes a JPEG thumbnail whose longer side is <paramref name="maxSide"/> (for reports).</summary>
    public static void WriteThumbnail(string source, string target, int maxSide)
    {
        using var image = EncodedImage.Open(source, Decoder);
        using var small = Scaled(image, maxSide);
        WriteJpeg(small, target, 85);
    }

    /// <summary>The whole image as displayed, its longer side scaled down to <paramref name="maxSide"/> (never up).</summary>
    static SKBitmap Scaled(EncodedImage image, int maxSide)
    {
        double scale = Math.Min(1.0, (double)maxSide / Math.Max(image.Width, image.Height));
        int width = Math.Max(1, (int)(image.Width * scale)), height = Math.Max(1, (int)(image.Height * scale));
        using var pixels = image.Decode(image.Plan(image.Width, image.Height, width, height), AcceptPartialImages);
        using var bitmap = new SKBitmap();
        bitmap.InstallPixels(new SKImageInfo(pixels.Width, pixels.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul), pixels.Address, pixels.RowBytes);
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        return bitmap.Resize(info, new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
    }

    /// <summary>A decode size (stored orientation) and how original pixel coordinates map onto it.</summary>
    readonly record struct DecodePlan(int Width, int Height, double ScaleX, double ScaleY)
    {
        /// <summary>The window in decoded pixels, in fractions of a pixel (the resize samples it where it lies), inside the image.</summary>
        public (double X, double Y, double W, double H) Map((int X, int Y, int W, int H) window)
        {
            var (x, w) = Axis(window.X, window.W, ScaleX, Width);
            var (y, h) = Axis(window.Y, window.H, ScaleY, Height);
            return (x, y, w, h);
        }

        static (double Start, double Length) Axis(int start, int length, double scale, int limit)
        {
            if (scale == 1) return (start, length);
            double a = Math.Min(start * scale, limit), b = Math.Min((start + length) * scale, limit);
            return (a, Math.Max(b - a, 1e-3));
        }
    }

    /// <summary>
    /// An image file's bytes opened by a decoder: the header is read, the pixels not yet. The planning (scale, window,
    /// orientation, caps) is here, above the decoder, so that every decoder produces the same pixels from the same plan.
    /// </summary>
    sealed class EncodedImage : IDisposable
    {
        readonly string _path;
        readonly IEncodedImage _image;
        readonly string? _dataTooShort;

        EncodedImage(string path, IEncodedImage image, string? dataTooShort) => (_path, _image, _dataTooShort) = (path, image, dataTooShort);

        public ImageHeader Header => _image.Header;
        ImageOrientation Origin => Header.Orientation;

        /// <summary>The image in <paramref name="encoded"/>, opened by <paramref name="decoder"/> (which copies what it keeps).</summary>
        static EncodedImage Of(ReadOnlySpan<byte> encoded, string name, IImageDecoder decoder)
        {
            var image = decoder.Open(encoded, name);
            string? tooShort = null;
            if (image.Header.Format == ImageFormat.Jpeg && JpegFrame.Read(encoded) is { MinimumDataBytes: { } needed } frame
                && encoded.Length - frame.DataStart < needed)
                tooShort = $"its {encoded.Length - frame.DataStart} bytes of image data cannot hold {frame.Width}x{frame.Height} pixels";
            return new EncodedImage(name, image, tooShort);
        }

        public static EncodedImage FromBytes(ReadOnlySpan<byte> encoded, string name, IImageDecoder decoder)
        {
            if (encoded.IsEmpty) throw new ImageDecodeException(name, "the image is empty");
            return Of(encoded, name, decoder);
        }

        /// <summary>The file, read whole (only a regular file: a pipe or device is refused, never opened) and opened.</summary>
        public static EncodedImage Open(string path, IImageDecoder decoder)
        {
            if (FileKind.NotRegular(path) is { } kind)
                throw new ImageDecodeException(path, $"it is {kind}, not a regular file; Graft reads only regular files");
            byte[]? buffer = null;
            try
            {
                int length;
                // A pooled buffer: a fresh array per phone photo would be large-object-heap garbage. The decoder copies what it keeps.
                using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan))
                {
                    long size = stream.Length;
                    if (size == 0) throw new ImageDecodeException(path, "the file is empty");
                    if (size > MaxFileBytes) throw new ImageDecodeException(path, "the file is larger than 2 GB");
                    length = (int)size;
                    buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(length);
                    stream.ReadExactly(buffer, 0, length);
                }
                return Of(buffer.AsSpan(0, length), path, decoder);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ImageDecodeException(path, e.Message) { MayRetry = true };
            }
            finally
            {
                if (buffer is not null) System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        /// <summary>The width as displayed (EXIF orientation applied).</summary>
        public int Width => Header.DisplayWidth;
        /// <summary>The height as displayed (EXIF orientation applied).</summary>
        public int Height => Header.DisplayHeight;
        public DecodePlan FullScale => new(Header.Width, Header.Height, 1, 1);

        /// <summary>A decoded (stored-orientation) size as displayed.</summary>
        public (int Width, int Height) Oriented(DecodePlan plan) => Header.Transposed ? (plan.Height, plan.Width) : (plan.Width, plan.Height);

        /// <summary>
        /// A window of the displayed image (in original pixels) in the displayed decoded pixels that <see cref="Decode"/>
        /// returns for <paramref name="plan"/>, to a fraction of a pixel: into the stored orientation, through the
        /// plan's scaling, and back.
        /// </summary>
        public (double X, double Y, double W, double H) Map(DecodePlan plan, (int X, int Y, int W, int H) window)
        {
            var raw = Orient(Inverse(Origin), (window.X, window.Y, window.W, window.H), Width, Height);
            var (x, y, w, h) = plan.Map(((int)Math.Round(raw.X), (int)Math.Round(raw.Y), (int)Math.Round(raw.W), (int)Math.Round(raw.H)));
            return Orient(Origin, (x, y, w, h), plan.Width, plan.Height);
        }

        static ImageOrientation Inverse(ImageOrientation origin) => origin switch
        {
            ImageOrientation.Rotate90Clockwise => ImageOrientation.Rotate90CounterClockwise,
            ImageOrientation.Rotate90CounterClockwise => ImageOrientation.Rotate90Clockwise,
            _ => origin, // the flips, 180 degrees, transpose and transverse are their own inverses
        };

        /// <summary>A rectangle of a stored width x height image as displayed under <paramref name="origin"/>.</summary>
        static (double X, double Y, double W, double H) Orient(ImageOrientation origin, (double X, double Y, double W, double H) r, double width, double height) => origin switch
        {
            ImageOrientation.Mirrored => (width - r.X - r.W, r.Y, r.W, r.H),
            ImageOrientation.Rotate180 => (width - r.X - r.W, height - r.Y - r.H, r.W, r.H),
            ImageOrientation.MirroredVertically => (r.X, height - r.Y - r.H, r.W, r.H),
            ImageOrientation.Transposed => (r.Y, r.X, r.H, r.W),
            ImageOrientation.Rotate90Clockwise => (height - r.Y - r.H, r.X, r.H, r.W),
            ImageOrientation.Transverse => (height - r.Y - r.H, width - r.X - r.W, r.H, r.W),
            ImageOrientation.Rotate90CounterClockwise => (r.Y, width - r.X - r.W, r.H, r.W),
            _ => r,
        };

        /// <summary>
        /// The smallest decode in which a windowWidth x windowHeight window of the original still spans at least
        /// <see cref="ResizeMargin"/> times needWidth x needHeight pixels. JPEG: libjpeg-turbo's DCT scaling, decoded
        /// pixel i covering original pixels [d·i, d·i + d) at the scale 1/d (the last one maybe fewer). WebP: libwebp's
        /// scaled decoding, to any size. Other formats decode in full.
        /// </summary>
        /// <remarks>The window and the need are as displayed; the plan is in the stored orientation.</remarks>
        public DecodePlan Plan(int windowWidth, int windowHeight, int needWidth, int needHeight)
        {
            if (Header.Transposed)
            {
                (windowWidth, windowHeight) = (windowHeight, windowWidth);
                (needWidth, needHeight) = (needHeight, needWidth);
            }
            int rawWidth = Header.Width, rawHeight = Header.Height;
            var full = FullScale;
            bool Enough(DecodePlan plan) => windowWidth * plan.ScaleX >= ResizeMargin * needWidth && windowHeight * plan.ScaleY >= ResizeMargin * needHeight;
            switch (Header.Format)
            {
                case ImageFormat.Jpeg:
                    foreach (int d in (ReadOnlySpan<int>)[8, 4, 2])
                    {
                        var (w, h) = _image.ScaledSize(1.0 / d);
                        // Only the exact 1/d scalings, whose pixel grid the mapping above assumes.
                        if (w != (rawWidth + d - 1) / d || h != (rawHeight + d - 1) / d) continue;
                        var plan = new DecodePlan(w, h, 1.0 / d, 1.0 / d);
                        if (Enough(plan)) return plan;
                    }
                    return full;
                case ImageFormat.Webp:
                {
                    double scale = ResizeMargin * Math.Max((double)needWidth / Math.Max(1, windowWidth), (double)needHeight / Math.Max(1, windowHeight));
                    if (scale >= 1) return full;
                    var (w, h) = _image.ScaledSize(scale);
                    for (int attempt = 0; attempt < 3 && w < rawWidth && h < rawHeight; attempt++)
                    {
                        var plan = new DecodePlan(w, h, (double)w / rawWidth, (double)h / rawHeight);
                        if (Enough(plan)) return plan;
                        (w, h) = (w + 1, h + 1); // rounding left it a pixel short
                    }
                    return full;
                }
                default:
                    return full;
            }
        }

        /// <summary>
        /// The pixels at the plan's scale, as displayed (EXIF orientation applied). Refused before any allocation: too
        /// many pixels, or JPEG data too short for its size (unless partial images are accepted). A fully transparent
        /// image (or animation's first frame) is refused after decoding: there is nothing in it to classify.
        /// </summary>
        public DecodedPixels Decode(DecodePlan plan, bool acceptPartial)
        {
            CheckSize(plan.Width, plan.Height);
            if (_dataTooShort is not null && !acceptPartial) throw ImageDecodeException.Incomplete(_path, _dataTooShort);
            var pixels = _image.Decode(plan.Width, plan.Height, acceptPartial);
            try
            {
                if (Header.HasAlpha && pixels.FullyTransparent())
                    throw new ImageDecodeException(_path, Header.Frames > 1
                        ? "its first frame is fully transparent: there is nothing to see in it (Graft reads an animation's first frame)"
                        : "it is fully transparent: there is nothing to see in it");
                if (Origin == ImageOrientation.Upright) return pixels;
                var oriented = Orient(pixels);
                pixels.Dispose();
                return oriented;
            }
            catch
            {
                pixels.Dispose();
                throw;
            }
        }

        /// <summary>A bad image when the header or the decode size exceeds the caps (checked before allocating).</summary>
        void CheckSize(int width, int height)
        {
            int rawWidth = Header.Width, rawHeight = Header.Height;
            if ((long)rawWidth * rawHeight > MaxDeclaredPixels)
                throw new ImageDecodeException(_path, $"the image is too large: its header claims {rawWidth}x{rawHeight} pixels, " +
                    $"more than the limit of {MaxDeclaredPixels / 1_000_000} megapixels");
            if ((long)width * height > MaxDecodedPixels)
                throw new ImageDecodeException(_path, $"the image is too large: {rawWidth}x{rawHeight} decodes to {width}x{height} " +
                    $"pixels, more than the limit of {MaxDecodedPixels / 1_000_000} megapixels");
        }

        /// <summary>The stored-orientation pixels rotated or mirrored as displayed (a permutation of whole pixels).</summary>
        DecodedPixels Orient(DecodedPixels stored)
        {
            int w = stored.Width, h = stored.Height;
            var (ow, oh) = Header.Transposed ? (h, w) : (w, h);
            var result = DecodedPixels.Allocate(ow, oh, _path);
            var src = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(stored.Span);
            var dst = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(result.Span);
            int srcStride = stored.RowBytes / 4, dstStride = result.RowBytes / 4;
            var origin = Origin;
            for (int y = 0; y < h; y++)
            {
                var row = src.Slice(y * srcStride, w);
                for (int x = 0; x < w; x++)
                {
                    var (dx, dy) = origin switch
                    {
                        ImageOrientation.Mirrored => (w - 1 - x, y),
                        ImageOrientation.Rotate180 => (w - 1 - x, h - 1 - y),
                        ImageOrientation.MirroredVertically => (x, h - 1 - y),
                        ImageOrientation.Transposed => (y, x),
                        ImageOrientation.Rotate90Clockwise => (h - 1 - y, x),
                        ImageOrientation.Transverse => (h - 1 - y, w - 1 - x),
                        ImageOrientation.Rotate90CounterClockwise => (y, w - 1 - x),
                        _ => (x, y),
                    };
                    dst[dy * dstStride + dx] = row[x];
                }
            }
            return result;
        }

        public void Dispose() => _image.Dispose();
    }
}
