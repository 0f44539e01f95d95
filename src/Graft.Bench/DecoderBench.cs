using System.Diagnostics;
using Graft.Engine;
using Graft.Imaging;
using Spectre.Console;

namespace Graft.Bench;

/// <summary>One decoder's speed on a set of files, measured in a child process (<see cref="DecoderRequest"/>).</summary>
/// <param name="ImagesPerSecond">The median over the rounds of files decoded and resized per second.</param>
/// <param name="PeakRssMb">The child's peak resident memory after the rounds.</param>
sealed record DecoderSpeed(string Decoder, int Files, double ImagesPerSecond, double PeakRssMb);

/// <summary>How far apart two decoders' network inputs are over a set of files, in grey levels.</summary>
sealed record PixelDifference(string Decoders, double Mean, int Max);

/// <summary>One decoder on one set: the medians of its processes, and each process's measurement.</summary>
sealed record DecoderResult(string Decoder, double ImagesPerSecond, double PeakRssMb, IReadOnlyList<DecoderSpeed> Runs);

/// <summary>Every decoder on one set of files, and how far apart their pixels are.</summary>
sealed record DecoderSetResult(string Set, string Description, int Files, IReadOnlyList<DecoderResult> Decoders, PixelDifference Pixels);

/// <summary>
/// The decoders side by side (option <see cref="BenchOptions.Decoders"/>), as the batch pipeline uses them: decode +
/// centre crop to 224 of every file on all cores, behind the same planning (a 12 MP photo decodes at 1/8). Each decoder
/// is measured in child processes of its own (peak memory is the process's), run alternately so that the machine's load
/// falls on both alike; images/s is the median of the processes, each the median of its rounds after a warm-up. The
/// pixels are compared here: the mean and largest difference between the decoders' network inputs.
/// </summary>
static class DecoderBench
{
    const int Size = 224, Processes = 3, Rounds = 3;
    const ResizeMode Resize = ResizeMode.CenterCrop;

    /// <summary>How many of cats_vs_dogs' training JPEGs (the first, in name order) join hymenoptera's in the small set.</summary>
    const int CatsVsDogsImages = 500;

    public static Task RunAsync(BenchOptions options, BenchHost host, CancellationToken cancel)
    {
        var machine = Machine.Here();
        host.Log(machine.StartLine);
        if (machine.BusyWarning is { } warning) host.Log(warning);
        var sets = new List<(string Name, string Description, IReadOnlyList<string> Files)>
        {
            // Class a's 64 photos, the phone-photo rows' decoding sample.
            (BenchOptions.PhoneDataset, $"{PhonePhotos.Width}x{PhonePhotos.Height} JPEGs, class a",
                PhonePhotoBench.Photos(host).Files.Take(64).ToList()),
            ("small_jpegs", $"hymenoptera/train and the first {CatsVsDogsImages} of cats_vs_dogs/train", SmallJpegs(host)),
        };
        var results = new List<DecoderSetResult>();
        foreach (var (name, description, files) in sets)
        {
            cancel.ThrowIfCancellationRequested();
            results.Add(Measure(host, name, description, files, cancel));
        }

        string loadAtEnd = Machine.LoadAverage();
        host.Out.WriteLine(machine.Summary(loadAtEnd));
        host.Out.Write(Table(results, host.Escape));
        host.WriteJson?.Invoke(new
        {
            cpu = machine.Cpu, cores = machine.Cores, allocator = machine.Allocator, load_average_start = machine.LoadAtStart,
            load_average_end = loadAtEnd, size = Size, resize = Resize, processes = Processes, rounds = Rounds, sets = results,
        });
        return Task.CompletedTask;
    }

    static DecoderSetResult Measure(BenchHost host, string name, string description, IReadOnlyList<string> files, CancellationToken cancel)
    {
        using var folder = new TempFolder();
        var list = Path.Combine(folder.Path, "files.txt");
        File.WriteAllLines(list, files);
        var runs = ImageDecoders.All.ToDictionary(d => d.Name, _ => new List<DecoderSpeed>());
        for (int process = 1; process <= Processes; process++)
            foreach (var decoder in ImageDecoders.All)
            {
                cancel.ThrowIfCancellationRequested();
                var (speed, error) = ChildRuns.Measure<DecoderSpeed>(host, new DecoderRequest(decoder.Name, list).Arguments);
                if (speed is null)
                    throw new GraftException($"Measuring the {decoder.Name} decoder on {name} failed: {error}", "Run it alone to see the problem.");
                runs[decoder.Name].Add(speed);
                host.Log($"{name}: {decoder.Name} ({process}/{Processes}) {speed.ImagesPerSecond:0.0} images/s, peak RSS {speed.PeakRssMb:0} MB");
            }
        var decoders = runs.Select(r => new DecoderResult(r.Key, Median(r.Value.Select(s => s.ImagesPerSecond)), Median(r.Value.Select(s => s.PeakRssMb)), r.Value)).ToList();
        host.Log($"{name}: comparing the decoders' pixels...");
        return new DecoderSetResult(name, description, files.Count, decoders, Difference(files, ImageDecoders.All[0], ImageDecoders.All[1]));
    }

