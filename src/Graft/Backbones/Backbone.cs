using Graft.Backbones.Architectures;
using Graft.Data;
using Graft.Weights;
using Graft.Imaging;
using Graft.Inference;
using static TorchSharp.torch;

namespace Graft.Backbones;

/// <summary>
/// A backbone ready to run: the network as built (with the ImageNet top when asked), its trunk (image → feature
/// map: the network up to the registry's feature layer) and the input it expects. Built from a registry config,
/// with pretrained weights from a file, or empty (to be filled from a saved model).
/// </summary>
public sealed class Backbone : IDisposable
{
    public BackboneConfig Config { get; }
    public ArchitectureOptions Architecture { get; }
    public Graph Network { get; }
    public Graph Trunk { get; private set; }
    public ImageSpec Input { get; }
    /// <summary>SHA-256 of the weight file the trunk came from ("none" when untrained); part of feature-cache keys.</summary>
    public string WeightsId { get; }
    /// <summary>How the weights were matched to layers, for the log (null when untrained).</summary>
    public string? LoadReport { get; }
    /// <summary>
    /// The ONNX image model that is this backbone's trunk, frozen (<see cref="FromOnnx"/>); null when the trunk is a layer
    /// graph. An ONNX trunk has no layers here: <see cref="Network"/> and <see cref="Trunk"/> are its input alone.
    /// </summary>
    internal OnnxTrunk? Onnx { get; private init; }

    /// <summary>The backbone name a model on an ONNX trunk records (its file and output are in <see cref="Models.ModelConfig.OnnxTrunk"/>).</summary>
    public const string OnnxName = "onnx";

    Backbone(BackboneConfig config, ArchitectureOptions architecture, Graph network, ImageSpec input, string weightsId, string? report)
    {
        Config = config; Architecture = architecture; Network = network; Input = input; WeightsId = weightsId; LoadReport = report;
        Trunk = architecture.IncludeTop ? network.Through(config.FeatureLayerWithTop ?? config.FeatureLayer) : network;
        // Pretrained parts start frozen; a strategy that fine-tunes unfreezes what it trains.
        foreach (var p in network.parameters()) p.requires_grad = false;
        network.eval();
    }

    /// <summary>The network with the ImageNet top, when it was built with one.</summary>
    public bool HasTop => Architecture.IncludeTop;

    /// <summary>An untrained backbone of the config's architecture (weights come from elsewhere).</summary>
    public static Backbone Create(BackboneConfig config, ArchitectureOptions architecture, ImageSpec input)
    {
        Engine.TorchRuntime.EnsureInitialized();
        return new Backbone(config, architecture, config.Build(architecture), input, "none", null);
    }

    /// <summary>
    /// The backbone with pretrained weights: from <paramref name="weightsFile"/> when given (checked by structure), else
    /// from the registry's sources for the input size (checked by hash). <paramref name="includeTop"/> adds Keras's
    /// ImageNet classifier, which the file must then hold.
    /// </summary>
    public static Backbone LoadPretrained(BackboneConfig config, AssetResolver resolver, bool includeTop = false, int? inputSize = null,
        string? weightsFile = null)
    {
        Engine.TorchRuntime.EnsureInitialized();
        int size = inputSize ?? config.InputSize;
        if (size < config.MinInputSize)
            throw new GraftException($"{config.Name} needs an input of at least {config.MinInputSize}x{config.MinInputSize}; {size} was asked.",
                $"Use --input-size {config.MinInputSize} or more.");
        string path = weightsFile ?? ResolveSource(config, resolver, size, includeTop);
        var weights = WeightReaders.Read(path);
        // A file made for one input size (TFLite) runs at that size unless another is asked for.
        if (inputSize is null && weights.InputSize is { } fixedSize) size = fixedSize;
        var architecture = new ArchitectureOptions(size, includeTop, includeTop ? Classes(weights, path) : 1000, weights.BatchNormFolded);
        if (config.Filter is { } filter) (weights, architecture) = filter(weights, architecture);
        var network = config.Build(architecture);
        string report;
        try { report = WeightLoading.Fill(network, weights); }
        catch { network.Dispose(); throw; }
        var input = weights.InputMapping is { } m ? ImageSpec.Uniform(size, m.Mean, m.Std) : config.Spec(size);
        return new Backbone(config, architecture, network, input, AssetResolver.Sha256Of(path), report);
    }

    /// <summary>
    /// Any ONNX image model as a frozen trunk: the ONNX file at <paramref name="path"/>, with what its metadata does not
    /// say (output, layout, preprocessing; the input size when it takes any) taken from <paramref name="options"/> and
    /// <paramref name="inputSize"/>.
    /// </summary>
    /// <param name="device">Where it runs; null: the CPU.</param>
    /// <exception cref="GraftException">The file is missing or not an image model, or something it needs is not said.</exception>
    public static Backbone FromOnnx(string path, OnnxBackboneOptions options, int? inputSize = null, ComputeDevice? device = null)
    {
        if (!File.Exists(path)) throw new GraftException($"The ONNX model {path} does not exist.", "Pass the path of an .onnx file.");
        var onnx = new OnnxTrunk(File.ReadAllBytes(path), Path.GetFileName(path), options.Output, options.Layout, inputSize,
            Engine.TorchDevices.CudaIndex(Engine.TorchDevices.Resolve(device ?? ComputeDevice.Cpu)));
        try { return FromOnnx(onnx, OnnxInput(onnx, options)); }
        catch { onnx.Dispose(); throw; }
    }

