using Graft.Bench;
using Graft.Data;
using Graft.Imaging;
using SkiaSharp;

namespace Graft.Tests;

/// <summary>
/// Reduced-scale decoding (JPEG DCT scaling, WebP scaled decode) gives what decoding every pixel and resizing gives,
/// closely: per image, mean absolute difference under 1 grey level and no channel value more than 40 apart.
/// Measured when written: means 0.1-0.6 and maxima 1-12 in these tests; over 16 phone photos re-encoded at sizes
/// from 613x460 to 4032x3024, inputs 150, 224 and 299, crop, squash and random-resized-crop, one image's mean at most
/// 1.0 and the largest difference 25 (single pixels on sharp edges). Images too small to reduce decode in full
/// and give exactly what they gave before. Every decoding assertion runs with each decoder (libvips decodes WebP in full).
/// </summary>
public class DecodeScaleTests(Xunit.Abstractions.ITestOutputHelper output)
{
    const double MeanTolerance = 1.0;
    const int MaxTolerance = 40;

    /// <summary>
    /// One 4032x3024 phone-camera JPEG (an ImageNet photo upscaled, camera-like noise, quality 90), as the bench makes
    /// them; kept in the temp folder, so made once per machine (2 s).
    /// </summary>
    static readonly Lazy<string> Photo = new(() => PhonePhotos.Generate(Path.Combine(Path.GetTempPath(), "graft-test-phone-photos"), 1, seed: 3)[0]);

    public static TheoryData<string> Decoders => new(ImageDecoders.All.Select(d => d.Name));

    /// <summary>A side at 1/d as libjpeg gives it (rounded up).</summary>
    static int Scaled(int side, int d) => (side + d - 1) / d;

    void AssertClose(byte[] reduced, byte[] full, string what)
    {
        var (mean, max) = Pixels.Difference(reduced, full);
        output.WriteLine($"{what}: mean |difference| {mean:F2}, max {max}");
        Assert.True(mean < MeanTolerance, $"{what}: mean absolute difference {mean:F2} (tolerance {MeanTolerance})");
        Assert.True(max < MaxTolerance, $"{what}: max difference {max} (tolerance {MaxTolerance})");
    }

    [Theory]
    [InlineData(ResizeMode.CenterCrop, 224, "skia")]
    [InlineData(ResizeMode.Squash, 224, "skia")]
    [InlineData(ResizeMode.CenterCrop, 299, "skia")]
    [InlineData(ResizeMode.Squash, 150, "skia")]
    [InlineData(ResizeMode.CenterCrop, 224, "vips")]
    [InlineData(ResizeMode.Squash, 224, "vips")]
    [InlineData(ResizeMode.CenterCrop, 299, "vips")]
    [InlineData(ResizeMode.Squash, 150, "vips")]
    public void A_phone_photo_decodes_at_an_eighth_and_matches_full_decoding(ResizeMode resize, int size, string decoder)
    {
        using var _ = ImageLoader.Using(ImageDecoders.Named(decoder));
        var path = Photo.Value;
        Assert.Equal((504, 378), ImageLoader.DecodedSize(path, size, resize));
        AssertClose(ImageLoader.LoadRgb(path, size, resize), ImageLoader.LoadRgb(path, size, resize, fullDecode: true), $"4032x3024 {resize} {size}");
    }

    [Theory]
    [MemberData(nameof(Decoders))]
    public void Odd_sizes_and_portrait_photos_map_the_window_to_a_fraction_of_a_pixel(string decoder)
    {
        using var _ = ImageLoader.Using(ImageDecoders.Named(decoder));
        // 1900x2533: neither side a multiple of 8; at 1/8 the centred square starts 39.5 decoded pixels down.
        using var dir = new TempDir();
        var path = dir["portrait.jpg"];
        using (var photo = SKBitmap.Decode(Photo.Value))
        using (var rotated = new SKBitmap(new SKImageInfo(1900, 2533, SKColorType.Rgba8888, SKAlphaType.Opaque)))
        {
            using (var canvas = new SKCanvas(rotated))
            {
                canvas.Translate(1900, 0);
                canvas.RotateDegrees(90);
                using var image = SKImage.FromBitmap(photo);
                canvas.DrawImage(image, SKRect.Create(0, 0, 2533, 1900), new SKSamplingOptions(SKCubicResampler.Mitchell));
            }
            WriteJpeg(rotated, path);
        }
        foreach (var (resize, size, decoded) in new[] { (ResizeMode.CenterCrop, 224, 4), (ResizeMode.Squash, 224, 4), (ResizeMode.CenterCrop, 150, 8) })
        {
            Assert.Equal((Scaled(1900, decoded), Scaled(2533, decoded)), ImageLoader.DecodedSize(path, size, resize));
            AssertClose(ImageLoader.LoadRgb(path, size, resize), ImageLoader.LoadRgb(path, size, resize, fullDecode: true), $"1900x2533 {resize} {size}");
        }
    }

