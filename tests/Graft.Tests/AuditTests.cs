using System.Text.Json;
using Graft.Audit;
using Graft.Data;
using Graft.Imaging;
using Xunit.Abstractions;

namespace Graft.Tests;

/// <summary>
/// A subsample of cats_vs_dogs (symbolic links into ../shared) with planted faults: 5% of the training images moved
/// to the wrong class, and byte copies within a class, across classes and from validation into training. Audited once.
/// </summary>
public sealed class PlantedCatsDogs : IAsyncLifetime
{
    public const int TrainPerClass = 300, ValidationPerClass = 100;
    readonly TempDir _dir = new();
    public string Root => _dir["data"];
    public string Cache => _dir["cache"];
    public HashSet<string> Flipped { get; } = [];
    public string WithinClassCopy { get; private set; } = "";
    public string AcrossClassCopy { get; private set; } = "";
    public string LeakedCopy { get; private set; } = "";
    public (string Copy, string Original)[] Copies { get; private set; } = [];
    internal AuditResult Audit { get; private set; } = null!;
    public double Seconds { get; private set; }

    public async Task InitializeAsync()
    {
        var source = Assets.Shared("data/cats_vs_dogs");
        string[] classes = ["cats", "dogs"];
        var rng = new Random(7);
        var train = classes.ToDictionary(c => c, c => Directory.GetFiles(Path.Combine(source, "train", c)).Order(StringComparer.Ordinal).Take(TrainPerClass).ToList());
        var validation = classes.ToDictionary(c => c, c => Directory.GetFiles(Path.Combine(source, "validation", c)).Order(StringComparer.Ordinal).Take(ValidationPerClass).ToList());
        foreach (var c in classes)
        {
            Directory.CreateDirectory(Path.Combine(Root, "train", c));
            Directory.CreateDirectory(Path.Combine(Root, "validation", c));
            foreach (var f in validation[c]) File.CreateSymbolicLink(Path.Combine(Root, "validation", c, Path.GetFileName(f)), f);
        }
        // The first images of each class stay put and are the sources of the planted copies.
        var all = classes.SelectMany(c => train[c].Skip(2).Select(f => (File: f, Class: c))).ToArray();
        rng.Shuffle(all);
        var flip = all.Take((int)Math.Round(0.05 * 2 * TrainPerClass)).ToHashSet();
        foreach (var c in classes)
            foreach (var f in train[c])
            {
                var placed = flip.Contains((f, c)) ? classes.Single(o => o != c) : c;
                var link = Path.Combine(Root, "train", placed, Path.GetFileName(f));
                File.CreateSymbolicLink(link, f);
                if (placed != c) Flipped.Add(link);
            }
        WithinClassCopy = Copy(train["cats"][0], "train/cats/copy_of_cat.jpg");
        AcrossClassCopy = Copy(train["dogs"][0], "train/cats/copy_of_dog.jpg");
        LeakedCopy = Copy(validation["dogs"][0], "train/dogs/copy_of_validation_dog.jpg");
        Copies =
        [
            (WithinClassCopy, Path.Combine(Root, "train/cats", Path.GetFileName(train["cats"][0]))),
            (AcrossClassCopy, Path.Combine(Root, "train/dogs", Path.GetFileName(train["dogs"][0]))),
            (LeakedCopy, Path.Combine(Root, "validation/dogs", Path.GetFileName(validation["dogs"][0]))),
        ];
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Audit = await DataAudit.RunAsync(Root, new AuditOptions { CacheRoot = Cache }, Assets.Resolver);
        Seconds = clock.Elapsed.TotalSeconds;
    }

    string Copy(string from, string to)
    {
        var path = Path.Combine(Root, to);
        File.Copy(from, path);
        return path;
    }

    public Task DisposeAsync()
    {
        _dir.Dispose();
        return Task.CompletedTask;
    }
}

