using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Graft.Backbones;
using Graft.Backbones.Architectures;
using Graft.Data;
using Graft.Engine;
using Graft.Export;
using Graft.Training;
using Graft.Weights;
using Graft.Imaging;
using Graft.Runtime;
using Graft.Heads;
using Graft.Inference;
using TorchSharp;
using static TorchSharp.torch;

namespace Graft.Models;

/// <summary>Everything about a model except its weights: enough to rebuild it and preprocess exactly as in training.</summary>
public sealed record ModelConfig(
    string Format,
    string Backbone,
    string BackboneWeightsSha256,
    ImageSpec Input,
    IReadOnlyList<string> Classes,
    HeadConfig Head,
    string Strategy,
    FitOptions Training,
    DatasetInfo? Dataset,
    DateTime CreatedUtc)
{
    /// <summary>Fine-tuning's phase 2 settings (null for other strategies).</summary>
    public FitOptions? FineTune { get; init; }
    public UnfreezeSpec? Unfreeze { get; init; }
    /// <summary>The live augmentation used in training (null when features were cached).</summary>
    public Augmentation? Augmentation { get; init; }
    /// <summary>The trunk ends after this block (null: the whole trunk).</summary>
    public string? FeatureBlock { get; init; }
    /// <summary>How the backbone's network was built (batch norm folded or not, its epsilon); null: the defaults at the input size.</summary>
    public ArchitectureOptions? Architecture { get; init; }
    /// <summary>SHA-256 of the model file's weights entry, written by <see cref="TrainableClassifier.Save"/> and checked on load (null in files written before it).</summary>
    public string? WeightsSha256 { get; init; }
    /// <summary>The learning-rate range test that chose a phase's rate (null: none ran).</summary>
    public LearningRateSearch? LearningRateSearch { get; init; }

    /// <summary>
    /// The ONNX image model that is the frozen trunk (<see cref="Backbone"/> is then <see cref="Backbones.Backbone.OnnxName"/>); the model
    /// file carries its file. Null: the trunk is the registry backbone's.
    /// </summary>
    public OnnxTrunkSpec? OnnxTrunk { get; init; }

    /// <summary>The numbers the frozen trunk computes in; null: float (files written before int8 trunks existed).</summary>
    public Precision? Precision { get; init; }
    /// <summary>The int8 trunk's activation ranges, from the training images (with <see cref="Precision"/> int8).</summary>
    public Int8Calibration? Calibration { get; init; }
    /// <summary>The calibration when the trunk runs in int8; null when it runs in float.</summary>
    [JsonIgnore] public Int8Calibration? Int8 => Precision == Runtime.Precision.Int8 ? Calibration : null;

    /// <summary>Temperature scaling of the probabilities, fitted on the validation images (null: none, as in files written before it).</summary>
    public TemperatureScaling? TemperatureScaling { get; init; }
    /// <summary>The "none of these" score and threshold; its statistics are the weights' "ood.*" tensors (null: every photo gets a class).</summary>
    public OodConfig? OutOfDistribution { get; init; }
    /// <summary>
    /// A multi-label model's decision threshold on each class's probability, in class order, chosen on the validation
    /// images (maximum F1); null for single-label models (and files written before multi-label ones).
    /// </summary>
    public IReadOnlyList<double>? Thresholds { get; init; }

    /// <summary>Version 2: trunks are Keras layer graphs (weights named by Keras layer); version 1 held MobileNetV2 units.</summary>
    public const string CurrentFormat = ModelFile.CurrentFormat;

    /// <summary>Identifies the features the trunk produces; the bottleneck cache folder is derived from it.</summary>
    public string TrunkKey => FeatureCache.TrunkKey(Backbone, BackboneWeightsSha256, Input, Head.Pooling,
        FeatureBlock ?? OnnxTrunk?.FeatureKey, Int8);

}

/// <summary>
/// A trained classifier: the backbone's trunk, global average pooling and the grafted head, with its
/// config and training history. Saved as one zip file (config.json, weights.safetensors, history.json),
/// written atomically.
/// </summary>
public sealed class TrainableClassifier : IDisposable
{
    public ModelConfig Config { get; }
    public Backbone Backbone { get; }
    public nn.Module<Tensor, Tensor> Head { get; }
    public IReadOnlyList<EpochRecord> History { get; }
    /// <summary>Scores how unlike the training images a photo is (null: the model has no "none of these").</summary>
    public OodDetector? Detector { get; }
    public IReadOnlyList<string> Classes => Config.Classes;
    /// <summary>
    /// The network that runs before the head: the trunk; for a pretrained ImageNet classifier, the whole network
    /// with its top (its head then passes the logits through).
    /// </summary>
    public Graph Body => Backbone.HasTop ? Backbone.Network : Backbone.Trunk;

