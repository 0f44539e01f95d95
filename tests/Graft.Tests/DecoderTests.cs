using System.Buffers.Binary;
using Graft.Imaging;
using SkiaSharp;
using VipsImage = NetVips.Image;

namespace Graft.Tests;

/// <summary>
/// The decoder seam (issue 17 §4, §7): libvips and SkiaSharp give the same pixels within one grey level on generated
/// images of several sizes, orientations and formats; damaged JPEGs, a colour profile other than sRGB and a blank
/// first frame are handled by each. Every image is made here.
/// </summary>
public class DecoderTests(Xunit.Abstractions.ITestOutputHelper output)
{
    public static TheoryData<string> Decoders => new(ImageDecoders.All.Select(d => d.Name));

    static byte[] Encode(SKBitmap bitmap, SKEncodedImageFormat format)
    {
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(format, 90);
        return data.ToArray();
    }

    /// <summary>The same image per decoder, at 224 cropped and squashed (reduced-scale decoding where the size allows).</summary>
    Dictionary<string, byte[]> PerDecoder(string path, ResizeMode resize, int size = 224) =>
        ImageDecoders.All.ToDictionary(d => d.Name, d =>
        {
            using var _ = ImageLoader.Using(d);
            return ImageLoader.LoadRgb(path, size, resize);
        });

    [Fact]
    public void Both_decoders_give_the_same_pixels_within_one_grey_level()
    {
        using var dir = new TempDir();
        var files = new List<string>();
        foreach (var (w, h) in new[] { (320, 240), (803, 601), (2000, 1500) })
        {
            using var picture = DecodeRobustnessTests.Picture(w, h);
            foreach (var orientation in new[] { 1, 3, 6, 8 })
            {
                var path = dir[$"{w}x{h}-{orientation}.jpg"];
                var jpeg = DecodeRobustnessTests.Jpeg(picture);
                File.WriteAllBytes(path, orientation == 1 ? jpeg : DecodeRobustnessTests.WithOrientation(jpeg, orientation));
                files.Add(path);
            }
            File.WriteAllBytes(dir[$"{w}x{h}.png"], Encode(picture, SKEncodedImageFormat.Png));
            File.WriteAllBytes(dir[$"{w}x{h}.webp"], Encode(picture, SKEncodedImageFormat.Webp));
            using (var vips = VipsImage.NewFromFile(dir[$"{w}x{h}.png"]))
                vips.Gifsave(dir[$"{w}x{h}.gif"]);
            files.AddRange([dir[$"{w}x{h}.png"], dir[$"{w}x{h}.webp"], dir[$"{w}x{h}.gif"]]);
        }
        using (var grey = new SKBitmap(new SKImageInfo(300, 200, SKColorType.Gray8)))
        {
            using (var canvas = new SKCanvas(grey))
            using (var shader = SKShader.CreateLinearGradient(new SKPoint(0, 0), new SKPoint(300, 200), [SKColors.Black, SKColors.White], SKShaderTileMode.Clamp))
            using (var paint = new SKPaint { Shader = shader })
                canvas.DrawRect(0, 0, 300, 200, paint);
            File.WriteAllBytes(dir["grey.jpg"], Encode(grey, SKEncodedImageFormat.Jpeg));
            files.Add(dir["grey.jpg"]);
        }
        foreach (var path in files)
            foreach (var resize in new[] { ResizeMode.CenterCrop, ResizeMode.Squash })
            {
                var pixels = PerDecoder(path, resize);
                var (mean, max) = Pixels.Difference(pixels["vips"], pixels["skia"]);
                output.WriteLine($"{Path.GetFileName(path)} {resize}: mean {mean:F3} max {max}");
                Assert.True(mean <= 1.0, $"{Path.GetFileName(path)} {resize}: mean difference {mean:F3} grey levels");
            }
    }