public class AuditTests(PlantedCatsDogs planted, ITestOutputHelper output) : IClassFixture<PlantedCatsDogs>
{
    [Fact]
    public void FindsPlantedLabelFlips()
    {
        var reported = planted.Audit.LabelIssues.Select(i => i.File).ToHashSet();
        int found = planted.Flipped.Count(reported.Contains);
        double recall = (double)found / planted.Flipped.Count, precision = reported.Count == 0 ? 0 : (double)found / reported.Count;
        output.WriteLine($"{planted.Flipped.Count} flips planted, {reported.Count} label issues reported: recall {recall:0.000}, precision {precision:0.000} ({planted.Seconds:0.0} s)");
        Assert.True(recall >= 0.8, $"recall {recall:0.000}");
        Assert.True(precision >= 0.5, $"precision {precision:0.000}");
        // A flipped image is suggested its true class, and the actions CSV says so.
        var issue = planted.Audit.LabelIssues.First(i => planted.Flipped.Contains(i.File));
        Assert.NotEqual(Path.GetFileName(Path.GetDirectoryName(issue.File)), issue.Suggested);
        Assert.Contains(planted.Audit.Actions, a => a.File == Path.GetFullPath(issue.File) && a.Action == AuditActions.Relabel && a.Label == issue.Suggested);
    }

    [Fact]
    public void FindsPlantedCopiesAndLeakage()
    {
        var pairs = planted.Audit.Duplicates.Concat(planted.Audit.Leakage).Where(p => p.Match == "exact").ToList();
        foreach (var (copy, original) in planted.Copies)
            Assert.Contains(pairs, p => new[] { p.File, p.Other }.Order().SequenceEqual(new[] { copy, original }.Order()));

        var across = planted.Audit.Duplicates.Single(p => p.File == planted.AcrossClassCopy || p.Other == planted.AcrossClassCopy);
        Assert.True(across.ConflictingLabels);
        var leak = Assert.Single(planted.Audit.Leakage, p => p.Other == planted.LeakedCopy);
        Assert.Equal((ImageRole.Validation, ImageRole.Train), (leak.Role, leak.OtherRole));
        var share = Assert.Single(planted.Audit.Leaked);
        Assert.Equal(ImageRole.Validation, share.Role);
        Assert.Equal(2 * PlantedCatsDogs.ValidationPerClass, share.Images);
        Assert.True(share.Leaked >= 1);
        Assert.Equal((double)share.Leaked / share.Images, share.Share);
        // The training copy goes, so validation keeps its image.
        Assert.Contains(planted.Audit.Actions, a => a.File == Path.GetFullPath(planted.LeakedCopy) && a.Action == AuditActions.Deduplicate);
    }

    [Fact]
    public void MeasuresClassesImagesAndLearningCurve()
    {
        var audit = planted.Audit;
        Assert.Equal(2 * PlantedCatsDogs.TrainPerClass + 3, audit.Classes.Sum(c => c.Train));
        Assert.Equal(2 * PlantedCatsDogs.ValidationPerClass, audit.Classes.Sum(c => c.Validation));
        Assert.Equal(audit.Classes.Sum(c => c.Total), audit.Images.Images);
        Assert.True(audit.Images.MedianWidth > 0 && audit.Images.Formats.ContainsKey("jpeg"));
        var curve = audit.LearningCurve!;
        Assert.Equal(LearningCurve.Fractions.Length, curve.Points.Count);
        Assert.True(curve.Points.Zip(curve.Points.Skip(1)).All(p => p.First.TrainImages < p.Second.TrainImages));
        foreach (var p in curve.Points)
        {
            Assert.InRange(p.Overall.Value, p.Overall.Low, p.Overall.High);
            Assert.Equal(2 * PlantedCatsDogs.ValidationPerClass, p.Overall.Images);
            Assert.Equal(["cats", "dogs"], p.PerClass.Keys.Order());
        }
        Assert.True(curve.Points[^1].Overall.Value > 0.9, $"accuracy {curve.Points[^1].Overall.Value}");
        Assert.Contains("training images changed accuracy by", curve.Verdict);
    }

