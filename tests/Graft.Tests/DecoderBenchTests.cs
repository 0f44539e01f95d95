using System.Text.Json;
using Graft.Bench;
using Graft.Imaging;

namespace Graft.Tests;

/// <summary>
/// `graft bench --decoders` on two tiny generated JPEGs: the flags map onto the bench's options, a child measures the
/// decoder it is told to, and the pixel comparison sees the decoders' differences (and none between a decoder and itself).
/// </summary>
public class DecoderBenchTests
{
    static List<string> TinyJpegs(TempDir dir)
    {
        var rng = new Random(3);
        var files = new List<string>();
        foreach (var (name, color) in TinyImages.Palette.Take(2))
        {
            files.Add(dir[$"{name}.jpg"]);
            TinyImages.WriteImage(files[^1], color, 300, rng, "jpg");
        }
        return files;
    }

    [Fact]
    public void Decoders_flag_parses()
    {
        var parse = Cli.Commands.BenchCommand.Create().Parse(["--decoders", "--json"]);
        Assert.Empty(parse.Errors);
        Assert.True(parse.GetValue<bool>("--decoders"));
        Assert.False(Cli.Commands.BenchCommand.Create().Parse([]).GetValue<bool>("--decoders"));
    }

    [Fact]
    public void A_child_measures_the_decoder_it_is_told_on_the_listed_files()
    {
        using var dir = new TempDir();
        var list = dir["files.txt"];
        File.WriteAllLines(list, TinyJpegs(dir));
        // SkiaSharp, not the default: the name in the result is the decoder the child used.
        var run = GraftCli.Run(null, "bench", DecoderRequest.DecoderFlag, "skia", DecoderRequest.FilesFlag, list);
        Assert.True(run.ExitCode == 0, run.Stderr);
        var speed = JsonDocument.Parse(run.LastLine).RootElement;
        Assert.Equal("skia", speed.GetProperty("decoder").GetString());
        Assert.Equal(2, speed.GetProperty("files").GetInt32());
        Assert.True(speed.GetProperty("images_per_second").GetDouble() > 0);
        Assert.True(speed.GetProperty("peak_rss_mb").GetDouble() > 0);
    }

    [Fact]
    public void Pixel_difference_is_zero_for_one_decoder_and_small_between_two()
    {
        using var dir = new TempDir();
        var files = TinyJpegs(dir);
        var same = DecoderBench.Difference(files, ImageDecoders.Vips, ImageDecoders.Vips);
        Assert.Equal((0.0, 0), (same.Mean, same.Max));
        var between = DecoderBench.Difference(files, ImageDecoders.Vips, ImageDecoders.Skia);
        Assert.Equal("vips vs skia", between.Decoders);
        Assert.InRange(between.Mean, 0, 1);
    }
}
