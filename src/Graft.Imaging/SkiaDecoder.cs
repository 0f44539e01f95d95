using SkiaSharp;

namespace Graft.Imaging;

/// <summary>
/// Decoding with SkiaSharp's codecs. Skia reports a JPEG cut short (<see cref="SKCodecResult.IncompleteInput"/>) but
/// not libjpeg's warnings: damaged entropy data, or data that stops early at an end-of-image marker, decodes as
/// success with the rest grey. Above the seam, <see cref="ImageLoader"/> refuses a JPEG whose data is too short for
/// its declared size (<see cref="JpegFrame.MinimumDataBytes"/>) whatever the decoder; the rest only libvips sees.
/// </summary>
sealed class SkiaDecoder : IImageDecoder
{
    public string Name => "skia";

    public IEncodedImage Open(ReadOnlySpan<byte> encoded, string name)
    {
        if (encoded.IsEmpty) throw new ImageDecodeException(name, "the file is empty");
        var data = SKData.CreateCopy(encoded);
        var codec = SKCodec.Create(data);
        if (codec is null)
        {
            data.Dispose();
            throw new ImageDecodeException(name, "not a recognised image format");
        }
        var format = codec.EncodedFormat switch
        {
            SKEncodedImageFormat.Jpeg => ImageFormat.Jpeg,
            SKEncodedImageFormat.Png => ImageFormat.Png,
            SKEncodedImageFormat.Gif => ImageFormat.Gif,
            SKEncodedImageFormat.Bmp => ImageFormat.Bmp,
            SKEncodedImageFormat.Webp => ImageFormat.Webp,
            _ => ImageFormat.Other,
        };
        // Skia's JPEG codec gives every JPEG as colour: the frame header says grey (1 component) or CMYK (4).
        int components = format == ImageFormat.Jpeg ? JpegFrame.Read(encoded)?.Components ?? 0 : 0;
        var space = codec.Info.ColorSpace;
        var header = new ImageHeader(format, codec.Info.Width, codec.Info.Height, ImageHeader.OrientationOf((int)codec.EncodedOrigin))
        {
            Grayscale = components == 1 || codec.Info.ColorType == SKColorType.Gray8,
            Cmyk = components == 4,
            HasAlpha = codec.Info.AlphaType != SKAlphaType.Opaque,
            NonSrgbProfile = space is not null && !space.IsSrgb,
            Frames = Math.Max(1, codec.FrameCount),
        };
        return new Image(name, data, codec, header);
    }

    sealed class Image(string name, SKData data, SKCodec codec, ImageHeader header) : IEncodedImage
    {
        public ImageHeader Header => header;

        public (int Width, int Height) ScaledSize(double scale)
        {
            var size = codec.GetScaledDimensions((float)scale);
            return (size.Width, size.Height);
        }

        public DecodedPixels Decode(int width, int height, bool acceptPartial)
        {
            // Pixels in sRGB: Skia converts from an embedded profile that is not sRGB; none, or sRGB, stays as stored.
            var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul,
                header.NonSrgbProfile ? SKColorSpace.CreateSrgb() : null);
            var pixels = DecodedPixels.Allocate(width, height, name);
            try
            {
                var result = codec.GetPixels(info, pixels.Address);
                switch (result)
                {
                    case SKCodecResult.Success:
                    case SKCodecResult.IncompleteInput or SKCodecResult.ErrorInInput when acceptPartial:
                        return pixels;
                    case SKCodecResult.IncompleteInput:
                        throw ImageDecodeException.Incomplete(name, "the file is cut short");
                    case SKCodecResult.ErrorInInput:
                        throw ImageDecodeException.Damaged(name, "only part of it decodes");
                    default:
                        throw new ImageDecodeException(name, $"the image data is damaged ({result})");
                }
            }
            catch
            {
                pixels.Dispose();
                throw;
            }
        }

        public void Dispose()
        {
            codec.Dispose();
            data.Dispose();
        }
    }
}
