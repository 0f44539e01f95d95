using System.Buffers.Binary;
using System.Diagnostics;
using Graft.Data;
using Graft.Imaging;
using SkiaSharp;

namespace Graft.Tests;

/// <summary>
/// Issue 11, cases 1, 2, 8 and 12 (AppleDouble files): partly decoded images are bad images unless opted in; EXIF
/// orientation is applied (also with reduced-scale decoding); images too large to decode are refused from the
/// header; hidden files are never listed. The corpus is written by the tests (EXIF segments and PNG chunks included).
/// </summary>
public class DecodeRobustnessTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>A smooth, asymmetric picture (gradients and a few blocks), so a rotation or mirror shows and JPEG stays close.</summary>
    internal static SKBitmap Picture(int width, int height)
    {
        var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        using var canvas = new SKCanvas(bitmap);
        using (var shader = SKShader.CreateLinearGradient(new SKPoint(0, 0), new SKPoint(width, height * 0.3f), [SKColors.Navy, SKColors.Orange], SKShaderTileMode.Clamp))
        using (var paint = new SKPaint { Shader = shader })
            canvas.DrawRect(0, 0, width, height, paint);
        using (var paint = new SKPaint { Color = SKColors.ForestGreen })
            canvas.DrawRect(width * 0.05f, height * 0.1f, width * 0.3f, height * 0.2f, paint);
        using (var paint = new SKPaint { Color = SKColors.White })
            canvas.DrawCircle(width * 0.7f, height * 0.75f, Math.Min(width, height) * 0.15f, paint);
        return bitmap;
    }

    internal static byte[] Jpeg(SKBitmap bitmap)
    {
        using var pixmap = bitmap.PeekPixels();
        using var data = pixmap.Encode(new SKJpegEncoderOptions(95, SKJpegEncoderDownsample.Downsample444, SKJpegEncoderAlphaOption.Ignore))!;
        return data.ToArray();
    }

    /// <summary>The bitmap as stored for an EXIF orientation (3: turned 180 degrees; 6: turned 90 degrees anticlockwise), so that applying the orientation gives it back.</summary>
    static SKBitmap Stored(SKBitmap original, int orientation)
    {
        int w = original.Width, h = original.Height;
        var stored = new SKBitmap(new SKImageInfo(orientation == 6 ? h : w, orientation == 6 ? w : h, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var src = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(original.GetPixelSpan());
        var dst = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(stored.GetPixelSpan());
        int ss = original.RowBytes / 4, ds = stored.RowBytes / 4;
        for (int y = 0; y < stored.Height; y++)
            for (int x = 0; x < stored.Width; x++)
                // Orientation 6 displays stored (x, y) at (storedHeight - 1 - y, x); 3 at (w - 1 - x, h - 1 - y).
                dst[y * ds + x] = orientation == 6 ? src[x * ss + (w - 1 - y)] : src[(h - 1 - y) * ss + (w - 1 - x)];
        return stored;
    }

    /// <summary>A JPEG with an EXIF APP1 segment (big-endian TIFF header, one IFD entry: 0x0112 Orientation) inserted after SOI.</summary>
    internal static byte[] WithOrientation(byte[] jpeg, int orientation)
    {
        Assert.True(jpeg[0] == 0xFF && jpeg[1] == 0xD8);
        var tiff = new byte[8 + 2 + 12 + 4];
        "MM"u8.CopyTo(tiff);
        BinaryPrimitives.WriteUInt16BigEndian(tiff.AsSpan(2), 42);
        BinaryPrimitives.WriteUInt32BigEndian(tiff.AsSpan(4), 8); // first IFD right after the header
        BinaryPrimitives.WriteUInt16BigEndian(tiff.AsSpan(8), 1); // one entry
        BinaryPrimitives.WriteUInt16BigEndian(tiff.AsSpan(10), 0x0112); // Orientation
        BinaryPrimitives.WriteUInt16BigEndian(tiff.AsSpan(12), 3); // SHORT
        BinaryPrimitives.WriteUInt32BigEndian(tiff.AsSpan(14), 1); // count
        BinaryPrimitives.WriteUInt16BigEndian(tiff.AsSpan(18), (ushort)orientation); // value, left-justified in 4 bytes
        // next-IFD offset 0 (the last 4 bytes)
        var payload = "Exif\0\0"u8.ToArray().Concat(tiff).ToArray();
        var segment = new byte[4 + payload.Length];
        segment[0] = 0xFF;
        segment[1] = 0xE1;
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(2), (ushort)(2 + payload.Length));
        payload.CopyTo(segment, 4);
        return [.. jpeg.AsSpan(0, 2), .. segment, .. jpeg.AsSpan(2)];
    }

    static (double Mean, int Max) Difference(byte[] a, byte[] b) => Pixels.Difference(a, b);

    [Theory]
    [InlineData(6, 800, 600)] // reduced-scale decoding (1/2 for 150), the 90-degree turn swaps the window's sides
    [InlineData(6, 803, 601)] // sides not multiples of the scale: the window maps to a fraction of a pixel
    [InlineData(3, 803, 601)]
    [InlineData(6, 120, 90)] // full decoding
    [InlineData(3, 120, 90)]
    public void EXIF_orientation_is_applied_so_a_turned_photo_loads_as_the_upright_one(int orientation, int width, int height)
    {
        foreach (var decoder in ImageDecoders.All)
        {
            using var _ = ImageLoader.Using(decoder);
            using var dir = new TempDir();
            using var picture = Picture(width, height);
            using var stored = Stored(picture, orientation);
            File.WriteAllBytes(dir["upright.jpg"], Jpeg(picture));
            File.WriteAllBytes(dir["tagged.jpg"], WithOrientation(Jpeg(stored), orientation));
            File.WriteAllBytes(dir["untagged.jpg"], Jpeg(stored));
            using (var codec = SKCodec.Create(dir["tagged.jpg"]))
                Assert.Equal(orientation == 6 ? SKEncodedOrigin.RightTop : SKEncodedOrigin.BottomRight, codec.EncodedOrigin);

            foreach (var (resize, size) in new[] { (ResizeMode.Squash, 150), (ResizeMode.CenterCrop, 150), (ResizeMode.CenterCrop, 64) })
            {
                Assert.Equal(ImageLoader.DecodedSize(dir["upright.jpg"], size, resize), ImageLoader.DecodedSize(dir["tagged.jpg"], size, resize));
                var upright = ImageLoader.LoadRgb(dir["upright.jpg"], size, resize);
                var tagged = ImageLoader.LoadRgb(dir["tagged.jpg"], size, resize);
                var taggedFull = ImageLoader.LoadRgb(dir["tagged.jpg"], size, resize, fullDecode: true);
                var untagged = ImageLoader.LoadRgb(dir["untagged.jpg"], size, resize);
                var (mean, max) = Difference(upright, tagged);
                var (meanFull, _) = Difference(taggedFull, tagged);
                var (meanUntagged, _) = Difference(upright, untagged);
                output.WriteLine($"{orientation} {width}x{height} {resize} {size}: tagged vs upright mean {mean:F2} max {max}; reduced vs full {meanFull:F2}; untagged vs upright {meanUntagged:F2}");
                Assert.True(mean < 1.5 && max < 60, $"tagged vs upright: mean {mean:F2}, max {max}");
                Assert.True(meanFull < 1.0, $"reduced vs full decoding of the tagged file: mean {meanFull:F2}");
                Assert.True(meanUntagged > 10, $"the untagged file should look different (mean {meanUntagged:F2})");
            }
        }
    }

    [Fact]
    public void A_report_thumbnail_of_a_turned_photo_is_upright()
    {
        foreach (var decoder in ImageDecoders.All)
        {
            using var _ = ImageLoader.Using(decoder);
            using var dir = new TempDir();
            using var picture = Picture(400, 300);
            using var stored = Stored(picture, 6);
            File.WriteAllBytes(dir["tagged.jpg"], WithOrientation(Jpeg(stored), 6));
            ImageLoader.WriteThumbnail(dir["tagged.jpg"], dir["thumb.jpg"], 100);
            using var thumb = SKBitmap.Decode(dir["thumb.jpg"]);
            Assert.Equal((100, 75), (thumb.Width, thumb.Height));
        }
    }

    static byte[] TestJpeg(int width = 320, int height = 240)
    {
        using var picture = Picture(width, height);
        return Jpeg(picture);
    }

    [Fact]
    public void A_JPEG_cut_in_half_is_a_bad_image_unless_partial_images_are_accepted()
    {
        foreach (var decoder in ImageDecoders.All)
        {
            using var _ = ImageLoader.Using(decoder);
            using var dir = new TempDir();
            var jpeg = TestJpeg();
            File.WriteAllBytes(dir["half.jpg"], jpeg[..(jpeg.Length / 2)]);
            var e = Assert.Throws<ImageDecodeException>(() => ImageLoader.LoadRgb(dir["half.jpg"], 64, ResizeMode.Squash, acceptPartial: false));
            output.WriteLine(e.Message);
            Assert.Contains("incomplete", e.Reason);
            Assert.Contains("GRAFT_ACCEPT_PARTIAL_IMAGES=1", e.Reason);
            Assert.Equal(64 * 64 * 3, ImageLoader.LoadRgb(dir["half.jpg"], 64, ResizeMode.Squash, acceptPartial: true).Length);
            // Whole files still load, and the default is off.
            File.WriteAllBytes(dir["whole.jpg"], jpeg);
            ImageLoader.LoadRgb(dir["whole.jpg"], 64, ResizeMode.Squash, acceptPartial: false);
            if (Environment.GetEnvironmentVariable("GRAFT_ACCEPT_PARTIAL_IMAGES") is null) Assert.False(ImageLoader.AcceptPartialImages);
        }
    }

    /// <remarks>
    /// Garbage that runs out before the image is complete is caught (the codec reports incomplete input). Garbage
    /// that the decoder stops reading at a marker (0xFF 0xD9 by chance, or an intact EOI) is not: libjpeg-turbo only
    /// warns and fills the rest, and SkiaSharp reports success, with no way to see the warning.
    /// </remarks>
    [Fact]
    public void A_JPEG_with_valid_headers_and_garbage_data_cut_short_is_a_bad_image()
    {
        foreach (var decoder in ImageDecoders.All)
        {
            using var _ = ImageLoader.Using(decoder);
            using var dir = new TempDir();
            var jpeg = TestJpeg();
            // The entropy-coded data starts after the SOS segment: replace it with 300 random bytes (no markers) and end the file there.
            int sos = -1;
            for (int i = 2; i < jpeg.Length - 1; i++)
                if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xDA) { sos = i; break; }
            Assert.True(sos > 0);
            int start = sos + 2 + BinaryPrimitives.ReadUInt16BigEndian(jpeg.AsSpan(sos + 2));
            var rng = new Random(11);
            var garbage = jpeg[..(start + 300)];
            for (int i = start; i < garbage.Length; i++) garbage[i] = (byte)rng.Next(0, 0xFF);
            File.WriteAllBytes(dir["garbage.jpg"], garbage);
            var e = Assert.Throws<ImageDecodeException>(() => ImageLoader.LoadRgb(dir["garbage.jpg"], 64, ResizeMode.Squash, acceptPartial: false));
            output.WriteLine(e.Message);
            Assert.Equal(64 * 64 * 3, ImageLoader.LoadRgb(dir["garbage.jpg"], 64, ResizeMode.Squash, acceptPartial: true).Length);
        }
    }

    static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        uint crc = 0xFFFFFFFF;
        foreach (var b in bytes)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xEDB88320 ^ (crc >> 1) : crc >> 1;
        }
        return ~crc;
    }

    static byte[] Chunk(string type, byte[] data)
    {
        var chunk = new byte[12 + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(chunk, (uint)data.Length);
        System.Text.Encoding.ASCII.GetBytes(type).CopyTo(chunk, 4);
        data.CopyTo(chunk, 8);
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + data.Length), Crc32(chunk.AsSpan(4, 4 + data.Length)));
        return chunk;
    }

    /// <summary>A PNG whose header claims width x height (8-bit RGB) with one small IDAT: a few hundred bytes.</summary>
    static byte[] ClaimingPng(int width, int height)
    {
        var ihdr = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, (uint)width);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr.AsSpan(4), (uint)height);
        ihdr[8] = 8; // bit depth
        ihdr[9] = 2; // RGB
        // compression, filter, interlace: 0
        var raw = new MemoryStream();
        using (var z = new System.IO.Compression.ZLibStream(raw, System.IO.Compression.CompressionLevel.Optimal, leaveOpen: true))
            z.Write(new byte[1 + 3 * 64]); // the first 64 pixels of the first row, black
        return [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A, .. Chunk("IHDR", ihdr), .. Chunk("IDAT", raw.ToArray()), .. Chunk("IEND", [])];
    }

    [Theory]
    [InlineData(60000, 60000)]
    [InlineData(20000, 20000)]
    [InlineData(10001, 10000)] // just over 100 megapixels
    public void A_PNG_claiming_a_huge_size_is_a_bad_image_refused_before_allocating(int width, int height)
    {
        foreach (var decoder in ImageDecoders.All)
        {
            using var _ = ImageLoader.Using(decoder);
            using var dir = new TempDir();
            var path = dir["huge.png"];
            File.WriteAllBytes(path, ClaimingPng(width, height));
            using (var codec = SKCodec.Create(path))
                Assert.Equal((width, height), (codec.Info.Width, codec.Info.Height)); // the header is valid (CRC included)
            var watch = Stopwatch.StartNew();
            var e = Assert.Throws<ImageDecodeException>(() => ImageLoader.LoadRgb(path, 224, ResizeMode.CenterCrop));
            output.WriteLine($"{e.Message} ({watch.ElapsedMilliseconds} ms)");
            Assert.Contains("too large", e.Reason);
            Assert.True(watch.ElapsedMilliseconds < 2000, $"{watch.ElapsedMilliseconds} ms");
            Assert.Throws<ImageDecodeException>(() => ImageLoader.WriteThumbnail(path, dir["thumb.jpg"], 100));
            Assert.False(File.Exists(dir["thumb.jpg"]));
        }
    }

    [Fact]
    public void A_JPEG_claiming_65000_by_65000_is_refused_from_its_header()
    {
        foreach (var decoder in ImageDecoders.All)
        {
            using var _ = ImageLoader.Using(decoder);
            using var dir = new TempDir();
            var path = dir["huge.jpg"];
            TinyImages.WriteImage(path, SKColors.Teal, 64, new Random(1), "jpg");
            var bytes = File.ReadAllBytes(path);
            int sof = Enumerable.Range(0, bytes.Length - 9).First(i => bytes[i] == 0xFF && bytes[i + 1] is 0xC0 or 0xC2);
            bytes[sof + 5] = bytes[sof + 7] = 65000 >> 8; // height and width, big-endian
            bytes[sof + 6] = bytes[sof + 8] = 65000 & 0xFF;
            File.WriteAllBytes(path, bytes);
            using (var codec = SKCodec.Create(path))
                Assert.Equal((65000, 65000), (codec.Info.Width, codec.Info.Height));
            var watch = Stopwatch.StartNew();
            var e = Assert.Throws<ImageDecodeException>(() => ImageLoader.LoadRgb(path, 224, ResizeMode.CenterCrop));
            Assert.Contains("header claims 65000x65000", e.Reason);
            Assert.True(watch.ElapsedMilliseconds < 2000, $"{watch.ElapsedMilliseconds} ms");
        }
    }

    [Fact]
    public void A_PNG_just_under_the_limit_is_not_refused_for_its_size()
    {
        foreach (var decoder in ImageDecoders.All)
        {
            using var _ = ImageLoader.Using(decoder);
            using var dir = new TempDir();
            var path = dir["big.png"];
            File.WriteAllBytes(path, ClaimingPng(100, 100));
            // Its data ends after 64 pixels: incomplete, not too large.
            var e = Assert.Throws<ImageDecodeException>(() => ImageLoader.LoadRgb(path, 64, ResizeMode.CenterCrop, acceptPartial: false));
            Assert.DoesNotContain("too large", e.Reason);
            Assert.Equal(64 * 64 * 3, ImageLoader.LoadRgb(path, 64, ResizeMode.CenterCrop, acceptPartial: true).Length);
        }
    }

    [Fact]
    public void Hidden_AppleDouble_files_are_never_listed_for_training_or_prediction()
    {
        using var dir = new TempDir();
        var rng = new Random(1);
        foreach (var cls in new[] { "ants", "bees" })
        {
            Directory.CreateDirectory(dir[Path.Combine("data", cls)]);
            for (int i = 0; i < 3; i++) TinyImages.WriteImage(dir[Path.Combine("data", cls, $"{i}.jpg")], SKColors.Red, 32, rng, "jpg");
            File.WriteAllBytes(dir[Path.Combine("data", cls, "._0.jpg")], [0, 5, 22, 7, 0, 2, 0, 0]); // AppleDouble header
        }
        var walked = FolderWalk.Files(dir["data"]).ToList();
        Assert.Equal(6, walked.Count);
        Assert.DoesNotContain(walked, f => Path.GetFileName(f).StartsWith('.'));
        var dataset = ImageFolder.OpenForTraining(dir["data"], 0);
        Assert.Equal(6, dataset.All.Count());
    }
}
