using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Graft.Backbones;
using Graft.Backbones.Architectures;
using Graft.Cli;
using Graft.Cli.Commands;
using Graft.Data;
using Graft.Models;
using Graft.Training;
using Graft.Imaging;
using Graft.Heads;
using Graft.Inference;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Graft.Tests;

/// <summary>
/// Issue 11, hostile and messy input: every bad file is made here. Each case ends in one clear line (a
/// <see cref="GraftException"/> naming the file, exit code 2 on the command line) or is handled, and nothing is lost.
/// </summary>
public class HostileInputTests
{
    // ---- 3. symlink loops and links out of the data folder ----

    [Fact]
    public void Folder_links_that_loop_or_leave_the_data_folder_add_no_images()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 3, classes: 2, size: 16);
        Directory.CreateDirectory(dir["data/red/nested"]);
        TinyImages.WriteImage(dir["data/red/nested/deep.png"], TinyImages.Palette[0].Color, 16, new Random(2));
        Directory.CreateSymbolicLink(dir["data/red/up"], "..");           // a loop through the data folder: would label green as red
        Directory.CreateSymbolicLink(dir["data/red/self"], ".");          // a loop onto itself
        Directory.CreateSymbolicLink(dir["data/red/root"], "/");          // out of the data folder
        Directory.CreateSymbolicLink(dir["data/red/alias"], "nested");    // inside: its images count once

        var dataset = ImageFolder.OpenForTraining(dir["data"], validationSplit: 0);
        Assert.Equal(["green", "red"], dataset.Classes);
        Assert.Equal(7, dataset.Train.Count);
        Assert.Equal(3, dataset.Train.Count(i => i.Label == 0));
        Assert.All(dataset.Train, i => Assert.StartsWith(FolderWalk.RealPath(dir[Path.Combine("data", dataset.Classes[i.Label])]) + "/", FolderWalk.RealPath(i.Path)));

        // predict and embed list folders the same way.
        var listed = PredictCommand.ListImages(dir["data"]);
        Assert.Equal(7, listed.Count);
        Assert.Equal(7, listed.Select(FolderWalk.RealPath).Distinct().Count());
    }

    [Fact]
    public void A_class_folder_that_links_out_of_the_data_folder_is_refused()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 2, classes: 2, size: 16);
        Directory.CreateSymbolicLink(dir["data/everything"], "/");
        var e = Assert.Throws<GraftException>(() => ImageFolder.OpenForTraining(dir["data"]));
        Assert.Contains(dir["data/everything"], e.Message);
        Assert.Contains("outside", e.Message);
    }

    // ---- 4. a config that disagrees with its weights; the weights' hash ----

    public static TheoryData<string, string> BadConfigs => new()
    {
        { "fewer-labels", "lists 2 labels for a head of 3 classes" },
        { "more-labels", "lists 4 labels for a head of 3 classes" },
        { "zero-std", "is not 3 positive numbers" },
        { "negative-std", "is not 3 positive numbers" },
        { "nan-mean", "is not 3 finite numbers" },
        { "input-size-60000", "input size 60000 is outside" },
        { "unknown-backbone", "backbone 'resnet9000'" },
        { "invalid-json", "config.json is not valid" },
        { "head-edited-with-labels", "its weight head.predictions.weight is" },
        { "head-wider-than-trunk", "its head takes" },
        { "weights-altered", "SHA-256 differs" },
        { "huge-hidden", "hidden 1000000" },
    };

    [Theory]
    [MemberData(nameof(BadConfigs))]
    public void A_model_whose_config_disagrees_with_its_weights_is_refused_with_one_line(string change, string expected)
    {
        using var dir = new TempDir();
        using (var model = Networks.ScratchModel(["a", "b", "c"])) model.Save(dir["good.graft"]);
        var bad = dir["bad.graft"];
        if (change == "invalid-json") RewriteEntry(dir["good.graft"], bad, "config.json", _ => "{ \"format\": \"graft-model/2\", "u8.ToArray());
        else if (change == "weights-altered") RewriteEntry(dir["good.graft"], bad, "weights.safetensors", FlipLastByte);
        else RewriteConfig(dir["good.graft"], bad, config =>
        {
            switch (change)
            {
                case "fewer-labels": config["classes"]!.AsArray().RemoveAt(2); break;
                case "more-labels": config["classes"]!.AsArray().Add("d"); break;
                case "zero-std": config["input"]!["std"] = new JsonArray(0, 0, 0); break;
                case "negative-std": config["input"]!["std"] = new JsonArray(1, -1, 1); break;
                case "nan-mean": config["input"]!["mean"] = new JsonArray("NaN", 0, 0); break;
                case "input-size-60000": config["input"]!["size"] = 60000; break;
                case "unknown-backbone": config["backbone"] = "resnet9000"; break;
                case "head-edited-with-labels": // consistent labels and head, but the weights have 3 outputs
                    config["classes"]!.AsArray().RemoveAt(2);
                    config["head"]!["classes"] = 2;
                    config.Remove("weights_sha256");
                    break;
                case "head-wider-than-trunk": config["head"]!["input_channels"] = 4096; config.Remove("weights_sha256"); break;
                case "huge-hidden": config["head"]!["hidden"] = 1_000_000; break;
            }
        });
        var e = Assert.Throws<GraftException>(() => TrainableClassifier.Load(bad));
        Assert.Contains(bad, e.Message);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public async Task Model_files_record_a_hash_of_their_weights_and_files_without_one_still_load()
    {
        using var dir = new TempDir();
        using var model = Networks.ScratchModel(["a", "b"]);
        model.Save(dir["m.graft"]);
        using (var zip = ZipFile.OpenRead(dir["m.graft"]))
        {
            var config = JsonNode.Parse(ZipEntries.Read(zip, "config.json", "m"))!;
            var weights = ZipEntries.Read(zip, "weights.safetensors", "m");
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(weights)), config["weights_sha256"]!.GetValue<string>());
        }
        // A file written before the hash existed loads and predicts as before.
        RewriteConfig(dir["m.graft"], dir["old.graft"], config => config.Remove("weights_sha256"));
        using var old = TrainableClassifier.Load(dir["old.graft"]);
        Assert.Null(old.Config.WeightsSha256);
        TinyImages.WriteImage(dir["x.png"], TinyImages.Palette[0].Color, 40, new Random(1));
        var a = await model.PredictAsync([dir["x.png"]], 2, []);
        var b = await old.PredictAsync([dir["x.png"]], 2, []);
        Assert.Equal(a[0].Top, b[0].Top);
    }

    [Fact]
    public void A_wrong_shape_model_prints_one_line_not_a_stack_trace()
    {
        using var dir = new TempDir();
        using (var model = Networks.ScratchModel(["a", "b"])) model.Save(dir["good.graft"]);
        RewriteConfig(dir["good.graft"], dir["bad.graft"], config => { config["head"]!["hidden"] = 16; config.Remove("weights_sha256"); });
        TinyImages.WriteImage(dir["x.png"], TinyImages.Palette[0].Color, 40, new Random(1));
        // --tta loads the trainable model (plain predict runs the file's ONNX network, which never reads these weights).
        var run = GraftCli.Run(null, "predict", dir["bad.graft"], dir["x.png"], "--tta");
        Assert.Equal(2, run.ExitCode);
        var line = Assert.Single(run.Stderr.Trim().Split('\n'));
        Assert.StartsWith($"graft: {dir["bad.graft"]} is inconsistent: its weight head.dense.weight", line);
    }

    // ---- 5. a damaged feature cache; a loss that stops being finite ----

    [Fact]
    public async Task A_feature_cache_entry_with_flipped_bytes_is_recomputed()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 4, classes: 2, size: 32);
        var options = new TrainOptions { CacheRoot = dir["cache"], ValidationSplit = 0.25, Fit = new FitOptions(Epochs: 3, BatchSize: 4) };
        var first = await Learner.TrainAsync(dir["data"], options, Assets.Resolver);
        var entries = Directory.GetFiles(dir["cache"], "*.f32", SearchOption.AllDirectories);
        Assert.Equal(8, entries.Length);
        foreach (var entry in entries)
        {
            var bytes = File.ReadAllBytes(entry);
            for (int i = 3; i < 400; i += 4) bytes[i] ^= 0x70; // same length; exponents flipped: features of 1e20 and more
            File.WriteAllBytes(entry, bytes);
        }

        var again = await Learner.TrainAsync(dir["data"], options, Assets.Resolver);
        Assert.Equal((8, 0), (again.Features.Computed, again.Features.CacheHits));
        Assert.Equal(first.Fit.History.Count, again.Fit.History.Count); // the same features (to rounding) train the same head
        foreach (var (a, b) in first.Fit.History.Zip(again.Fit.History))
        {
            Assert.Equal(a.Loss, b.Loss, 4);
            Assert.Equal(a.ValLoss!.Value, b.ValLoss!.Value, 4);
        }
        var third = await Learner.TrainAsync(dir["data"], options, Assets.Resolver); // the recomputed entries were stored again
        Assert.Equal((0, 8), (third.Features.Computed, third.Features.CacheHits));
    }

    [Fact]
    public async Task A_full_disk_for_the_optional_cache_warns_and_training_goes_on()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 3, classes: 2, size: 32);
        var options = new TrainOptions { CacheRoot = dir["cache"], ValidationSplit = 0, Fit = new FitOptions(Epochs: 1, BatchSize: 4) };
        await Learner.TrainAsync(dir["data"], options, Assets.Resolver);
        // Every entry's temporary file now leads to /dev/full: writing it fails with "No space left on device".
        foreach (var entry in Directory.GetFiles(dir["cache"], "*.f32", SearchOption.AllDirectories))
        {
            File.Delete(entry);
            File.CreateSymbolicLink($"{entry}.{Environment.ProcessId}.tmp", "/dev/full");
        }
        var log = new List<string>();
        var result = await Learner.TrainAsync(dir["data"], options, Assets.Resolver, new Callbacks(Log: log.Add));
        Assert.Equal(6, result.Features.Computed);
        Assert.Contains(log, l => l.StartsWith("warning: the feature cache could not be written") && (l.Contains("space") || l.Contains("full")));
        Assert.Empty(Directory.GetFiles(dir["cache"], "*.f32", SearchOption.AllDirectories));
    }

    [Fact]
    public void Head_training_whose_loss_becomes_nan_stops_and_keeps_the_best_weights()
    {
        TorchRuntime();
        manual_seed(1);
        using var x = randn(16, 4);
        using var y = tensor(Enumerable.Range(0, 16).Select(i => (long)(i % 2)).ToArray());
        var head = new BreaksAfter(4, 2, breakAt: 10); // 4 steps an epoch: the weights turn NaN in epoch 3
        var result = HeadTrainer.Fit(head, x, y, x, y, new FitOptions(Epochs: 6, BatchSize: 4, Patience: 10));
        Assert.Equal(2, result.History.Count);
        Assert.Contains("the training loss became NaN in epoch 3", result.Diverged);
        Assert.Contains("kept the weights of epoch", result.Diverged);
        Assert.True(head.linear.weight.isfinite().all().item<bool>());

        // With no good epoch to keep, it is an error and no model.
        var e = Assert.Throws<GraftException>(() => HeadTrainer.Fit(new BreaksAfter(4, 2, breakAt: 1), x, y, x, y, new FitOptions(Epochs: 3, BatchSize: 4)));
        Assert.Contains("Training diverged", e.Message);
        Assert.Contains("--lr", e.Message);
    }

    [Fact]
    public async Task Live_training_whose_loss_becomes_nan_stops_and_keeps_the_best_weights()
    {
        TorchRuntime();
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 4, classes: 2, size: 16);
        var dataset = ImageFolder.OpenForTraining(dir["data"], validationSplit: 0);
        var spec = ImageSpec.Uniform(8, 127.5f, 127.5f);
        manual_seed(1);
        var network = new BreaksAfter(3 * 8 * 8, 2, breakAt: 5, flatten: true); // 2 steps an epoch: NaN in epoch 3
        var options = new LiveFitOptions(new FitOptions(Epochs: 5, BatchSize: 4, Patience: 10), Augmentation.None);
        var result = await ImageTrainer.FitAsync(network, [new ParameterGroup(network.parameters().ToList(), 1.0)], dataset.Train, dataset.Train,
            spec, options, Callbacks.None, CancellationToken.None);
        Assert.Equal(2, result.History.Count);
        Assert.Contains("loss became NaN in epoch 3", result.Diverged);
        Assert.True(network.linear.weight.isfinite().all().item<bool>());
    }

    // ---- 6. outputs checked before work starts ----

    [Fact]
    public void Export_onto_its_own_model_file_or_a_folder_is_refused_and_the_model_is_kept()
    {
        using var dir = new TempDir();
        using (var model = Networks.ScratchModel(["a", "b"])) model.Save(dir["m.graft"]);
        var before = File.ReadAllBytes(dir["m.graft"]);
        var run = GraftCli.Run(null, "export", dir["m.graft"], "--onnx", dir["m.graft"]);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("is the input", Assert.Single(run.Stderr.Trim().Split('\n')));
        Assert.Equal(before, File.ReadAllBytes(dir["m.graft"]));

        // The same through a link, and the other kinds of bad output paths, without a process each.
        File.CreateSymbolicLink(dir["link.onnx"], dir["m.graft"]);
        Assert.Contains("is the input", Assert.Throws<GraftException>(() => OutputPaths.File("--onnx", dir["link.onnx"], dir["m.graft"])).Message);
        Directory.CreateDirectory(dir["folder"]);
        Assert.Contains("is a folder", Assert.Throws<GraftException>(() => OutputPaths.File("--out", dir["folder"])).Message);
        File.WriteAllText(dir["notes.txt"], "keep me");
        Assert.Contains("is an existing file", Assert.Throws<GraftException>(() => OutputPaths.Folder("--report", dir["notes.txt"])).Message);
        Assert.Contains("is a file, not a folder", Assert.Throws<GraftException>(() => OutputPaths.File("--csv", dir["notes.txt/rows.csv"])).Message);
        Assert.Contains("cannot write", Assert.Throws<GraftException>(() => OutputPaths.File("--csv", "/proc/rows.csv")).Message);
        Assert.Contains("are both", Assert.Throws<GraftException>(() => OutputPaths.Distinct(("--csv", dir["x"]), ("--report", dir["x"]))).Message);
        Assert.Equal(dir["new/sub/m.onnx"], OutputPaths.File("--onnx", dir["new/sub/m.onnx"], dir["m.graft"])); // created when written
        Assert.Equal("keep me", File.ReadAllText(dir["notes.txt"]));
    }

    [Fact]
    public void Train_and_evaluate_check_their_outputs_before_they_start()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 2, classes: 2, size: 16);
        Directory.CreateDirectory(dir["folder.graft"]);
        var train = GraftCli.Run(null, "train", dir["data"], "--out", dir["folder.graft"]);
        Assert.Equal(2, train.ExitCode);
        Assert.Contains("--out", Assert.Single(train.Stderr.Trim().Split('\n')));
        Assert.DoesNotContain("epoch", train.Stderr);

        using (var model = Networks.ScratchModel(["green", "red"])) model.Save(dir["m.graft"]);
        File.WriteAllText(dir["report.html"], "keep me");
        var evaluate = GraftCli.Run(null, "evaluate", dir["m.graft"], dir["data"], "--report", dir["report.html"]);
        Assert.Equal(2, evaluate.ExitCode);
        Assert.Contains("is an existing file", Assert.Single(evaluate.Stderr.Trim().Split('\n')));
        Assert.Equal("keep me", File.ReadAllText(dir["report.html"]));
    }

    // ---- 7. a class with no readable image; an evaluation of no image ----

    [Fact]
    public async Task A_class_whose_images_are_all_unreadable_is_an_error_naming_its_folder()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 3, classes: 2, size: 32);
        foreach (var file in Directory.GetFiles(dir["data/green"])) File.WriteAllText(file, "not an image");

        // Feature extraction (and fine-tuning's first phase): known once the features are extracted.
        var e = await Assert.ThrowsAsync<GraftException>(() => Learner.TrainAsync(dir["data"],
            new TrainOptions { CacheRoot = dir["cache"], Fit = new FitOptions(Epochs: 1) }, Assets.Resolver));
        Assert.Contains($"None of the training images of {dir["data/green"]} could be read", e.Message);

        // From scratch: known after the first epoch has tried every image.
        var scratch = await Assert.ThrowsAsync<GraftException>(() => Learner.TrainAsync(dir["data"], new TrainOptions
        {
            Strategy = Strategy.Scratch, InputSize = 32, ValidationSplit = 0, CacheRoot = dir["cache"], Fit = new FitOptions(Epochs: 2, BatchSize: 2),
        }, Assets.Resolver));
        Assert.Contains($"None of the images of {dir["data/green"]} could be read", scratch.Message);
    }

    [Fact]
    public async Task Evaluating_on_no_readable_image_is_an_error()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 2, classes: 2, size: 16);
        foreach (var file in Directory.GetFiles(dir["data"], "*.png", SearchOption.AllDirectories)) File.WriteAllText(file, "not an image");
        using var model = Networks.ScratchModel(["green", "red"]);
        var e = await Assert.ThrowsAsync<GraftException>(() => Learner.EvaluateAsync(model, dir["data"], dir["cache"]));
        Assert.Contains("None of the 4 images", e.Message);
        Assert.Contains("there is nothing to evaluate", e.Message);
    }

    [Fact]
    public async Task Advising_on_unreadable_data_is_an_error_not_an_index_out_of_range()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 2, classes: 2, size: 16);
        foreach (var file in Directory.GetFiles(dir["data"], "*.png", SearchOption.AllDirectories)) File.WriteAllText(file, "not an image");
        var e = await Assert.ThrowsAsync<GraftException>(() => StrategyAdvisor.AdviseAsync(dir["data"], "mobilenet_v2", Assets.Resolver));
        Assert.Contains("could be read", e.Message);
    }

    // ---- 9. a zip entry larger than the config declares ----

    [Fact]
    public void A_weights_entry_larger_than_the_config_declares_is_refused_before_it_is_read()
    {
        using var dir = new TempDir();
        using (var model = Networks.ScratchModel(["a", "b"])) model.Save(dir["good.graft"]);
        // 512 MiB of zeros: about 0.5 MB in the zip.
        RewriteEntry(dir["good.graft"], dir["bomb.graft"], "weights.safetensors", null, write: stream =>
        {
            var zeros = new byte[1 << 20];
            for (int i = 0; i < 512; i++) stream.Write(zeros);
        });
        Assert.InRange(new FileInfo(dir["bomb.graft"]).Length, 1, 4 << 20);
        long allocated = GC.GetTotalAllocatedBytes(precise: true);
        var e = Assert.Throws<GraftException>(() => TrainableClassifier.Load(dir["bomb.graft"]));
        Assert.Contains("weights.safetensors is larger than", e.Message);
        Assert.InRange(GC.GetTotalAllocatedBytes(precise: true) - allocated, 0, 64L << 20);

        // Any caller's bound holds the same way.
        using var zip = ZipFile.OpenRead(dir["bomb.graft"]);
        Assert.Contains("larger than the 1,024", Assert.Throws<GraftException>(() => ZipEntries.Read(zip, "weights.safetensors", "bomb", 1024)).Message);
    }

    // ---- 10. exception names instead of messages ----

    [Fact]
    public void Unreadable_files_full_disks_and_errors_inside_parallel_loops_are_one_line_with_exit_code_2()
    {
        // Tests run as root, who may read everything: the mapping itself is what the CLI does with these.
        var (code, line) = Cli.Cli.ErrorOf(new UnauthorizedAccessException("Access to the path '/data/ants/a.jpg' is denied."));
        Assert.Equal(2, code);
        Assert.StartsWith("Access to the path '/data/ants/a.jpg' is denied. Check the permissions", line);
        (code, line) = Cli.Cli.ErrorOf(new IOException("No space left on device : '/models/m.graft.12.tmp'"));
        Assert.Equal(2, code);
        Assert.Contains("free disk space", line);
        (code, line) = Cli.Cli.ErrorOf(new AggregateException(new GraftException("a.jpg is bad.", "Fix it.")));
        Assert.Equal((2, "a.jpg is bad. Fix it."), (code, line));
        (code, line) = Cli.Cli.ErrorOf(new System.Runtime.InteropServices.ExternalException("shape mismatch\nException raised from forward at ...\nframe #0: c10::Error"));
        Assert.Equal(1, code);
        Assert.DoesNotContain('\n', line);
        Assert.Contains("shape mismatch", line);
    }

    [Theory]
    [InlineData("empty")]
    [InlineData("truncated")]
    [InlineData("bad-progress")]
    public async Task A_damaged_checkpoint_with_resume_is_one_line_and_kept(string damage)
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 2, classes: 2, size: 32);
        var checkpoint = dir["m.graft.checkpoint"];
        switch (damage)
        {
            case "empty": File.WriteAllBytes(checkpoint, []); break;
            case "truncated":
                ZipEntries.WriteAtomically(checkpoint, zip =>
                {
                    ZipEntries.Write(zip, "progress.json", "{\"fingerprint\": \"x\"}"u8.ToArray());
                    ZipEntries.Write(zip, "state.safetensors", RandomNumberGenerator.GetBytes(4096));
                });
                var bytes = File.ReadAllBytes(checkpoint);
                File.WriteAllBytes(checkpoint, bytes[..(bytes.Length / 2)]);
                break;
            case "bad-progress":
                ZipEntries.WriteAtomically(checkpoint, zip => ZipEntries.Write(zip, "progress.json", "{ \"epoch\": "u8.ToArray()));
                break;
        }
        long length = new FileInfo(checkpoint).Length;
        var e = await Assert.ThrowsAsync<GraftException>(() => Learner.TrainAsync(dir["data"], new TrainOptions
        {
            Strategy = Strategy.Scratch, InputSize = 32, ValidationSplit = 0, CacheRoot = dir["cache"], Fit = new FitOptions(Epochs: 1, BatchSize: 2),
            CheckpointPath = checkpoint, Resume = true,
        }, Assets.Resolver));
        Assert.StartsWith($"The checkpoint {checkpoint} cannot be resumed: it is damaged", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Equal(length, new FileInfo(checkpoint).Length);
    }

    // ---- 11. temporary files of killed runs ----

    [Fact]
    public void Writing_a_model_removes_the_temporary_files_killed_runs_left()
    {
        using var dir = new TempDir();
        int dead;
        using (var process = System.Diagnostics.Process.Start("true")) { process.WaitForExit(); dead = process.Id; }
        File.WriteAllText(dir[$"m.graft.{dead}.tmp"], "half a model");
        File.WriteAllText(dir["m.graft.1.tmp"], "pid 1 runs: maybe still writing");
        File.WriteAllText(dir["other.graft.77777777.tmp"], "another file's");
        using (var model = Networks.ScratchModel(["a", "b"])) model.Save(dir["m.graft"]);
        Assert.Equal(["m.graft", "m.graft.1.tmp", "other.graft.77777777.tmp"], Directory.GetFiles(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        using var loaded = TrainableClassifier.Load(dir["m.graft"]);
    }

    // ---- helpers ----

    static void TorchRuntime() => Engine.TorchRuntime.EnsureInitialized();


    static void RewriteConfig(string from, string to, Action<JsonObject> change) => RewriteEntry(from, to, "config.json", bytes =>
    {
        var config = JsonNode.Parse(bytes)!.AsObject();
        change(config);
        return System.Text.Encoding.UTF8.GetBytes(config.ToJsonString());
    });

    /// <summary>Copies a model file with one entry changed (by its bytes, or written afresh).</summary>
    static void RewriteEntry(string from, string to, string name, Func<byte[], byte[]>? change, Action<Stream>? write = null)
    {
        using var source = ZipFile.OpenRead(from);
        using var target = ZipFile.Open(to, ZipArchiveMode.Create);
        foreach (var entry in source.Entries)
        {
            var bytes = ZipEntries.Read(source, entry.FullName, from);
            if (entry.FullName != name) ZipEntries.Write(target, entry.FullName, bytes);
            else if (write is not null)
            {
                using var stream = target.CreateEntry(name, CompressionLevel.Optimal).Open();
                write(stream);
            }
            else ZipEntries.Write(target, name, change!(bytes));
        }
    }

    static byte[] FlipLastByte(byte[] bytes)
    {
        var copy = bytes.ToArray();
        copy[^1] ^= 0x01; // the lowest bits of the last weight: loads fine, but is not what the config records
        return copy;
    }

    /// <summary>A linear layer whose weights turn NaN on its n-th forward pass in training mode (a run blowing up).</summary>
    sealed class BreaksAfter : nn.Module<Tensor, Tensor>
    {
        public readonly Linear linear;
        readonly int _breakAt;
        readonly bool _flatten;
        int _calls;

        public BreaksAfter(int inputs, int outputs, int breakAt, bool flatten = false) : base("breaks_after")
        {
            linear = nn.Linear(inputs, outputs);
            (_breakAt, _flatten) = (breakAt, flatten);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            if (training && ++_calls == _breakAt)
                using (no_grad()) linear.weight.fill_(float.NaN);
            return linear.call(_flatten ? x.flatten(1) : x);
        }
    }
}
