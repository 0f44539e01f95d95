using System.IO.Compression;
using System.Text.Json;
using Graft.Imaging;
using Graft.Inference;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Graft;

/// <summary>What a model file says about itself: how images are prepared, which classes it knows, how it was made.</summary>
/// <param name="Backbone">The pretrained network the classifier was grafted onto (e.g. "mobilenet_v2").</param>
/// <param name="Strategy">How it was trained: "feature-extraction", "fine-tune" or "scratch".</param>
/// <param name="Input">Input size and the pixel mapping applied before the network (as in training).</param>
/// <param name="Classes">The class names, in the order of the network's outputs.</param>
/// <param name="CreatedUtc">When the model was trained.</param>
public sealed record ModelInfo(string Backbone, string Strategy, ImageSpec Input, IReadOnlyList<string> Classes, DateTime CreatedUtc)
{
    /// <summary>The temperature its probabilities are calibrated with (already applied in them); null when they are not calibrated.</summary>
    public double? Temperature { get; init; }
    /// <summary>How it says "none of these"; null when every photo gets a class (models trained before it, or on too few validation images).</summary>
    public UnknownDetection? Unknown { get; init; }
    /// <summary>
    /// A multi-label model's decision threshold on each class's probability (in class order; each prediction's
    /// <see cref="Prediction.Labels"/> are the classes at or above theirs); null for single-label models.
    /// </summary>
    public IReadOnlyList<double>? Thresholds { get; init; }
    /// <summary>Whether an image may carry several classes or none (independent sigmoid probabilities, one threshold each).</summary>
    public bool MultiLabel => Thresholds is not null;
}

/// <summary>How a model tells photos like its training images from others.</summary>
/// <param name="Score">The score: "msp", "energy", "knn" or "mahalanobis" (higher: less like the training images).</param>
/// <param name="Threshold">A photo scoring above it is unknown.</param>
/// <param name="Acceptance">The share of the validation images (photos like the training ones) that stayed known when it was set.</param>
public sealed record UnknownDetection(string Score, double Threshold, double Acceptance);

/// <summary>
/// A trained image classifier, loaded from a <c>.graft</c> file and run by ONNX Runtime: no libtorch needed.
/// Predicting is thread-safe (one model can serve many requests at once); dispose it to free the native session.
/// It runs on the CPU unless loaded onto a CUDA GPU (<see cref="ComputeDevice"/>; that needs ONNX Runtime's GPU package).
/// </summary>
/// <example>
/// <code>
/// using var model = ImageClassifier.Load("photos.graft");
/// Prediction p = model.Predict("cat.jpg");
/// Console.WriteLine($"{p.Label} {p.Confidence:P0}");
/// </code>
/// </example>
public sealed class ImageClassifier : IDisposable
{
    /// <summary>The model file's entry holding the whole network (trunk, head, softmax) as ONNX.</summary>
    public const string OnnxEntry = "model.onnx";

    readonly byte[] _file;
    readonly SessionOptions _options;
    readonly InferenceSession _session;
    /// <summary>The ONNX trunk the network's head runs on (null: the network takes the images itself).</summary>
    readonly OnnxTrunk? _trunk;

    /// <summary>How the model prepares images, its classes and how it was made.</summary>
    public ModelInfo Info { get; }

    /// <summary>The class names, in the order of the probabilities.</summary>
    public IReadOnlyList<string> Classes => Info.Classes;

    /// <summary>Where the network runs.</summary>
    public ComputeDevice Device { get; }

    /// <summary>
    /// Every photo gets a class: <see cref="Prediction.Unknown"/> stays false (the score is still given). Off by default:
    /// a photo unlike the training images is unknown.
    /// </summary>
    public bool AcceptAll { get; set; }

    /// <summary>Whether <see cref="Explain(string, string?, int)"/> can compute heat maps in ONNX Runtime (a linear head on pooled features, written by this Graft or later).</summary>
    public bool CanExplain => _session.OutputMetadata.ContainsKey(ModelFile.ClassActivationOutput);