    [Fact]
    public void Random_resized_crop_picks_its_window_in_the_original_and_decodes_enough_of_it()
    {
        var path = Photo.Value;
        var augmentation = new Augmentation { RandomResizedCrop = true, ZoomRange = 0.2, HorizontalFlip = true };
        // Draws with a small window (the smallest possible is about 855x1140 of 4032x3024) and a large one.
        var draws = Enumerable.Range(0, 200)
            .Select(i => (Index: i, Window: augmentation.CropWindow(4032, 3024, Augmentation.RandomFor(5, 0, i))!.Value))
            .ToList();
        var small = draws.First(d => Math.Min(d.Window.W, d.Window.H) < 1000);
        var large = draws.First(d => Math.Min(d.Window.W, d.Window.H) >= 2240);
        foreach (var (index, window) in new[] { small, large })
        {
            var decoded = ImageLoader.DecodedSize(path, 224, ResizeMode.CenterCrop, augmentation, Augmentation.RandomFor(5, 0, index));
            // The window spans at least 1.25 x 224 decoded pixels each way: 1/2 for the small one, 1/8 for the large one.
            Assert.Equal(window == small.Window ? (2016, 1512) : (504, 378), decoded);
            var reduced = ImageLoader.LoadRgb(path, 224, ResizeMode.CenterCrop, augmentation, Augmentation.RandomFor(5, 0, index));
            var full = ImageLoader.LoadRgb(path, 224, ResizeMode.CenterCrop, augmentation, Augmentation.RandomFor(5, 0, index), fullDecode: true);
            AssertClose(reduced, full, $"random-resized-crop window {window.W}x{window.H} at ({window.X}, {window.Y})");
            // Reproducible: the same seed, epoch and index give the same pixels.
            Assert.Equal(reduced, ImageLoader.LoadRgb(path, 224, ResizeMode.CenterCrop, augmentation, Augmentation.RandomFor(5, 0, index)));
        }
    }

    [Theory]
    [MemberData(nameof(Decoders))]
    public void A_large_webp_decodes_scaled_and_matches_full_decoding(string decoder)
    {
        using var _ = ImageLoader.Using(ImageDecoders.Named(decoder));
        using var dir = new TempDir();
        var path = dir["large.webp"];
        using (var photo = SKBitmap.Decode(Photo.Value))
        using (var half = photo.Resize(new SKImageInfo(2016, 1512, SKColorType.Rgba8888, SKAlphaType.Opaque), new SKSamplingOptions(SKCubicResampler.Mitchell)))
        using (var data = half.Encode(SKEncodedImageFormat.Webp, 90))
            File.WriteAllBytes(path, data.ToArray());
        var (width, height) = ImageLoader.DecodedSize(path, 224, ResizeMode.CenterCrop);
        if (decoder == "vips") Assert.Equal((2016, 1512), (width, height)); // in full: libvips scales WebP by one factor only
        else
        {
            Assert.InRange(height, 280, 282); // 1.25 x 224, any size libwebp is asked for
            Assert.InRange(width, 373, 376);
        }
        AssertClose(ImageLoader.LoadRgb(path, 224, ResizeMode.CenterCrop), ImageLoader.LoadRgb(path, 224, ResizeMode.CenterCrop, fullDecode: true), "2016x1512 WebP crop 224");
    }

