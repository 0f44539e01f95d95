using System.Text;
using Graft.Data;
using Graft.Imaging;
using SkiaSharp;

namespace Graft.Tests;

/// <summary>Issue 11, case 12: what was quietly ignored is said (a note) or refused (one line, exit 2).</summary>
public class QuietInputTests
{
    static string OneLine(GraftCli.Result r)
    {
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        return lines[0];
    }

    // 1. predict of an unreadable file, or of files none of which can be read: exit 2 naming the file(s) and why.
    [Fact]
    public void Predict_of_only_unreadable_files_exits_2_naming_them()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["broken.jpg"], "not a jpeg");
        var one = GraftCli.Run(null, "predict", "mobilenet_v2", dir["broken.jpg"]);
        Assert.Equal(2, one.ExitCode);
        Assert.Contains("broken.jpg", OneLine(one));
        Assert.Contains("could not be read", one.Stderr);

        File.WriteAllText(dir["other.png"], "not a png");
        var both = GraftCli.Run(null, "predict", "mobilenet_v2", dir["broken.jpg"], dir["other.png"]);
        Assert.Equal(2, both.ExitCode);
        var line = OneLine(both);
        Assert.Contains("broken.jpg", line);
        Assert.Contains("other.png", line);
    }

    // 2. Out-of-range values are refused with the option and its range, not clamped.
    [Theory]
    [InlineData("--top", "-5", "from 1 to 10")]
    [InlineData("--top", "5000", "from 1 to 10")]
    public void Predict_top_out_of_range_is_refused(string option, string value, string range)
    {
        var r = GraftCli.Run(null, "predict", "mobilenet_v2", Assets.Shared("images/imagenet/cat.bmp"), option, value);
        Assert.Equal(2, r.ExitCode);
        var line = OneLine(r);
        Assert.Contains($"{option} {value}", line);
        Assert.Contains(range, line);
    }

    [Theory]
    [InlineData("--size", "100000", "32 to 512")]
    [InlineData("--size", "4", "32 to 512")]
    [InlineData("--images", "0", "1 to 64")]
    [InlineData("--variants", "99", "1 to 32")]
    public void Augment_values_out_of_range_are_refused(string option, string value, string range)
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 2, size: 16);
        var r = GraftCli.Run(null, "augment", dir["data"], "--out", dir["grid.png"], option, value);
        Assert.Equal(2, r.ExitCode);
        var line = OneLine(r);
        Assert.Contains($"{option} {value}", line);
        Assert.Contains(range, line);
        Assert.False(File.Exists(dir["grid.png"]));
    }

    // 3. TIFF and HEIC files are found and reported, not silently skipped.
    [Fact]
    public void Tiff_and_heic_files_are_listed_and_noted()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 2, size: 16);
        File.WriteAllBytes(Path.Combine(dir["data"], "red", "scan.tif"), [0x49, 0x49, 0x2a, 0]);
        File.WriteAllBytes(Path.Combine(dir["data"], "green", "IMG_1.HEIC"), [0, 0, 0, 0x18]);
        Directory.CreateDirectory(dir["data/blue"]);
        File.WriteAllBytes(dir["data/blue/photo.heif"], [0, 0, 0, 0x18]);

        var dataset = ImageFolder.OpenForTraining(dir["data"], 0);
        Assert.Equal(3, dataset.Unconverted.Count);
        Assert.Equal(["green", "red"], dataset.Classes);

        var r = GraftCli.Run(null, "augment", dir["data"], "--out", dir["grid.png"], "--size", "32", "--images", "2", "--variants", "1");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("3 .tif/.tiff/.heic/.heif files were not read", r.Stderr);
        Assert.Contains("JPEG or PNG", r.Stderr);
    }

    // A folder inside a class folder is read as part of the class, and that is said once.
    [Fact]
    public void A_folder_nested_in_a_class_folder_is_read_as_the_class_and_noted_once()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 2, classes: 2, size: 16);
        Directory.CreateDirectory(dir["data/red/more shots"]);
        TinyImages.WriteImage(dir["data/red/more shots/x.png"], TinyImages.Palette[0].Color, 16, new Random(3));

        var dataset = ImageFolder.OpenForTraining(dir["data"], validationSplit: 0);
        Assert.Equal(["green", "red"], dataset.Classes);
        Assert.Equal(3, dataset.Train.Count(i => dataset.Classes[i.Label] == "red"));
        Assert.Contains(dataset.Notes, n => n.Contains("1 folder inside class folders are read as their class: red/more shots."));

        var r = GraftCli.Run(null, "augment", dir["data"], "--out", dir["grid.png"], "--size", "32", "--images", "1", "--variants", "1");
        Assert.Equal(0, r.ExitCode);
        Assert.Single(r.Stderr.Split('\n'), l => l.Contains("red/more shots"));
        Assert.DoesNotContain("validation", r.Stderr); // augment trains nothing: no training notes
    }

    // 4. Empty class folders and a validation folder lacking a class are noted.
    [Fact]
    public void Empty_class_folders_and_classes_missing_from_validation_are_noted()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data/train"], perClass: 2, classes: 3, size: 16);
        TinyImages.WriteClassFolders(dir["data/val"], perClass: 1, classes: 2, size: 16); // no "blue"
        Directory.CreateDirectory(dir["data/train/empty_class"]);

        var dataset = ImageFolder.OpenForTraining(dir["data"]);
        Assert.Equal(["blue", "green", "red"], dataset.Classes);
        Assert.Contains(dataset.Notes, n => n.Contains("without images") && n.Contains("empty_class"));
        Assert.Contains(dataset.Notes, n => n.Contains("no images of the class(es) blue"));

        var r = GraftCli.Run(null, "augment", dir["data"], "--out", dir["grid.png"], "--size", "32", "--images", "1", "--variants", "1");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("note:", r.Stderr);
        Assert.Contains("empty_class", r.Stderr);
    }

    [Fact]
    public void A_class_only_in_validation_is_an_error()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data/train"], perClass: 2, classes: 2, size: 16);
        TinyImages.WriteClassFolders(dir["data/val"], perClass: 1, classes: 3, size: 16);
        Directory.CreateDirectory(dir["data/train/blue"]); // present, but no image
        var e = Assert.Throws<GraftException>(() => ImageFolder.OpenForTraining(dir["data"]));
        Assert.Contains("blue", e.Problem);
    }

    // 5. Folder names equal in NFC are one class (macOS writes NFD).
    [Fact]
    public void Class_names_equal_after_unicode_normalization_are_one_class()
    {
        using var dir = new TempDir();
        var nfc = "caf\u00e9";
        var nfd = "cafe\u0301";
        var rng = new Random(3);
        Directory.CreateDirectory(dir[$"data/train/{nfc}"]);
        Directory.CreateDirectory(dir[$"data/train/{nfd}"]);
        Directory.CreateDirectory(dir["data/train/tea"]);
        TinyImages.WriteImage(dir[$"data/train/{nfc}/a.png"], SKColors.Brown, 16, rng);
        TinyImages.WriteImage(dir[$"data/train/{nfd}/b.png"], SKColors.Brown, 16, rng);
        TinyImages.WriteImage(dir["data/train/tea/c.png"], SKColors.Green, 16, rng);
        TinyImages.WriteImage(dir["data/train/tea/d.png"], SKColors.Green, 16, rng);
        Directory.CreateDirectory(dir[$"data/val/{nfd}"]);
        Directory.CreateDirectory(dir["data/val/tea"]);
        TinyImages.WriteImage(dir[$"data/val/{nfd}/e.png"], SKColors.Brown, 16, rng);
        TinyImages.WriteImage(dir["data/val/tea/f.png"], SKColors.Green, 16, rng);

        var dataset = ImageFolder.OpenForTraining(dir["data"]);
        Assert.Equal([nfc, "tea"], dataset.Classes);
        Assert.Equal(2, dataset.Train.Count(i => i.Label == 0));
        Assert.Single(dataset.Validation, i => i.Label == 0);
        Assert.Contains(dataset.Notes, n => n.Contains("Unicode normalization"));
        Assert.True(Directory.Exists(dataset.ClassFolder(0)));

        // A model whose classes are NFD evaluates NFC folders (and the reverse).
        var eval = ImageFolder.OpenForEvaluation(dir["data"], [nfd, "tea"]);
        Assert.Single(eval.Validation, i => i.Label == 0);
    }

    /// <summary>
    /// The same, in the graft command as it ships (its own runtime settings: a CLI built with invariant globalization
    /// cannot normalize, and saw two classes "café" here, the NFD one missing from validation).
    /// </summary>
    [Fact]
    public void The_shipped_cli_reads_names_equal_after_unicode_normalization_as_one_class()
    {
        using var dir = new TempDir();
        var rng = new Random(5);
        foreach (var folder in new[] { "train/caf\u00e9", "train/cafe\u0301", "train/tea", "val/caf\u00e9", "val/tea" })
        {
            Directory.CreateDirectory(dir[$"data/{folder}"]);
            TinyImages.WriteImage(dir[$"data/{folder}/{folder.Length}.png"], folder.EndsWith("tea") ? SKColors.Green : SKColors.Brown, 16, rng);
        }
        var run = GraftCli.Run(null, "augment", dir["data"], "--out", dir["grid.png"], "--size", "32", "--images", "1", "--variants", "1");
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Contains("Unicode normalization", run.Stderr);
        Assert.DoesNotContain("has no images of the class", run.Stderr);
    }

    // 6. --report inside the data folder is refused before training.
    [Fact]
    public void Report_inside_the_data_folder_is_refused()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 2, size: 16);
        var r = GraftCli.Run(null, "train", dir["data"], "--out", dir["m.graft"], "--report", dir["data/report"]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--report", OneLine(r));
        Assert.Contains("inside the data folder", r.Stderr);
        Assert.False(Directory.Exists(dir["data/report"]));
        Assert.False(File.Exists(dir["m.graft"]));

        var e = GraftCli.Run(null, "evaluate", dir["m.graft"], dir["data"], "--report", dir["data/red/report"]);
        Assert.Equal(2, e.ExitCode);
        Assert.Contains("inside the data folder", OneLine(e));
    }

    // 7. Control characters in printed paths are shown escaped, never sent raw to the terminal.
    [Fact]
    public void Control_characters_are_escaped()
    {
        Assert.Equal("a\\e[2Jb\\nc\\x07\\u202e.jpg", Cli.Cli.Printable("a\u001b[2Jb\nc\u0007\u202e.jpg"));
        Assert.Equal("caf\u00e9 [x].jpg", Cli.Cli.Printable("caf\u00e9 [x].jpg"));
        Assert.Equal("\\e[[31m[[x]]", Cli.Cli.Escape("\u001b[31m[x]"));
    }

    [Fact]
    public void A_file_name_with_escape_codes_is_printed_escaped()
    {
        using var dir = new TempDir();
        var name = "evil\u001b[2J\u001b]0;owned\u0007.jpg";
        File.WriteAllText(Path.Combine(dir.Path, name), "not a jpeg");
        var r = GraftCli.Run(null, "predict", "mobilenet_v2", dir.Path);
        Assert.Equal(2, r.ExitCode);
        Assert.DoesNotContain('\u001b', r.Stderr + r.Stdout);
        Assert.DoesNotContain('\u0007', r.Stderr + r.Stdout);
        Assert.Contains("evil\\e[2J\\e]0;owned\\x07.jpg", r.Stderr);
    }
}