    /// <summary>Runs the frozen <see cref="Body"/> (built on first use from its weights at that time).</summary>
    public ITrunkRunner Trunk => _trunk ??= Backbone.Onnx is { } onnx ? new ExternalTrunkRunner(onnx, Device)
        : Config.Int8 is { } int8
        ? TrunkRunners.CreateInt8(Body, Config.Input.Size, Config.Head.Pooling, int8)
        : TrunkRunners.Create(Body, Config.Input.Size, Config.Head.Pooling);
    ITrunkRunner? _trunk;

    /// <summary>Runs the frozen <see cref="Body"/> to its last feature map [N, C, H, W], unpooled (for heat maps).</summary>
    ITrunkRunner MapRunner => _map ??= Backbone.HasTop
        ? throw new GraftException($"The pretrained {Config.Backbone} classifier has no head of its own to explain.", "Explain a model trained with graft train.")
        : Backbone.Onnx is { } onnx
        ? throw new GraftException($"The ONNX trunk {onnx.Spec.File} gives pooled features, no feature map to explain.", "Explain a model trained on a registry backbone.")
        : Config.Int8 is { } int8 ? TrunkRunners.CreateInt8(Body, Config.Input.Size, null, int8) : TrunkRunners.Create(Body, Config.Input.Size, null);
    ITrunkRunner? _map;

    /// <summary>
    /// Disposes the trunk runners; the next inference builds them from the trunk's weights at that time
    /// (call after training changed them, or when handing the modules to another classifier).
    /// </summary>
    public void ResetTrunkRunner()
    {
        _trunk?.Dispose();
        _map?.Dispose();
        _trunk = _map = null;
    }

    public TrainableClassifier(ModelConfig config, Backbone backbone, nn.Module<Tensor, Tensor> head, IReadOnlyList<EpochRecord> history,
        OodDetector? detector = null)
    {
        if ((config.OutOfDistribution is null) != (detector is null))
            throw new ArgumentException("A model has an out-of-distribution config exactly when it has a detector.", nameof(detector));
        Config = config; Backbone = backbone; Head = head; History = history; Detector = detector;
        Head.eval();
    }

    /// <summary>Where the classifier's weights are, hence where it takes images and computes.</summary>
    public Device Device => TorchDevices.Of(Backbone.Onnx is null ? Backbone.Network : Head);

    /// <summary>Moves the whole classifier (network, trunk and head) to <paramref name="device"/>; its trunk runner is rebuilt there on next use.</summary>
    internal TrainableClassifier To(Device device)
    {
        Backbone.Network.to(device); // the trunk moves with it: its layers are the network's
        Head.to(device);
        Detector?.to(device);
        ResetTrunkRunner();
        return this;
    }

    /// <summary>
    /// The pretrained network with its own ImageNet classifier: Keras's 1000 classes, or 1001 with "background"
    /// first (TF-slim and Coral files). <paramref name="weightsFile"/>: the user's own file with Keras's top.
    /// </summary>
    /// <param name="device">Where it runs; null: the CPU.</param>
    public static TrainableClassifier PretrainedImageNet(string backboneName, AssetResolver resolver, string? weightsFile = null, int? inputSize = null,
        ComputeDevice? device = null)
    {
        var on = TorchDevices.Resolve(device ?? ComputeDevice.Cpu);
        var config = BackboneRegistry.Get(backboneName);
        var backbone = Backbone.LoadPretrained(config, resolver, includeTop: true, inputSize, weightsFile);
        int classes = backbone.Architecture.Classes;
        var labels = File.ReadAllLines(resolver.Resolve(config.Labels
            ?? throw new GraftException($"{config.Name} has no ImageNet labels.", "Pick a pretrained backbone (graft models).")));
        if (labels.Length == classes + 1) labels = labels[1..]; // Keras's classes leave out "background"
        if (labels.Length != classes)
            throw new GraftException($"The {config.Name} classifier has {classes} classes and the labels file {labels.Length}.", "Pass a weight file with an ImageNet top.");
        var head = new HeadConfig(classes, classes, Dropout: 0);
        var model = new ModelConfig(ModelConfig.CurrentFormat, config.Name, backbone.WeightsId, backbone.Input, labels, head,
            "pretrained (ImageNet)", new FitOptions(Epochs: 0), null, DateTime.UtcNow) { Architecture = backbone.Architecture };
        return new TrainableClassifier(model, backbone, nn.Identity(), []).To(on);
    }

