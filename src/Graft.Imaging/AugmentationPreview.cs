using SkiaSharp;

namespace Graft.Imaging;

/// <summary>A grid of augmented samples (first column: the image as the network sees it without augmentation).</summary>
public static class AugmentationPreview
{
    /// <summary>
    /// Writes a PNG grid: one row per file, its plain network input then <paramref name="variants"/> augmented draws
    /// (seeded). Columns are headed "original", "augmented 1", ...; each row is labelled with its entry of
    /// <paramref name="rowLabels"/> (the image's class, say; null: no row labels).
    /// </summary>
    public static void WriteGrid(IReadOnlyList<string> files, int size, ResizeMode resize, Augmentation augmentation, int variants,
        int seed, string path, IReadOnlyList<string>? rowLabels = null)
    {
        if (rowLabels is not null && rowLabels.Count != files.Count)
            throw new ArgumentException($"{rowLabels.Count} row labels for {files.Count} files.", nameof(rowLabels));
        const int gap = 4;
        int columns = variants + 1;
        using var font = new SKFont(SKTypeface.Default, Math.Clamp(size / 10f, 11, 18));
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        int header = (int)Math.Ceiling(font.Size * 1.6);
        int labels = rowLabels is null ? 0 : (int)Math.Ceiling(Math.Min(rowLabels.Max(l => font.MeasureText(l)) + 2 * gap, 2 * size));
        int left = labels + gap, top = header + gap;
        var info = new SKImageInfo(left + columns * (size + gap), top + files.Count * (size + gap));
        using var surface = SKSurface.Create(info);
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        float baseline = (header + font.Size) / 2;
        for (int col = 0; col < columns; col++)
            canvas.DrawText(Fit(col == 0 ? "original" : $"augmented {col}", size, font), left + col * (size + gap) + size / 2f, baseline,
                SKTextAlign.Center, font, ink);
        for (int row = 0; row < files.Count; row++)
        {
            if (rowLabels is not null)
                canvas.DrawText(Fit(rowLabels[row], labels - gap, font), gap, top + row * (size + gap) + (size + font.Size) / 2, SKTextAlign.Left, font, ink);
            for (int col = 0; col < columns; col++)
            {
                var rgb = col == 0
                    ? ImageLoader.LoadRgb(files[row], size, resize)
                    : ImageLoader.LoadRgb(files[row], size, resize, augmentation, Augmentation.RandomFor(seed, col, row));
                using var tile = ImageLoader.RgbBitmap(rgb, size);
                canvas.DrawBitmap(tile, left + col * (size + gap), top + row * (size + gap));
            }
        }
        using var image = surface.Snapshot();
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        var temp = path + ".tmp";
        File.WriteAllBytes(temp, png.ToArray());
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>The text, shortened with "…" until it fits <paramref name="width"/> pixels.</summary>
    static string Fit(string text, float width, SKFont font)
    {
        if (font.MeasureText(text) <= width) return text;
        for (int n = text.Length - 1; n > 0; n--)
            if (font.MeasureText(text[..n] + "…") <= width) return text[..n] + "…";
        return "";
    }
}