    /// <summary>The entropy-coded data's start: after the first SOS segment.</summary>
    static int DataStart(byte[] jpeg)
    {
        for (int i = 2; i < jpeg.Length - 1; i++)
            if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xDA) return i + 2 + BinaryPrimitives.ReadUInt16BigEndian(jpeg.AsSpan(i + 2));
        throw new InvalidOperationException("no scan");
    }

    static byte[] TestJpeg() { using var p = DecodeRobustnessTests.Picture(320, 240); return DecodeRobustnessTests.Jpeg(p); }

    /// <summary>
    /// Valid headers, damaged entropy data (bytes in the middle scrambled, a stray restart marker among them), the
    /// end-of-image marker kept: libjpeg stops at the marker, warns, and fills the rest grey. (Scrambled bytes that
    /// still read as valid codes decode to noise without a warning: no decoder can tell those.)
    /// </summary>
    static byte[] Scrambled()
    {
        var jpeg = TestJpeg();
        int start = DataStart(jpeg), middle = start + (jpeg.Length - start) / 2;
        var rng = new Random(5);
        for (int i = middle; i < middle + 40; i++) jpeg[i] = (byte)rng.Next(0, 0xFF);
        jpeg[middle + 20] = 0xFF;
        jpeg[middle + 21] = 0xD3;
        return jpeg;
    }

    /// <summary>Cut in the middle of its data, but ending with an end-of-image marker.</summary>
    static byte[] CutWithEndMarker()
    {
        var jpeg = TestJpeg();
        int start = DataStart(jpeg);
        return [.. jpeg.AsSpan(0, start + (jpeg.Length - start) / 2), 0xFF, 0xD9];
    }

    /// <summary>A small JPEG whose frame header claims 30000x30000 (900 megapixels: under the 1-gigapixel cap; 1/8 decodes within the decoded cap).</summary>
    static byte[] Claiming30000()
    {
        var jpeg = TestJpeg();
        int sof = Enumerable.Range(0, jpeg.Length - 9).First(i => jpeg[i] == 0xFF && jpeg[i + 1] is 0xC0 or 0xC2);
        BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(sof + 5), 30000);
        BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(sof + 7), 30000);
        return jpeg;
    }

    [Fact]
    public void LibVips_refuses_damaged_entropy_data_and_data_cut_short_before_an_end_marker()
    {
        using var _ = ImageLoader.Using(ImageDecoders.Vips);
        using var dir = new TempDir();
        foreach (var (name, bytes) in new[] { ("scrambled.jpg", Scrambled()), ("cut.jpg", CutWithEndMarker()) })
        {
            File.WriteAllBytes(dir[name], bytes);
            var e = Assert.Throws<ImageDecodeException>(() => ImageLoader.LoadRgb(dir[name], 64, ResizeMode.Squash, acceptPartial: false));
            output.WriteLine(e.Message);
            Assert.Contains("GRAFT_ACCEPT_PARTIAL_IMAGES=1", e.Reason);
            Assert.DoesNotContain('\n', e.Message);
            Assert.Equal(64 * 64 * 3, ImageLoader.LoadRgb(dir[name], 64, ResizeMode.Squash, acceptPartial: true).Length);
        }
    }

    [Theory]
    [MemberData(nameof(Decoders))]
    public void A_JPEG_header_claiming_30000_by_30000_over_a_few_kilobytes_is_refused_before_decoding(string decoder)
    {
        using var _ = ImageLoader.Using(ImageDecoders.Named(decoder));
        using var dir = new TempDir();
        File.WriteAllBytes(dir["huge.jpg"], Claiming30000());
        Assert.Equal((30000, 30000), (ImageLoader.ReadHeader(dir["huge.jpg"]).Width, ImageLoader.ReadHeader(dir["huge.jpg"]).Height));
        var e = Assert.Throws<ImageDecodeException>(() => ImageLoader.LoadRgb(dir["huge.jpg"], 224, ResizeMode.CenterCrop, acceptPartial: false));
        output.WriteLine(e.Message);
        Assert.Contains("cannot hold 30000x30000 pixels", e.Reason);
        Assert.Contains("GRAFT_ACCEPT_PARTIAL_IMAGES=1", e.Reason);
    }

    [Theory]
    [MemberData(nameof(Decoders))]
    public void A_PNG_in_Display_P3_is_converted_to_sRGB(string decoder)
    {
        using var _ = ImageLoader.Using(ImageDecoders.Named(decoder));
        using var dir = new TempDir();
        // A saturated sRGB red and green, converted to Display P3 and saved with vips' built-in P3 profile embedded.
        using (var srgb = VipsImage.Black(64, 64, bands: 3).NewFromImage([230, 20, 30]).Copy(interpretation: NetVips.Enums.Interpretation.Srgb))
        using (var p3 = srgb.IccTransform("p3", inputProfile: "srgb", intent: NetVips.Enums.Intent.Relative, depth: 8))
        {
            var stored = p3.Getpoint(0, 0);
            output.WriteLine($"stored P3 values {string.Join(",", stored)}");
            Assert.True(Math.Abs(stored[0] - 230) + Math.Abs(stored[1] - 20) + Math.Abs(stored[2] - 30) > 20, "P3 values should differ from sRGB's");
            p3.Pngsave(dir["p3.png"], profile: "p3");
        }
        Assert.True(ImageLoader.ReadHeader(dir["p3.png"]).NonSrgbProfile);
        var rgb = ImageLoader.LoadRgb(dir["p3.png"], 32, ResizeMode.Squash);
        output.WriteLine($"{decoder}: {rgb[0]},{rgb[1]},{rgb[2]}");
        Assert.InRange(rgb[0], 228, 232);
        Assert.InRange(rgb[1], 18, 22);
        Assert.InRange(rgb[2], 28, 32);
    }

    [Theory]
    [MemberData(nameof(Decoders))]
    public void A_GIF_whose_first_frame_is_fully_transparent_is_a_bad_image_saying_so(string decoder)
    {
        using var _ = ImageLoader.Using(ImageDecoders.Named(decoder));
        using var dir = new TempDir();
        // Two 40x30 frames: the first fully transparent, the second opaque red.
        using (var blank = VipsImage.Black(40, 30, bands: 4))
        using (var red = VipsImage.Black(40, 30, bands: 3).NewFromImage([200, 10, 10, 255]))
        using (var frames = blank.Join(red, NetVips.Enums.Direction.Vertical).Copy(interpretation: NetVips.Enums.Interpretation.Srgb))
        using (var animation = frames.Mutate(m => m.Set(NetVips.GValue.GIntType, "page-height", 30)))
            animation.Gifsave(dir["blank-first.gif"]);
        using (var red = VipsImage.Black(40, 30, bands: 3).NewFromImage([200, 10, 10, 255]).Copy(interpretation: NetVips.Enums.Interpretation.Srgb))
            red.Gifsave(dir["red.gif"]);
        var header = ImageLoader.ReadHeader(dir["blank-first.gif"]);
        Assert.Equal((ImageFormat.Gif, 40, 30, 2), (header.Format, header.Width, header.Height, header.Frames));
        var e = Assert.Throws<ImageDecodeException>(() => ImageLoader.LoadRgb(dir["blank-first.gif"], 32, ResizeMode.Squash));
        output.WriteLine(e.Message);
        Assert.Contains("first frame is fully transparent", e.Reason);
        Assert.InRange(ImageLoader.LoadRgb(dir["red.gif"], 32, ResizeMode.Squash)[0], 190, 210);
    }
}
