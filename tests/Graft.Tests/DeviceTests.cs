using System.Text.RegularExpressions;
using Graft.Backbones;
using Graft.Engine;
using Graft.Heads;
using Graft.Imaging;
using Graft.Models;
using Graft.Runtime;
using Graft.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Graft.Tests;

/// <summary>
/// The device flows from the options to every tensor: a lint that every libtorch tensor factory in src/ names its device,
/// and a run of training, feature extraction and prediction on libtorch's meta device (shapes, no data), where a tensor
/// made anywhere else would meet the meta ones and libtorch would refuse to mix them.
/// </summary>
public class DeviceTests
{
    // ---- the device option ----

    [Theory]
    [InlineData("cpu", null)]
    [InlineData("CPU", null)]
    [InlineData("cuda", 0)]
    [InlineData("cuda:2", 2)]
    public void Devices_are_written_as_PyTorch_writes_them(string text, int? index)
    {
        var device = ComputeDevice.Parse(text);
        Assert.Equal(index, device.CudaIndex);
        Assert.Equal(index is null ? "cpu" : $"cuda:{index}", device.ToString());
        Assert.Equal(device, ComputeDevice.Parse(device.ToString()));
    }

    [Theory]
    [InlineData("gpu")]
    [InlineData("cuda:")]
    [InlineData("cuda:-1")]
    [InlineData("cuda:x")]
    [InlineData("")]
    public void Other_devices_are_refused_with_the_ones_there_are(string text)
    {
        var e = Assert.Throws<GraftException>(() => ComputeDevice.Parse(text));
        Assert.Contains("cuda:N", e.Fix);
    }

    [Fact]
    public void Cuda_in_this_cpu_build_is_one_error_that_says_how_to_get_one()
    {
        var e = Assert.Throws<GraftException>(() => TorchDevices.Resolve(ComputeDevice.Cuda()));
        Assert.StartsWith("no CUDA device or CUDA build: cuda:0 was asked for", e.Problem);
        Assert.Contains("-p:GraftCuda=true", e.Fix);
        Assert.Equal(CPU.type, TorchDevices.Resolve(ComputeDevice.Cpu).type);
        // The inference package refuses it the same way: its ONNX Runtime is the CPU package.
        var inference = Assert.Throws<GraftException>(() => Graft.Inference.ModelFile.SessionOptions(cudaDevice: 0));
        Assert.StartsWith("no CUDA device or CUDA build: cuda:0 was asked for", inference.Problem);
    }

    [Fact]
    public void Graft_device_cuda_is_one_line_and_exit_code_2_before_anything_runs()
    {
        using var dir = new TempDir();
        // No data at all: the device is refused first.
        string[][] commands = [["train", dir["missing"]], ["predict", dir["missing.graft"], dir["x.jpg"]], ["audit", dir["missing"]]];
        foreach (var args in commands)
        {
            var run = GraftCli.Run(null, [.. args, "--device", "cuda"]);
            Assert.Equal(2, run.ExitCode);
            var lines = run.Stderr.Trim().Split('\n');
            Assert.Single(lines);
            Assert.StartsWith("graft: no CUDA device or CUDA build: cuda:0 was asked for", lines[0]);
        }
        var bad = GraftCli.Run(null, "train", dir["missing"], "--device", "tpu");
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("'tpu' is not a device", bad.Stderr);
    }

    // ---- the lint ----

    /// <summary>libtorch's tensor factories: every call makes a new tensor, on the device it names (or libtorch's default).</summary>
    static readonly string[] Factories =
    [
        "tensor", "as_tensor", "from_array", "frombuffer", "scalar_tensor", "zeros", "ones", "empty", "full", "eye", "arange",
        "linspace", "logspace", "rand", "randn", "randint", "randperm", "normal", "bernoulli", "multinomial", "empty_strided",
        "zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like", "randint_like",
    ];