    /// <summary>
    /// Class probabilities (calibrated by the model's temperature) for a batch of preprocessed images [N,3,H,W]; with
    /// <paramref name="tta"/> the average over each image and its left-right mirror image.
    /// </summary>
    public Tensor Probabilities(Tensor images, bool tta = false)
    {
        var (probabilities, unknown, map) = Infer(images, tta, explain: false);
        unknown?.Dispose();
        return probabilities;
    }

    /// <summary>
    /// The calibrated probabilities; when the model has a detector, each image's out-of-distribution score (of the image,
    /// not its mirror); with <paramref name="explain"/>, the trunk's feature map the prediction came from.
    /// </summary>
    (Tensor Probabilities, Tensor? OodScores, Tensor? Map) Infer(Tensor images, bool tta, bool explain)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        Head.eval();
        var map = explain ? MapRunner.Features(images) : null;
        var features = map is null ? Trunk.Features(images) : HeadConfig.Pool(map, Config.Head.Pooling);
        var logits = Head.forward(features);
        bool multiLabel = Config.Head.MultiLabel;
        var p = Objective.Probabilities(TemperatureScaling.Apply(logits, Config.TemperatureScaling), multiLabel);
        if (tta) p = p.add(Objective.Probabilities(TemperatureScaling.Apply(Head.forward(Trunk.Features(images.flip(3).contiguous())), Config.TemperatureScaling), multiLabel)).div_(2);
        var scores = Detector?.Score(features, logits, Config.TemperatureScaling);
        return (p.MoveToOuterDisposeScope(), scores?.MoveToOuterDisposeScope(), map?.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Each file's heat map of the class at the same index of <paramref name="classes"/> (<see cref="GradCam"/>), over the
    /// network's input; null where the file cannot be decoded.
    /// </summary>
    public async Task<HeatMap?[]> HeatMapsAsync(IReadOnlyList<string> files, IReadOnlyList<int> classes, int batchSize = 32, CancellationToken cancel = default)
    {
        var maps = new HeatMap?[files.Count];
        var spec = Config.Input;
        await foreach (var batch in BatchPipeline.Batches(files, spec, batchSize, cancel: cancel))
        {
            if (batch.Count == 0) continue;
            using var scope = NewDisposeScope();
            var explained = GradCam.Maps(MapRunner.Features(TorchDevices.Images(batch.Pixels, batch.Count, spec.Size, Trunk.Device)), Head, Config.Head.Pooling,
                batch.Indices.Select(i => classes[i]).ToList());
            for (int k = 0; k < batch.Count; k++) maps[batch.Indices[k]] = explained[k];
        }
        return maps;
    }

    /// <summary>
    /// Predicts an encoded image held in memory (standard input, an upload); <paramref name="name"/> names it in the
    /// prediction and in errors, and its heat map's file in <paramref name="explain"/>. As <see cref="PredictAsync"/> otherwise.
    /// </summary>
    /// <exception cref="ImageDecodeException">The bytes are not an image Graft can decode.</exception>
    public Prediction Predict(ReadOnlySpan<byte> image, string name, int top, bool tta = false, bool acceptAll = false, string? explain = null)
    {
        var spec = Config.Input;
        var pixels = ImageLoader.Load(image, name, spec);
        using var scope = NewDisposeScope();
        var (predictions, maps) = Rank(TorchDevices.Images(pixels, 1, spec.Size, Trunk.Device), [name], top, tta, acceptAll, explain is not null);
        if (maps is null) return predictions[0];
        var png = HeatmapPath(explain!, name, new HashSet<string>());
        return predictions[0] with { Explanation = Explanation.Of(maps[0], ImageLoader.PlaceHeatMap(image, name, maps[0], spec.Resize, png), png) };
    }

    /// <summary>
    /// Predicts every file; files that cannot be decoded are returned in <paramref name="skipped"/>. A photo whose
    /// out-of-distribution score is above the model's threshold is <see cref="Prediction.Unknown"/>, unless
    /// <paramref name="acceptAll"/>. With <paramref name="explain"/> (a folder), each prediction gets its
    /// <see cref="Prediction.Explanation"/>: the heat map of its class, written there as a PNG over the photo.
    /// </summary>
    public async Task<IReadOnlyList<Prediction>> PredictAsync(IReadOnlyList<string> files, int top, List<SkippedImage> skipped,
        int batchSize = 32, IProgress<ImageProgress>? progress = null, bool tta = false, CancellationToken cancel = default, bool acceptAll = false,
        string? explain = null)
    {
        var heatmapNames = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var results = new List<Prediction>();
        var spec = Config.Input;
        int done = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await foreach (var batch in BatchPipeline.Batches(files, spec, batchSize, cancel: cancel))
        {
            skipped.AddRange(batch.Failures.Select(f => new SkippedImage(f.Path, f.Reason)));
            if (batch.Count > 0)
            {
                using var scope = NewDisposeScope();
                var (predictions, maps) = Rank(TorchDevices.Images(batch.Pixels, batch.Count, spec.Size, Trunk.Device), batch.Indices.Select(i => files[i]).ToList(),
                    top, tta, acceptAll, explain is not null);
                for (int k = 0; maps is not null && k < batch.Count; k++)
                {
                    var png = HeatmapPath(explain!, predictions[k].File, heatmapNames);
                    predictions[k] = predictions[k] with { Explanation = Explanation.Of(maps[k], ImageLoader.PlaceHeatMap(predictions[k].File, maps[k], spec.Resize, png), png) };
                }
                results.AddRange(predictions);
            }
            done += batch.Count + batch.Failures.Count;
            progress?.Report(new ImageProgress("predict", done, files.Count, done / Math.Max(clock.Elapsed.TotalSeconds, 1e-9)));
        }
        return results;
    }

    /// <summary>
    /// The predictions of a batch of preprocessed images named <paramref name="names"/>, unknown where the detector says so
    /// (unless <paramref name="acceptAll"/>); with <paramref name="explain"/>, the heat map of each one's class.
    /// </summary>
    (List<Prediction> Predictions, HeatMap[]? Maps) Rank(Tensor images, IReadOnlyList<string> names, int top, bool tta, bool acceptAll, bool explain)
    {
        var (p, ood, map) = Infer(images, tta, explain);
        var probabilities = p.cpu().data<float>().ToArray();
        var scores = ood?.cpu().data<float>().ToArray();
        int classes = Classes.Count;
        var predictions = Enumerable.Range(0, names.Count).Select(k => Prediction.Rank(names[k], probabilities.AsSpan(k * classes, classes), Classes, top,
            scores?[k], acceptAll ? null : Config.OutOfDistribution?.Threshold, Config.Thresholds)).ToList();
        var maps = map is null ? null : GradCam.Maps(map, Head, Config.Head.Pooling, predictions.Select(x => Classes.ToList().IndexOf(x.Label)).ToList());
        return (predictions, maps);
    }

    /// <summary>
    /// Where a photo's heat map goes in <paramref name="folder"/> (created if need be): its name as a PNG, numbered when
    /// another photo of the run has the same name.
    /// </summary>
    static string HeatmapPath(string folder, string file, HashSet<string> used)
    {
        Directory.CreateDirectory(folder);
        var stem = Path.GetFileNameWithoutExtension(file);
        var name = stem + ".png";
        for (int n = 2; !used.Add(name); n++) name = $"{stem}_{n}.png";
        return Path.Combine(folder, name);
    }

    /// <summary>
    /// The whole classifier as ONNX: images [N,3,S,S] normalized as <see cref="ModelConfig.Input"/> says, probabilities
    /// [N, classes] out, preprocessing and classes in the metadata (<see cref="OnnxExport.ClassifierModel"/>).
    /// </summary>
    /// <remarks>On an ONNX trunk, the head alone, on the trunk's features (input "features" [N, C]).</remarks>
    public byte[] ToOnnx() => OnnxExport.ClassifierModel(new ClassifierParts(Body, Head, Config.Head.Pooling, Config.Input, Classes, Config.Backbone, Config.Int8)
    {
        Temperature = Config.TemperatureScaling, Detector = Detector, FeaturesIn = Backbone.Onnx?.Channels, Thresholds = Config.Thresholds,
    });

    /// <summary>Writes <see cref="ToOnnx"/> to a file, atomically (a temporary file beside it, then a rename).</summary>
    /// <exception cref="GraftException">The trunk is an ONNX model: trunk and head are not one network.</exception>
    public void SaveOnnx(string path)
    {
        if (Backbone.Onnx is { } onnx)
            throw new GraftException($"This model's trunk is the ONNX model {onnx.Spec.File}, which keeps its own ONNX version and operators: Graft does not merge it and the head into one network.",
                "Use the .graft file with Graft.Inference (or graft predict, graft serve), which runs the trunk and the head in ONNX Runtime.");
        ZipEntries.WriteFileAtomically(path, file => file.Write(ToOnnx()));
    }

    // ---- the one model file ----

    const string ConfigEntry = ModelFile.ConfigEntry, WeightsEntry = "weights.safetensors", HistoryEntry = "history.json";

    public static readonly JsonSerializerOptions Json = new(ModelFile.Json) { WriteIndented = true };

    /// <summary>
    /// Writes the model file atomically: a temporary file beside it, then a rename. The config records the SHA-256
    /// of the weights it describes.
    /// </summary>
    public void Save(string path) => ZipEntries.WriteAtomically(path, Fill);

    /// <summary>The model file's bytes, as <see cref="Save"/> writes them.</summary>
    public byte[] ToBytes()
    {
        using var memory = new MemoryStream();
        using (var zip = new ZipArchive(memory, ZipArchiveMode.Create, leaveOpen: true)) Fill(zip);
        return memory.ToArray();
    }

    /// <summary>
    /// The entries: config, weights and history for training on and for this class; the whole network as ONNX
    /// (<see cref="ImageClassifier.OnnxEntry"/>) for the inference package, which needs no libtorch.
    /// </summary>
    void Fill(ZipArchive zip)
    {
        var tensors = new Dictionary<string, Tensor>();
        foreach (var (name, t) in Backbone.Trunk.state_dict()) tensors["trunk." + name] = t;
        foreach (var (name, t) in Head.state_dict()) tensors["head." + name] = t;
        foreach (var (name, t) in Detector?.state_dict() ?? []) tensors["ood." + name] = t;
        var weights = Safetensors.Write(tensors);
        var config = Config with { WeightsSha256 = Convert.ToHexStringLower(SHA256.HashData(weights)) };
        ZipEntries.Write(zip, ConfigEntry, JsonSerializer.SerializeToUtf8Bytes(config, Json));
        ZipEntries.Write(zip, WeightsEntry, weights);
        ZipEntries.Write(zip, HistoryEntry, JsonSerializer.SerializeToUtf8Bytes(History, Json));
        ZipEntries.Write(zip, ImageClassifier.OnnxEntry, ToOnnx());
        if (Backbone.Onnx is { } onnx) ZipEntries.Write(zip, OnnxTrunk.Entry, onnx.Model);
    }

    /// <summary>Most bytes a JSON entry of a model file (config, history) may take.</summary>
    public const int MaxJsonBytes = ModelFile.MaxJsonBytes;
    /// <summary>The largest input size a model may declare (as --input-size allows).</summary>
    public const int MaxInputSize = ModelFile.MaxInputSize;

    /// <summary>
    /// Loads a model file. Every field of its config is checked (known backbone, input size in range, positive std,
    /// as many labels as the head has outputs, a head that fits the trunk) and so are its weights against the config
    /// (the SHA-256 it records, names, shapes, finite values), before anything large is allocated: the weights entry
    /// may be no larger than the network the config declares. Anything wrong is one <see cref="GraftException"/> naming the file.
    /// </summary>
    /// <param name="device">Where the classifier runs (checked before the file is read); null: the CPU.</param>
    public static TrainableClassifier Load(string path, ComputeDevice? device = null)
    {
        var on = TorchDevices.Resolve(device ?? ComputeDevice.Cpu);
        if (!File.Exists(path))
            throw new GraftException($"Model file {path} does not exist.", "Train one with 'graft train DATA --out FILE', or pass a backbone name such as mobilenet_v2.");
        ZipArchive zip;
        try { zip = ZipFile.OpenRead(path); }
        catch (InvalidDataException)
        {
            throw new GraftException($"{path} is not a Graft model file.", "Pass a file written by 'graft train'.");
        }
        using (zip)
        {
            var config = ReadJson<ModelConfig>(zip, ConfigEntry, path)
                ?? throw new GraftException($"{path} has an empty config.", "Train the model again.");
            if (config.Format is not (ModelConfig.CurrentFormat or FirstFormat))
                throw new GraftException($"{path} has format '{config.Format}'; this Graft reads '{ModelConfig.CurrentFormat}'.", "Use the Graft version that wrote it, or train again.");
            Validate(config, path);
            bool firstFormat = config.Format == FirstFormat;
            if (firstFormat) config = FromFirstFormat(config);
            var history = ReadJson<List<EpochRecord>>(zip, HistoryEntry, path) ?? [];

            var backbone = config.OnnxTrunk is { } onnx ? LoadOnnxTrunk(zip, onnx, config.Input, on, path)
                : Backbone.Create(BackboneRegistry.Get(config.Backbone), config.Architecture ?? new(config.Input.Size), config.Input);
            nn.Module<Tensor, Tensor>? head = null;
            OodDetector? detector = null;
            try
            {
                CheckHeadFitsTrunk(config, backbone, path);
                head = config.Head.Build();
                detector = config.OutOfDistribution is { } ood ? new OodDetector(ood) : null;
                var expected = backbone.Trunk.state_dict().ToDictionary(kv => "trunk." + kv.Key, kv => kv.Value);
                foreach (var (name, t) in head.state_dict()) expected["head." + name] = t;
                foreach (var (name, t) in detector?.state_dict() ?? []) expected["ood." + name] = t;
                // The weights entry holds these tensors (4 or 8 bytes a number) and a JSON header naming them: no more.
                long declared = expected.Values.Sum(t => t.numel() * t.ElementSize) + 65536 + 512L * expected.Count;
                var data = ZipEntries.Read(zip, WeightsEntry, path, declared);
                if (config.WeightsSha256 is { } sha && !sha.Equals(Convert.ToHexStringLower(SHA256.HashData(data)), StringComparison.OrdinalIgnoreCase))
                    throw Inconsistent(path, "its weights are not the ones its config records (SHA-256 differs)");
                var weights = Safetensors.Read(data, path);
                if (firstFormat) weights = RenameFirstFormat(config, weights);
                try
                {
                    CheckWeights(path, expected, weights);
                    backbone.Trunk.load_state_dict(Prefixed(weights, "trunk."));
                    head.load_state_dict(Prefixed(weights, "head."));
                    detector?.load_state_dict(Prefixed(weights, "ood."));
                }
                catch (Exception e) when (e is not GraftException)
                {
                    // libtorch appends its C++ stack to the message: keep the first line.
                    throw new GraftException($"{path}: the weights do not fit the {config.Backbone} architecture ({GraftException.FirstLine(e.Message)}).", "Train the model again.");
                }
                finally
                {
                    foreach (var t in weights.Values) t.Dispose();
                }
                backbone.Trunk.eval();
                return new TrainableClassifier(config, backbone, head, history, detector).To(on);
            }
            catch
            {
                head?.Dispose();
                detector?.Dispose();
                backbone.Dispose();
                throw;
            }
        }
    }

    /// <summary>The ONNX trunk the file carries, checked against the SHA-256 its config records.</summary>
    static Backbone LoadOnnxTrunk(ZipArchive zip, OnnxTrunkSpec spec, ImageSpec input, Device device, string path)
    {
        var model = ZipEntries.Read(zip, OnnxTrunk.Entry, path, new FileInfo(path).Length * 20L); // as far as the inference package reads it
        if (!spec.Sha256.Equals(Convert.ToHexStringLower(SHA256.HashData(model)), StringComparison.OrdinalIgnoreCase))
            throw Inconsistent(path, "its ONNX trunk is not the one its config records (SHA-256 differs)");
        return Backbone.FromOnnx(new OnnxTrunk(model, spec.File, spec.Output, spec.Layout, input.Size, TorchDevices.CudaIndex(device)), input);
    }

    static T? ReadJson<T>(ZipArchive zip, string entry, string path)
    {
        try { return JsonSerializer.Deserialize<T>(ZipEntries.Read(zip, entry, path, MaxJsonBytes), Json); }
        catch (JsonException e)
        {
            throw new GraftException($"{path}: {entry} is not valid ({GraftException.FirstLine(e.Message)}).",
                "The file was edited or damaged: train the model again, or restore it from a backup.");
        }
    }

    static GraftException Inconsistent(string path, string what) =>
        new($"{path} is inconsistent: {what}.", "The file was edited or damaged: train the model again, or restore it from a backup.");

    /// <summary>Every field of a config, on its own: what the rest of Graft relies on without checking again.</summary>
    static void Validate(ModelConfig c, string path)
    {
        void Check([System.Diagnostics.CodeAnalysis.DoesNotReturnIf(false)] bool ok, Func<string> what) { if (!ok) throw Inconsistent(path, what()); }
        bool onnx = c.OnnxTrunk is not null;
        Check(c.Backbone is not null && (onnx ? c.Backbone == Backbones.Backbone.OnnxName : BackboneRegistry.Exists(c.Backbone)),
            () => $"its config names the backbone '{c.Backbone}', which this Graft does not know ({string.Join(", ", BackboneRegistry.All.Select(b => b.Name))})");
        Check(!onnx || (c.OnnxTrunk!.Output is { Length: > 0 } && c.OnnxTrunk.Sha256 is { Length: 64 } && Enum.IsDefined(c.OnnxTrunk.Layout)
                && c.Strategy == Strategy.FeatureExtraction.Name() && c.FeatureBlock is null && c.Precision is null or Precision.Float && c.Head.Pooling == Pooling.Gap),
            () => "its ONNX trunk's description is incomplete, or asks for what a frozen ONNX trunk cannot do");
        var inputProblem = ModelFile.InputProblem(c.Input, onnx ? 8 : BackboneRegistry.Get(c.Backbone!).MinInputSize, c.Backbone);
        Check(inputProblem is null, () => inputProblem!);
        Check(c.Classes is { Count: > 0 } && c.Classes.All(l => l is not null), () => "its config lists no class labels");
        Check(c.Head is not null, () => "its config has no head");
        Check(c.Head.Classes == c.Classes.Count, () => $"its config lists {c.Classes.Count} labels for a head of {c.Head.Classes} classes");
        Check(!c.Head.Binary || c.Head.Classes == 2, () => $"its binary head has {c.Head.Classes} classes instead of 2");
        Check(c.Thresholds is null ? !c.Head.MultiLabel : c.Head.MultiLabel && c.Thresholds.Count == c.Classes.Count && c.Thresholds.All(t => t is >= 0 and <= 1),
            () => $"its decision thresholds ({c.Thresholds?.Count ?? 0}) do not match its {(c.Head.MultiLabel ? "multi-label" : "single-label")} head of {c.Classes.Count} classes, each in [0, 1]");
        Check(c.Head.InputChannels > 0 && c.Head.Hidden is >= 0 and <= 1 << 16 && c.Head.Dropout is >= 0 and < 1,
            () => $"its head (inputs {c.Head.InputChannels}, hidden {c.Head.Hidden}, dropout {c.Head.Dropout}) is out of range");
        Check(c.Architecture is null || (c.Architecture.InputSize == c.Input.Size && (!c.Architecture.IncludeTop || c.Architecture.Classes is > 0 and <= 100_000)),
            () => $"its architecture (input {c.Architecture!.InputSize}, {c.Architecture.Classes} classes) does not match its input size {c.Input.Size}");
        Check(c.Training is { BatchSize: > 0 }, () => "its training settings are missing");
        Check(c.Precision is null or Precision.Float || (c.Strategy == Strategy.FeatureExtraction.Name() && c.Calibration is { Images: > 0, Ranges: not null }
                && c.Calibration.Ranges.Values.All(r => r is [var min, var max] && float.IsFinite(min) && float.IsFinite(max) && min <= max)),
            () => "its int8 trunk has no valid calibration (int8 is for feature extraction, with finite [min, max] ranges)");
        Check(c.TemperatureScaling is null || (double.IsFinite(c.TemperatureScaling.Temperature) && c.TemperatureScaling.Temperature > 0),
            () => $"its temperature {c.TemperatureScaling!.Temperature} is not a positive number");
        Check(c.OutOfDistribution is not { } o || (Enum.IsDefined(o.Score) && double.IsFinite(o.Threshold) && o.Acceptance is > 0 and <= 1
                && (!o.UsesFeatures || o.Channels > 0) && (o.Score != OodScore.Knn || (o.References > 0 && o.Neighbours is > 0 && o.Neighbours <= o.References))
                && (o.Score != OodScore.Mahalanobis || (o.Classes == c.Classes.Count && o.Rank > 0 && o.Rank < o.Channels))
                && o.StoredValues * sizeof(float) < Array.MaxLength),
            () => $"its out-of-distribution detector ({c.OutOfDistribution!.Score}, threshold {c.OutOfDistribution.Threshold}) is out of range");
        // The head's weights must fit in a model file (a byte array): no config may declare more.
        long headParameters = (long)c.Head.InputChannels * (c.Head.Hidden > 0 ? c.Head.Hidden : c.Head.Outputs) + (long)c.Head.Hidden * c.Head.Outputs;
        Check(headParameters * sizeof(float) < Array.MaxLength, () => $"its head declares {headParameters:N0} weights, more than a model file can hold");
    }

    /// <summary>The head takes what the trunk gives: its pooled channels (times the positions when flattened).</summary>
    static void CheckHeadFitsTrunk(ModelConfig c, Backbone backbone, string path)
    {
        if (c.FeatureBlock is { } block)
        {
            if (!backbone.Trunk.Blocks.Contains(block))
                throw Inconsistent(path, $"its features come from block '{block}', which the {c.Backbone} trunk lacks");
            backbone.TruncateAfter(block);
        }
        if (c.Int8 is { } int8 && backbone.Trunk.Nodes.FirstOrDefault(n => !int8.Ranges.ContainsKey(n.Name)) is { } uncalibrated)
            throw Inconsistent(path, $"its int8 calibration has no range for layer {uncalibrated.Name}");
        if (backbone.HasTop) return; // a pretrained ImageNet classifier: the network ends in its own classifier
        var (channels, positions) = backbone.FeatureShape(c.Input.Size);
        int features = c.Head.Pooling == Pooling.Gap ? channels : channels * positions;
        if (c.Head.InputChannels != features)
            throw Inconsistent(path, $"its head takes {c.Head.InputChannels} features and the {c.Backbone} trunk at {c.Input.Size}x{c.Input.Size} gives {features}");
        if (c.Head.SqueezeExcite && c.Head.TrunkChannels != channels)
            throw Inconsistent(path, $"its squeeze-and-excitation block takes {c.Head.TrunkChannels} channels and the trunk gives {channels}");
        if (c.OutOfDistribution is { UsesFeatures: true } ood && ood.Channels != channels)
            throw Inconsistent(path, $"its out-of-distribution detector compares {ood.Channels} features and the trunk gives {channels}");
    }

    /// <summary>The file's tensors are exactly the network's: the same names, shapes and types, and finite.</summary>
    static void CheckWeights(string path, Dictionary<string, Tensor> expected, Dictionary<string, Tensor> weights)
    {
        static string Shape(Tensor t) => "[" + string.Join(", ", t.shape) + "]";
        foreach (var (name, want) in expected)
        {
            if (!weights.TryGetValue(name, out var have))
                throw Inconsistent(path, $"its weights lack {name}, which its config's network has");
            if (!have.shape.SequenceEqual(want.shape) || have.dtype != want.dtype)
                throw Inconsistent(path, $"its weight {name} is {have.dtype} {Shape(have)} where its config's network has {want.dtype} {Shape(want)}");
            if (have.is_floating_point() && !have.isfinite().all().item<bool>())
                throw Inconsistent(path, $"its weight {name} holds NaN or infinite values");
        }
        if (weights.Keys.FirstOrDefault(k => !expected.ContainsKey(k)) is { } extra)
            throw Inconsistent(path, $"its weights hold {extra}, which its config's network does not have");
    }

    const string FirstFormat = "graft-model/1";

    /// <summary>
    /// Models written before trunks were Keras layer graphs: MobileNetV2 from TFLite (batch norm folded) as units
    /// <c>block_1.expand.conv.weight</c>, and the scratch CNN as <c>block_1.conv.weight</c>. Their tensors are renamed
    /// to the Keras layers they are (<c>block_1_expand.weight</c>, <c>conv2d_1.weight</c>), so they load and predict as before.
    /// </summary>
    static ModelConfig FromFirstFormat(ModelConfig config) =>
        config with { Format = ModelConfig.CurrentFormat, Architecture = new(config.Input.Size, FoldedBatchNorm: config.Backbone != "small_cnn") };

    static Dictionary<string, Tensor> RenameFirstFormat(ModelConfig config, Dictionary<string, Tensor> weights)
    {
        bool scratch = config.Backbone == "small_cnn";
        string Rename(string name)
        {
            if (!name.StartsWith("trunk.", StringComparison.Ordinal)) return name;
            var parts = name["trunk.".Length..].Split('.');
            if (scratch) return $"trunk.conv2d_{parts[0]["block_".Length..]}.{parts[^1]}"; // block_N.conv.weight
            // Conv1.conv.weight, Conv_1.conv.weight; expanded_conv.depthwise.conv.weight; block_N.expand.conv.bias
            return parts.Length == 3 ? $"trunk.{parts[0]}.{parts[^1]}" : $"trunk.{parts[0]}_{parts[1]}.{parts[^1]}";
        }
        return weights.ToDictionary(kv => Rename(kv.Key), kv => kv.Value);
    }

    static Dictionary<string, Tensor> Prefixed(Dictionary<string, Tensor> all, string prefix) =>
        all.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value);

    public void Dispose()
    {
        _trunk?.Dispose();
        _map?.Dispose();
        Detector?.Dispose();
        Head.Dispose();
        Backbone.Dispose();
    }
}