    bool HasOodScore => _session.OutputMetadata.ContainsKey(ModelFile.OodScoreOutput);

    ImageClassifier(byte[] file, string name, ComputeDevice? device)
    {
        _file = file;
        Device = device ?? ComputeDevice.Cpu;
        byte[] onnx;
        try
        {
            using var zip = new ZipArchive(new MemoryStream(file), ZipArchiveMode.Read);
            (Info, var trunkSpec) = ReadInfo(ZipEntries.Read(zip, ModelFile.ConfigEntry, name, ModelFile.MaxJsonBytes), name);
            onnx = ZipEntries.Read(zip, OnnxEntry, name, file.Length * 20L);
            if (trunkSpec is not null) _trunk = OpenTrunk(ZipEntries.Read(zip, OnnxTrunk.Entry, name, file.Length * 20L), trunkSpec, Info.Input.Size, name);
        }
        catch (InvalidDataException e)
        {
            throw new GraftException($"{name} is not a Graft model file ({e.Message}).", "Pass a .graft file written by graft train.");
        }
        _options = ModelFile.SessionOptions(Device.CudaIndex);
        try
        {
            _session = new InferenceSession(onnx, _options);
        }
        catch (OnnxRuntimeException e)
        {
            _options.Dispose();
            _trunk?.Dispose();
            throw new GraftException($"{name}: its ONNX network does not load ({GraftException.FirstLine(e.Message)}).", "Train or export the model again.");
        }
        long outputs = _session.OutputMetadata[ModelFile.ProbabilitiesOutput].Dimensions[^1];
        if (outputs != Classes.Count)
        {
            Dispose();
            throw new GraftException($"{name} names {Classes.Count} classes for {outputs} outputs.", "The file is damaged: train or export the model again.");
        }
    }

