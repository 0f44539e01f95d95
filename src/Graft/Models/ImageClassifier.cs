using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Serialization;
using Graft.Backbones;
using Graft.Backbones.Architectures;
using Graft.Data;
using Graft.Engine;
using Graft.Training;
using Graft.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Graft.Models;

public sealed record DatasetInfo(string Root, string Layout, int TrainImages, int ValidationImages, int SkippedImages);

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

    /// <summary>Version 2: trunks are Keras layer graphs (weights named by Keras layer); version 1 held MobileNetV2 units.</summary>
    public const string CurrentFormat = "graft-model/2";

    /// <summary>Identifies the features the trunk produces; the bottleneck cache folder is derived from it.</summary>
    public string TrunkKey => $"{Backbone}|{BackboneWeightsSha256}|{Input.Key}|{Head.Pooling}|{FeatureBlock ?? "all"}";
}

public sealed record ClassProbability(string Label, float Probability);

public sealed record Prediction(string File, string Label, float Confidence, IReadOnlyList<ClassProbability> Top);

/// <summary>
/// A trained classifier: the backbone's trunk, global average pooling and the grafted head, with its
/// config and training history. Saved as one zip file (config.json, weights.safetensors, history.json),
/// written atomically.
/// </summary>
public sealed class ImageClassifier : IDisposable
{
    public ModelConfig Config { get; }
    public Backbone Backbone { get; }
    public nn.Module<Tensor, Tensor> Head { get; }
    public IReadOnlyList<EpochRecord> History { get; }
    public IReadOnlyList<string> Classes => Config.Classes;
    /// <summary>
    /// The network that runs before the head: the trunk; for a pretrained ImageNet classifier, the whole network
    /// with its top (its head then passes the logits through).
    /// </summary>
    public Graph Body => Backbone.HasTop ? Backbone.Network : Backbone.Trunk;

    /// <summary>Runs the frozen <see cref="Body"/> (built on first use from its weights at that time).</summary>
    public ITrunkRunner Trunk => _trunk ??= TrunkRunners.Create(Body, Config.Input.Size, Config.Head.Pooling);
    ITrunkRunner? _trunk;

    /// <summary>
    /// Disposes the trunk runner; the next inference builds one from the trunk's weights at that time
    /// (call after training changed them, or when handing the modules to another classifier).
    /// </summary>
    public void ResetTrunkRunner()
    {
        _trunk?.Dispose();
        _trunk = null;
    }

    public ImageClassifier(ModelConfig config, Backbone backbone, nn.Module<Tensor, Tensor> head, IReadOnlyList<EpochRecord> history)
    {
        Config = config; Backbone = backbone; Head = head; History = history;
        Head.eval();
    }

    /// <summary>
    /// The pretrained network with its own ImageNet classifier: Keras's 1000 classes, or 1001 with "background"
    /// first (TF-slim and Coral files). <paramref name="weightsFile"/>: the user's own file with Keras's top.
    /// </summary>
    public static ImageClassifier PretrainedImageNet(string backboneName, AssetResolver resolver, string? weightsFile = null, int? inputSize = null)
    {
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
        return new ImageClassifier(model, backbone, nn.Identity(), []);
    }