    [Fact]
    public void HymenopteraAuditPutsThePlaceholderFirst()
    {
        using var dir = new TempDir();
        var data = Assets.Shared("data/hymenoptera");
        var r = GraftCli.Run(null, "audit", data, "--json", "--cache", planted.Cache, "--report", dir["report"], "--actions", dir["actions.csv"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(r.Stdout.Trim(), r.LastLine); // with --json, standard output is the JSON object alone
        using var json = JsonDocument.Parse(r.LastLine);
        var root = json.RootElement;
        foreach (var key in new[] { "label_issues", "duplicates", "leakage", "outliers", "unusable", "classes", "learning_curve" })
            Assert.True(root.TryGetProperty(key, out _), key);
        var first = root.GetProperty("outliers").EnumerateArray().Take(3).Concat(root.GetProperty("label_issues").EnumerateArray().Take(5))
            .Select(f => Path.GetFileName(f.GetProperty("file").GetString())).ToList();
        output.WriteLine(string.Join(", ", first));
        Assert.Contains("imageNotFound.gif", first);

        Assert.True(File.Exists(dir["report/index.html"]) && File.Exists(dir["report/findings.csv"]));
        Assert.Contains("imageNotFound.gif", File.ReadAllText(dir["report/index.html"]));
        var actions = AuditActions.Read(dir["actions.csv"]);
        Assert.Equal(root.GetProperty("actions").GetArrayLength(), actions.Count);
        Assert.Contains(actions, a => a.File.EndsWith("imageNotFound.gif") && a.Action == AuditActions.Remove);
    }

    [Fact]
    public void ActionsRoundTripAndBadLinesAreNamed()
    {
        using var dir = new TempDir();
        AuditAction[] actions =
        [
            new("photos/cats/a, b.jpg", AuditActions.Relabel, "dogs", "labelled \"cats\", but\nthe others say dogs"),
            new("photos/dogs/c.jpg", AuditActions.Deduplicate, null, "identical to d.jpg"),
            new("photos/dogs/e.jpg", AuditActions.Remove, null, " far from every class"),
        ];
        AuditActions.Write(dir["a.csv"], actions);
        Assert.Equal(actions, AuditActions.Read(dir["a.csv"]));

        File.WriteAllText(dir["bad.csv"], "file,action,label,reason\nx.jpg,remove,,why\n\"y.jpg\",rename,,why\n");
        var e = Assert.Throws<GraftException>(() => AuditActions.Read(dir["bad.csv"]));
        Assert.Contains($"{dir["bad.csv"]}, line 3", e.Message);
        Assert.Contains("rename", e.Message);
        File.WriteAllText(dir["relabel.csv"], "file,action,label,reason\nx.jpg,relabel,,why\n");
        Assert.Contains("line 2", Assert.Throws<GraftException>(() => AuditActions.Read(dir["relabel.csv"])).Message);
        File.WriteAllText(dir["header.csv"], "path,what\nx.jpg,remove\n");
        Assert.Contains("line 1", Assert.Throws<GraftException>(() => AuditActions.Read(dir["header.csv"])).Message);
    }

    [Fact]
    public void A_label_is_called_wrong_only_where_the_probes_and_the_nearest_images_agree()
    {
        string[] classes = ["a", "b", "c"];
        // Twelve photos each of a and b (rows 0-11, 12-23), three of c (24-26), and three photos labelled a that the
        // probes put in b: "flipped" lies among b's photos, "hard" among a's, "unsure" only halfway to b.
        var labels = Enumerable.Repeat(0, 12).Concat(Enumerable.Repeat(1, 12)).Concat(Enumerable.Repeat(2, 3)).Concat([0, 0, 0]).ToArray();
        int flipped = 27, hard = 28, unsure = 29;
        var p = labels.Select(l => l == 0 ? new[] { 0.9f, 0.05f, 0.05f } : l == 1 ? [0.1f, 0.85f, 0.05f] : new[] { 0.6f, 0.1f, 0.3f }).ToArray();
        p[flipped] = [0.05f, 0.9f, 0.05f];
        p[hard] = [0.05f, 0.9f, 0.05f];
        p[unsure] = [0.4f, 0.55f, 0.05f];
        int[] A = [.. Enumerable.Range(0, 10)], B = [.. Enumerable.Range(12, 10)];
        var index = labels.Select((l, i) => l == 1 ? B : A).ToArray();
        index[flipped] = B;
        index[unsure] = [.. B.Take(8), 0, 1];
        var near = new Neighbours(index, index.Select(n => n.Select(_ => 0.5f).ToArray()).ToArray());
        var scores = new OutOfFoldScores(p, p.Select(r => r.Select(v => v * 0.9f + 0.1f / 3).ToArray()).ToArray());
        var files = labels.Select((_, i) => i == flipped ? "flipped" : i == hard ? "hard" : i == unsure ? "unsure" : $"photo{i}").ToArray();

        var check = LabelIssues.Find(files, labels, scores, classes, near);

        // "hard": the probes say b, but its nearest photos are a's. "unsure": b (0.55) is below b's threshold (0.85).
        // Class c, with three photos, is not judged: its photos look like a's to the probes and their neighbours alike.
        var issue = Assert.Single(check.Issues);
        Assert.Equal(("flipped", "a", "b", 10, 10), (issue.File, issue.Given, issue.Suggested, issue.Agreeing, issue.Nearest));
        Assert.Equal(0.9 * 0.9 + 0.1 / 3, issue.Confidence, 5); // the calibrated probability is what a reader sees
        Assert.Equal(["c"], check.Unjudged);
    }

    [Fact]
    public void HeadersGiveSizesAndGrayscale()
    {
        using var dir = new TempDir();
        TinyImages.WriteImage(dir["colour.png"], SkiaSharp.SKColors.Red, 300, new Random(1));
        using (var gray = new SkiaSharp.SKBitmap(new SkiaSharp.SKImageInfo(100, 50, SkiaSharp.SKColorType.Gray8)))
        {
            gray.Erase(SkiaSharp.SKColors.Gray);
            using var data = gray.Encode(SkiaSharp.SKEncodedImageFormat.Jpeg, 90);
            File.WriteAllBytes(dir["gray.jpg"], data.ToArray());
        }
        var stats = ImageHeaders.Measure([dir["colour.png"], dir["gray.jpg"], dir["missing.jpg"]], inputSize: 224);
        Assert.Equal(2, stats.Images);
        Assert.Equal([dir["gray.jpg"]], stats.GrayscaleFiles);
        Assert.Equal([dir["gray.jpg"]], stats.SmallFiles);
        Assert.Equal((100, 50, 300, 308), (stats.MinWidth, stats.MinHeight, stats.MaxWidth, stats.MaxHeight));
        Assert.Equal(new Dictionary<string, int> { ["jpeg"] = 1, ["png"] = 1 }, stats.Formats);
        Assert.Equal(new Dictionary<string, int> { ["square (4:5 to 5:4)"] = 1, ["landscape"] = 1 }, stats.AspectRatios);
        Assert.Equal(new Dictionary<string, int> { ["1 upright"] = 2 }, stats.ExifOrientations);
    }
}

/// <summary>What training does with the audit: honours its actions CSV, and says when quick checks find something.</summary>
public class AuditInTrainingTests
{
    /// <summary>audit --test-split holds out the very images train --test-split does: the roles agree.</summary>
    [Fact]
    public void Audit_test_split_gives_the_test_images_train_holds_out()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 10, size: 16);
        var run = GraftCli.Run(null, "audit", dir["data"], "--test-split", "0.2", "--cache", dir["cache"], "--json");
        Assert.True(run.ExitCode == 0, run.Stderr);
        var classes = JsonDocument.Parse(run.LastLine).RootElement.GetProperty("classes").EnumerateArray().ToList();
        var trained = ImageFolder.OpenForTraining(dir["data"], 0.2, 42, testSplit: 0.2);
        Assert.Equal(trained.Test.Count, classes.Sum(c => c.GetProperty("test").GetInt32()));
        Assert.Equal(trained.Train.Count, classes.Sum(c => c.GetProperty("train").GetInt32()));
        Assert.True(trained.Test.Count > 0);
    }

