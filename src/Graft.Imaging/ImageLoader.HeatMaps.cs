using SkiaSharp;

namespace Graft.Imaging;

public static partial class ImageLoader
{
    /// <summary>The longest side of a heat-map overlay (the photo is scaled down to it, never up).</summary>
    public const int OverlaySide = 640;

    /// <summary>
    /// Places a heat map of the network's input square on the photo it was computed from: the square is the window
    /// training cut from the photo (its centred square, or all of it squashed), so the map's peak lands on the photo's
    /// own pixels, as displayed (EXIF orientation applied). With <paramref name="overlay"/>, writes the photo (longer side
    /// at most <see cref="OverlaySide"/>) with the heat map over that window and the peak ringed, as a PNG.
    /// </summary>
    /// <param name="path">The photo.</param>
    /// <param name="map">The heat map over the network's input square.</param>
    /// <param name="resize">How the photo became the square (the model's <see cref="ImageSpec.Resize"/>).</param>
    /// <param name="overlay">The PNG file to write, or null.</param>
    /// <returns>The peak, in the photo's pixels from its top-left corner.</returns>
    public static (int X, int Y) PlaceHeatMap(string path, HeatMap map, ResizeMode resize, string? overlay = null)
    {
        using var image = EncodedImage.Open(path, Decoder);
        return Place(image, map, resize, overlay);
    }

    /// <summary>As <see cref="PlaceHeatMap(string, HeatMap, ResizeMode, string?)"/> for an encoded image held in memory.</summary>
    /// <param name="encoded">The encoded photo.</param>
    /// <param name="name">Names the photo in errors.</param>
    /// <param name="map">The heat map over the network's input square.</param>
    /// <param name="resize">How the photo became the square.</param>
    /// <param name="overlay">The PNG file to write, or null.</param>
    public static (int X, int Y) PlaceHeatMap(ReadOnlySpan<byte> encoded, string name, HeatMap map, ResizeMode resize, string? overlay = null)
    {
        using var image = EncodedImage.FromBytes(encoded, name, Decoder);
        return Place(image, map, resize, overlay);
    }

    static (int X, int Y) Place(EncodedImage image, HeatMap map, ResizeMode resize, string? overlay)
    {
        var window = Window(image.Width, image.Height, resize);
        var (px, py) = map.Peak;
        var peak = (X: Math.Clamp((int)(window.X + px * window.W), 0, image.Width - 1), Y: Math.Clamp((int)(window.Y + py * window.H), 0, image.Height - 1));
        if (overlay is not null) WriteOverlay(image, map, window, peak, overlay);
        return peak;
    }

    /// <summary>
    /// The photo with a jet-coloured heat map blended over the window (more opaque where hotter), the rest dimmed (the
    /// network did not see it), and a ring around the peak.
    /// </summary>
    static void WriteOverlay(EncodedImage image, HeatMap map, (int X, int Y, int W, int H) window, (int X, int Y) peak, string target)
    {
        using var bitmap = Scaled(image, OverlaySide);
        int width = bitmap.Width, height = bitmap.Height;
        double scale = (double)width / image.Width;
        var pixels = bitmap.GetPixelSpan();
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int i = y * bitmap.RowBytes + x * 4;
                double u = ((x + 0.5) / scale - window.X) / window.W, v = ((y + 0.5) / scale - window.Y) / window.H;
                if (u < 0 || u >= 1 || v < 0 || v >= 1)
                {
                    for (int c = 0; c < 3; c++) pixels[i + c] = (byte)(pixels[i + c] / 2);
                    continue;
                }
                double heat = map.At(u, v), alpha = 0.2 + 0.45 * heat;
                var (r, g, b) = Jet(heat);
                pixels[i] = (byte)(pixels[i] * (1 - alpha) + r * alpha);
                pixels[i + 1] = (byte)(pixels[i + 1] * (1 - alpha) + g * alpha);
                pixels[i + 2] = (byte)(pixels[i + 2] * (1 - alpha) + b * alpha);
            }
        using (var canvas = new SKCanvas(bitmap))
        {
            float radius = Math.Max(5, 0.03f * Math.Max(width, height)), cx = (float)((peak.X + 0.5) * scale), cy = (float)((peak.Y + 0.5) * scale);
            using var dark = new SKPaint { Color = SKColors.Black, IsStroke = true, StrokeWidth = 4, IsAntialias = true };
            using var light = new SKPaint { Color = SKColors.White, IsStroke = true, StrokeWidth = 2, IsAntialias = true };
            canvas.DrawCircle(cx, cy, radius, dark);
            canvas.DrawCircle(cx, cy, radius, light);
        }
        using var encoded = SKImage.FromBitmap(bitmap);
        using var data = encoded.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(target, data.ToArray());
    }

    /// <summary>The jet colour map: blue (0), cyan, green, yellow, red (1).</summary>
    static (double R, double G, double B) Jet(double h)
    {
        static double Channel(double v) => 255 * Math.Clamp(v, 0, 1);
        return (Channel(1.5 - Math.Abs(4 * h - 3)), Channel(1.5 - Math.Abs(4 * h - 2)), Channel(1.5 - Math.Abs(4 * h - 1)));
    }
}
