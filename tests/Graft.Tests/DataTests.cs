using Graft.Data;
using Graft.Imaging;
using SkiaSharp;

namespace Graft.Tests;

public class DataTests
{
    [Fact]
    public void Class_folders_get_a_seeded_stratified_split()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir.Path, perClass: 10, classes: 2, size: 16);
        var a = ImageFolder.OpenForTraining(dir.Path, 0.2, seed: 7);
        Assert.Equal(["green", "red"], a.Classes); // sorted: index order is stable
        Assert.Equal(4, a.Validation.Count);
        Assert.Equal(2, a.Validation.Count(i => i.Label == 0));
        Assert.Equal(16, a.Train.Count);
        Assert.Empty(a.Train.Select(i => i.Path).Intersect(a.Validation.Select(i => i.Path)));

        var again = ImageFolder.OpenForTraining(dir.Path, 0.2, seed: 7);
        Assert.Equal(a.Validation.Select(i => i.Path), again.Validation.Select(i => i.Path));
        var other = Enumerable.Range(8, 5).Select(s => ImageFolder.OpenForTraining(dir.Path, 0.2, seed: s));
        Assert.Contains(other, o => !o.Validation.Select(i => i.Path).SequenceEqual(a.Validation.Select(i => i.Path)));
    }

    [Fact]
    public void Train_and_validation_folders_are_used_as_given()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["train"], perClass: 3, size: 16);
        TinyImages.WriteClassFolders(dir["validation"], perClass: 2, size: 16, seed: 2);
        File.WriteAllText(dir["train/red/notes.txt"], "not an image");
        var set = ImageFolder.OpenForTraining(dir.Path, 0.2);
        Assert.Equal(6, set.Train.Count);
        Assert.Equal(4, set.Validation.Count);
        Assert.All(set.Validation, i => Assert.Contains("validation", i.Path));
        Assert.Equal("train/ + validation/", set.Layout);

        var eval = ImageFolder.OpenForEvaluation(dir.Path, ["green", "red"]);
        Assert.Equal(4, eval.Validation.Count);
    }

    [Fact]
    public void Bad_layouts_are_explained()
    {
        using var dir = new TempDir();
        Assert.Contains("does not exist", Assert.Throws<GraftException>(() => ImageFolder.OpenForTraining(dir["nope"])).Message);
        Directory.CreateDirectory(dir["empty"]);
        Assert.Contains("no class folders", Assert.Throws<GraftException>(() => ImageFolder.OpenForTraining(dir["empty"])).Message);
        TinyImages.WriteClassFolders(dir["one"], perClass: 2, classes: 1, size: 16);
        Assert.Contains("only one class", Assert.Throws<GraftException>(() => ImageFolder.OpenForTraining(dir["one"])).Message);
        TinyImages.WriteClassFolders(dir["two"], perClass: 2, classes: 2, size: 16);
        Assert.Contains("--val-split", Assert.Throws<GraftException>(() => ImageFolder.OpenForTraining(dir["two"], 1.5)).Message);
        var unknown = Assert.Throws<GraftException>(() => ImageFolder.OpenForEvaluation(dir["two"], ["red", "blue"]));
        Assert.Contains("green", unknown.Message);
    }

    [Theory]
    [InlineData("png")]
    [InlineData("jpg")]
    public void Decodes_and_resizes_to_normalized_chw(string format)
    {
        using var dir = new TempDir();
        var path = dir[$"solid.{format}"];
        using (var bitmap = new SKBitmap(40, 30))
        {
            bitmap.Erase(new SKColor(255, 0, 128));
            using var data = SKImage.FromBitmap(bitmap).Encode(format == "png" ? SKEncodedImageFormat.Png : SKEncodedImageFormat.Jpeg, 100);
            File.WriteAllBytes(path, data.ToArray());
        }
        var spec = ImageSpec.Uniform(8, 127.5f, 127.5f);
        var chw = ImageLoader.Load(path, spec);
        Assert.Equal(3 * 8 * 8, chw.Length);
        Assert.Equal(1f, chw[0], 1);            // R = 255
        Assert.Equal(-1f, chw[64], 1);          // G = 0
        Assert.Equal(0f, chw[128 + 9], 1);      // B = 128
    }

    [Fact]
    public void Bmp_and_gif_decode()
    {
        using var dir = new TempDir();
        var bmp = dir["tiny.bmp"];
        File.WriteAllBytes(bmp, Bmp24(2, 2, (10, 20, 30)));
        var rgb = ImageLoader.LoadRgb(bmp, 2, ResizeMode.Squash);
        Assert.Equal(new byte[] { 10, 20, 30 }, rgb[..3]);
        var gif = Assets.Shared("data/hymenoptera/train/ants/imageNotFound.gif");
        Assert.Equal(3 * 224 * 224, ImageLoader.LoadRgb(gif, 224, ResizeMode.CenterCrop).Length);
    }

    [Fact]
    public void Center_crop_keeps_the_middle_square()
    {
        using var dir = new TempDir();
        var path = dir["wide.png"];
        using (var bitmap = new SKBitmap(30, 10))
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.Black);
            using var white = new SKPaint { Color = SKColors.White };
            canvas.DrawRect(10, 0, 10, 10, white); // the middle third is white
            canvas.Flush();
            File.WriteAllBytes(path, SKImage.FromBitmap(bitmap).Encode(SKEncodedImageFormat.Png, 100).ToArray());
        }
        Assert.All(ImageLoader.LoadRgb(path, 10, ResizeMode.CenterCrop), b => Assert.Equal(255, b));
        Assert.Contains(ImageLoader.LoadRgb(path, 10, ResizeMode.Squash), b => b < 128);
    }

    [Fact]
    public void Undecodable_files_name_the_file()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["fake.jpg"], "this is text");
        var e = Assert.Throws<ImageDecodeException>(() => ImageLoader.Load(dir["fake.jpg"], ImageSpec.Uniform(8, 0, 1)));
        Assert.Contains("fake.jpg", e.Message);
        File.WriteAllBytes(dir["empty.png"], []);
        Assert.Contains("empty", Assert.Throws<ImageDecodeException>(() => ImageLoader.Load(dir["empty.png"], ImageSpec.Uniform(8, 0, 1))).Message);
    }

    [Fact]
    public async Task Pipeline_keeps_order_and_reports_failures_per_batch()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir.Path, perClass: 4, size: 16);
        var files = Directory.GetFiles(dir.Path, "*.png", SearchOption.AllDirectories).Order().ToList();
        File.WriteAllText(dir["broken.png"], "x");
        files.Insert(3, dir["broken.png"]);
        var batches = new List<ImageBatch>();
        await foreach (var b in BatchPipeline.Batches(files, ImageSpec.Uniform(8, 0, 1), batchSize: 4)) batches.Add(b);
        Assert.Equal(3, batches.Count);
        Assert.Equal([0, 1, 2], batches[0].Indices);
        Assert.Equal(dir["broken.png"], Assert.Single(batches[0].Failures).Path);
        Assert.Equal(8, batches.Sum(b => b.Count));
        Assert.Equal(ImageLoader.Load(files[4], ImageSpec.Uniform(8, 0, 1)), batches[1].Pixels[..192]);
    }

    [Fact]
    public void Resampler_keeps_identity_and_averages_when_shrinking()
    {
        var rgba = new byte[4 * 4 * 4];
        for (int i = 0; i < 16; i++) { rgba[i * 4] = (byte)(i * 10); rgba[i * 4 + 1] = 7; rgba[i * 4 + 2] = 200; rgba[i * 4 + 3] = 255; }
        var same = Resampler.ResizeRgba(rgba, 16, 0, 0, 4, 4, 4, 4);
        Assert.Equal(Enumerable.Range(0, 16).Select(i => (byte)(i * 10)), Enumerable.Range(0, 16).Select(i => same[i * 3]));

        // A 1-pixel checkerboard shrunk 4x is flat grey: antialiasing, not point sampling.
        var board = new byte[8 * 8 * 4];
        for (int i = 0; i < 64; i++) { byte v = (byte)(((i % 8) + (i / 8)) % 2 == 0 ? 0 : 255); board[i * 4] = board[i * 4 + 1] = board[i * 4 + 2] = v; }
        var small = Resampler.ResizeRgba(board, 32, 0, 0, 8, 8, 2, 2);
        Assert.All(small, v => Assert.InRange(v, 100, 155));

        // A window: the right half only.
        var half = Resampler.ResizeRgba(rgba, 16, 2, 0, 2, 4, 2, 4);
        Assert.Equal([20, 30], new[] { half[0], half[3] });
    }

    static byte[] Bmp24(int w, int h, (byte R, byte G, byte B) color)
    {
        int row = (w * 3 + 3) / 4 * 4, size = 54 + row * h;
        var b = new byte[size];
        b[0] = (byte)'B'; b[1] = (byte)'M';
        BitConverter.GetBytes(size).CopyTo(b, 2);
        BitConverter.GetBytes(54).CopyTo(b, 10);
        BitConverter.GetBytes(40).CopyTo(b, 14);
        BitConverter.GetBytes(w).CopyTo(b, 18);
        BitConverter.GetBytes(h).CopyTo(b, 22);
        BitConverter.GetBytes((short)1).CopyTo(b, 26);
        BitConverter.GetBytes((short)24).CopyTo(b, 28);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int at = 54 + y * row + x * 3;
                b[at] = color.B; b[at + 1] = color.G; b[at + 2] = color.R;
            }
        return b;
    }

    [Fact]
    public void An_image_already_at_the_input_size_is_used_as_it_is()
    {
        var rng = new Random(3);
        var rgba = new byte[5 * 4 * 4];
        rng.NextBytes(rgba);
        var rgb = Resampler.ResizeRgba(rgba, 5 * 4, 1, 0, 4, 4, 4, 4);
        for (int p = 0; p < 16; p++)
            for (int c = 0; c < 3; c++)
                Assert.Equal(rgba[(p / 4) * 20 + (1 + p % 4) * 4 + c], rgb[p * 3 + c]);
    }
}
