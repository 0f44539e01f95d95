using NetVips;
using VipsImage = NetVips.Image;

namespace Graft.Imaging;

/// <summary>
/// Decoding with libvips (NetVips). JPEGs shrink on load through libjpeg-turbo's DCT scaling, the same 1/2, 1/4 and 1/8
/// windows as Skia's; libjpeg's warnings (damaged entropy data, data that stops early at a marker) fail the load
/// (<c>fail-on=warning</c>) unless partial images are accepted. Only the loaders of the formats Graft reads run (no
/// SVG, CSV or matrix loader is ever tried on a file's bytes). libvips has no BMP loader here: BMPs go to SkiaSharp.
/// </summary>
/// <remarks>
/// libvips is set up once for how Graft uses it: one thread per decode (the batch pipeline already decodes one image
/// per core; libvips' own pool would oversubscribe them), no operation cache (each image is decoded once; the cache
/// would hold decoded pixels), and its warnings are not printed (they become the exception's reason, or are ignored
/// with <see cref="ImageLoader.AcceptPartialImages"/>).
/// </remarks>
sealed class VipsDecoder : IImageDecoder
{
    static readonly Lazy<bool> Setup = new(() =>
    {
        NetVips.NetVips.Concurrency = 1;
        Cache.Max = 0;
        Cache.MaxMem = 0;
        Cache.MaxFiles = 0;
        NetVips.NetVips.BlockUntrusted = true;
        Log.SetLogHandler("VIPS", Enums.LogLevelFlags.All, (_, _, _) => { });
        return true;
    });

    /// <summary>The loaders tried on a file's bytes, and the format each reads.</summary>
    static readonly Dictionary<string, ImageFormat> Loaders = new()
    {
        ["VipsForeignLoadJpegSource"] = ImageFormat.Jpeg,
        ["VipsForeignLoadPngSource"] = ImageFormat.Png,
        ["VipsForeignLoadNsgifSource"] = ImageFormat.Gif,
        ["VipsForeignLoadWebpSource"] = ImageFormat.Webp,
        ["VipsForeignLoadTiffSource"] = ImageFormat.Other,
        ["VipsForeignLoadHeifSource"] = ImageFormat.Other,
    };

    public string Name => "vips";