    /// <summary>
    /// Files whose factory calls name the host on purpose (<c>device: CPU</c>): what is made there is provably host-only.
    /// </summary>
    static readonly Dictionary<string, string> HostOnly = new()
    {
        ["src/Graft/Weights/Safetensors.cs"] = "tensors read from a file, then copied into the network's weights wherever those are",
        ["src/Graft/Runtime/OnnxTrunkRunner.cs"] = "the buffer ONNX Runtime writes its output into is host memory; the result then moves to the runner's device",
        ["src/Graft/Training/HeadTrainer.cs"] = "the epoch's order comes from the seeded host generator (the same on every device), then moves to the features",
        ["src/Graft/Evaluation/Trust.cs"] = "temperature and detector are fitted on the host from feature rows already read back",
        ["src/Graft/Evaluation/OutOfDistribution.cs"] = "the detector is fitted on the host from feature rows already read back",
        ["src/Graft/Export/Int8Quantization.cs"] = "export arithmetic on weights already copied to the host",
        ["src/Graft.Bench/Int8Bench.cs"] = "graft bench measures the CPU",
        ["src/Graft.Bench/BackboneSpeed.cs"] = "graft bench measures the CPU",
        ["src/Graft.Bench/Machine.cs"] = "graft bench measures the CPU",
        ["src/Graft.Bench/TrainingLoop.cs"] = "graft bench measures the CPU",
    };

    /// <summary>
    /// Files whose factory calls name no device: layer constructors, which make their weights on libtorch's default device
    /// as TorchSharp's own layers do (NetworkFacts builds whole networks on meta that way); they move with their module.
    /// </summary>
    static readonly Dictionary<string, string> ModuleConstruction = new()
    {
        ["src/Graft/Backbones/Layers/BatchNormalization.cs"] = "a layer's weights and statistics, made with the module",
        ["src/Graft/Backbones/Layers/Convolution.cs"] = "a layer's weights, made with the module",
        ["src/Graft/Backbones/Layers/Core.cs"] = "a layer's weights, made with the module",
        ["src/Graft/Heads/OutOfDistribution.cs"] = "the detector's buffers, made with the module",
        ["src/Graft/Backbones/Layers/Elementwise.cs"] = "a layer's constants and statistics, made with the module",
    };

    [Fact]
    public void Every_tensor_factory_in_src_names_its_device()
    {
        var root = RepoRoot();
        var problems = new List<string>();
        var used = new HashSet<string>();
        int calls = 0;
        foreach (var file in Directory.EnumerateFiles(Path.Combine(root, "src"), "*.cs", SearchOption.AllDirectories)
                     .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}")))
        {
            var relative = Path.GetRelativePath(root, file).Replace('\\', '/');
            foreach (var (line, arguments) in FactoryCalls(File.ReadAllText(file)))
            {
                calls++;
                var named = Regex.Match(arguments, @"(?<![\w.])device\s*:\s*([^,]+)");
                string where = $"{relative}:{line}";
                if (!named.Success)
                {
                    if (ModuleConstruction.ContainsKey(relative)) used.Add(relative);
                    else problems.Add($"{where}: no device: argument");
                }
                else if (named.Groups[1].Value.Trim() is "CPU" or "torch.CPU")
                {
                    if (HostOnly.ContainsKey(relative)) used.Add(relative);
                    else problems.Add($"{where}: names the host (device: CPU) outside the documented host-only files");
                }
            }
        }
        Assert.True(calls > 30, $"the lint found only {calls} factory calls: it no longer reads the sources");
        Assert.True(problems.Count == 0, "tensor factories without the run's device:\n" + string.Join("\n", problems));
        var stale = HostOnly.Keys.Concat(ModuleConstruction.Keys).Where(k => !used.Contains(k)).ToList();
        Assert.True(stale.Count == 0, "exceptions no longer needed (remove them from the list): " + string.Join(", ", stale));
    }

    [Fact]
    public void The_lint_sees_a_call_without_a_device()
    {
        var calls = FactoryCalls("""
            // zeros(3) in a comment, and "ones(2)" in a string, are not calls
            var a = torch.zeros(new long[] { 2, Count(x) }, dtype: float32);
            var b = tensor(values, [n, c], device: device);
            var c = x.ones(3);   // a method of another object
            """).ToList();
        Assert.Equal(2, calls.Count);
        Assert.DoesNotContain("device", calls[0].Arguments);
        Assert.Contains("device: device", calls[1].Arguments);
    }