    /// <summary>In the child: the request's decoder on its files, a warm-up round, then the timed rounds.</summary>
    public static DecoderSpeed MeasureInChild(DecoderRequest request)
    {
        if (!File.Exists(request.FileList))
            throw new GraftException($"The decoder measurement's file list {request.FileList} does not exist.", $"Pass a text file of image paths to {DecoderRequest.FilesFlag}.");
        var files = File.ReadAllLines(request.FileList).Where(l => l.Length > 0).ToList();
        var decoder = ImageDecoders.Named(request.Decoder);
        using var _ = ImageLoader.Using(decoder);
        var rates = new List<double>();
        for (int round = 0; round <= Rounds; round++)
        {
            var clock = Stopwatch.StartNew();
            Parallel.ForEach(files, f => ImageLoader.LoadRgb(f, Size, Resize));
            if (round > 0) rates.Add(files.Count / clock.Elapsed.TotalSeconds);
        }
        return new DecoderSpeed(decoder.Name, files.Count, Median(rates), ProcessStats.PeakRssMb());
    }

    /// <summary>The mean and largest absolute difference, in grey levels, between <paramref name="a"/>'s and <paramref name="b"/>'s network inputs over the files.</summary>
    internal static PixelDifference Difference(IReadOnlyList<string> files, IImageDecoder a, IImageDecoder b)
    {
        long sum = 0, count = 0;
        int max = 0;
        foreach (var file in files)
        {
            byte[] x, y;
            using (ImageLoader.Using(a)) x = ImageLoader.LoadRgb(file, Size, Resize);
            using (ImageLoader.Using(b)) y = ImageLoader.LoadRgb(file, Size, Resize);
            for (int i = 0; i < x.Length; i++)
            {
                int d = Math.Abs(x[i] - y[i]);
                sum += d;
                max = Math.Max(max, d);
            }
            count += x.Length;
        }
        return new PixelDifference($"{a.Name} vs {b.Name}", sum / (double)Math.Max(1, count), max);
    }

    static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }

    /// <summary>hymenoptera's training JPEGs and the first <see cref="CatsVsDogsImages"/> of cats_vs_dogs' (in name order), from the shared data.</summary>
    static List<string> SmallJpegs(BenchHost host)
    {
        IEnumerable<string> Jpegs(string dataset) =>
            host.Assets.SearchRoots.Select(r => Path.Combine(r, "data", dataset, "train")).FirstOrDefault(Directory.Exists) is { } folder
                ? Directory.EnumerateFiles(folder, "*.jpg", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
                : throw new GraftException($"The decoder benchmark needs the shared {dataset} photos (data/{dataset}/train in the asset mirror), and none was found.",
                    "Put the shared/ mirror beside the checkout or set GRAFT_ASSETS to it.");
        return [.. Jpegs("hymenoptera"), .. Jpegs("cats_vs_dogs").Take(CatsVsDogsImages)];
    }

    static Table Table(IReadOnlyList<DecoderSetResult> results, Func<string, string> escape)
    {
        var names = ImageDecoders.All.Select(d => d.Name).ToList();
        var table = new Table().Border(TableBorder.Rounded)
            .Title(escape($"decode + centre crop to {Size} on all cores: images/s the median of {Processes} processes per decoder (each the median of {Rounds} rounds), peak RSS their median"))
            .AddColumns(["set", "files", .. names.Select(n => $"{n} images/s"), $"{names[0]} / {names[1]}", .. names.Select(n => $"{n} peak RSS MB"),
                $"pixels, {names[0]} vs {names[1]}"]);
        foreach (var r in results)
        {
            var rate = r.Decoders.ToDictionary(d => d.Decoder);
            table.AddRow([escape($"{r.Set} ({r.Description})"), $"{r.Files}", .. names.Select(n => $"{rate[n].ImagesPerSecond:0.0}"),
                $"{rate[names[0]].ImagesPerSecond / rate[names[1]].ImagesPerSecond:0.00}x", .. names.Select(n => $"{rate[n].PeakRssMb:0}"),
                $"mean {r.Pixels.Mean:0.000}, max {r.Pixels.Max} grey levels"]);
        }
        return table;
    }
}
