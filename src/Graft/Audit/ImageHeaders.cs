using Graft.Imaging;

namespace Graft.Audit;

/// <summary>What the image files' headers say, over the whole dataset (lists of files hold the first few).</summary>
internal sealed record ImageStats(int Images, int MedianWidth, int MedianHeight, int MinWidth, int MinHeight, int MaxWidth, int MaxHeight,
    IReadOnlyDictionary<string, int> Formats, IReadOnlyDictionary<string, int> AspectRatios, IReadOnlyDictionary<string, int> ExifOrientations,
    int Grayscale, int Cmyk, int SmallerThanInput, IReadOnlyList<string> GrayscaleFiles, IReadOnlyList<string> CmykFiles, IReadOnlyList<string> SmallFiles);

/// <summary>
/// Sizes, aspect ratios, EXIF orientations and colour models from the file headers, read through the image decoder
/// (<see cref="ImageLoader.ReadHeader"/>). No pixel is decoded.
/// </summary>
internal static class ImageHeaders
{
    const int Listed = 20;

    sealed record Header(string File, int Width, int Height, string Format, ImageOrientation Origin, bool Grayscale, bool Cmyk);

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
            var h = ImageLoader.ReadHeader(file);
            return new Header(file, h.DisplayWidth, h.DisplayHeight, h.Format.ToString().ToLowerInvariant(), h.Orientation, h.Grayscale, h.Cmyk);
        }
        catch (ImageDecodeException) { return null; } // undecodable: reported by feature extraction
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

    /// <summary>The EXIF orientation number and what it asks for.</summary>
    static string Orientation(ImageOrientation origin) => $"{(int)origin} " + origin switch
    {
        ImageOrientation.Upright => "upright",
        ImageOrientation.Mirrored => "mirrored",
        ImageOrientation.Rotate180 => "rotate 180",
        ImageOrientation.MirroredVertically => "mirrored vertically",
        ImageOrientation.Transposed => "transposed",
        ImageOrientation.Rotate90Clockwise => "rotate 90 clockwise",
        ImageOrientation.Transverse => "transverse",
        ImageOrientation.Rotate90CounterClockwise => "rotate 90 counter-clockwise",
        _ => "unknown",
    };

    static Dictionary<string, int> Counts(IEnumerable<string> values, string[]? order = null)
    {
        var counts = values.GroupBy(v => v).ToDictionary(g => g.Key, g => g.Count());
        var keys = order?.Where(counts.ContainsKey) ?? counts.Keys.Order(StringComparer.Ordinal);
        return keys.ToDictionary(k => k, k => counts[k]);
    }
}
