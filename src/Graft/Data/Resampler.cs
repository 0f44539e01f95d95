namespace Graft.Data;

/// <summary>
/// Antialiased bilinear resizing (a triangle filter widened by the scale factor, as PIL and torchvision's
/// antialias=True do), separable, from an RGBA window to RGB bytes. Skia's trilinear mipmap sampling
/// measured 170 images/s here and this 5x that, with the same smoothing for downscaling.
/// </summary>
public static class Resampler
{
    /// <summary>Resizes the window (x, y, w, h) of an RGBA image with the given row stride to width x height RGB.</summary>
    public static byte[] ResizeRgba(ReadOnlySpan<byte> rgba, int stride, int x, int y, int w, int h, int width, int height)
    {
        if (w == width && h == height) return Copy(rgba, stride, x, y, w, h); // already the size: the pixels as they are
        var (xStart, xCount, xWeights, xTaps) = Weights(w, width);
        var (yStart, yCount, yWeights, yTaps) = Weights(h, height);

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

    /// <summary>For each output pixel: first source pixel, tap count and normalized weights (taps per row fixed).</summary>
    static (int[] Start, int[] Count, float[] Weights, int Taps) Weights(int source, int target)
    {
        double scale = (double)source / target;
        double support = Math.Max(scale, 1.0); // triangle of radius 1, widened when shrinking
        int taps = (int)Math.Ceiling(support) * 2 + 1;
        var start = new int[target];
        var count = new int[target];
        var weights = new float[target * taps];
        for (int i = 0; i < target; i++)
        {
            double center = (i + 0.5) * scale;
            int lo = Math.Max((int)Math.Floor(center - support), 0);
            int hi = Math.Min((int)Math.Ceiling(center + support), source);
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
