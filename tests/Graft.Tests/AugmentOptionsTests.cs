using System.CommandLine;
using Graft.Cli;
using Graft.Data;
using Graft.Imaging;

namespace Graft.Tests;

public class AugmentOptionsTests
{
    /// <summary>The preview grid has a header row (original, augmented 1, ...) and a column of row labels, drawn in ink.</summary>
    [Fact]
    public void The_preview_grid_labels_its_rows_and_columns()
    {
        using var dir = new TempDir();
        TinyImages.WriteImage(dir["a.png"], SkiaSharp.SKColors.White, 40, new Random(1));
        AugmentationPreview.WriteGrid([dir["a.png"]], 64, ResizeMode.CenterCrop, Augmentation.Default, 2, 42, dir["plain.png"]);
        AugmentationPreview.WriteGrid([dir["a.png"]], 64, ResizeMode.CenterCrop, Augmentation.Default, 2, 42, dir["labelled.png"], ["a class"]);
        using var plain = SkiaSharp.SKBitmap.Decode(dir["plain.png"]);
        using var labelled = SkiaSharp.SKBitmap.Decode(dir["labelled.png"]);
        Assert.True(labelled.Width > plain.Width, "room for the row labels");
        static int Ink(SkiaSharp.SKBitmap b, int x0, int x1, int y0, int y1) =>
            Enumerable.Range(x0, x1 - x0).Sum(x => Enumerable.Range(y0, y1 - y0).Count(y => b.GetPixel(x, y).Red < 128));
        int left = labelled.Width - plain.Width;
        Assert.True(Ink(labelled, 0, left, 30, labelled.Height) > 10, "the row's label");
        Assert.True(Ink(labelled, left, labelled.Width, 0, 12) > 10, "the column headers");
    }

    static Augmentation? Read(Augmentation? fallback, params string[] args)
    {
        var options = new AugmentOptions();
        var command = new Command("train");
        options.AddTo(command);
        return options.Read(command.Parse(args), fallback);
    }

    [Fact]
    public void Settings_without_a_preset_are_the_whole_augmentation_as_in_keras()
    {
        Assert.Equal(Augmentation.Default, Read(Augmentation.Default));
        Assert.Null(Read(null));
        Assert.Equal(Augmentation.None with { RotationRange = 20 }, Read(Augmentation.Default, "--rotation", "20"));
        Assert.Equal(Augmentation.KerasBlog with { ZoomRange = 0, VerticalFlip = true }, Read(null, "--augment", "keras-blog", "--zoom", "0", "--flip", "both"));
    }

    [Fact]
    public void Fill_settings_alone_change_how_the_default_fills_not_whether_it_augments()
    {
        Assert.Equal(Augmentation.KerasBlog with { FillMode = FillMode.Constant, FillValue = 9 },
            Read(Augmentation.KerasBlog, "--fill-mode", "constant", "--fill-value", "9"));
        Assert.Null(Read(null, "--fill-mode", "reflect"));
    }
}