    public IEncodedImage Open(ReadOnlySpan<byte> encoded, string name)
    {
        if (encoded.IsEmpty) throw new ImageDecodeException(name, "the file is empty");
        _ = Setup.Value;
        var source = Source.NewFromMemory(encoded); // one copy in native memory, read again for the pixels
        try
        {
            string? loader;
            try { loader = VipsImage.FindLoadSource(source); }
            catch (VipsException) { loader = null; }
            if (loader is null || !Loaders.TryGetValue(loader, out var format))
            {
                source.Dispose();
                return IsBmp(encoded) ? ImageDecoders.Skia.Open(encoded, name) : throw new ImageDecodeException(name, "not a recognised image format");
            }
            using var header = VipsImage.NewFromSource(source, access: Enums.Access.Sequential, failOn: Enums.FailOn.None);
            return new Image(name, source, format, Header(header, format));
        }
        catch (VipsException e)
        {
            source.Dispose();
            throw new ImageDecodeException(name, $"the image header is damaged ({Reason(e)})");
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    static bool IsBmp(ReadOnlySpan<byte> encoded) => encoded.Length > 14 && encoded[0] == (byte)'B' && encoded[1] == (byte)'M';

    static ImageHeader Header(VipsImage image, ImageFormat format)
    {
        int orientation = image.Contains("orientation") ? (int)image.Get("orientation") : 1;
        return new ImageHeader(format, image.Width, image.Height, ImageHeader.OrientationOf(orientation))
        {
            Grayscale = image.Interpretation is Enums.Interpretation.Bw or Enums.Interpretation.Grey16,
            Cmyk = image.Interpretation == Enums.Interpretation.Cmyk,
            HasAlpha = image.HasAlpha(),
            NonSrgbProfile = image.Contains("icc-profile-data") && !IsSrgb((byte[])image.Get("icc-profile-data")),
            Frames = image.Contains("n-pages") ? Math.Max(1, (int)image.Get("n-pages")) : 1,
        };
    }

    /// <summary>
    /// Whether an ICC profile is sRGB's, by its description (ICC v2 'desc' or v4 'mluc' text): cameras and editors
    /// embed "sRGB IEC61966-2.1" and the like; converting through such a profile would only add rounding.
    /// </summary>
    static bool IsSrgb(byte[] profile)
    {
        var text = System.Text.Encoding.Latin1.GetString(profile).Replace("\0", "");
        return text.Contains("sRGB", StringComparison.Ordinal);
    }

    sealed class Image(string name, Source source, ImageFormat format, ImageHeader header) : IEncodedImage
    {
        public ImageHeader Header => header;

        /// <remarks>
        /// JPEG: libjpeg's size (rounded up), as Skia gives it; <see cref="Decode"/> restores the last, partial pixel that
        /// libvips' shrink-on-load drops. WebP decodes in full: libvips scales it by one factor, so the sizes the planner
        /// asks for (each side rounded on its own) cannot be had.
        /// </remarks>
        public (int Width, int Height) ScaledSize(double scale) =>
            format == ImageFormat.Jpeg && Shrink(scale) is var d and > 1 ? ((header.Width + d - 1) / d, (header.Height + d - 1) / d) : (header.Width, header.Height);

        /// <summary>libjpeg-turbo's DCT scaling that <paramref name="scale"/> asks for: 1, 2, 4 or 8.</summary>
        static int Shrink(double scale) => scale switch { <= 1.0 / 8 => 8, <= 1.0 / 4 => 4, <= 1.0 / 2 => 2, _ => 1 };

        public DecodedPixels Decode(int width, int height, bool acceptPartial)
        {
            var failOn = acceptPartial ? Enums.FailOn.None : Enums.FailOn.Warning;
            try
            {
                var options = new VOption();
                if (width != header.Width || height != header.Height)
                {
                    if (format != ImageFormat.Jpeg) throw new ArgumentException($"{format} decodes only at full size", nameof(width));
                    options.Add("shrink", ((int[])[2, 4, 8]).First(d => (header.Width + d - 1) / d == width));
                }
                using var loaded = VipsImage.NewFromSource(source, access: Enums.Access.Sequential, failOn: failOn, kwargs: options);
                if (loaded.Width is var w && (w > width || w < width - 1) || loaded.Height is var h && (h > height || h < height - 1))
                    throw new ImageDecodeException(name, $"the decoder gave {loaded.Width}x{loaded.Height} pixels where the header promised {width}x{height}");
                // Shrink-on-load leaves out the last decoded pixel where a side is not a multiple of the shrink (803 at 1/2:
                // 401, where libjpeg gives 402): repeat the edge, so both decoders share one pixel grid and window mapping.
                using var whole = loaded.Width == width && loaded.Height == height ? loaded.Copy() : loaded.Embed(0, 0, width, height, extend: Enums.Extend.Copy);
                using var rgba = Rgba(whole);
                var address = rgba.WriteToMemory(out ulong size);
                if (size != (ulong)width * (ulong)height * 4)
                {
                    NetVips.NetVips.Free(address);
                    throw new ImageDecodeException(name, "the decoder gave pixels of an unexpected layout");
                }
                return DecodedPixels.Adopt(address, width, height, NetVips.NetVips.Free);
            }
            catch (VipsException e)
            {
                var reason = Reason(e);
                if (reason.Contains("memory", StringComparison.OrdinalIgnoreCase))
                    throw new ImageDecodeException(name, $"not enough memory to decode its {width}x{height} pixels") { MayRetry = true };
                throw reason.Contains("premature end of JPEG", StringComparison.OrdinalIgnoreCase) || reason.Contains("truncated", StringComparison.OrdinalIgnoreCase)
                    || reason.Contains("not enough data", StringComparison.OrdinalIgnoreCase)
                    ? ImageDecodeException.Incomplete(name, $"the file is cut short: {reason}")
                    : ImageDecodeException.Damaged(name, reason);
            }
        }

        /// <summary>The loaded image as 8-bit sRGB with alpha: a colour profile converted, grey spread to three channels, opaque alpha added.</summary>
        VipsImage Rgba(VipsImage image)
        {
            var steps = new List<VipsImage>();
            VipsImage Step(VipsImage next) { steps.Add(next); return next; }
            try
            {
                var current = image;
                if (header.NonSrgbProfile)
                    current = Step(current.IccTransform("srgb", embedded: true, intent: Enums.Intent.Relative, depth: 8));
                else if (current.Interpretation != Enums.Interpretation.Srgb || current.Format != Enums.BandFormat.Uchar)
                    current = Step(current.Colourspace(Enums.Interpretation.Srgb));
                if (current.Format != Enums.BandFormat.Uchar) current = Step(current.Cast(Enums.BandFormat.Uchar));
                if (current.Bands == 3) current = Step(current.Bandjoin(255));
                if (current.Bands != 4) throw new ImageDecodeException(name, $"{current.Bands} channels after conversion to RGB");
                steps.Remove(current);
                return current == image ? image.Copy() : current;
            }
            finally
            {
                foreach (var s in steps) s.Dispose();
            }
        }

        public void Dispose() => source.Dispose();
    }

    /// <summary>The libvips error in one line: its most telling message (the codec's, not "load error").</summary>
    static string Reason(VipsException e)
    {
        var lines = e.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => !l.StartsWith("unable to", StringComparison.Ordinal) && !l.EndsWith("load error", StringComparison.Ordinal))
            .Select(l => l.StartsWith("VipsJpeg: ", StringComparison.Ordinal) ? l["VipsJpeg: ".Length..] : l)
            .Distinct().ToList();
        return lines.Count == 0 ? GraftException.FirstLine(e.Message) : string.Join("; ", lines.Take(2)).TrimEnd('.');
    }
}
