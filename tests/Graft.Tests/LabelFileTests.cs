using System.Text;
using System.Text.Json;
using Graft.Data;
using Graft.Imaging;
using Graft.Training;

namespace Graft.Tests;

/// <summary>Label files (.csv, .tsv, .jsonl) read instead of class folders: parsing, checks row by row, roles, and equivalence with folders.</summary>
public class LabelFileTests
{
    /// <summary>The images as compared across readers: path, first label, every label.</summary>
    static List<(string Path, int Label, string Labels)> Key(IEnumerable<LabeledImage> images) =>
        images.Select(i => (i.Path, i.Label, string.Join(",", i.Labels))).ToList();

    /// <summary>A CSV listing the class folders' images (rows shuffled: the file's order must not matter), with no split column.</summary>
    static void WriteKaggleCsv(string data, string csv, int seed = 3)
    {
        var rows = Directory.GetFiles(data, "*.png", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(data, f)).Order(StringComparer.Ordinal).ToArray();
        new Random(seed).Shuffle(rows);
        File.WriteAllLines(csv, ["file,label", .. rows.Select(r => $"{r},{Path.GetDirectoryName(r)}")]);
    }

    [Fact]
    public void A_kaggle_style_csv_gives_the_roles_class_folders_give()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 9, classes: 3, size: 16);
        WriteKaggleCsv(dir["data"], dir["data/train.csv"]);
        foreach (var (validation, test, seed) in new[] { (0.2, 0.0, 7), (0.2, 0.2, 5), (0.3, 0.1, 11) })
        {
            var folders = ImageFolder.OpenForTraining(dir["data"], validation, seed, test);
            var csv = ImageFolder.OpenForTraining(dir["data"], validation, seed, test, labelsFile: dir["data/train.csv"]);
            Assert.Equal(folders.Classes, csv.Classes);
            Assert.Equal(Key(folders.Train), Key(csv.Train));
            Assert.Equal(Key(folders.Validation), Key(csv.Validation));
            Assert.Equal(Key(folders.Test), Key(csv.Test));
            Assert.NotEmpty(csv.Validation);
            Assert.False(csv.MultiLabel);
            Assert.Equal(dir["data/train.csv"], csv.LabelsFile);
        }
        // A file name relative to DATA is found there.
        var beside = ImageFolder.OpenForTraining(dir["data"], labelsFile: "train.csv");
        Assert.Equal(Key(ImageFolder.OpenForTraining(dir["data"]).All), Key(beside.All));
        // Evaluated with a model that was not trained on it, a file without split column is measured whole, as folders are.
        var evaluation = ImageFolder.OpenForEvaluation(dir["data"], ["blue", "green", "red"], labelsFile: dir["data/train.csv"]);
        Assert.Null(evaluation.Part);
        Assert.Equal(Key(ImageFolder.OpenForEvaluation(dir["data"], ["blue", "green", "red"]).Validation), Key(evaluation.Validation));
    }

    [Fact]
    public async Task A_kaggle_style_csv_trains_exactly_as_class_folders_do()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 6, classes: 2, size: 32);
        WriteKaggleCsv(dir["data"], dir["data/train.csv"]);
        var options = new TrainOptions { CacheRoot = dir["cache"], ValidationSplit = 0.34, Fit = new FitOptions(Epochs: 3, BatchSize: 4, Seed: 9) };
        var folders = await Learner.TrainAsync(dir["data"], options, Assets.Resolver);
        var csv = await Learner.TrainAsync(dir["data"], options with { LabelsFile = dir["data/train.csv"] }, Assets.Resolver);

        Assert.Equal(Key(folders.Dataset.Validation), Key(csv.Dataset.Validation));
        Assert.Equal(4, csv.Validation!.Images);
        Assert.Equal(folders.Validation!.Accuracy, csv.Validation.Accuracy);
        Assert.Equal(folders.Fit.History.Count, csv.Fit.History.Count);
        foreach (var (a, b) in folders.Fit.History.Zip(csv.Fit.History)) Assert.Equal(a.Loss, b.Loss, 6);
        Assert.Null(folders.Model.Config.Dataset!.LabelsFile);
        Assert.Equal("train.csv", csv.Model.Config.Dataset!.LabelsFile);

        // Evaluating the model's own DATA again finds its label file and measures the images it held out.
        var evaluation = await Learner.EvaluateAsync(csv.Model, dir["data"], dir["cache"]);
        Assert.Equal("validation", evaluation.Dataset.Part);
        Assert.Equal(Key(csv.Dataset.Validation), Key(evaluation.Dataset.Validation));
        Assert.Equal(csv.Validation.Accuracy, evaluation.Result.Accuracy, 9);
    }

    [Fact]
    public void Csv_quoting_bom_and_crlf_are_read_as_rfc_4180_says()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 2, classes: 2, size: 16);
        File.Move(dir["data/red/red_0.png"], dir["data/red/a, b.png"]);
        File.Move(dir["data/red/red_1.png"], dir["data/red/say \"hi\".png"]);
        var text = "\uFEFFFile,Label\r\n\"red/a, b.png\",\"red, dark\"\r\n\"red/say \"\"hi\"\".png\",\"red, dark\"\r\n" +
                   "green/green_0.png,green\r\n\r\n\"green/green_1.png\",\"gr\neen\"\r\n";
        File.WriteAllText(dir["labels.csv"], text, new UTF8Encoding(false));
        var set = ImageFolder.OpenForTraining(dir["data"], 0, labelsFile: dir["labels.csv"]);
        Assert.Equal(["gr\neen", "green", "red, dark"], set.Classes);
        Assert.Equal([dir["data/green/green_1.png"], dir["data/green/green_0.png"], dir["data/red/a, b.png"], dir["data/red/say \"hi\".png"]],
            set.Train.OrderBy(i => i.Label).ThenBy(i => i.Path, StringComparer.Ordinal).Select(i => i.Path));
        Assert.Equal([0, 1, 2, 2], set.Train.OrderBy(i => i.Label).Select(i => i.Label));
    }

    [Fact]
    public void A_tsv_split_column_gives_the_roles()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 4, classes: 2, size: 16);
        string[] splits = ["train", "TRAIN", "val", "test"];
        var rows = new[] { "red", "green" }.SelectMany(c => Enumerable.Range(0, 4).Select(i => $"{c}/{c}_{i}.png\t{c}\t{(i == 2 && c == "green" ? "validation" : splits[i])}"));
        File.WriteAllLines(dir["data/labels.tsv"], ["file\tlabel\tsplit", .. rows]);
        var set = ImageFolder.OpenForTraining(dir["data"], 0.2, labelsFile: dir["data/labels.tsv"]);
        Assert.Equal(4, set.Train.Count);
        Assert.Equal([dir["data/green/green_2.png"], dir["data/red/red_2.png"]], set.Validation.Select(i => i.Path));
        Assert.Equal([dir["data/green/green_3.png"], dir["data/red/red_3.png"]], set.Test.Select(i => i.Path));
        Assert.Contains("train + val rows", set.Layout);

        // Evaluation measures the test rows; another folder's model that lacks a class is refused on the row.
        var eval = ImageFolder.OpenForEvaluation(dir["data"], ["green", "red"], labelsFile: dir["data/labels.tsv"]);
        Assert.Equal("test", eval.Part);
        Assert.Equal(Key(set.Test), Key(eval.Validation));
        var unknown = Assert.Throws<GraftException>(() => ImageFolder.OpenForEvaluation(dir["data"], ["blue", "red"], labelsFile: dir["data/labels.tsv"]));
        Assert.Contains($"{dir["data/labels.tsv"]}, line 9: green/green_3.png is labelled green", unknown.Message);
        // Test rows and a test split asked as well cannot both be the test set.
        Assert.Contains("test rows", Assert.Throws<GraftException>(() => ImageFolder.OpenForTraining(dir["data"], 0.2, testSplit: 0.2, labelsFile: dir["data/labels.tsv"])).Message);
    }

    [Fact]
    public void Several_labels_make_the_data_multi_label()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 3, classes: 3, size: 16);
        File.WriteAllLines(dir["data/labels.csv"],
        [
            "file,labels", "red/red_0.png,red;green", "red/red_1.png,red", "red/red_2.png,", "green/green_0.png,green ; blue;",
            "green/green_1.png,green", "green/green_2.png,green", "blue/blue_0.png,blue", "blue/blue_1.png,blue;blue", "blue/blue_2.png,blue",
        ]);
        var set = ImageFolder.OpenForTraining(dir["data"], 0, labelsFile: dir["data/labels.csv"]);
        Assert.True(set.MultiLabel);
        Assert.Equal(["blue", "green", "red"], set.Classes);
        var byFile = set.Train.ToDictionary(i => Path.GetFileName(i.Path));
        Assert.Equal([1, 2], byFile["red_0.png"].Labels);
        Assert.Equal(1, byFile["red_0.png"].Label);
        Assert.Equal([0, 1], byFile["green_0.png"].Labels);
        Assert.Equal([0], byFile["blue_1.png"].Labels);
        Assert.Empty(byFile["red_2.png"].Labels); // an image with no label
        Assert.Equal(-1, byFile["red_2.png"].Label);

        // A labels column with one label per row is single-label data, unless multi-label is asked for.
        File.WriteAllLines(dir["data/one.csv"], ["file,labels", "red/red_0.png,red", "red/red_1.png,red", "green/green_0.png,green", "green/green_1.png,green"]);
        var single = ImageFolder.OpenForTraining(dir["data"], 0, labelsFile: dir["data/one.csv"]);
        Assert.False(single.MultiLabel);
        Assert.Equal([0, 0, 1, 1], single.Train.Select(i => i.Label));
        Assert.True(ImageFolder.OpenForTraining(dir["data"], 0, labelsFile: dir["data/one.csv"], multiLabel: true).MultiLabel);
        Assert.True(ImageFolder.OpenForTraining(dir["data"], 0, multiLabel: true).MultiLabel); // folders too
    }

    [Fact]
    public void Json_lines_take_a_label_a_labels_array_or_a_labels_string()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 2, classes: 2, size: 16);
        File.WriteAllText(dir["data/labels.jsonl"],
            "{\"file\": \"red/red_0.png\", \"labels\": [\"red\", \"green\"], \"split\": \"train\"}\r\n" +
            "{\"file\": \"red/red_1.png\", \"labels\": \"red\", \"split\": \"train\"}\n\n" +
            "{\"file\": \"green/green_0.png\", \"labels\": \"green;red\", \"split\": \"val\"}\n" +
            "{\"file\": \"green/green_1.png\", \"labels\": [], \"split\": \"test\"}\n");
        var set = ImageFolder.OpenForTraining(dir["data"], labelsFile: dir["data/labels.jsonl"]);
        Assert.True(set.MultiLabel);
        Assert.Equal(["green", "red"], set.Classes);
        Assert.Equal([[0, 1], [1]], set.Train.Select(i => i.Labels.ToArray()));
        Assert.Equal([0, 1], Assert.Single(set.Validation).Labels);
        Assert.Empty(Assert.Single(set.Test).Labels);

        File.WriteAllText(dir["data/one.jsonl"], "{\"file\": \"red/red_0.png\", \"label\": \"red\"}\n{\"file\": \"green/green_0.png\", \"label\": 7}\n");
        Assert.Equal(["7", "red"], ImageFolder.OpenForTraining(dir["data"], 0, labelsFile: dir["data/one.jsonl"]).Classes);
    }

    /// <summary>Each problem of a label file is one GraftException naming the file and the line.</summary>
    [Theory]
    [InlineData("labels.csv", "file,label\nred/red_0.png,red\nred/nope.png,red\n", 3, "red/nope.png does not exist")]
    [InlineData("labels.csv", "file,label,extra\nred/red_0.png,red,1\n", 1, "the column 'extra' is not one Graft reads")]
    [InlineData("labels.csv", "label\nred\n", 1, "there is no file column")]
    [InlineData("labels.csv", "file\nred/red_0.png\n", 1, "there is neither a label nor a labels column")]
    [InlineData("labels.csv", "file,label,labels\nred/red_0.png,red,red\n", 1, "there is both a label and a labels column")]
    [InlineData("labels.csv", "file,label\nred/red_0.png,red\ngreen/green_0.png,green\n./red/red_0.png,red\n", 4, "./red/red_0.png is listed again (first on line 2)")]
    [InlineData("labels.csv", "file,label\nred/red_0.png,red\nred/red_1.png, \n", 3, "red/red_1.png has an empty label")]
    [InlineData("labels.csv", "file,labels\nred/red_0.png,red\nred/red_1.png,\n", 3, "red/red_1.png has an empty label")]
    [InlineData("labels.csv", "file,label,split\nred/red_0.png,red,train\nred/red_1.png,red,training\n", 3, "the split 'training' is not train, val or test")]
    [InlineData("labels.csv", "file,label\nred/red_0.png,red\n../outside.png,red\n", 3, "../outside.png is outside the data folder")]
    [InlineData("labels.csv", "file,label\n/etc/hostname,red\n", 2, "/etc/hostname is outside the data folder")]
    [InlineData("labels.csv", "file,label\nred/red_0.png,red\nnotes.txt,red\n", 3, "notes.txt is not an image Graft reads")]
    [InlineData("labels.csv", "file,label\nred/red_0.png,red\nscan.tiff,red\n", 3, "scan.tiff is a TIFF or HEIC image")]
    [InlineData("labels.csv", "file,label\nred/red_0.png,red\nred,red\n", 3, "red is a folder, not an image")]
    [InlineData("labels.csv", "file,label\nred/red_0.png,red\nred/red_1.png,red, dark\n", 3, "the row has 3 fields and the header 2")]
    [InlineData("labels.csv", "file,label\nred/red_0.png,red\n\"red/red_1.png,red\n", 3, "a quoted field is never closed")]
    [InlineData("labels.csv", "file,label\n\"red/red_0.png\"x,red\n", 2, "a quoted field is followed by 'x'")]
    [InlineData("labels.csv", "file,label\n,red\n", 2, "the row names no file")]
    [InlineData("labels.jsonl", "{\"file\": \"red/red_0.png\", \"label\": \"red\"}\n{\"file\": \"red/red_1.png\", \"label\": \n", 2, "the line is not JSON")]
    [InlineData("labels.jsonl", "{\"file\": \"red/red_0.png\", \"label\": \"red\"}\n[1]\n", 2, "the line is not a JSON object")]
    [InlineData("labels.jsonl", "{\"file\": \"red/red_0.png\", \"label\": \"red\"}\n{\"file\": \"red/red_1.png\", \"labels\": [\"red\"]}\n", 2, "there is both a label and a labels column")]
    [InlineData("labels.jsonl", "{\"file\": \"red/red_0.png\", \"label\": [\"red\"]}\n", 1, "the value of label is array")]
    [InlineData("labels.jsonl", "{\"file\": \"red/red_0.png\", \"labels\": [\"red\", null]}\n", 1, "a label in the labels array is not a string")]
    [InlineData("labels.csv", "file,label,split\nred/red_0.png,red,train\ngreen/green_0.png,green,train\nred/red_1.png,blue,val\n", 4, "red/red_1.png is labelled blue, a class its training rows do not have")]
    public void A_bad_label_file_names_the_file_and_the_line(string name, string content, int line, string problem)
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 2, classes: 2, size: 16);
        File.WriteAllText(dir["data/notes.txt"], "not an image");
        File.WriteAllText(dir["data/scan.tiff"], "a scan");
        File.WriteAllText(dir["outside.png"], "outside");
        File.WriteAllText(dir[$"data/{name}"], content);
        var e = Assert.Throws<GraftException>(() => ImageFolder.OpenForTraining(dir["data"], 0, labelsFile: dir[$"data/{name}"]));
        Assert.StartsWith($"{dir[$"data/{name}"]}, line {line}: {problem}", e.Problem);
        Assert.NotEmpty(e.Fix);
    }

    [Fact]
    public void A_label_file_that_is_not_one_is_refused()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 2, classes: 2, size: 16);
        Assert.Contains("does not exist", Assert.Throws<GraftException>(() => ImageFolder.OpenForTraining(dir["data"], labelsFile: "nope.csv")).Message);
        File.WriteAllText(dir["data/labels.xlsx"], "x");
        Assert.Contains("(.csv, .tsv or .jsonl)", Assert.Throws<GraftException>(() => ImageFolder.OpenForTraining(dir["data"], labelsFile: dir["data/labels.xlsx"])).Message);
        File.WriteAllText(dir["data/empty.csv"], "file,label\n");
        Assert.Contains("has no rows", Assert.Throws<GraftException>(() => ImageFolder.OpenForTraining(dir["data"], labelsFile: dir["data/empty.csv"])).Message);
        File.WriteAllText(dir["data/one.csv"], "file,label\nred/red_0.png,red\nred/red_1.png,red\n");
        Assert.Contains("only one class (red)", Assert.Throws<GraftException>(() => ImageFolder.OpenForTraining(dir["data"], labelsFile: dir["data/one.csv"])).Message);
    }

    [Fact]
    public void Graft_train_with_a_bad_label_file_prints_one_line()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 2, classes: 2, size: 16);
        File.WriteAllText(dir["bad.csv"], "file,label\nred/red_0.png,red\nred/missing.png,red\n");
        var run = GraftCli.Run(new Dictionary<string, string> { ["GRAFT_CACHE"] = dir["cache"] }, "train", dir["data"], "--labels", dir["bad.csv"], "--out", dir["m.graft"]);
        Assert.Equal(2, run.ExitCode);
        var line = Assert.Single(run.Stderr.Trim().Split('\n'));
        Assert.StartsWith($"graft: {dir["bad.csv"]}, line 3: red/missing.png does not exist", line);
        Assert.DoesNotContain("   at ", run.Stderr);
        Assert.False(File.Exists(dir["m.graft"]));
    }

    /// <summary>train --labels and evaluate --labels from the command line: the test rows are the test set of both.</summary>
    [Fact]
    public void Graft_train_and_evaluate_read_the_label_files_test_rows()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 6, classes: 2, size: 32);
        var rows = new[] { "red", "green" }.SelectMany(c => Enumerable.Range(0, 6).Select(i => $"{c}/{c}_{i}.png,{c},{(i < 4 ? "train" : i == 4 ? "val" : "test")}"));
        File.WriteAllLines(dir["labels.csv"], ["file,label,split", .. rows]);
        var env = new Dictionary<string, string> { ["GRAFT_CACHE"] = dir["cache"] };
        var train = GraftCli.Run(env, "train", dir["data"], "--labels", dir["labels.csv"], "--epochs", "2", "--out", dir["m.graft"], "--json");
        Assert.True(train.ExitCode == 0, train.Stderr);
        var trained = JsonDocument.Parse(train.LastLine).RootElement;
        Assert.Equal(2, trained.GetProperty("test").GetProperty("images").GetInt32());

        var evaluate = GraftCli.Run(env, "evaluate", dir["m.graft"], dir["data"], "--labels", dir["labels.csv"], "--json");
        Assert.True(evaluate.ExitCode == 0, evaluate.Stderr);
        var evaluation = JsonDocument.Parse(evaluate.LastLine).RootElement;
        Assert.Equal(2, evaluation.GetProperty("images").GetInt32());
        Assert.Equal(trained.GetProperty("accuracy").GetDouble(), evaluation.GetProperty("accuracy").GetDouble(), 9);
    }
}
