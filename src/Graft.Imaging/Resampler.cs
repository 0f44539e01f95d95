namespace Graft.Imaging;

/// <summary>
/// Antialiased bilinear resizing (a triangle filter widened by the scale factor, as PIL and torchvision's
/// antialias=True do), separable, from an RGBA window to RGB bytes: the same smoothing for downscaling as Skia's
/// trilinear mipmap sampling, which is much slower (the bench's decode + resize rows measure this one).
/// </summary>
public static class Resampler
{
    /// <summary>Resizes the window (x, y, w, h) of an RGBA image with the given row stride to width x height RGB.</summary>
    public static byte[] ResizeRgba(ReadOnlySpan<byte> rgba, int stride, int x, int y, int w, int h, int width, int height)
    {
        if (w == width && h == height) return Copy(rgba, stride, x, y, w, h); // already the size: the pixels as they are
        return Resize(rgba, stride, x, y, w, h, Weights(0, w, w, width), Weights(0, h, h, height), width, height);
    }

    /// <summary>
    /// As above for a window whose edges may fall inside pixels (a window chosen on a larger original and mapped
    /// onto a reduced-scale decode): output pixel i samples around x + (i + 0.5) w / width, from the pixels the
    /// window touches. An integer window gives exactly what the integer overload gives.
    /// </summary>
    public static byte[] ResizeRgba(ReadOnlySpan<byte> rgba, int stride, int imageWidth, int imageHeight,
        double x, double y, double w, double h, int width, int height)
    {
        int x0 = Math.Clamp((int)Math.Floor(x), 0, imageWidth - 1), x1 = Math.Clamp((int)Math.Ceiling(x + w), x0 + 1, imageWidth);
        int y0 = Math.Clamp((int)Math.Floor(y), 0, imageHeight - 1), y1 = Math.Clamp((int)Math.Ceiling(y + h), y0 + 1, imageHeight);
        if (x0 == x && y0 == y && x1 - x0 == w && y1 - y0 == h) return ResizeRgba(rgba, stride, x0, y0, x1 - x0, y1 - y0, width, height);
        return Resize(rgba, stride, x0, y0, x1 - x0, y1 - y0, Weights(x - x0, w, x1 - x0, width), Weights(y - y0, h, y1 - y0, height), width, height);
    }

    static byte[] Resize(ReadOnlySpan<byte> rgba, int stride, int x, int y, int w, int h,
        (int[] Start, int[] Count, float[] Weights, int Taps) horizontal, (int[] Start, int[] Count, float[] Weights, int Taps) vertical, int width, int height)
    {
        var (xStart, xCount, xWeights, xTaps) = horizontal;
        var (yStart, yCount, yWeights, yTaps) = vertical;

        // Horizontal pass over the rows the vertical pass needs: h rows x width columns x 3 channels.
        var temp = new float[h * width * 3];
        for (int row = 0; row < h; row++)
        {
            var src = rgba.Slice((y + row) * stride + x * 4, w * 4);
            int o = row * width * 3;
            for (int i = 0; i < width; i++, o += 3)
            {
                float r = 0, g = 0, b = 0;
                int s = xStart[i] * 4, wi = i * xTaps;
                for (int t = 0; t < xCount[i]; t++, s += 4)
                {
                    float weight = xWeights[wi + t];
                    r += src[s] * weight; g += src[s + 1] * weight; b += src[s + 2] * weight;
                }
                temp[o] = r; temp[o + 1] = g; temp[o + 2] = b;
            }
        }

        var result = new byte[width * height * 3];
        int rowLength = width * 3;
        var acc = new float[rowLength];
        for (int j = 0; j < height; j++)
        {
            Array.Clear(acc);
            int wj = j * yTaps;
            for (int t = 0; t < yCount[j]; t++)
            {
                float weight = yWeights[wj + t];
                var src = temp.AsSpan((yStart[j] + t) * rowLength, rowLength);
                for (int k = 0; k < rowLength; k++) acc[k] += src[k] * weight;
            }
            var dst = result.AsSpan(j * rowLength, rowLength);
            for (int k = 0; k < rowLength; k++) dst[k] = (byte)Math.Clamp((int)(acc[k] + 0.5f), 0, 255);
        }
        return result;
    }

    /// <summary>
    /// For each output pixel: first source pixel, tap count and normalized weights (taps per row fixed), for a
    /// window starting <paramref name="offset"/> pixels into <paramref name="pixels"/> source pixels and
    /// <paramref name="length"/> long (offset 0 and length = pixels for a whole-pixel window).
    /// </summary>
    static (int[] Start, int[] Count, float[] Weights, int Taps) Weights(double offset, double length, int pixels, int target)
    {
        double scale = length / target;
        double support = Math.Max(scale, 1.0); // triangle of radius 1, widened when shrinking
        int taps = (int)Math.Ceiling(support) * 2 + 1;
        var start = new int[target];
        var count = new int[target];
        var weights = new float[target * taps];
        for (int i = 0; i < target; i++)
        {
            double center = offset + (i + 0.5) * scale;
            int lo = Math.Max((int)Math.Floor(center - support), 0);
            int hi = Math.Min((int)Math.Ceiling(center + support), pixels);
            double sum = 0;
            int n = Math.Min(hi - lo, taps);
            for (int t = 0; t < n; t++)
            {
                double wgt = Math.Max(0, 1 - Math.Abs((lo + t + 0.5 - center) / support));
                weights[i * taps + t] = (float)wgt;
                sum += wgt;
            }
            for (int t = 0; t < n; t++) weights[i * taps + t] = (float)(weights[i * taps + t] / sum);
            start[i] = lo;
            count[i] = n;
        }
        return (start, count, weights, taps);
    }

    static byte[] Copy(ReadOnlySpan<byte> rgba, int stride, int x, int y, int w, int h)
    {
        var rgb = new byte[w * h * 3];
        for (int row = 0; row < h; row++)
        {
            var src = rgba.Slice((y + row) * stride + x * 4, w * 4);
            for (int i = 0, o = row * w * 3; i < w; i++, o += 3)
            {
                rgb[o] = src[i * 4]; rgb[o + 1] = src[i * 4 + 1]; rgb[o + 2] = src[i * 4 + 2];
            }
        }
        return rgb;
    }
}