    [Fact]
    public void Exclude_applies_removals_and_relabellings_to_training_and_validation_only()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data/train"], perClass: 6, size: 16);
        TinyImages.WriteClassFolders(dir["data/test"], perClass: 2, size: 16, seed: 5);
        var dataset = ImageFolder.OpenForTraining(dir["data"], 0.2, seed: 1);
        var removed = dataset.Train[0].Path;
        var relabelled = dataset.Train.First(i => i.Label == 0 && i.Path != removed);
        var test = dataset.Test[0].Path;
        var csv = dir["actions.csv"];
        AuditActions.Write(csv, [
            new AuditAction(removed, AuditActions.Remove, null, "an outlier"),
            new AuditAction(relabelled.Path, AuditActions.Relabel, dataset.Classes[1], "looks like the other class"),
            new AuditAction(test, AuditActions.Remove, null, "a test image"),
        ]);
        var cleaned = AuditActions.Apply(dataset, AuditActions.Read(csv), csv);
        Assert.DoesNotContain(cleaned.Train, i => i.Path == removed);
        Assert.Equal(1, cleaned.Train.Single(i => i.Path == relabelled.Path).Label);
        Assert.Equal(dataset.Test, cleaned.Test); // the yardstick stays
        Assert.Equal(dataset.Train.Count - 1, cleaned.Train.Count);
        Assert.Contains(cleaned.Notes, n => n.Contains("1 image left out and 1 relabelled") && n.Contains("not applied"));