    /// <summary>Each factory call (line, argument text), with comments and string literals blanked out first.</summary>
    static IEnumerable<(int Line, string Arguments)> FactoryCalls(string source)
    {
        var code = Regex.Replace(source, @"""""""[\s\S]*?""""""|//[^\n]*|/\*.*?\*/|@""(?:""""|[^""])*""|""(?:\\.|[^""\\\n])*""|'(?:\\.|[^'\\])'",
            m => Regex.Replace(m.Value, @"[^\n]", " "), RegexOptions.Singleline);
        var pattern = new Regex(@"(?<![\w.])(?:torch\.)?(" + string.Join("|", Factories) + @")\s*\(");
        foreach (Match m in pattern.Matches(code))
        {
            // A declaration (Tensor zeros(...)) or a member named like a factory is not a call of libtorch's.
            var before = code[..m.Index].TrimEnd();
            if (Regex.IsMatch(before, @"(?:\bTensor|\bvoid|\bstatic|\bnew)$")) continue;
            int depth = 0, end = m.Index + m.Length - 1;
            for (; end < code.Length; end++)
            {
                if (code[end] is '(' or '[' or '{') depth++;
                else if (code[end] is ')' or ']' or '}' && --depth == 0) break;
            }
            yield return (code[..m.Index].Count(c => c == '\n') + 1, code[(m.Index + m.Length)..Math.Min(end, code.Length)]);
        }
    }