    /// <summary>
    /// Class probabilities for a batch of preprocessed images [N,3,H,W]; with <paramref name="tta"/> the average
    /// over each image and its left-right mirror image.
    /// </summary>
    public Tensor Probabilities(Tensor images, bool tta = false)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        Head.eval();
        var p = Objective.Probabilities(Head.forward(Trunk.Features(images)));
        if (tta) p = p.add(Objective.Probabilities(Head.forward(Trunk.Features(images.flip(3).contiguous())))).div_(2);
        return p.MoveToOuterDisposeScope();
    }

    /// <summary>Predicts every file; files that cannot be decoded are returned in <paramref name="skipped"/>.</summary>
    public async Task<IReadOnlyList<Prediction>> PredictAsync(IReadOnlyList<string> files, int top, List<SkippedImage> skipped,
        int batchSize = 32, IProgress<ImageProgress>? progress = null, bool tta = false, CancellationToken cancel = default)
    {
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
                var probabilities = Probabilities(tensor(batch.Pixels, [batch.Count, 3, spec.Size, spec.Size]), tta).data<float>().ToArray();
                int classes = Classes.Count;
                for (int k = 0; k < batch.Count; k++)
                    results.Add(ToPrediction(files[batch.Indices[k]], probabilities.AsSpan(k * classes, classes), top));
            }
            done += batch.Count + batch.Failures.Count;
            progress?.Report(new ImageProgress("predict", done, files.Count, done / Math.Max(clock.Elapsed.TotalSeconds, 1e-9)));
        }
        return results;
    }

    public Prediction ToPrediction(string file, ReadOnlySpan<float> row, int top)
    {
        var probabilities = row.ToArray();
        var ranked = Enumerable.Range(0, probabilities.Length).OrderByDescending(i => probabilities[i]).ThenBy(i => i)
            .Take(Math.Max(1, top)).ToList();
        var list = ranked.Select(i => new ClassProbability(Classes[i], probabilities[i])).ToList();
        return new Prediction(file, list[0].Label, list[0].Probability, list);
    }

    // ---- the one model file ----

    const string ConfigEntry = "config.json", WeightsEntry = "weights.safetensors", HistoryEntry = "history.json";

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, // a checkpoint's best loss starts at infinity
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    /// <summary>Writes the model file atomically: a temporary file beside it, then a rename.</summary>
    public void Save(string path) => ZipEntries.WriteAtomically(path, zip =>
    {
        ZipEntries.Write(zip, ConfigEntry, JsonSerializer.SerializeToUtf8Bytes(Config, Json));
        var tensors = new Dictionary<string, Tensor>();
        foreach (var (name, t) in Backbone.Trunk.state_dict()) tensors["trunk." + name] = t;
        foreach (var (name, t) in Head.state_dict()) tensors["head." + name] = t;
        ZipEntries.Write(zip, WeightsEntry, Safetensors.Write(tensors));
        ZipEntries.Write(zip, HistoryEntry, JsonSerializer.SerializeToUtf8Bytes(History, Json));
    });

    public static ImageClassifier Load(string path)
    {
        if (!File.Exists(path))
            throw new GraftException($"Model file {path} does not exist.", "Train one with 'graft train DATA --out FILE', or pass a backbone name such as mobilenet_v2.");
        TorchRuntime.EnsureInitialized();
        ZipArchive zip;
        try { zip = ZipFile.OpenRead(path); }
        catch (InvalidDataException)
        {
            throw new GraftException($"{path} is not a Graft model file.", "Pass a file written by 'graft train'.");
        }
        using (zip)
        {
            var config = JsonSerializer.Deserialize<ModelConfig>(ZipEntries.Read(zip, ConfigEntry, path), Json)
                ?? throw new GraftException($"{path} has an empty config.", "Train the model again.");
            if (config.Format is not (ModelConfig.CurrentFormat or FirstFormat))
                throw new GraftException($"{path} has format '{config.Format}'; this Graft reads '{ModelConfig.CurrentFormat}'.", "Use the Graft version that wrote it, or train again.");
            var history = JsonSerializer.Deserialize<List<EpochRecord>>(ZipEntries.Read(zip, HistoryEntry, path), Json) ?? [];
            var weights = Safetensors.Read(ZipEntries.Read(zip, WeightsEntry, path), path);
            if (config.Format == FirstFormat) (config, weights) = FromFirstFormat(config, weights);

            var backbone = Backbone.Create(BackboneRegistry.Get(config.Backbone), config.Architecture ?? new(config.Input.Size), config.Input);
            if (config.FeatureBlock is { } block) backbone.TruncateAfter(block);
            var head = config.Head.Build();
            try
            {
                backbone.Trunk.load_state_dict(Prefixed(weights, "trunk."));
                head.load_state_dict(Prefixed(weights, "head."));
            }
            catch (Exception e) when (e is not GraftException)
            {
                throw new GraftException($"{path}: the weights do not fit the {config.Backbone} architecture ({e.Message}).", "Train the model again.");
            }
            finally
            {
                foreach (var t in weights.Values) t.Dispose();
            }
            backbone.Trunk.eval();
            return new ImageClassifier(config, backbone, head, history);
        }
    }

    const string FirstFormat = "graft-model/1";

    /// <summary>
    /// Models written before trunks were Keras layer graphs: MobileNetV2 from TFLite (batch norm folded) as units
    /// <c>block_1.expand.conv.weight</c>, and the scratch CNN as <c>block_1.conv.weight</c>. Their tensors are renamed
    /// to the Keras layers they are (<c>block_1_expand.weight</c>, <c>conv2d_1.weight</c>), so they load and predict as before.
    /// </summary>
    static (ModelConfig, Dictionary<string, Tensor>) FromFirstFormat(ModelConfig config, Dictionary<string, Tensor> weights)
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
        var renamed = weights.ToDictionary(kv => Rename(kv.Key), kv => kv.Value);
        return (config with { Format = ModelConfig.CurrentFormat, Architecture = new(config.Input.Size, FoldedBatchNorm: !scratch) }, renamed);
    }

    static Dictionary<string, Tensor> Prefixed(Dictionary<string, Tensor> all, string prefix) =>
        all.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value);

    public void Dispose()
    {
        _trunk?.Dispose();
        Head.Dispose();
        Backbone.Dispose();
    }
}