    [Theory]
    [InlineData(400, 300, "skia")]   // below 2x the target
    [InlineData(746, 559, "skia")]   // the largest that a 1/2 decode would take below 1.25 x 224
    [InlineData(400, 300, "vips")]
    [InlineData(746, 559, "vips")]
    public void Images_too_small_to_reduce_decode_in_full(int width, int height, string decoder)
    {
        using var _ = ImageLoader.Using(ImageDecoders.Named(decoder));
        using var dir = new TempDir();
        var path = dir["small.jpg"];
        using (var photo = SKBitmap.Decode(Photo.Value))
        using (var small = photo.Resize(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque), new SKSamplingOptions(SKCubicResampler.Mitchell)))
            WriteJpeg(small, path);
        Assert.Equal((width, height), ImageLoader.DecodedSize(path, 224, ResizeMode.CenterCrop));
        Assert.Equal(ImageLoader.LoadRgb(path, 224, ResizeMode.CenterCrop, fullDecode: true), ImageLoader.LoadRgb(path, 224, ResizeMode.CenterCrop));
        Assert.Equal(ImageLoader.LoadRgb(path, 224, ResizeMode.Squash, fullDecode: true), ImageLoader.LoadRgb(path, 224, ResizeMode.Squash));
        // One pixel more each way and the short side reaches 2.5 x 224: a 1/2 decode.
        if (height == 559)
        {
            var larger = dir["larger.jpg"];
            using (var photo = SKBitmap.Decode(Photo.Value))
            using (var resized = photo.Resize(new SKImageInfo(747, 560, SKColorType.Rgba8888, SKAlphaType.Opaque), new SKSamplingOptions(SKCubicResampler.Mitchell)))
                WriteJpeg(resized, larger);
            Assert.Equal((Scaled(747, 2), 280), ImageLoader.DecodedSize(larger, 224, ResizeMode.CenterCrop));
        }
    }

    [Theory]
    [MemberData(nameof(Decoders))]
    public void Sample_set_photos_decode_as_before(string decoder)
    {
        using var _ = ImageLoader.Using(ImageDecoders.Named(decoder));
        // hymenoptera's web images (~500x375) are below 2.5 x 224: every pixel exactly as a full decode gives.
        var folder = Assets.Shared("data/hymenoptera/val/ants");
        foreach (var path in Directory.GetFiles(folder, "*.jpg").Order(StringComparer.Ordinal).Take(10))
        {
            var (width, height) = ImageLoader.DecodedSize(path, 224, ResizeMode.CenterCrop);
            using var codec = SKCodec.Create(path);
            if (Math.Min(codec.Info.Width, codec.Info.Height) >= 560) continue;
            Assert.Equal((codec.Info.Width, codec.Info.Height), (width, height));
            Assert.Equal(ImageLoader.LoadRgb(path, 224, ResizeMode.CenterCrop, fullDecode: true), ImageLoader.LoadRgb(path, 224, ResizeMode.CenterCrop));
        }
    }

    [Fact]
    public void Report_thumbnails_of_phone_photos_keep_their_size()
    {
        using var dir = new TempDir();
        ImageLoader.WriteThumbnail(Photo.Value, dir["thumb.jpg"], 160);
        using var codec = SKCodec.Create(dir["thumb.jpg"]);
        Assert.Equal(new SKSizeI(160, 120), codec.Info.Size);
    }

    [Fact]
    public void Fractional_windows_resample_where_they_lie()
    {
        // A horizontal ramp: pixel x has value 10 x.
        const int w = 16, h = 4;
        var rgba = new byte[w * h * 4];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 4; c++) rgba[(y * w + x) * 4 + c] = (byte)(10 * x);
        // An integer window gives what the integer overload gives, bit for bit.
        Assert.Equal(Resampler.ResizeRgba(rgba, w * 4, 3, 0, 8, 4, 5, 3), Resampler.ResizeRgba(rgba, w * 4, w, h, 3.0, 0.0, 8.0, 4.0, 5, 3));
        // Same size, half a pixel right: each output pixel between two source pixels.
        var shifted = Resampler.ResizeRgba(rgba, w * 4, w, h, 2.5, 0.0, 8.0, 4.0, 8, 4);
        for (int x = 0; x < 8; x++) Assert.Equal(10 * (x + 2) + 5, shifted[x * 3]);
    }

    static void WriteJpeg(SKBitmap bitmap, string path)
    {
        using var pixmap = bitmap.PeekPixels();
        using var data = pixmap.Encode(new SKJpegEncoderOptions(90, SKJpegEncoderDownsample.Downsample420, SKJpegEncoderAlphaOption.Ignore))!;
        File.WriteAllBytes(path, data.ToArray());
    }
}