    /// <summary>The ONNX trunk the file carries, checked against the SHA-256 its config records.</summary>
    OnnxTrunk OpenTrunk(byte[] model, OnnxTrunkSpec spec, int size, string name)
    {
        if (!spec.Sha256.Equals(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(model)), StringComparison.OrdinalIgnoreCase))
            throw new GraftException($"{name}: its ONNX trunk is not the one its config records (SHA-256 differs).", "The file is damaged: train the model again.");
        return new OnnxTrunk(model, spec.File, spec.Output, spec.Layout, size, Device.CudaIndex);
    }

    /// <summary>Loads a model file written by <c>graft train</c> or <see cref="Save"/>.</summary>
    /// <param name="path">The model file.</param>
    /// <param name="device">Where the network runs; null: the CPU.</param>
    /// <exception cref="GraftException">The file is missing, damaged, or from a Graft without inference-only support; or the device cannot be used here.</exception>
    public static ImageClassifier Load(string path, ComputeDevice? device = null)
    {
        byte[] file;
        try
        {
            file = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new GraftException($"{path}: {e.Message}", "Pass a .graft file written by graft train.");
        }
        return new ImageClassifier(file, path, device);
    }

    /// <summary>Loads a model file from a stream (read to its end; the stream stays open).</summary>
    /// <param name="stream">The model file's bytes.</param>
    /// <param name="name">Names the model in errors.</param>
    /// <param name="device">Where the network runs; null: the CPU.</param>
    public static ImageClassifier Load(Stream stream, string name = "model stream", ComputeDevice? device = null)
    {
        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        return new ImageClassifier(memory.ToArray(), name, device);
    }

    /// <summary>Loads a model file held in memory.</summary>
    /// <param name="file">The model file's bytes.</param>
    /// <param name="name">Names the model in errors.</param>
    /// <param name="device">Where the network runs; null: the CPU.</param>
    public static ImageClassifier FromBytes(byte[] file, string name = "model", ComputeDevice? device = null) => new(file, name, device);

    /// <summary>Writes the model file (atomically: a temporary file, then a rename).</summary>
    /// <param name="path">Where; an existing file is replaced.</param>
    public void Save(string path) => ZipEntries.WriteFileAtomically(path, file => file.Write(_file));

    /// <summary>Predicts one image file.</summary>
    /// <param name="path">A JPEG, PNG, BMP, GIF or WebP file.</param>
    /// <param name="top">How many classes <see cref="Prediction.Top"/> lists.</param>
    /// <exception cref="GraftException">The file cannot be read or decoded (the message names it).</exception>
    public Prediction Predict(string path, int top = 5) => Run(ImageLoader.Load(path, Info.Input), [path], top)[0];

    /// <summary>Predicts an encoded image read from a stream (an upload, a download); the stream stays open.</summary>
    /// <param name="image">The encoded image (JPEG, PNG, BMP, GIF or WebP).</param>
    /// <param name="name">Names the image in the prediction and in errors.</param>
    /// <param name="top">How many classes <see cref="Prediction.Top"/> lists.</param>
    public Prediction Predict(Stream image, string name = "stream", int top = 5)
    {
        using var memory = new MemoryStream();
        image.CopyTo(memory);
        return Predict(memory.GetBuffer().AsSpan(0, (int)memory.Length), name, top);
    }

    /// <summary>Predicts an encoded image held in memory.</summary>
    /// <param name="image">The encoded image (JPEG, PNG, BMP, GIF or WebP).</param>
    /// <param name="name">Names the image in the prediction and in errors.</param>
    /// <param name="top">How many classes <see cref="Prediction.Top"/> lists.</param>
    public Prediction Predict(ReadOnlySpan<byte> image, string name = "image", int top = 5) =>
        Run(ImageLoader.Load(image, name, Info.Input), [name], top)[0];

    /// <summary>
    /// Decodes an encoded image and prepares it as this model's network expects (resized, normalised), without running
    /// the network: a server prepares each request's image on its own thread, then predicts many at once with
    /// <see cref="Predict(IReadOnlyList{PreparedImage}, int)"/>.
    /// </summary>
    /// <param name="image">The encoded image (JPEG, PNG, BMP, GIF or WebP).</param>
    /// <param name="name">Names the image in the prediction and in errors.</param>
    /// <exception cref="ImageDecodeException">The bytes are not an image Graft decodes, or one larger than the decoder's pixel limit.</exception>
    public PreparedImage Prepare(ReadOnlySpan<byte> image, string name) => new(name, Info.Input, ImageLoader.Load(image, name, Info.Input));

    /// <summary>Predicts prepared images in one run of the network, in the order given.</summary>
    /// <param name="images">Images prepared by this model, or by one with the same input (<see cref="ModelInfo.Input"/>).</param>
    /// <param name="top">How many classes each <see cref="Prediction.Top"/> lists.</param>
    /// <exception cref="ArgumentException">An image was prepared for a different input.</exception>
    public IReadOnlyList<Prediction> Predict(IReadOnlyList<PreparedImage> images, int top = 5)
    {
        if (images.Count == 0) return [];
        int length = 3 * Info.Input.Size * Info.Input.Size;
        var pixels = new float[images.Count * length];
        for (int i = 0; i < images.Count; i++)
        {
            if (images[i].Input.Key != Info.Input.Key)
                throw new ArgumentException($"{images[i].Name} was prepared for {images[i].Input.Describe()}, not this model's {Info.Input.Describe()}.", nameof(images));
            images[i].Pixels.CopyTo(pixels, i * length);
        }
        return Run(pixels, images.Select(i => i.Name).ToList(), top);
    }

    /// <summary>
    /// Predicts many files, decoding the next batch while the network runs. Files that cannot be read or decoded
    /// are returned in <see cref="PredictionBatch.Skipped"/>, not thrown.
    /// </summary>
    /// <param name="paths">Image files.</param>
    /// <param name="top">How many classes each <see cref="Prediction.Top"/> lists.</param>
    /// <param name="progress">Receives the number of files done after each batch.</param>
    /// <param name="cancel">Stops between batches.</param>
    public async Task<PredictionBatch> PredictAsync(IEnumerable<string> paths, int top = 5, IProgress<int>? progress = null,
        CancellationToken cancel = default)
    {
        var files = paths.ToList();
        var predictions = new List<Prediction>(files.Count);
        var skipped = new List<SkippedImage>();
        int done = 0;
        await foreach (var batch in BatchPipeline.Batches(files, Info.Input, 16, cancel: cancel))
        {
            skipped.AddRange(batch.Failures.Select(f => new SkippedImage(f.Path, f.Reason)));
            if (batch.Count > 0) predictions.AddRange(Run(batch.Pixels, batch.Indices.Select(i => files[i]).ToList(), top));
            done += batch.Count + batch.Failures.Count;
            progress?.Report(done);
        }
        return new PredictionBatch(predictions, skipped);
    }

    /// <summary>
    /// Predicts one image file and shows where the network looked: the class activation map of the predicted class, its
    /// peak in the photo's pixels and, with <paramref name="heatmap"/>, a PNG of the photo with the map over it
    /// (<see cref="Prediction.Explanation"/>).
    /// </summary>
    /// <param name="path">A JPEG, PNG, BMP, GIF or WebP file.</param>
    /// <param name="heatmap">The PNG file to write (replaced if it exists), or null for the map and its peak only.</param>
    /// <param name="top">How many classes <see cref="Prediction.Top"/> lists.</param>
    /// <exception cref="GraftException">The file cannot be read, or the model cannot be explained in ONNX Runtime (<see cref="CanExplain"/>).</exception>
    public Prediction Explain(string path, string? heatmap = null, int top = 5)
    {
        var (prediction, map) = RunExplained(ImageLoader.Load(path, Info.Input), path, top);
        return prediction with { Explanation = Explanation.Of(map, ImageLoader.PlaceHeatMap(path, map, Info.Input.Resize, heatmap), heatmap) };
    }

    /// <summary>As <see cref="Explain(string, string?, int)"/> for an encoded image held in memory.</summary>
    /// <param name="image">The encoded image (JPEG, PNG, BMP, GIF or WebP).</param>
    /// <param name="name">Names the image in the prediction and in errors.</param>
    /// <param name="heatmap">The PNG file to write, or null.</param>
    /// <param name="top">How many classes <see cref="Prediction.Top"/> lists.</param>
    public Prediction Explain(ReadOnlySpan<byte> image, string name = "image", string? heatmap = null, int top = 5)
    {
        var (prediction, map) = RunExplained(ImageLoader.Load(image, name, Info.Input), name, top);
        return prediction with { Explanation = Explanation.Of(map, ImageLoader.PlaceHeatMap(image, name, map, Info.Input.Resize, heatmap), heatmap) };
    }

    /// <summary>One image's prediction and the heat map of its predicted class over the network's input.</summary>
    (Prediction, HeatMap) RunExplained(float[] pixels, string name, int top)
    {
        if (!CanExplain)
            throw new GraftException($"{name}: this model's network has no class activation map (its head is not a linear layer on pooled features, or the file was written before heat maps).",
                "Use 'graft predict MODEL IMAGES --explain DIR', which computes Grad-CAM for any head, or train the model again.");
        var maps = new List<HeatMap>(1);
        return (Run(pixels, [name], top, maps)[0], maps[0]);
    }

    /// <summary>
    /// The predictions for preprocessed images (CHW floats back to back), one per name; with <paramref name="maps"/>,
    /// the heat map of each predicted class is added to it.
    /// </summary>
    List<Prediction> Run(float[] pixels, IReadOnlyList<string> names, int top, List<HeatMap>? maps = null)
    {
        int size = Info.Input.Size, n = names.Count;
        // On an ONNX trunk the network is the head, on the trunk's features.
        using var input = _trunk is { } trunk
            ? OrtValue.CreateTensorValueFromMemory(trunk.Features(pixels, n), [n, trunk.Channels])
            : OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, pixels.AsMemory(0, n * 3 * size * size), [n, 3, size, size]);
        using var run = new RunOptions();
        List<string> wanted = [ModelFile.ProbabilitiesOutput];
        if (HasOodScore) wanted.Add(ModelFile.OodScoreOutput);
        if (maps is not null) wanted.Add(ModelFile.ClassActivationOutput);
        using var outputs = _session.Run(run, [_trunk is null ? ModelFile.ImagesInput : ModelFile.FeaturesInput], [input], wanted);
        var probabilities = outputs[0].GetTensorDataAsSpan<float>();
        var scores = HasOodScore ? outputs[1].GetTensorDataAsSpan<float>().ToArray() : null;
        double? threshold = AcceptAll ? null : Info.Unknown?.Threshold;
        int classes = Classes.Count;
        var result = new List<Prediction>(n);
        for (int k = 0; k < n; k++)
        {
            var prediction = Prediction.Rank(names[k], probabilities.Slice(k * classes, classes), Classes, top, scores?[k], threshold, Info.Thresholds);
            result.Add(prediction);
            if (maps is null) continue;
            var shape = outputs[^1].GetTensorTypeAndShape().Shape; // [N, classes, rows, columns]
            int rows = (int)shape[2], columns = (int)shape[3], cells = rows * columns;
            int predicted = Classes.ToList().IndexOf(prediction.Label);
            maps.Add(HeatMap.FromActivation(outputs[^1].GetTensorDataAsSpan<float>().Slice((k * classes + predicted) * cells, cells), rows, columns));
        }
        return result;
    }

    sealed record ConfigView(string? Format, string? Backbone, string? Strategy, ImageSpec? Input, List<string>? Classes, DateTime CreatedUtc,
        TemperatureView? TemperatureScaling, UnknownView? OutOfDistribution, OnnxTrunkSpec? OnnxTrunk, List<double>? Thresholds);

    sealed record TemperatureView(double Temperature);

    sealed record UnknownView(string? Score, double Threshold, double Acceptance);

    /// <summary>The config's fields prediction needs, each checked: a damaged file is refused, not half-used.</summary>
    static (ModelInfo, OnnxTrunkSpec?) ReadInfo(byte[] json, string name)
    {
        ConfigView? c;
        try
        {
            c = JsonSerializer.Deserialize<ConfigView>(json, ModelFile.Json);
        }
        catch (JsonException e)
        {
            throw new GraftException($"{name}: its config.json is not valid ({e.Message}).", "The file is damaged: train the model again.");
        }
        // Without the backbone registry the lower bound on the input size is a loose 8; the upper one is training's.
        string? problem = c is null ? "its config.json is empty"
            : c.Format?.StartsWith("graft-model/") != true ? $"its format '{c.Format}' is not a Graft model's"
            : ModelFile.InputProblem(c.Input, 8, c.Backbone ?? "") ?? (c.Classes is { Count: > 0 } ? null : "its config lists no classes")
            ?? (c.OutOfDistribution is { } u && (u.Score is null || !double.IsFinite(u.Threshold)) ? "its out-of-distribution threshold is not a number" : null)
            ?? (c.Thresholds is { } t && (t.Count != c.Classes!.Count || !t.All(x => x is >= 0 and <= 1)) ? $"its {t.Count} decision thresholds do not match its {c.Classes!.Count} classes, each in [0, 1]" : null);
        if (problem is not null)
            throw new GraftException($"{name}: {problem}.", "The file is damaged: train the model again.");
        return (new ModelInfo(c!.Backbone ?? "", c.Strategy ?? "", c.Input!, c.Classes!, c.CreatedUtc)
        {
            Temperature = c.TemperatureScaling?.Temperature,
            Unknown = c.OutOfDistribution is { } ood ? new UnknownDetection(ood.Score!, ood.Threshold, ood.Acceptance) : null,
            Thresholds = c.Thresholds,
        }, c.OnnxTrunk);
    }

    /// <summary>Frees the ONNX Runtime session.</summary>
    public void Dispose()
    {
        _session?.Dispose();
        _trunk?.Dispose();
        _options.Dispose();
    }
}
