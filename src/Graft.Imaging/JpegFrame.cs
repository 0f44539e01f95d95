using System.Buffers.Binary;

namespace Graft.Imaging;

/// <summary>
/// A JPEG's frame header (SOF marker) and where its entropy-coded data starts, read from the bytes without decoding:
/// the colour components (1 grey, 4 CMYK) for codecs that do not say, and a floor on the bytes the data needs.
/// </summary>
/// <param name="Width">The declared width.</param>
/// <param name="Height">The declared height.</param>
/// <param name="Components">Colour components: 1 grey, 3 YCbCr, 4 CMYK.</param>
/// <param name="Arithmetic">Arithmetic-coded (SOF9 and up) rather than Huffman-coded.</param>
/// <param name="DataStart">Where the first scan's entropy-coded data starts.</param>
readonly record struct JpegFrame(int Width, int Height, int Components, bool Arithmetic, int DataStart)
{
    /// <summary>The frame header of the JPEG in <paramref name="jpeg"/>; null when there is none before the first scan.</summary>
    public static JpegFrame? Read(ReadOnlySpan<byte> jpeg)
    {
        if (jpeg.Length < 4 || jpeg[0] != 0xFF || jpeg[1] != 0xD8) return null;
        (int Width, int Height, int Components, bool Arithmetic)? frame = null;
        int i = 2;
        while (i + 3 < jpeg.Length)
        {
            if (jpeg[i] != 0xFF) { i++; continue; } // not at a marker: damaged; look for the next one
            int marker = jpeg[i + 1];
            if (marker == 0xFF) { i++; continue; } // fill byte
            if (marker is 0x01 or (>= 0xD0 and <= 0xD7)) { i += 2; continue; } // markers without a length
            if (marker == 0xD9) return null; // end of image before any scan
            int length = BinaryPrimitives.ReadUInt16BigEndian(jpeg[(i + 2)..]);
            if (length < 2) return null;
            if (marker == 0xDA)
                return frame is { } f ? new JpegFrame(f.Width, f.Height, f.Components, f.Arithmetic, Math.Min(i + 2 + length, jpeg.Length)) : null;
            bool sof = marker is >= 0xC0 and <= 0xCF and not (0xC4 or 0xC8 or 0xCC);
            if (sof && i + 10 <= jpeg.Length) // length (2), precision, height (2), width (2), components
                frame = (BinaryPrimitives.ReadUInt16BigEndian(jpeg[(i + 7)..]), BinaryPrimitives.ReadUInt16BigEndian(jpeg[(i + 5)..]), jpeg[i + 9], marker >= 0xC9);
            i += 2 + length;
        }
        return null;
    }

    /// <summary>
    /// The fewest bytes of entropy-coded data a Huffman-coded JPEG of this size can have: every 8x8 block of the first
    /// component carries a DC code, and a Huffman code is at least one bit. A file with fewer bytes after its first scan
    /// header (a 30000x30000 header over a few kilobytes of data) cannot hold its pixels: libjpeg would decode it to
    /// flat grey with a warning. Null for arithmetic coding, which has no such floor.
    /// </summary>
    public long? MinimumDataBytes => Arithmetic ? null : ((long)(Width + 7) / 8) * ((Height + 7) / 8) / 8;
}
