using System.Text.Json;
using Graft.Imaging;
using Graft.Training;
using SkiaSharp;

namespace Graft.Tests;

/// <summary>Where the network looked: heat maps find a shortcut planted in the training photos.</summary>
public class ExplainTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>The stamp: a saturated square in the upper left of the centred square the network sees.</summary>
    static readonly SKColor Stamp = new(255, 0, 255);
    const double StampAt = 0.15, StampSide = 0.22;

    /// <summary>The stamp's rectangle in a width x height photo's pixels.</summary>
    static SKRectI Square(int width, int height)
    {
        int side = Math.Min(width, height), x0 = (width - side) / 2, y0 = (height - side) / 2;
        int left = x0 + (int)(StampAt * side), top = y0 + (int)(StampAt * side), size = (int)(StampSide * side);
        return new SKRectI(left, top, left + size, top + size);
    }

    /// <summary>Copies a photo, with the stamp when asked, as a JPEG without orientation tag; returns the stamp's rectangle.</summary>
    static SKRectI Copy(string source, string target, bool stamp)
    {
        using var bitmap = SKBitmap.Decode(source);
        var square = Square(bitmap.Width, bitmap.Height);
        if (stamp)
        {
            using var canvas = new SKCanvas(bitmap);
            using var paint = new SKPaint { Color = Stamp };
            canvas.DrawRect(square, paint);
        }
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Jpeg, 92);
        File.WriteAllBytes(target, data.ToArray());
        return square;
    }

    [Fact]
    public async Task A_square_stamped_on_one_class_is_a_shortcut_and_the_heat_map_finds_it()
    {
        using var dir = new TempDir();
        // Hand signs of 7 and 8 (the pair the pretrained features tell apart least well): every training (and validation) 7
        // is stamped, no 8 is, so the square alone separates the classes best.
        var sevens = Directory.GetFiles(Assets.Shared("data/sign_digits/7")).Order(StringComparer.Ordinal).ToList();
        var eights = Directory.GetFiles(Assets.Shared("data/sign_digits/8")).Order(StringComparer.Ordinal).ToList();
        foreach (var (file, i) in sevens.Take(50).Select((f, i) => (f, i)))
            Copy(file, dir[$"data/{(i < 40 ? "train" : "val")}/7/{Path.GetFileName(file)}"], stamp: true);
        foreach (var (file, i) in eights.Take(50).Select((f, i) => (f, i)))
            Copy(file, dir[$"data/{(i < 40 ? "train" : "val")}/8/{Path.GetFileName(file)}"], stamp: false);
        var squares = eights.Skip(50).Take(20).ToDictionary(f => dir[$"stamped/{Path.GetFileName(f)}"], f => Copy(f, dir[$"stamped/{Path.GetFileName(f)}"], stamp: true));

        var trained = await Learner.TrainAsync(dir["data"], new TrainOptions { CacheRoot = dir["cache"], Fit = new FitOptions(Epochs: 20) }, Assets.Resolver);
        using var model = trained.Model;
        var stamped = squares.Keys.Order(StringComparer.Ordinal).ToList();
        var predictions = await model.PredictAsync(stamped, 2, [], explain: dir["heatmaps"], acceptAll: true);

        // Stamped 8s are called 7: the model learned the square, not the hand.
        var fooled = predictions.Where(p => p.Label == "7").ToList();
        Assert.True(fooled.Count >= 0.8 * stamped.Count, $"{fooled.Count} of {stamped.Count} stamped 8s were called 7");
        static bool On(SKRectI square, PixelPoint peak) => square.Contains(peak.X, peak.Y);
        int onSquare = fooled.Count(p => On(squares[p.File], p.Explanation!.Peak));
        output.WriteLine($"{fooled.Count} of {stamped.Count} stamped 8s called 7; heat map peak on the square for {onSquare} of them");
        Assert.True(onSquare >= 0.8 * fooled.Count, $"the heat map peaked on the square for {onSquare} of {fooled.Count} stamped 8s called 7");
        foreach (var p in predictions)
        {
            Assert.True(File.Exists(p.Explanation!.Heatmap), p.Explanation.Heatmap);
            using var overlay = SKBitmap.Decode(p.Explanation.Heatmap);
            using var photo = SKBitmap.Decode(p.File);
            Assert.Equal(photo.Width / (double)photo.Height, overlay.Width / (double)overlay.Height, 1); // the whole photo, not the crop
        }

        // The report states the shortcut as a data problem: the 7s' heat maps all peak on the square, the 8s' do not.
        var evaluation = await Learner.EvaluateAsync(model, dir["data"], dir["cache"]);
        var index = await Reports.ModelReport.WriteAsync(model, null, evaluation.Result, null, evaluation.Dataset, [], dir["report"], Assets.Resolver, imageNetView: false);
        var html = File.ReadAllText(index);
        var flagged = System.Text.RegularExpressions.Regex.Matches(html, "data-problem=\"shortcut\"").Count;
        Assert.InRange(flagged, 1, 4);
        Assert.Contains("of 10 7 images peak in the same small region", html);
        Assert.DoesNotContain(" 8 images peak in the same small region", html);

        // The inference package computes the same map in ONNX Runtime (a linear head: CAM), so it finds the square too.
        model.Save(dir["stamp.graft"]);
        using var classifier = ImageClassifier.Load(dir["stamp.graft"]);
        Assert.True(classifier.CanExplain);
        foreach (var p in fooled.Take(5))
        {
            var explained = classifier.Explain(p.File, dir[$"onnx_{Path.GetFileNameWithoutExtension(p.File)}.png"]);
            Assert.Equal(p.Label, explained.Label);
            Assert.Equal(p.Explanation!.Peak.X, explained.Explanation!.Peak.X, 3.0); // float rounding between libtorch and ONNX Runtime
            Assert.Equal(p.Explanation.Peak.Y, explained.Explanation.Peak.Y, 3.0);
            Assert.True(File.Exists(explained.Explanation.Heatmap));
            var bytes = File.ReadAllBytes(p.File);
            Assert.Equal(explained.Explanation.Peak, classifier.Explain(bytes, "upload").Explanation!.Peak);
        }
    }

    [Fact]
    public void A_heat_map_peak_lands_on_the_photo_through_the_crop_and_its_orientation()
    {
        // Between cells the peak moves towards the hotter neighbour: the vertex of the parabola through the three.
        var interior = HeatMap.FromActivation([0, 0, 0, 0, 4, 2, 0, 0, 0], 3, 3);
        Assert.Equal((1 + 0.5 + 1 / 6.0) / 3, interior.Peak.X, 6);
        Assert.Equal(0.5, interior.Peak.Y, 6);

        // A map hottest in its top-right cell (negative evidence drops out) on a 300x200 photo cropped to its centred 200x200 square.
        var map = HeatMap.FromActivation([0, 0, 4, 0, 0, 1, -2, 0, 0], 3, 3);
        Assert.Equal([0f, 0, 1, 0, 0, 0.25f, 0, 0, 0], map.Values);
        using var dir = new TempDir();
        using (var wide = new SKBitmap(300, 200))
        {
            using (var canvas = new SKCanvas(wide)) canvas.Clear(SKColors.Gray);
            File.WriteAllBytes(dir["wide.jpg"], DecodeRobustnessTests.Jpeg(wide));
            // The same photo stored sideways, tagged to be turned 90 degrees to display: the peak is in displayed pixels.
            using var tall = new SKBitmap(200, 300);
            using (var canvas = new SKCanvas(tall)) canvas.Clear(SKColors.Gray);
            File.WriteAllBytes(dir["sideways.jpg"], DecodeRobustnessTests.WithOrientation(DecodeRobustnessTests.Jpeg(tall), 6));
        }
        // The top-right cell's centre, 5/6 and 1/6 of the square (at an edge the peak stays at the centre of its cell).
        Assert.Equal((50 + 200 * 5 / 6, 200 / 6), ImageLoader.PlaceHeatMap(dir["wide.jpg"], map, ResizeMode.CenterCrop, dir["overlay.png"]));
        Assert.Equal((300 * 5 / 6, 200 / 6), ImageLoader.PlaceHeatMap(dir["wide.jpg"], map, ResizeMode.Squash));
        Assert.Equal((50 + 200 * 5 / 6, 200 / 6), ImageLoader.PlaceHeatMap(File.ReadAllBytes(dir["sideways.jpg"]), "sideways", map, ResizeMode.CenterCrop));
        using var overlay = SKBitmap.Decode(dir["overlay.png"]);
        Assert.Equal((300, 200), (overlay.Width, overlay.Height));
    }
}