        AuditActions.Write(csv, [new AuditAction(removed, AuditActions.Relabel, "zebra", "")]);
        var error = Assert.Throws<GraftException>(() => AuditActions.Apply(dataset, AuditActions.Read(csv), csv));
        Assert.Contains("zebra", error.Message);
    }

    [Fact]
    public void Quick_checks_name_copies_leakage_and_outliers()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data/train"], perClass: 12, size: 16);
        TinyImages.WriteClassFolders(dir["data/val"], perClass: 4, size: 16, seed: 3);
        var source = Directory.GetFiles(dir["data/train/red"]).Order(StringComparer.Ordinal).First();
        File.Copy(source, dir["data/val/red/leaked.png"]);
        var dataset = ImageFolder.OpenForTraining(dir["data"]);
        var all = dataset.All.ToList();
        var hashes = all.Select(i => (string?)Graft.Training.FeatureCache.ContentKey(i.Path)).ToList();
        // Features: a cluster per class (similarity about 0.6 within, never near-duplicate), the leaked copy equal to its
        // original, one image opposite both classes.
        var rows = Clusters(all, new Random(7));
        rows[all.FindIndex(i => i.Path.EndsWith("leaked.png"))] = rows[all.FindIndex(i => i.Path == source)];
        int odd = all.FindIndex(i => i.Label == 1);
        rows[odd] = Enumerable.Range(0, 64).Select(d => -Centre(0, d) - Centre(1, d)).ToArray();
        var summary = DataAudit.QuickSummary(dataset, hashes, rows, TorchSharp.torch.CPU);
        Assert.NotNull(summary);
        Assert.Contains("leakage", summary);
        Assert.Contains($"first: {Path.GetFileName(all[odd].Path)}", summary);

        var clean = ImageFolder.OpenForTraining(dir["data/train"]);
        Assert.Null(DataAudit.QuickSummary(clean, clean.All.Select(i => (string?)Graft.Training.FeatureCache.ContentKey(i.Path)).ToList(),
            Clusters(clean.All.ToList(), new Random(8)), TorchSharp.torch.CPU));
    }

    static float Centre(int label, int d) => ((d * 7 + label * 13) % 5) < 2 ? 1f : -1f;

    static float[][] Clusters(List<LabeledImage> images, Random rng) =>
        images.Select(i => Enumerable.Range(0, 64).Select(d => Centre(i.Label, d) + 0.8f * (float)(rng.NextDouble() * 2 - 1) * 1.7f).ToArray()).ToArray();
}