    /// <summary>A backbone around an ONNX trunk already open (taken over: disposed with the backbone), fed as <paramref name="input"/> says.</summary>
    internal static Backbone FromOnnx(OnnxTrunk onnx, ImageSpec input)
    {
        Engine.TorchRuntime.EnsureInitialized();
        var config = new BackboneConfig
        {
            Name = OnnxName, Description = onnx.Spec.File, InputSize = onnx.Size, FeatureLayer = "input", Labels = null,
            Build = a => new Graph([new GraphNode("input", null, [], "input", 3, a.InputSize)]),
        };
        var architecture = new ArchitectureOptions(onnx.Size);
        return new Backbone(config, architecture, config.Build(architecture), input, onnx.Spec.Sha256,
            $"{onnx.Spec.File} as a frozen trunk: output {onnx.Spec.Output} ({onnx.Channels} features), {onnx.Spec.Layout.ToString().ToUpperInvariant()} input") { Onnx = onnx };
    }

    /// <summary>
    /// How an ONNX trunk wants its pixels: as asked (a Keras mode, or mean and std per RGB channel), else as its metadata
    /// says ("preprocess" naming a Keras mode, or "mean", "std" and "channel_order" as Graft's own exports write them).
    /// </summary>
    static ImageSpec OnnxInput(OnnxTrunk onnx, OnnxBackboneOptions options)
    {
        int size = onnx.Size;
        if (options.Preprocess is not null && (options.Mean ?? options.Std) is not null)
            throw new GraftException("Both a preprocessing mode and a mean and std were given; they say the same thing.", "Give one of them.");
        static float[]? Triple(IReadOnlyList<float>? v, string what) => v switch
        {
            null => null,
            { Count: 3 } when v.All(float.IsFinite) => [.. v],
            _ => throw new GraftException($"The {what} has {v.Count} numbers; it takes one per channel (R, G, B).", "Give three numbers."),
        };
        if (options.Preprocess is { } asked) return BackboneConfig.Spec(asked, size);
        var (mean, std) = (Triple(options.Mean, "mean"), Triple(options.Std, "std"));
        if (mean is not null || std is not null) return new ImageSpec(size, mean ?? [0, 0, 0], std ?? [1, 1, 1]);
        var meta = onnx.Metadata;
        if (meta.GetValueOrDefault("preprocess") is { } mode && Enum.TryParse<Preprocessing>(mode, ignoreCase: true, out var named)) return BackboneConfig.Spec(named, size);
        if (meta.GetValueOrDefault("mean") is { } m && meta.GetValueOrDefault("std") is { } s
            && System.Text.Json.JsonSerializer.Deserialize<float[]>(m) is [_, _, _] metaMean && System.Text.Json.JsonSerializer.Deserialize<float[]>(s) is [_, _, _] metaStd)
            return new ImageSpec(size, metaMean, metaStd) { Bgr = meta.GetValueOrDefault("channel_order") == "BGR" };
        throw new GraftException($"{onnx.Spec.File} does not say how it wants its pixels.",
            "Give its preprocessing: a Keras mode (caffe, tf, torch) or the mean and std per channel.");
    }

    static string ResolveSource(BackboneConfig config, AssetResolver resolver, int size, bool includeTop)
    {
        if (!config.Pretrained)
            throw new GraftException($"{config.Name} has no pretrained weights.", "Use it with --strategy scratch, or pick a pretrained backbone (graft models).");
        var source = config.SourceFor(resolver, size, includeTop)
            ?? throw new GraftException($"{config.Name} has no weight file with the ImageNet top.", ["Use it without the top (feature extraction)."], CallerFix.WeightsFile);
        // A file the user already has is always a fix, and only the caller knows how it is passed.
        try { return resolver.Resolve(source.File); }
        catch (GraftException e) when (e.CallerFix == CallerFix.None) { throw new GraftException(e.Problem, e.Fixes, CallerFix.WeightsFile); }
    }

    /// <summary>The number of classes of the file's classifier: its last weighted layer's bias.</summary>
    static int Classes(NamedWeights weights, string path) =>
        weights.Layers.LastOrDefault(l => l.Arrays.Count > 0)?.Arrays[^1] is { Shape.Length: 1 } bias
            ? bias.Shape[0]
            : throw new GraftException($"{path} has no classifier on top.", "Pass a weight file that includes the top, or use the network without it.");

    /// <summary>
    /// Cuts the trunk after the named block, so features come from there: earlier blocks are more generic,
    /// which suits data far from ImageNet (the "small and different" case).
    /// </summary>
    public void TruncateAfter(string block)
    {
        var last = Trunk.Nodes.LastOrDefault(n => n.Block == block)
            ?? throw new GraftException($"The {Config.Name} trunk has no block '{block}'.", $"Use one of: {string.Join(", ", Trunk.Blocks)}.");
        Trunk = Trunk.Through(last.Name);
    }

    /// <summary>Names of the trunk's blocks, input to output (the unit of unfreezing and truncation).</summary>
    public IReadOnlyList<string> BlockNames => Trunk.Blocks;

    /// <summary>The trunk's output for an input size: channels and positions (height x width).</summary>
    public (int Channels, int Positions) FeatureShape(int inputSize)
    {
        if (Onnx is { } onnx) return (onnx.Channels, 1); // pooled by the trunk itself
        if (inputSize == Trunk.InputSize) return (Trunk.Output.Channels, Trunk.Output.Size * Trunk.Output.Size);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var shape = Trunk.forward(zeros(1, 3, inputSize, inputSize, device: Engine.TorchDevices.Of(Trunk))).shape;
        return ((int)shape[1], (int)(shape[2] * shape[3]));
    }

    public void Dispose()
    {
        Network.Dispose();
        Onnx?.Dispose();
    }
}
