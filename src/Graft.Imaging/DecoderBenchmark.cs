using System.Diagnostics;

namespace Graft.Imaging;

/// <summary>
/// Decoders measured side by side, as the batch pipeline uses them: decode + resize of every file on all cores, the
/// median of several rounds; the process's peak resident memory; and how far apart two decoders' pixels are. The
/// bench runs <see cref="Measure"/> once per decoder, each in a process of its own (peak memory is the process's).
/// </summary>
public static class DecoderBenchmark
{
    /// <summary>One decoder's speed on a set of files.</summary>
    /// <param name="Decoder">The decoder's name.</param>
    /// <param name="ImagesPerSecond">The median over the rounds of files decoded and resized per second.</param>
    /// <param name="PeakResidentBytes">The process's peak resident memory after the rounds (VmHWM; 0 where the system does not say).</param>
    public sealed record Speed(string Decoder, double ImagesPerSecond, long PeakResidentBytes);

    /// <summary>Decodes and resizes <paramref name="files"/> to <paramref name="size"/> with <paramref name="decoder"/>: one warm-up round, then <paramref name="rounds"/> timed.</summary>
    public static Speed Measure(IReadOnlyList<string> files, IImageDecoder decoder, int size, ResizeMode resize, int rounds = 5)
    {
        using var _ = ImageLoader.Using(decoder);
        var rates = new List<double>();
        for (int round = 0; round <= rounds; round++)
        {
            var clock = Stopwatch.StartNew();
            Parallel.ForEach(files, f => ImageLoader.LoadRgb(f, size, resize));
            if (round > 0) rates.Add(files.Count / clock.Elapsed.TotalSeconds);
        }
        rates.Sort();
        return new Speed(decoder.Name, rates[rates.Count / 2], PeakResident());
    }

    /// <summary>The mean and largest absolute difference, in grey levels, between two decoders' network inputs over the files.</summary>
    public static (double Mean, int Max) Difference(IReadOnlyList<string> files, IImageDecoder a, IImageDecoder b, int size, ResizeMode resize)
    {
        long sum = 0, count = 0;
        int max = 0;
        foreach (var file in files)
        {
            byte[] x, y;
            using (ImageLoader.Using(a)) x = ImageLoader.LoadRgb(file, size, resize);
            using (ImageLoader.Using(b)) y = ImageLoader.LoadRgb(file, size, resize);
            for (int i = 0; i < x.Length; i++)
            {
                int d = Math.Abs(x[i] - y[i]);
                sum += d;
                max = Math.Max(max, d);
            }
            count += x.Length;
        }
        return (sum / (double)Math.Max(1, count), max);
    }

    static long PeakResident()
    {
        try
        {
            var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0]) * 1024;
        }
        catch (IOException) { return 0; }
    }
}
