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
/// <remarks>
/// Large images are decoded at a reduced scale where the codec can do it cheaply: JPEG in the DCT domain
/// (libjpeg-turbo's 1/2, 1/4 and 1/8 scaling; a 12 MP phone photo decodes about four times faster at 1/8, into
/// 0.8 MB instead of 49 MB), WebP through libwebp's scaled decoding (PNG, BMP and GIF decoders cannot scale). The
/// scale is the smallest that still leaves the window of the image that becomes the output (the centred square,
/// the whole image, or random-resized-crop's window) at least <see cref="ResizeMargin"/> times the output size in
/// each direction; the antialiased resize then does the rest as before. The window is chosen in the original
/// image's pixels (so a seed draws the same window whatever the scale) and mapped onto the decoded pixels to a
/// fraction of a pixel. The affine augmentations (shift, zoom, rotation, shear) transform the already resized
/// image (Keras's order) and so need no margin here.
/// </remarks>
public static class ImageLoader
{
    /// <summary>Changes whenever the pixels produced for a file change; part of the feature-cache key.</summary>
    /// <remarks>2: JPEGs (and WebPs) whose window is at least 2.5 times the target decode at reduced scale.</remarks>
    public const string ResizeVersion = "triangle-2";

    /// <summary>
    /// How many times the output size the window must still span in decoded pixels. At 1 the DCT scaling does all
    /// of the reducing when the window lands just above the output, and its filter (sharper than the triangle)
    /// shows: up to 1.5 grey levels of mean difference from a full decode + resize (an 800x600 JPEG decoded at 1/4
    /// for a 150 input). At 1.25 the triangle filter keeps a share of the work and the difference stays under 0.6
    /// on average (every size from 613x460 to 4032x3024, inputs 150, 224 and 299); a 12 MP photo still decodes at
    /// 1/8 for 224 and 299 inputs.
    /// </summary>
    const double ResizeMargin = 1.25;

    public static readonly string[] Extensions = [".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"];

    public static bool IsImageFile(string path) => Extensions.Contains(System.IO.Path.GetExtension(path).ToLowerInvariant());

    /// <summary>
    /// The image as RGB bytes (height x width x 3) resized to size x size; with an augmentation, randomly
    /// transformed by it (<paramref name="rng"/> makes the draw reproducible). <paramref name="fullDecode"/>
    /// decodes every pixel of the file instead of at a reduced scale (for comparisons: the results differ by
    /// half a grey level on average).
    /// </summary>
    public static byte[] LoadRgb(string path, int size, ResizeMode resize, Augmentation? augmentation = null, Random? rng = null, bool fullDecode = false)
    {
        using var image = EncodedImage.Open(path);
        rng ??= Random.Shared;
        var window = augmentation?.CropWindow(image.Width, image.Height, rng) ?? Window(image.Width, image.Height, resize);
        var plan = fullDecode ? image.FullScale : image.Plan(window.W, window.H, size, size);
        using var bitmap = image.Decode(plan);
        var (x, y, w, h) = plan.Map(window);
        var rgb = Resampler.ResizeRgba(bitmap.GetPixelSpan(), bitmap.RowBytes, bitmap.Width, bitmap.Height, x, y, w, h, size, size);
        augmentation?.Apply(rgb, size, rng);
        return rgb;
    }

