using System.ComponentModel;
using System.ComponentModel.DataAnnotations;

namespace Graft.Imaging;

/// <summary>How pixels from outside the image are filled after a shift, rotation or zoom (Keras's fill_mode).</summary>
public enum FillMode
{
    /// <summary>Repeat the nearest edge pixel.</summary>
    Nearest,
    /// <summary>Mirror the image at its edge.</summary>
    Reflect,
    /// <summary>Tile the image.</summary>
    Wrap,
    /// <summary>A constant grey level (<see cref="Augmentation.FillValue"/>).</summary>
    Constant,
}

/// <summary>
/// Random image transforms with Keras ImageDataGenerator semantics, so settings carry over:
/// rotation_range (degrees), width/height_shift_range (fraction of the size), shear_range (degrees),
/// zoom_range (x and y drawn separately from [1 - z, 1 + z]), horizontal/vertical flips, brightness_range
/// (a factor), fill_mode for pixels from outside the image; plus random-resized-crop (torchvision's
/// RandomResizedCrop: a window of 8-100% of the area, aspect 3/4 to 4/3, resized to the input).
/// </summary>
public sealed record Augmentation
{
    /// <summary>Rotation drawn from [-r, r] degrees.</summary>
    [Description("rotation_range: degrees, drawn from [-r, r].")]
    [Range(0, double.MaxValue)]
    public double RotationRange { get; init; }
    /// <summary>Horizontal shift drawn from [-f, f] times the width.</summary>
    [Description("width_shift_range: a fraction of the width, drawn from [-f, f].")]
    [Range(0, double.MaxValue)]
    public double WidthShiftRange { get; init; }
    /// <summary>Vertical shift drawn from [-f, f] times the height.</summary>
    [Description("height_shift_range: a fraction of the height, drawn from [-f, f].")]
    [Range(0, double.MaxValue)]
    public double HeightShiftRange { get; init; }
    /// <summary>Shear angle drawn from [-s, s] degrees.</summary>
    [Description("shear_range: degrees (counter-clockwise), drawn from [-s, s].")]
    [Range(0, double.MaxValue)]
    public double ShearRange { get; init; }
    /// <summary>Zoom factors for x and y drawn separately from [1 - z, 1 + z].</summary>
    [Description("zoom_range: x and y zoom drawn separately from [1 - z, 1 + z].")]
    [Range(0, double.MaxValue)]
    public double ZoomRange { get; init; }
    /// <summary>Mirror left-right with probability 1/2.</summary>
    [Description("Mirror images left-right, each with probability 1/2.")]
    public bool HorizontalFlip { get; init; }
    /// <summary>Mirror top-bottom with probability 1/2.</summary>
    [Description("Mirror images top-bottom, each with probability 1/2.")]
    public bool VerticalFlip { get; init; }
    /// <summary>How pixels from outside the image are filled.</summary>
    [Description("What fills pixels from outside the image.")]
    public FillMode FillMode { get; init; } = FillMode.Nearest;
    /// <summary>The grey level for <see cref="FillMode.Constant"/>.</summary>
    [Description("The grey level of the constant fill mode.")]
    public byte FillValue { get; init; }
    /// <summary>[low, high] brightness factor, e.g. [0.8, 1.2]; null for none.</summary>
    [Description("brightness_range: a factor drawn from [low, high], e.g. 0.8 to 1.2.")]
    public double[]? BrightnessRange { get; init; }
    /// <summary>torchvision's RandomResizedCrop: a random window of <see cref="CropMinArea"/>-100% of the area, aspect 3/4 to 4/3.</summary>
    [Description("A random window of the image (aspect 3/4 to 4/3), resized to the input.")]
    public bool RandomResizedCrop { get; init; }
    /// <summary>The smallest share of the image's area a random-resized-crop window takes (torchvision's 0.08).</summary>
    [Description("The smallest share of the area a random-resized-crop window takes.")]
    [Range(0.01, 1)]
    public double CropMinArea { get; init; } = 0.08;