    static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Graft.slnx"))) return dir.FullName;
        throw new DirectoryNotFoundException("the repository root (Graft.slnx) is not above the test binaries");
    }

    // ---- the run's device, with a trap for tensors made without one ----

    /// <summary>
    /// While it is open, libtorch's default device is meta (shapes, no data): a tensor made without naming a device lands
    /// there instead of on the run's device, and libtorch refuses to mix it with the run's tensors (or a result ends up on
    /// meta, which the tests check). The run itself is on the CPU, so it computes for real: the whole code path runs, host
    /// reads included. libtorch's meta device cannot run a network itself (it has no convolution, flip or index_select
    /// without PyTorch's Python), so it serves as the trap, not as the device under test. Networks are built before the trap
    /// opens: layers make their weights on the default device, as TorchSharp's own layers do.
    /// </summary>
    sealed class UnnamedDeviceTrap : IDisposable
    {
        readonly Device _before = get_default_device();
        public UnnamedDeviceTrap() => set_default_device(new Device(DeviceType.META));
        public void Dispose() => set_default_device(_before);
    }

    /// <summary>MobileNetV2 (batch norm, depthwise and padded convolutions) at 64x64, untrained, with a head of 3 classes, on the CPU.</summary>
    static TrainableClassifier SmallModel(int size = 64)
    {
        TorchRuntime.EnsureInitialized();
        var network = BackboneRegistry.Get("mobilenet_v2");
        var backbone = Backbone.Create(network, new Backbones.Architectures.ArchitectureOptions(size), network.Spec(size));
        var (channels, _) = backbone.FeatureShape(size);
        var head = new HeadConfig(channels, 3, Hidden: 8, Dropout: 0.2, BatchNorm: true);
        var config = new ModelConfig(ModelConfig.CurrentFormat, network.Name, "none", backbone.Input, ["red", "green", "blue"], head,
            Strategy.FineTune.Name(), new FitOptions(), null, DateTime.UtcNow) { Architecture = backbone.Architecture };
        return new TrainableClassifier(config, backbone, head.Build(), []).To(CPU);
    }

    static List<Data.LabeledImage> Images(string root) =>
        Directory.GetDirectories(root).Order(StringComparer.Ordinal)
            .SelectMany((folder, label) => Directory.GetFiles(folder).Order(StringComparer.Ordinal).Select(f => new Data.LabeledImage(f, label))).ToList();

    static void AssertOnCpu(Tensor t, string what) => Assert.True(t.device_type == DeviceType.CPU, $"{what} is on {t.device}, not the CPU");

    [Fact]
    public async Task Fine_tuning_makes_nothing_off_the_requested_device()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["train"], perClass: 3, classes: 3, size: 40);
        TinyImages.WriteClassFolders(dir["val"], perClass: 1, classes: 3, size: 40, seed: 5);
        using var model = SmallModel();
        var trunk = model.Backbone.Trunk;
        // As Learner fine-tunes: the top blocks train with the head, the frozen part runs as inference (ONNX Runtime).
        var groups = new List<ParameterGroup> { new(model.Head.parameters().ToList(), 1.0) };
        groups.AddRange(Freezing.Apply(trunk, UnfreezeSpec.Default).Select(b => new ParameterGroup(b.Parameters, 1.0)));
        var frozenEnd = Freezing.FrozenPrefixEnd(trunk)!;
        var network = new GraftedNetwork(trunk.From(frozenEnd), Pooling.Gap, model.Head);
        FitResult fit;
        using (new UnnamedDeviceTrap())
        {
            using var frozen = TrunkRunners.Create(trunk.Through(frozenEnd), model.Config.Input.Size, pooling: null);
            var options = new LiveFitOptions(new FitOptions(Epochs: 2, BatchSize: 4, Optimizer: OptimizerKind.Adam), Augmentation.Default,
                LrSchedule.Cosine, ClassWeights: [1f, 2f, 1f]) { FrozenInput = frozen };
            fit = await ImageTrainer.FitAsync(network, groups, Images(dir["train"]), Images(dir["val"]), model.Config.Input, options, Callbacks.None, default);
        }
        Assert.Equal(2, fit.History.Count);
        Assert.All(fit.History, h => Assert.True(double.IsFinite(h.Loss) && h.ValLoss is { } v && double.IsFinite(v)));
        foreach (var p in groups.SelectMany(g => g.Parameters)) AssertOnCpu(p, "a trained weight");
    }

    [Fact]
    public void Head_training_and_the_audits_neighbours_make_nothing_off_the_requested_device()
    {
        var rng = new Random(3);
        const int channels = 16;
        var rows = Enumerable.Range(0, 30).Select(i => (float[]?)Enumerable.Range(0, channels).Select(c => (float)(rng.NextDouble() + (c == i % 3 ? 2 : 0))).ToArray()).ToArray();
        var labels = Enumerable.Range(0, 30).Select(i => i % 3).ToArray();
        var train = Enumerable.Range(0, 21).ToArray();
        var held = Enumerable.Range(21, 9).ToArray();
        TorchRuntime.EnsureInitialized();
        manual_seed(1);
        using var head = new HeadConfig(channels, 3, Hidden: 8, BatchNorm: true).Build();
        using (new UnnamedDeviceTrap())
        {
            using var x = ImageFeatures.Stack(rows, train, channels, CPU);
            using var y = tensor(train.Select(i => (long)labels[i]).ToArray(), device: CPU);
            using var heldX = ImageFeatures.Stack(rows, held, channels, CPU);
            using var heldY = tensor(held.Select(i => (long)labels[i]).ToArray(), device: CPU);
            var fit = HeadTrainer.Fit(head, x, y, heldX, heldY, new FitOptions(Epochs: 3, BatchSize: 4), classWeights: [1f, 1f, 2f]);
            Assert.Equal(3, fit.History.Count);
            Assert.Equal(9, HeadTrainer.Score(head, heldX, heldY).Probabilities.GetLength(0));
            var unit = Audit.FeatureSpace.Normalized(rows.Select(r => r!).ToArray());
            Assert.Equal(30, Audit.FeatureSpace.Nearest(unit, 3, CPU, block: 8).Index.Length);
            // Not trapped: the audit's and the advisor's probes build their heads mid-run, and a layer built inside the trap is
            // built on meta. The lint holds their tensors to the device.
        }
        foreach (var p in head.parameters()) AssertOnCpu(p, "a head weight");
    }

    [Fact]
    public async Task Feature_extraction_and_prediction_make_nothing_off_the_requested_device()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["photos"], perClass: 2, classes: 3, size: 40);
        var files = Images(dir["photos"]).Select(i => i.Path).ToList();
        using var model = SmallModel();
        int channels = model.Config.Head.InputChannels;
        using (new UnnamedDeviceTrap())
        {
            // Both runners: ONNX Runtime (the default, exporting the trunk here) and libtorch.
            using var torchRunner = new TorchTrunkRunner(model.Body, Pooling.Gap);
            foreach (var runner in new[] { model.Trunk, torchRunner })
            {
                var features = await BottleneckFeatures.ExtractAsync(files, runner, model.Config.Input, channels, cache: null, batchSize: 4, mirror: true);
                Assert.All(features.Rows, r => Assert.Equal(channels, r!.Length));
            }
            var skipped = new List<SkippedImage>();
            var predictions = await model.PredictAsync(files, 2, skipped, batchSize: 4, tta: true);
            Assert.Equal(files.Count, predictions.Count);
            Assert.Equal(3, model.Predict(File.ReadAllBytes(files[0]), "one", 3).Top.Count);
            // A size other than the one the trunk was built for is measured by running it, on its device.
            Assert.Equal(channels, model.Backbone.FeatureShape(96).Channels);
        }
    }

    [Fact]
    public void The_trap_catches_a_tensor_made_without_a_device()
    {
        using var model = SmallModel();
        using var torchRunner = new TorchTrunkRunner(model.Body, Pooling.Gap);
        using (new UnnamedDeviceTrap())
        {
            using var unnamed = zeros(2, 3, 64, 64);
            Assert.Equal(DeviceType.META, unnamed.device_type);
            Assert.ThrowsAny<Exception>(() => torchRunner.Features(unnamed));
        }
    }
}