    /// <summary>
    /// The size <see cref="LoadRgb"/> decodes the file at for these arguments (an augmentation's random window
    /// decides it too: pass a generator in the same state); reads only the header.
    /// </summary>
    public static (int Width, int Height) DecodedSize(string path, int size, ResizeMode resize, Augmentation? augmentation = null, Random? rng = null)
    {
        using var image = EncodedImage.Open(path);
        var window = augmentation?.CropWindow(image.Width, image.Height, rng ?? Random.Shared) ?? Window(image.Width, image.Height, resize);
        var plan = image.Plan(window.W, window.H, size, size);
        return (plan.Size.Width, plan.Size.Height);
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

    /// <summary>As <see cref="Load"/>, into a slice of a batch buffer (no per-image array to collect).</summary>
    public static void LoadInto(string path, ImageSpec spec, Span<float> chw, Augmentation? augmentation = null, Random? rng = null) =>
        Normalize(LoadRgb(path, spec.Size, spec.Resize, augmentation, rng), spec, chw);

    /// <summary>Writes a JPEG thumbnail whose longer side is <paramref name="maxSide"/> (for reports).</summary>
    public static void WriteThumbnail(string source, string target, int maxSide)
    {
        using var image = EncodedImage.Open(source);
        double scale = Math.Min(1.0, (double)maxSide / Math.Max(image.Width, image.Height));
        int width = Math.Max(1, (int)(image.Width * scale)), height = Math.Max(1, (int)(image.Height * scale));
        using var bitmap = image.Decode(image.Plan(image.Width, image.Height, width, height));
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var small = bitmap.Resize(info, new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
        using var encoded = SKImage.FromBitmap(small);
        using var data = encoded.Encode(SKEncodedImageFormat.Jpeg, 85);
        File.WriteAllBytes(target, data.ToArray());
    }

    /// <summary>A decode size and how original pixel coordinates map onto it.</summary>
    readonly record struct DecodePlan(SKSizeI Size, double ScaleX, double ScaleY)
    {
        /// <summary>The window in decoded pixels, in fractions of a pixel (the resize samples it where it lies), inside the image.</summary>
        public (double X, double Y, double W, double H) Map((int X, int Y, int W, int H) window)
        {
            var (x, w) = Axis(window.X, window.W, ScaleX, Size.Width);
            var (y, h) = Axis(window.Y, window.H, ScaleY, Size.Height);
            return (x, y, w, h);
        }

        static (double Start, double Length) Axis(int start, int length, double scale, int limit)
        {
            if (scale == 1) return (start, length);
            double a = Math.Min(start * scale, limit), b = Math.Min((start + length) * scale, limit);
            return (a, Math.Max(b - a, 1e-3));
        }
    }

    /// <summary>An image file's bytes and codec: the header is read, the pixels not yet.</summary>
    sealed class EncodedImage : IDisposable
    {
        readonly string _path;
        readonly SKData _data;
        readonly SKCodec _codec;

        EncodedImage(string path, SKData data, SKCodec codec) => (_path, _data, _codec) = (path, data, codec);

        public int Width => _codec.Info.Width;
        public int Height => _codec.Info.Height;
        public DecodePlan FullScale => new(_codec.Info.Size, 1, 1);

        public static EncodedImage Open(string path)
        {
            SKData? data = null;
            try
            {
                // Straight into native memory: a managed copy of a phone photo would be large-object-heap garbage.
                using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan))
                {
                    long length = stream.Length;
                    if (length == 0) throw new ImageDecodeException(path, "the file is empty");
                    if (length > int.MaxValue) throw new ImageDecodeException(path, "the file is larger than 2 GB");
                    data = SKData.Create(length);
                    stream.ReadExactly(data.Span);
                }
                var codec = SKCodec.Create(data) ?? throw new ImageDecodeException(path, "not a recognised image format");
                return new EncodedImage(path, data, codec);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                data?.Dispose();
                throw new ImageDecodeException(path, e.Message);
            }
            catch
            {
                data?.Dispose();
                throw;
            }
        }

        /// <summary>
        /// The smallest decode in which a windowWidth x windowHeight window of the original still spans at least
        /// <see cref="ResizeMargin"/> times needWidth x needHeight pixels. JPEG: libjpeg-turbo's DCT scaling, decoded
        /// pixel i covering original pixels [d·i, d·i + d) at the scale 1/d (the last one maybe fewer). WebP: libwebp's
        /// scaled decoding, to any size. Other formats decode in full.
        /// </summary>
        public DecodePlan Plan(int windowWidth, int windowHeight, int needWidth, int needHeight)
        {
            var full = FullScale;
            bool Enough(DecodePlan plan) => windowWidth * plan.ScaleX >= ResizeMargin * needWidth && windowHeight * plan.ScaleY >= ResizeMargin * needHeight;
            switch (_codec.EncodedFormat)
            {
                case SKEncodedImageFormat.Jpeg:
                    foreach (int d in (ReadOnlySpan<int>)[8, 4, 2])
                    {
                        var size = _codec.GetScaledDimensions(1f / d);
                        // Only the exact 1/d scalings, whose pixel grid the mapping above assumes.
                        if (size.Width != (Width + d - 1) / d || size.Height != (Height + d - 1) / d) continue;
                        var plan = new DecodePlan(size, 1.0 / d, 1.0 / d);
                        if (Enough(plan)) return plan;
                    }
                    return full;
                case SKEncodedImageFormat.Webp:
                {
                    double scale = ResizeMargin * Math.Max((double)needWidth / Math.Max(1, windowWidth), (double)needHeight / Math.Max(1, windowHeight));
                    if (scale >= 1) return full;
                    var size = _codec.GetScaledDimensions((float)scale);
                    for (int attempt = 0; attempt < 3 && size.Width < Width && size.Height < Height; attempt++)
                    {
                        var plan = new DecodePlan(size, (double)size.Width / Width, (double)size.Height / Height);
                        if (Enough(plan)) return plan;
                        size = new SKSizeI(size.Width + 1, size.Height + 1); // rounding left it a pixel short
                    }
                    return full;
                }
                default:
                    return full;
            }
        }

        public SKBitmap Decode(DecodePlan plan)
        {
            var info = new SKImageInfo(plan.Size.Width, plan.Size.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
            var bitmap = new SKBitmap(info);
            var result = _codec.GetPixels(info, bitmap.GetPixels());
            if (result is not (SKCodecResult.Success or SKCodecResult.IncompleteInput))
            {
                bitmap.Dispose();
                throw new ImageDecodeException(_path, $"the image data is damaged ({result})");
            }
            return bitmap;
        }

        public void Dispose()
        {
            _codec.Dispose();
            _data.Dispose();
        }
    }
}
