using SkiaSharp;

namespace Graft.Imaging;

/// <summary>A grid of augmented samples (first column: the image as the network sees it without augmentation).</summary>
public static class AugmentationPreview
{
    /// <summary>Writes a PNG grid: one row per file, its plain network input then <paramref name="variants"/> augmented draws (seeded).</summary>
    public static void WriteGrid(IReadOnlyList<string> files, int size, ResizeMode resize, Augmentation augmentation, int variants,
        int seed, string path)
    {
        const int gap = 4;
        int columns = variants + 1;
        var info = new SKImageInfo(columns * (size + gap) + gap, files.Count * (size + gap) + gap);
        using var surface = SKSurface.Create(info);
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        for (int row = 0; row < files.Count; row++)
            for (int col = 0; col < columns; col++)
            {
                var rgb = col == 0
                    ? ImageLoader.LoadRgb(files[row], size, resize)
                    : ImageLoader.LoadRgb(files[row], size, resize, augmentation, Augmentation.RandomFor(seed, col, row));
                using var tile = ImageLoader.RgbBitmap(rgb, size);
                canvas.DrawBitmap(tile, gap + col * (size + gap), gap + row * (size + gap));
            }
        using var image = surface.Snapshot();
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        var temp = path + ".tmp";
        File.WriteAllBytes(temp, png.ToArray());
        File.Move(temp, path, overwrite: true);
    }
}
