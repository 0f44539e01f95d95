using System.Diagnostics;
using Graft.Imaging;
using SkiaSharp;
using Spectre.Console;

namespace Graft.Bench;

/// <summary>
/// Multi-label classification, measured (option <see cref="BenchOptions.MultiLabel"/>): 2x2 mosaics of the shared photos
/// (hymenoptera's ants and bees, cats_vs_dogs' cats and dogs; a quarter of the tiles blank), each labelled with the classes
/// it shows, in a label file with a split column (every photo in one split only); a model trained from that file by
/// feature extraction, its thresholds chosen on the validation mosaics; its mAP and each label's AP, threshold, precision,
/// recall and F1 on the test mosaics.
/// </summary>
static class MultiLabelBench
{
    public const string LabelFile = "labels.csv";
    const int Tile = 112, Seed = 42;
    static readonly (string Split, int Count)[] Splits = [("train", 160), ("val", 60), ("test", 60)];
    static readonly (string Label, string Data, string Class)[] Sources =
        [("ants", "hymenoptera", "ants"), ("bees", "hymenoptera", "bees"), ("cats", "cats_vs_dogs", "cats"), ("dogs", "cats_vs_dogs", "dogs")];

    public static async Task RunAsync(BenchOptions options, BenchHost host, CancellationToken cancel)
    {
        var machine = Machine.Here();
        host.Log(machine.StartLine);
        using var scratch = new TempFolder();
        var root = options.Mosaics ?? Path.Combine(scratch.Path, "mosaics");
        var clock = Stopwatch.StartNew();
        int written = Write(root, host, Seed);
        host.Log($"{written} mosaics and {LabelFile} written to {root} in {clock.Elapsed.TotalSeconds:0.0}s; training from the label file...");
        clock.Restart();
        var result = await Learner.TrainAsync(root, new TrainOptions
        {
            LabelsFile = Path.Combine(root, LabelFile), Resize = ResizeMode.Squash, CacheRoot = host.Assets.CacheRoot,
        }, host.Assets, host.Progress, cancel);
        double seconds = clock.Elapsed.TotalSeconds;
        var test = result.MultiLabelTest ?? throw new InvalidOperationException("The mosaics' label file has test rows.");
        host.Out.WriteLine($"{machine.Summary(Machine.LoadAverage())}; {result.Model.Config.Backbone}, feature extraction, {seconds:0.0}s to train");
        host.Out.MarkupLine(FormattableString.Invariant(
            $"test mosaics: mAP [bold]{test.MeanAveragePrecision:0.000}[/] (micro {test.MicroAveragePrecision:0.000}), micro-F1 {test.MicroF1:0.000}, macro-F1 {test.MacroF1:0.000}, ") +
            FormattableString.Invariant($"exact match {test.SubsetAccuracy:0.000}, Hamming loss {test.HammingLoss:0.000} on {test.Images} images"));
        var table = new Table().AddColumns("label", "test images", "AP", "threshold", "precision", "recall", "F1");
        foreach (var l in test.PerLabel)
            table.AddRow(l.Label, l.Support.ToString(), FormattableString.Invariant($"{l.AveragePrecision:0.000}"), FormattableString.Invariant($"{l.Threshold:0.000}"),
                FormattableString.Invariant($"{l.Precision:0.000}"), FormattableString.Invariant($"{l.Recall:0.000}"), FormattableString.Invariant($"{l.F1:0.000}"));
        host.Out.Write(table);
        host.WriteJson?.Invoke(new
        {
            cpu = machine.Cpu, cores = machine.Cores, backbone = result.Model.Config.Backbone, mosaics = written, train_seconds = seconds,
            map = test.MeanAveragePrecision, micro_map = test.MicroAveragePrecision, micro_f1 = test.MicroF1, macro_f1 = test.MacroF1,
            subset_accuracy = test.SubsetAccuracy, hamming_loss = test.HammingLoss, images = test.Images,
            per_label = test.PerLabel.Select(l => new { label = l.Label, support = l.Support, average_precision = l.AveragePrecision, threshold = l.Threshold, precision = l.Precision, recall = l.Recall, f1 = l.F1 }).ToList(),
        });
    }

    /// <summary>
    /// Writes the mosaics and their label file (columns file, labels, split) under <paramref name="root"/>: the number of
    /// mosaics. Each class's photos are dealt to the splits in their proportions, so no photo appears in two splits.
    /// </summary>
    public static int Write(string root, BenchHost host, int seed)
    {
        Directory.CreateDirectory(root);
        var rng = new Random(seed);
        int total = Splits.Sum(s => s.Count);
        var photos = Sources.Select(s => Directory.EnumerateFiles(host.Mirrored("data", s.Data, "The multi-label bench"), "*", SearchOption.AllDirectories)
            .Where(f => ImageLoader.IsImageFile(f) && Path.GetFileName(Path.GetDirectoryName(f)) == s.Class).Order(StringComparer.Ordinal)
            .OrderBy(_ => rng.Next()).ToList()).ToList();
        var rows = new List<string> { "file,labels,split" };
        var dealt = photos.Select(_ => 0).ToArray();
        foreach (var (split, count) in Splits)
        {
            // This split's share of each class's photos, used in turn.
            var mine = photos.Select((p, c) =>
            {
                int take = p.Count * count / total, from = dealt[c];
                dealt[c] += take;
                return p.Skip(from).Take(take).ToList();
            }).ToList();
            var next = new int[Sources.Length];
            for (int i = 0; i < count; i++)
            {
                var tiles = Enumerable.Range(0, 4).Select(_ => rng.Next(4) == 0 ? -1 : rng.Next(Sources.Length)).ToArray();
                if (tiles.All(t => t < 0)) tiles[rng.Next(4)] = rng.Next(Sources.Length);
                var file = $"{split}/{split}_{i:D3}.jpg";
                Directory.CreateDirectory(Path.Combine(root, split));
                Compose(Path.Combine(root, file), tiles.Select(t => t < 0 ? null : mine[t][next[t]++ % mine[t].Count]).ToArray());
                rows.Add($"{file},{string.Join(';', tiles.Where(t => t >= 0).Distinct().Order().Select(t => Sources[t].Label))},{split}");
            }
        }
        File.WriteAllLines(Path.Combine(root, LabelFile), rows);
        return total;
    }

    /// <summary>A 2x2 mosaic of the photos (squashed to a tile each; null: a blank grey tile), as a JPEG.</summary>
    static void Compose(string path, string?[] tiles)
    {
        using var bitmap = new SKBitmap(2 * Tile, 2 * Tile);
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(new SKColor(128, 128, 128));
            for (int t = 0; t < tiles.Length; t++)
            {
                if (tiles[t] is not { } photo) continue;
                using var tile = ImageLoader.RgbBitmap(ImageLoader.LoadRgb(photo, Tile, ResizeMode.Squash), Tile);
                canvas.DrawBitmap(tile, t % 2 * Tile, t / 2 * Tile);
            }
        }
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Jpeg, 90);
        File.WriteAllBytes(path, data.ToArray());
    }
}
