using SkiaSharp;

namespace Graft.Audit;

/// <summary>What the image files' headers say, over the whole dataset (lists of files hold the first few).</summary>
public sealed record ImageStats(int Images, int MedianWidth, int MedianHeight, int MinWidth, int MinHeight, int MaxWidth, int MaxHeight,
    IReadOnlyDictionary<string, int> Formats, IReadOnlyDictionary<string, int> AspectRatios, IReadOnlyDictionary<string, int> ExifOrientations,
    int Grayscale, int Cmyk, int SmallerThanInput, IReadOnlyList<string> GrayscaleFiles, IReadOnlyList<string> CmykFiles, IReadOnlyList<string> SmallFiles);

/// <summary>
/// Sizes, aspect ratios, EXIF orientations and colour models from the file headers (SkiaSharp's SKCodec reads
/// only the header; a JPEG's frame header gives its number of colour components: 1 grey, 4 CMYK). No pixel is decoded.
/// </summary>
public static class ImageHeaders
{
    const int Listed = 20;

    sealed record Header(string File, int Width, int Height, string Format, SKEncodedOrigin Origin, bool Grayscale, bool Cmyk);

    /// <summary>The headers of <paramref name="files"/>; images smaller than <paramref name="inputSize"/> (the network's input side) are scaled up, and noted.</summary>
    public static ImageStats Measure(IReadOnlyList<string> files, int inputSize)
    {
        var headers = files.AsParallel().AsOrdered().Select(Read).OfType<Header>().ToList();
        if (headers.Count == 0) return new ImageStats(0, 0, 0, 0, 0, 0, 0, new Dictionary<string, int>(), new Dictionary<string, int>(),
            new Dictionary<string, int>(), 0, 0, 0, [], [], []);
        int Median(Func<Header, int> f) => headers.Select(f).Order().ElementAt(headers.Count / 2);
        var gray = headers.Where(h => h.Grayscale).Select(h => h.File).ToList();
        var cmyk = headers.Where(h => h.Cmyk).Select(h => h.File).ToList();
        var small = headers.Where(h => Math.Min(h.Width, h.Height) < inputSize).Select(h => h.File).ToList();
        return new ImageStats(headers.Count, Median(h => h.Width), Median(h => h.Height), headers.Min(h => h.Width), headers.Min(h => h.Height),
            headers.Max(h => h.Width), headers.Max(h => h.Height),
            Counts(headers.Select(h => h.Format)),
            Counts(headers.Select(h => Aspect((double)h.Width / h.Height)), AspectNames),
            Counts(headers.Select(h => Orientation(h.Origin))),
            gray.Count, cmyk.Count, small.Count, gray.Take(Listed).ToList(), cmyk.Take(Listed).ToList(), small.Take(Listed).ToList());
    }

    static Header? Read(string file)
    {
        try
        {
            using var codec = SKCodec.Create(file);
            if (codec is null) return null; // undecodable: reported by feature extraction
            bool transposed = codec.EncodedOrigin is SKEncodedOrigin.LeftTop or SKEncodedOrigin.RightTop or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;
            var (w, h) = transposed ? (codec.Info.Height, codec.Info.Width) : (codec.Info.Width, codec.Info.Height);
            int components = codec.EncodedFormat == SKEncodedImageFormat.Jpeg ? JpegComponents(file) : 0;
            bool gray = components == 1 || codec.Info.ColorType == SKColorType.Gray8;
            return new Header(file, w, h, codec.EncodedFormat.ToString().ToLowerInvariant(), codec.EncodedOrigin, gray, components == 4);
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    static readonly string[] AspectNames = ["tall (< 1:2)", "portrait", "square (4:5 to 5:4)", "landscape", "wide (> 2:1)"];

    static string Aspect(double ratio) => ratio switch
    {
        < 0.5 => AspectNames[0],
        < 0.8 => AspectNames[1],
        <= 1.25 => AspectNames[2],
        <= 2 => AspectNames[3],
        _ => AspectNames[4],
    };

    /// <summary>The EXIF orientation number (SKEncodedOrigin's values are EXIF's) and what it asks for.</summary>
    static string Orientation(SKEncodedOrigin origin) => $"{(int)origin} " + origin switch
    {
        SKEncodedOrigin.TopLeft => "upright",
        SKEncodedOrigin.TopRight => "mirrored",
        SKEncodedOrigin.BottomRight => "rotate 180",
        SKEncodedOrigin.BottomLeft => "mirrored vertically",
        SKEncodedOrigin.LeftTop => "transposed",
        SKEncodedOrigin.RightTop => "rotate 90 clockwise",
        SKEncodedOrigin.RightBottom => "transverse",
        SKEncodedOrigin.LeftBottom => "rotate 90 counter-clockwise",
        _ => "unknown",
    };

    static Dictionary<string, int> Counts(IEnumerable<string> values, string[]? order = null)
    {
        var counts = values.GroupBy(v => v).ToDictionary(g => g.Key, g => g.Count());
        var keys = order?.Where(counts.ContainsKey) ?? counts.Keys.Order(StringComparer.Ordinal);
        return keys.ToDictionary(k => k, k => counts[k]);
    }

    /// <summary>The number of colour components in a JPEG's frame header (SOF marker); 0 when none is found.</summary>
    static int JpegComponents(string file)
    {
        using var s = new BufferedStream(File.OpenRead(file), 4096);
        if (s.ReadByte() != 0xFF || s.ReadByte() != 0xD8) return 0;
        while (true)
        {
            int b = s.ReadByte();
            if (b < 0) return 0;
            if (b != 0xFF) continue; // not at a marker: the file is damaged; look for the next one
            int marker;
            do marker = s.ReadByte(); while (marker == 0xFF); // fill bytes
            if (marker < 0 || marker == 0xD9 || marker == 0xDA) return 0; // end of image, or start of scan before any frame
            if (marker is 0x01 or (>= 0xD0 and <= 0xD7)) continue; // markers without a length
            int length = (s.ReadByte() << 8) | s.ReadByte();
            if (length < 2) return 0;
            bool frame = marker is >= 0xC0 and <= 0xCF and not (0xC4 or 0xC8 or 0xCC);
            if (frame)
            {
                Span<byte> sof = stackalloc byte[6]; // precision, height (2), width (2), components
                return s.Read(sof) == 6 ? sof[5] : 0;
            }
            s.Seek(length - 2, SeekOrigin.Current);
        }
    }
}