    /// <summary>No augmentation.</summary>
    public static readonly Augmentation None = new();

    /// <summary>The Keras blog's setting for the "very little data" experiments.</summary>
    public static readonly Augmentation KerasBlog = new()
    {
        RotationRange = 40, WidthShiftRange = 0.2, HeightShiftRange = 0.2, ShearRange = 0.2 * 180 / Math.PI, ZoomRange = 0.2,
        HorizontalFlip = true, FillMode = FillMode.Nearest,
    };

    /// <summary>A milder default for fine-tuning a pretrained trunk.</summary>
    public static readonly Augmentation Default = new()
    {
        RotationRange = 15, WidthShiftRange = 0.1, HeightShiftRange = 0.1, ZoomRange = 0.1, HorizontalFlip = true,
    };

    /// <summary>Whether it leaves every image as it is.</summary>
    public bool IsIdentity => !HasAffine && !HorizontalFlip && !VerticalFlip && BrightnessRange is null && !RandomResizedCrop;

    bool HasAffine => RotationRange > 0 || WidthShiftRange > 0 || HeightShiftRange > 0 || ShearRange > 0 || ZoomRange > 0;

    /// <summary>
    /// The random generator for one image in one epoch: a function of the seed, epoch and image index only,
    /// so augmentation is reproducible whatever order parallel workers take the images in.
    /// </summary>
    public static Random RandomFor(int seed, int epoch, int index)
    {
        // A fixed mix (HashCode.Combine is randomised per process, which would break resuming).
        ulong h = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL ^ (ulong)epoch * 0xC2B2AE3D27D4EB4FUL ^ (ulong)index * 0x165667B19E3779F9UL);
        h ^= h >> 31;
        return new Random((int)(h & 0x7fffffff));
    }

    /// <summary>Picks the window of the decoded image to use (random-resized-crop), or null for the loader's usual crop.</summary>
    public (int X, int Y, int W, int H)? CropWindow(int width, int height, Random rng)
    {
        if (!RandomResizedCrop) return null;
        double area = width * (double)height;
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double target = area * (CropMinArea + rng.NextDouble() * (1 - CropMinArea));
            double ratio = Math.Exp(Math.Log(3.0 / 4) + rng.NextDouble() * (Math.Log(4.0 / 3) - Math.Log(3.0 / 4)));
            int w = (int)Math.Round(Math.Sqrt(target * ratio)), h = (int)Math.Round(Math.Sqrt(target / ratio));
            if (w > 0 && h > 0 && w <= width && h <= height)
                return (rng.Next(width - w + 1), rng.Next(height - h + 1), w, h);
        }
        int side = Math.Min(width, height); // fall back to the centred square
        return ((width - side) / 2, (height - side) / 2, side, side);
    }

    /// <summary>Applies the random affine transform, flips and brightness to a size x size RGB image, in place.</summary>
    public void Apply(byte[] rgb, int size, Random rng)
    {
        if (HasAffine) Affine(rgb, size, rng);
        if (HorizontalFlip && rng.NextDouble() < 0.5) Flip(rgb, size, horizontal: true);
        if (VerticalFlip && rng.NextDouble() < 0.5) Flip(rgb, size, horizontal: false);
        if (BrightnessRange is { } b)
        {
            double factor = b[0] + rng.NextDouble() * (b[1] - b[0]);
            for (int i = 0; i < rgb.Length; i++) rgb[i] = (byte)Math.Clamp((int)(rgb[i] * factor + 0.5), 0, 255);
        }
    }

    void Affine(byte[] rgb, int size, Random rng)
    {
        double Uniform(double range) => (rng.NextDouble() * 2 - 1) * range;
        double theta = Uniform(RotationRange) * Math.PI / 180;
        double tx = Uniform(HeightShiftRange) * size, ty = Uniform(WidthShiftRange) * size;
        double shear = Uniform(ShearRange) * Math.PI / 180;
        double zx = ZoomRange > 0 ? 1 + Uniform(ZoomRange) : 1, zy = ZoomRange > 0 ? 1 + Uniform(ZoomRange) : 1;

        // Keras's apply_affine_transform: rotation · shift · shear · zoom, about the image centre, mapping an
        // output (row, col) to the input position it samples.
        var m = Mul(Mul(Mul(
            new[,] { { Math.Cos(theta), -Math.Sin(theta), 0 }, { Math.Sin(theta), Math.Cos(theta), 0 }, { 0, 0, 1 } },
            new[,] { { 1, 0, tx }, { 0, 1, ty }, { 0, 0, 1 } }),
            new[,] { { 1, -Math.Sin(shear), 0 }, { 0, Math.Cos(shear), 0 }, { 0, 0, 1 } }),
            new[,] { { zx, 0, 0 }, { 0, zy, 0 }, { 0, 0, 1 } });
        double c = size / 2.0 - 0.5;
        var src = (byte[])rgb.Clone();
        for (int row = 0; row < size; row++)
            for (int col = 0; col < size; col++)
            {
                double r = m[0, 0] * (row - c) + m[0, 1] * (col - c) + m[0, 2] + c;
                double q = m[1, 0] * (row - c) + m[1, 1] * (col - c) + m[1, 2] + c;
                Sample(src, size, r, q, rgb.AsSpan((row * size + col) * 3, 3));
            }
    }

    /// <summary>Bilinear sample at (r, q) with the fill mode deciding what lies outside the image.</summary>
    void Sample(byte[] src, int size, double r, double q, Span<byte> pixel)
    {
        int r0 = (int)Math.Floor(r), q0 = (int)Math.Floor(q);
        double fr = r - r0, fq = q - q0;
        Span<double> acc = stackalloc double[3];
        for (int dr = 0; dr <= 1; dr++)
            for (int dq = 0; dq <= 1; dq++)
            {
                double w = (dr == 0 ? 1 - fr : fr) * (dq == 0 ? 1 - fq : fq);
                if (w == 0) continue;
                int rr = Index(r0 + dr, size), qq = Index(q0 + dq, size);
                for (int ch = 0; ch < 3; ch++)
                    acc[ch] += w * (rr < 0 || qq < 0 ? FillValue : src[(rr * size + qq) * 3 + ch]);
            }
        for (int ch = 0; ch < 3; ch++) pixel[ch] = (byte)Math.Clamp((int)(acc[ch] + 0.5), 0, 255);
    }

    /// <summary>Maps a coordinate outside 0..size-1 back inside per the fill mode; -1 means "use the fill value".</summary>
    int Index(int i, int size)
    {
        if (i >= 0 && i < size) return i;
        return FillMode switch
        {
            FillMode.Nearest => Math.Clamp(i, 0, size - 1),
            FillMode.Wrap => ((i % size) + size) % size,
            FillMode.Reflect => Reflect(i, size),
            _ => -1,
        };
    }

    /// <summary>Mirror about the edges with the edge pixel repeated (scipy's "reflect", as Keras uses).</summary>
    static int Reflect(int i, int size)
    {
        int period = 2 * size;
        int k = ((i % period) + period) % period;
        return k < size ? k : period - 1 - k;
    }

    static void Flip(byte[] rgb, int size, bool horizontal)
    {
        for (int row = 0; row < (horizontal ? size : size / 2); row++)
            for (int col = 0; col < (horizontal ? size / 2 : size); col++)
            {
                int a = (row * size + col) * 3;
                int b = horizontal ? (row * size + size - 1 - col) * 3 : ((size - 1 - row) * size + col) * 3;
                for (int ch = 0; ch < 3; ch++) (rgb[a + ch], rgb[b + ch]) = (rgb[b + ch], rgb[a + ch]);
            }
    }

    static double[,] Mul(double[,] a, double[,] b)
    {
        var r = new double[3, 3];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                for (int k = 0; k < 3; k++) r[i, j] += a[i, k] * b[k, j];
        return r;
    }
}
