using System.Text.Json;

namespace Graft.Tests;

public class CliTests
{
    [Fact]
    public void Train_predict_evaluate_summary_from_the_command_line()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["photos/train"], perClass: 5, classes: 3, size: 40);
        TinyImages.WriteClassFolders(dir["photos/val"], perClass: 2, classes: 3, size: 40, seed: 9);
        File.WriteAllText(dir["photos/train/red/corrupt.jpg"], "not a jpeg");
        var env = new Dictionary<string, string> { ["GRAFT_CACHE"] = dir["cache"] };
        var model = dir["m.graft"];

        var train = GraftCli.Run(env, "train", dir["photos"], "--epochs", "2", "--out", model, "--ft-lr", "0.01", "--json");
        Assert.True(train.ExitCode == 0, train.Stderr);
        Assert.Contains("--ft-lr does not apply to --strategy feature-extraction", train.Stderr); // with --json, human lines go to stderr
        var result = JsonDocument.Parse(train.LastLine).RootElement;
        Assert.Equal(6, result.GetProperty("images").GetInt32());
        Assert.Equal(3, result.GetProperty("classes").GetArrayLength());
        Assert.InRange(result.GetProperty("accuracy").GetDouble(), 0, 1);
        Assert.True(result.GetProperty("loss").GetDouble() > 0);
        Assert.True(result.GetProperty("seconds").GetDouble() > 0);
        Assert.EndsWith("corrupt.jpg", result.GetProperty("skipped")[0].GetProperty("path").GetString());
        Assert.Contains("corrupt.jpg", train.Stderr);
        Assert.Contains("epoch 2/2", train.Stderr);
        Assert.True(File.Exists(model));

        // predict runs the model file's ONNX network in ONNX Runtime alone: libtorch is never loaded (the dynamic loader's
        // trace names every library it opens); its predictions are those of the trainable model (which --explain needs).
        var predict = GraftCli.Run(new Dictionary<string, string>(env) { ["LD_DEBUG"] = "libs" }, "predict", model, dir["photos/val"], "--top", "2", "--json");
        Assert.Equal(0, predict.ExitCode);
        Assert.Contains("libonnxruntime", predict.Stderr);
        Assert.DoesNotContain("libtorch", predict.Stderr);
        var predictions = JsonDocument.Parse(predict.LastLine).RootElement.GetProperty("predictions");
        Assert.Equal(6, predictions.GetArrayLength());
        var first = predictions[0];
        Assert.Equal(2, first.GetProperty("top").GetArrayLength());
        Assert.Equal(first.GetProperty("label").GetString(), first.GetProperty("top")[0].GetProperty("label").GetString());
        var viaTorch = GraftCli.Run(env, "predict", model, dir["photos/val"], "--top", "2", "--json", "--explain", dir["maps"]);
        Assert.True(viaTorch.ExitCode == 0, viaTorch.Stderr);
        var torchPredictions = JsonDocument.Parse(viaTorch.LastLine).RootElement.GetProperty("predictions").EnumerateArray().ToList();
        foreach (var (onnx, torch) in predictions.EnumerateArray().Zip(torchPredictions))
        {
            Assert.Equal(torch.GetProperty("file").GetString(), onnx.GetProperty("file").GetString());
            Assert.Equal(torch.GetProperty("label").GetString(), onnx.GetProperty("label").GetString());
            Assert.Equal(torch.GetProperty("confidence").GetDouble(), onnx.GetProperty("confidence").GetDouble(), 3);
        }

        var evaluate = GraftCli.Run(env, "evaluate", model, dir["photos"], "--json");
        Assert.Equal(0, evaluate.ExitCode);
        var evaluation = JsonDocument.Parse(evaluate.LastLine).RootElement;
        // A fresh process gives the training run's validation results.
        Assert.Equal(result.GetProperty("accuracy").GetDouble(), evaluation.GetProperty("accuracy").GetDouble(), 9);
        Assert.Equal(result.GetProperty("loss").GetDouble(), evaluation.GetProperty("loss").GetDouble(), 5);

        var summary = GraftCli.Run(env, "summary", model, "--json");
        Assert.Equal(0, summary.ExitCode);
        var s = JsonDocument.Parse(summary.LastLine).RootElement;
        Assert.Equal(1280 * 3 + 3, s.GetProperty("trainable_params").GetInt64());
        Assert.True(s.GetProperty("non_trainable_params").GetInt64() > 2_000_000);
        Assert.Contains("block_16_project", summary.Stdout);
    }

    /// <summary>
    /// A file that does not decode is remembered beside its features in the cache: the next run skips it with the same
    /// one line, from the marker (here edited, to show it is what the second run read), without decoding it.
    /// </summary>
    [Fact]
    public void A_corrupt_image_is_remembered_in_the_feature_cache()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["photos"], perClass: 5, size: 32);
        File.WriteAllText(dir["photos/red/corrupt.jpg"], "not a jpeg");
        var env = new Dictionary<string, string> { ["GRAFT_CACHE"] = dir["cache"] };
        string[] args = ["train", dir["photos"], "--epochs", "1", "--out", dir["m.graft"]];

        var first = GraftCli.Run(env, args);
        Assert.True(first.ExitCode == 0, first.Stderr);
        var marker = Assert.Single(Directory.GetFiles(dir["cache"], "*.bad", SearchOption.AllDirectories));
        Assert.Contains(File.ReadAllText(marker).Trim(), first.Stderr);

        File.WriteAllText(marker, "remembered: not an image\n");
        var second = GraftCli.Run(env, args);
        Assert.True(second.ExitCode == 0, second.Stderr);
        Assert.Contains("corrupt.jpg: remembered: not an image", second.Stderr);
    }

    /// <summary>ONNX is the only format export writes: without --onnx, m.graft becomes m.onnx beside it.</summary>
    [Fact]
    public void Export_writes_the_onnx_file_beside_the_model_by_default()
    {
        using var dir = new TempDir();
        using (var model = Networks.ScratchModel(["a", "b"])) model.Save(dir["m.graft"]);
        var run = GraftCli.Run(null, "export", dir["m.graft"], "--json");
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Equal(dir["m.onnx"], JsonDocument.Parse(run.LastLine).RootElement.GetProperty("onnx").GetString());
        Assert.True(new FileInfo(dir["m.onnx"]).Length > 1000);
    }

    /// <summary>Counts read as a reader says them.</summary>
    [Theory]
    [InlineData(0, "0 files")]
    [InlineData(1, "1 file")]
    [InlineData(2, "2 files")]
    public void Counts_are_pluralised(int count, string expected) => Assert.Equal(expected, Graft.Inference.Plural.Of(count, "file"));

    /// <summary>lr-find prints and writes the range test of train's phase; train --lr auto trains at the rate it suggests.</summary>
    [Fact]
    public void Lr_find_suggests_a_rate_and_train_lr_auto_uses_it()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["photos/train"], perClass: 6, classes: 2, size: 40);
        TinyImages.WriteClassFolders(dir["photos/val"], perClass: 2, classes: 2, size: 40, seed: 9);
        var env = new Dictionary<string, string> { ["GRAFT_CACHE"] = dir["cache"] };

        var find = GraftCli.Run(env, "lr-find", dir["photos"], "--plot", dir["lr.png"], "--json");
        Assert.True(find.ExitCode == 0, find.Stderr);
        var search = JsonDocument.Parse(find.LastLine).RootElement;
        Assert.Equal("head", search.GetProperty("phase").GetString());
        var rates = search.GetProperty("rates").EnumerateArray().Select(r => r.GetDouble()).ToList();
        Assert.Equal(rates.Count, search.GetProperty("losses").GetArrayLength());
        Assert.Contains(search.GetProperty("suggested").GetDouble(), rates);
        Assert.True(new FileInfo(dir["lr.png"]).Length > 1000, "the plot was written");

        var train = GraftCli.Run(env, "train", dir["photos"], "--lr", "auto", "--epochs", "2", "--out", dir["m.graft"], "--json");
        Assert.True(train.ExitCode == 0, train.Stderr);
        Assert.Contains("learning-rate range test (head): ", train.Stderr); // once, from the library's log
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(train.Stderr, "range test"));
        var auto = GraftCli.Run(env, "train", dir["photos"], "--lr", "fast", "--out", dir["n.graft"]);
        Assert.Equal(2, auto.ExitCode);
        Assert.Contains("--lr", auto.Stderr);
    }

    [Fact]
    public void Imagenet_view_of_a_folder_through_a_backbone_name()
    {
        var predict = GraftCli.Run(null, "predict", "mobilenet_v2", Assets.Shared("images/imagenet/cat.bmp"), "--top", "5", "--json");
        Assert.Equal(0, predict.ExitCode);
        var p = JsonDocument.Parse(predict.LastLine).RootElement.GetProperty("predictions")[0];
        Assert.Equal("Egyptian cat", p.GetProperty("label").GetString());
        Assert.Equal(5, p.GetProperty("top").GetArrayLength());
    }

    /// <summary>README's `graft bench --datasets ''` (and --help's "'' for none") parses to no dataset, as does a lone comma.</summary>
    [Theory]
    [InlineData("")]
    [InlineData(",")]
    public void Bench_datasets_may_be_empty(string value)
    {
        var parse = Cli.Commands.BenchCommand.Create().Parse(["--datasets", value, "--backbones", ""]);
        Assert.Empty(parse.Errors);
        Assert.Empty(parse.GetValue<IReadOnlyList<string>>("--datasets")!);
        Assert.Empty(Cli.Commands.BenchCommand.Create().Parse(["--no-datasets"]).Errors);
    }

    /// <summary>The advisor bench opens every dataset it is given before it measures the first one (hours, on real data).</summary>
    [Fact]
    public void The_advisor_bench_refuses_a_missing_dataset_before_measuring_any()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["photos"], perClass: 4);
        var run = GraftCli.Run(null, "bench", "--advisor", "--datasets", $"{dir["photos"]},{dir["no-such-photos"]}");
        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("no-such-photos", run.Stderr);
        Assert.DoesNotContain("advising", run.Stderr);
        Assert.DoesNotContain("   at ", run.Stderr);
    }

    [Theory]
    [InlineData("train", "/no/such/folder")]
    [InlineData("predict", "/no/such/model.graft", "x.jpg")]
    [InlineData("summary", "resnet9000")]
    [InlineData("train", ".", "--backbone", "resnet9000")]
    [InlineData("train", ".", "--batchnorm", "--batch-size", "1")]
    public void Bad_input_gives_one_line_and_exit_code_2(params string[] args)
    {
        var run = GraftCli.Run(null, args);
        Assert.Equal(2, run.ExitCode);
        var lines = run.Stderr.Trim().Split('\n');
        Assert.Single(lines);
        Assert.StartsWith("graft: ", lines[0]);
        Assert.DoesNotContain("   at ", run.Stderr);
    }

    /// <summary>
    /// A command line that does not parse is refused before anything runs: one line, exit code 2; a mistyped name gets
    /// the one meant and nothing more; a value outside what the option type allows is refused, never clamped.
    /// </summary>
    [Theory]
    [InlineData("did you mean --epochs?", "train", "/no/such/folder", "--epoch", "5")]
    [InlineData("did you mean train?", "trian", "/no/such/folder")]
    [InlineData("--fill-value 300 is out of range: pass a value from 0 to 255.", "train", "/no/such/folder", "--fill-value", "300")]
    [InlineData("--fill-value 300 is out of range: pass a value from 0 to 255.", "augment", "/no/such/folder", "--fill-value", "300")]
    [InlineData("--rotation -1 is out of range", "augment", "/no/such/folder", "--rotation", "-1")]
    [InlineData("--optimizer foo is not one of adam, sgd, rmsprop, adamw.", "train", "/no/such/folder", "--optimizer", "foo")]
    [InlineData("--lr 0 is not a learning rate: pass a value above 0 below 10, or auto.", "train", "/no/such/folder", "--lr", "0")]
    [InlineData("--time-budget 15 is not a duration: write it as 15m, 1h30m or 90s.", "train", "/no/such/folder", "--time-budget", "15")]
    [InlineData("--time-budget 0m is not a duration", "train", "/no/such/folder", "--time-budget", "0m")]
    public void A_command_line_that_does_not_parse_is_one_line_and_exit_code_2(string message, params string[] args)
    {
        var run = GraftCli.Run(null, args);
        Assert.Equal(2, run.ExitCode);
        Assert.Equal("", run.Stdout);
        var line = Assert.Single(run.Stderr.Trim().Split('\n'));
        Assert.StartsWith("graft: ", line);
        Assert.Contains(message, line);
        Assert.DoesNotContain("/no/such/folder", line); // refused before the data is looked at
    }

    /// <summary>train --help: the options under the README's headings, every default as "(default: X)", lines that fit 100 columns.</summary>
    [Fact]
    public void Train_help_is_grouped_with_one_form_of_default()
    {
        var run = GraftCli.Run(null, "train", "--help");
        Assert.Equal(0, run.ExitCode);
        var lines = run.Stdout.Split('\n');
        foreach (var heading in new[] { "Data:", "Strategy:", "Head:", "Fine-tuning", "Augmentation", "Output:" })
            Assert.Contains(lines, l => l.StartsWith(heading));
        Assert.All(lines, l => Assert.True(l.Length <= 100, l));
        Assert.DoesNotContain("[default", run.Stdout);
        var help = string.Join(" ", run.Stdout.Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("--epochs N Most epochs to train (early stopping may end sooner). (default: 30)", help);
        Assert.Contains("(default: 0; scratch: 64)", help); // --hidden: the strategy's, from TrainOptions
        Assert.Contains("--ft-lr X|auto The learning rate of fine-tuning's phase 2; auto: a range test chooses it first (graft lr-find). (default: deep: 0.0005; top-blocks: 0.0001)", help); // the recipes'
    }

    [Fact]
    public void Fine_tuning_takes_one_way_of_saying_what_to_unfreeze()
    {
        var run = GraftCli.Run(null, "train", ".", "--strategy", "fine-tune", "--unfreeze", "2", "--freeze-first", "30");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("Pass only one of them", run.Stderr);
    }

    [Fact]
    public void Models_lists_the_default_backbone_first_with_its_weights_here()
    {
        var run = GraftCli.Run(null, "models", "--json");
        Assert.True(run.ExitCode == 0, run.Stderr);
        var backbones = JsonDocument.Parse(run.LastLine).RootElement.GetProperty("backbones");
        var first = backbones[0];
        Assert.Equal("mobilenet_v2", first.GetProperty("name").GetString());
        Assert.True(first.GetProperty("is_default").GetBoolean());
        Assert.Equal(1280, first.GetProperty("feature_channels").GetInt32()); // measured on the built network
        var local = first.GetProperty("weights").EnumerateArray().Select(w => w.GetProperty("local_path").GetString()).OfType<string>();
        Assert.Contains(local, p => p.EndsWith("tf2_mobilenet_v2_1.0_224_ptq.tflite"));
        var vgg = backbones.EnumerateArray().Single(b => b.GetProperty("name").GetString() == "vgg16");
        Assert.Equal(512, vgg.GetProperty("feature_channels").GetInt32());
        Assert.Equal("caffe", vgg.GetProperty("preprocessing").GetString());
    }

    /// <summary>
    /// Keras's parameters with the top, the trunk's GMACs and Keras's top-1 per network; the weight file named is the
    /// one train loads at the default size (the _224_ file of a MobileNet, not its first-listed _96_ one; the Coral file
    /// that is here for MobileNetV2 1.0).
    /// </summary>
    [Fact]
    public void Models_names_the_weight_file_train_uses_with_parameters_gmacs_and_top1()
    {
        var run = GraftCli.Run(null, "models", "--json");
        Assert.True(run.ExitCode == 0, run.Stderr);
        var backbones = JsonDocument.Parse(run.LastLine).RootElement.GetProperty("backbones").EnumerateArray()
            .ToDictionary(b => b.GetProperty("name").GetString()!);
        var resnet = backbones["resnet50"];
        Assert.Equal(25_636_712, resnet.GetProperty("parameters").GetInt64());
        Assert.Equal(23_587_712, resnet.GetProperty("parameters_without_top").GetInt64());
        Assert.InRange(resnet.GetProperty("gmacs").GetDouble(), 3.85, 3.87);
        Assert.Equal(0.749, resnet.GetProperty("imagenet_top1").GetDouble());
        Assert.Equal("resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", resnet.GetProperty("weights_file").GetString());
        Assert.Equal("mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5", backbones["mobilenet_v2_0.35"].GetProperty("weights_file").GetString());
        Assert.Equal(JsonValueKind.Null, backbones["mobilenet_v2_0.35"].GetProperty("imagenet_top1").ValueKind);
        Assert.EndsWith("tf2_mobilenet_v2_1.0_224_ptq.tflite", backbones["mobilenet_v2"].GetProperty("weights_path").GetString());
        Assert.Equal("nasnet_large_no_top.h5", backbones["nasnet_large"].GetProperty("weights_file").GetString()); // Keras's cache name
        Assert.Contains("https://keras.io/api/applications/", run.Stderr); // the human lines, beside --json
    }

    [Fact]
    public void Doctor_says_where_the_default_backbones_weights_are()
    {
        var run = GraftCli.Run(null, "doctor", "--json");
        Assert.True(run.ExitCode == 0, run.Stderr);
        var backbone = JsonDocument.Parse(run.LastLine).RootElement.GetProperty("default_backbone");
        Assert.Equal("mobilenet_v2", backbone.GetProperty("name").GetString());
        Assert.EndsWith("tf2_mobilenet_v2_1.0_224_ptq.tflite", backbone.GetProperty("weights_path").GetString());
        Assert.Contains("default backbone: mobilenet_v2, weights here: ", run.Stderr);
    }

    [Fact]
    public void Embed_writes_pooled_features_as_json_and_npy()
    {
        using var dir = new TempDir();
        TinyImages.WriteImage(dir["a.png"], TinyImages.Palette[0].Color, 224, new Random(1)); // 224x232: resized
        var weights = Assets.Shared("models/keras/mobilenet_2_5_224_tf_no_top.h5");
        var run = GraftCli.Run(null, "embed", "mobilenet_0.25", dir["a.png"], Assets.Shared("images/imagenet/cat.bmp"),
            "--weights", weights, "--out", dir["f.npy"], "--json");
        Assert.True(run.ExitCode == 0, run.Stderr);
        var json = JsonDocument.Parse(run.LastLine).RootElement;
        Assert.Equal("mobilenet_0.25", json.GetProperty("backbone").GetString());
        Assert.Equal(224, json.GetProperty("input_size").GetInt32());
        Assert.Equal("tf", json.GetProperty("preprocessing").GetString());
        var features = json.GetProperty("features").EnumerateArray().ToList();
        Assert.Equal(2, features.Count);
        var vector = features[1].GetProperty("vector").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        Assert.Equal(256, vector.Length);
        Assert.All(vector, v => Assert.True(v >= 0 && v <= 6)); // after ReLU6 and averaging

        // The .npy holds the same numbers: header, then images x features float32.
        var npy = File.ReadAllBytes(dir["f.npy"]);
        int headerLength = BitConverter.ToUInt16(npy, 8);
        Assert.Contains("'shape': (2, 256)", System.Text.Encoding.ASCII.GetString(npy, 10, headerLength));
        Assert.Equal(0, (10 + headerLength) % 64);
        Assert.Equal(vector[17], BitConverter.ToSingle(npy, 10 + headerLength + (256 + 17) * 4));
    }

    [Fact]
    public void Predict_takes_many_files_and_json_output_is_only_json()
    {
        var run = GraftCli.Run(null, "predict", "mobilenet_v2", Assets.Shared("images/imagenet/cat.bmp"), Assets.Shared("images/imagenet/grace_hopper.bmp"),
            "--top", "1", "--json");
        Assert.True(run.ExitCode == 0, run.Stderr);
        var json = JsonDocument.Parse(run.Stdout).RootElement; // the whole of stdout is one JSON object
        var labels = json.GetProperty("predictions").EnumerateArray().Select(p => p.GetProperty("label").GetString()).ToList();
        Assert.Equal(["Egyptian cat", "military uniform"], labels);
        Assert.Contains("Egyptian cat", run.Stderr); // the human lines went to stderr
    }
}
