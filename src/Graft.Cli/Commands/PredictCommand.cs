using Spectre.Console;
using System.CommandLine;
using Graft.Data;
using Graft.Training;
using Graft.Imaging;
using Graft.Heads;
using Graft.Inference;
using Graft.Models;

namespace Graft.Cli.Commands;

public static class PredictCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "A model file, or a backbone name (e.g. mobilenet_v2) to see its ImageNet predictions." };
        var input = new Argument<string[]>("IMAGES") { Description = "Image files and folders of images (searched recursively); - (or /dev/stdin) reads one image from standard input.", Arity = ArgumentArity.OneOrMore };
        var top = new Option<int>("--top") { Description = "How many classes to list per image.", DefaultValueFactory = _ => 3 };
        var tta = new Option<bool>("--tta") { Description = "Test-time augmentation: average each image's prediction with its mirror image's." };
        var device = Cli.DeviceOption();
        var output = new Option<string?>("--out") { Description = "Also write one row per image (file, label, confidence, top) to this .jsonl, .csv or .parquet file, as it goes (graft merge combines the files of --shard runs)." };
        var acceptAll = new Option<bool>("--accept-all") { Description = "Give every photo a class, even one unlike all the training images (otherwise it is 'unknown')." };
        var explain = new Option<string?>("--explain") { Description = "Write into this folder, per image, the photo with a heat map of where the network looked for its class (the JSON gives the file and the peak in the photo's pixels)." };
        var json = Cli.JsonOption();
        var weights = new BackboneOptions();
        var shards = new ShardOptions();
        var command = new Command("predict", "Classify photos with a trained model or a pretrained backbone.") { model, input, top, tta, acceptAll, explain, output, device, json };
        weights.AddTo(command);
        shards.AddTo(command);
        command.SetHandler(async (parse, cancel) =>
        {
            var on = Cli.Device(parse, device);
            var inputs = parse.GetValue(input)!;
            var explainTo = parse.GetValue(explain);
            if (explainTo is not null) OutputPaths.Folder("--explain", explainTo, [parse.GetValue(model), .. inputs]);
            bool stdin = inputs.Any(IsStandardInput);
            var outPath = parse.GetValue(output);
            if (outPath is not null)
            {
                RowFile.Check("--out", outPath);
                OutputPaths.File("--out", outPath, [parse.GetValue(model), .. inputs]);
            }
            var files = stdin && inputs.All(IsStandardInput) ? [] : ExpandInputs(inputs.Where(i => !IsStandardInput(i)));
            (files, var done) = shards.Select(parse, inputs, files, outPath);
            var image = stdin ? await ReadStandardInput(cancel) : null;
            bool useTta = parse.GetValue(tta), acceptAllPhotos = parse.GetValue(acceptAll);
            using var classifier = Predictor.Open(parse.GetValue(model)!, weights.WeightsFile(parse), weights.Size(parse), on, useTta, acceptAllPhotos, explainTo);
            // The default (3) asks for no more classes than a two-class model has; a number given must fit.
            int k = parse.GetResult(top) is { Implicit: false } ? parse.GetValue(top) : Math.Min(parse.GetValue(top), classifier.Classes.Count);
            if (k < 1 || k > classifier.Classes.Count)
                throw new GraftException($"--top {k} is out of range.", $"Pass a whole number from 1 to {classifier.Classes.Count} (the model's classes).");
            var skipped = new List<SkippedImage>();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var predictions = new List<Prediction>();
            if (image is not null) predictions.Add(classifier.Predict(image, StandardInputName, k));
            if (outPath is not null) RowFile.Write(outPath, [.. done, .. predictions.Select(Row)]);
            // With --out, chunk by chunk, each written before the next is predicted: a stopped job resumes where it was.
            using var progress = files.Count > 64 ? new ProgressLine() : null;
            foreach (var chunk in outPath is null ? [files.ToArray()] : files.Chunk(ShardOptions.Chunk))
            {
                var predicted = await classifier.PredictAsync(chunk, k, skipped, progress, cancel);
                if (outPath is not null) RowFile.Append(outPath, predicted.Select(Row).ToList());
                predictions.AddRange(predicted);
            }
            // Nothing predicted is a failure, not an empty success: one line naming the file(s) and why.
            if (predictions.Count == 0 && skipped.Count > 0 && done.Count == 0)
                throw new GraftException(skipped.Count == 1
                        ? $"{skipped[0].Path} could not be read: {skipped[0].Reason}."
                        : $"none of the {skipped.Count} images could be read: {string.Join("; ", skipped.Take(5).Select(s => $"{s.Path}: {s.Reason}"))}{(skipped.Count > 5 ? $"; and {skipped.Count - 5} more" : "")}.",
                    "Pass image files Graft can decode (JPEG, PNG, BMP, GIF, WebP).");
            progress?.Dispose();
            Cli.ReportSkipped(skipped);
            if (outPath is not null)
                Cli.Err.MarkupLine($"wrote {Plural.Of(predictions.Count, "prediction")}{(done.Count > 0 ? $" after the {done.Count} already there" : "")} to [green]{Cli.Escape(Path.GetFullPath(outPath))}[/]");
            foreach (var p in predictions)
                Cli.Out.MarkupLine((p.Unknown
                    ? $"{Cli.Escape(p.File)}: [bold yellow]unknown[/]: like none of the training images (closest: {Cli.Escape(p.Label)} {p.Confidence:0.000})"
                    : p.Labels is { } labels
                    ? $"{Cli.Escape(p.File)}: " + (labels.Count == 0 ? $"[bold]no label[/] (best: {Cli.Escape(p.Label)} {p.Confidence:0.000})"
                        : string.Join(", ", labels.Select(l => $"[bold]{Cli.Escape(l.Label)}[/] {l.Probability:0.000}")))
                    : $"{Cli.Escape(p.File)}: [bold]{Cli.Escape(p.Label)}[/] {p.Confidence:0.000}" +
                      (p.Top.Count > 1 ? "  (" + string.Join(", ", p.Top.Skip(1).Select(t => $"{Cli.Escape(t.Label)} {t.Probability:0.000}")) + ")" : "")) +
                    (p.Explanation is { } e ? $"  [grey]heat map {Cli.Escape(e.Heatmap ?? "")}, peak ({e.Peak.X}, {e.Peak.Y})[/]" : ""));
            if (parse.GetValue(json))
                Cli.WriteJson(new Graft.Serve.PredictResponse(predictions, predictions.Count, skipped, clock.Elapsed.TotalSeconds)); // what graft serve answers too
        });
        return command;
    }

    const string StandardInputName = "stdin";

    /// <summary>
    /// What predicts: a model file that carries its ONNX network (<see cref="ImageClassifier.OnnxEntry"/>) runs in ONNX
    /// Runtime alone (Graft.Inference: libtorch, much of a short run's time and memory, is never loaded), unless
    /// the run needs the trainable model: another device, test-time augmentation, Grad-CAM heat maps (--explain), a
    /// backbone's ImageNet classifier.
    /// </summary>
    sealed class Predictor : IDisposable
    {
        readonly ImageClassifier? _onnx;
        readonly TrainableClassifier? _torch;
        readonly bool _tta, _acceptAll;
        readonly string? _explain;

        Predictor(ImageClassifier? onnx, TrainableClassifier? torch, bool tta, bool acceptAll, string? explain) =>
            (_onnx, _torch, _tta, _acceptAll, _explain) = (onnx, torch, tta, acceptAll, explain);

        public static Predictor Open(string model, string? weightsFile, int? inputSize, ComputeDevice device, bool tta, bool acceptAll, string? explain)
        {
            bool onnxAlone = !device.IsCuda && !tta && explain is null && weightsFile is null && inputSize is null && CarriesOnnx(model);
            if (!onnxAlone) return new Predictor(null, ModelSource.Open(model, allowBackbone: true, weightsFile, inputSize, device), tta, acceptAll, explain);
            var onnx = ImageClassifier.Load(model);
            onnx.AcceptAll = acceptAll;
            return new Predictor(onnx, null, tta, acceptAll, explain);
        }

        /// <summary>Whether <paramref name="model"/> is a model file with its ONNX network (one that is not is opened the other way, which names what is wrong).</summary>
        static bool CarriesOnnx(string model)
        {
            if (!File.Exists(model)) return false;
            try
            {
                using var zip = System.IO.Compression.ZipFile.OpenRead(model);
                return zip.GetEntry(ImageClassifier.OnnxEntry) is not null;
            }
            catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException) { return false; }
        }

        public IReadOnlyList<string> Classes => _onnx?.Classes ?? _torch!.Classes;

        public Prediction Predict(byte[] image, string name, int top) =>
            _onnx?.Predict(image, name, top) ?? _torch!.Predict(image, name, top, _tta, _acceptAll, _explain);

        public async Task<IReadOnlyList<Prediction>> PredictAsync(string[] files, int top, List<SkippedImage> skipped, ProgressLine? progress, CancellationToken cancel)
        {
            if (_torch is not null)
                return await _torch.PredictAsync(files, top, skipped, progress: progress, tta: _tta, cancel: cancel, acceptAll: _acceptAll, explain: _explain);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var batch = await _onnx!.PredictAsync(files, top, progress is null ? null
                : new Reported<int>(done => progress.Report(new ImageProgress("predict", done, files.Length, done / Math.Max(clock.Elapsed.TotalSeconds, 1e-9)))), cancel);
            skipped.AddRange(batch.Skipped);
            return batch.Predictions;
        }

        /// <summary>Reports as they come, on the reporting thread (<see cref="Progress{T}"/> posts them to the thread pool, to arrive later).</summary>
        sealed class Reported<T>(Action<T> report) : IProgress<T>
        {
            public void Report(T value) => report(value);
        }

        public void Dispose()
        {
            _onnx?.Dispose();
            _torch?.Dispose();
        }
    }

    /// <summary>A prediction as a row of --out: the columns every format holds (file, label, confidence, top).</summary>
    static System.Text.Json.Nodes.JsonObject Row(Prediction p)
    {
        var all = System.Text.Json.JsonSerializer.SerializeToNode(p, Graft.Inference.ModelFile.Json)!.AsObject();
        return new System.Text.Json.Nodes.JsonObject(RowColumns.Select(c => KeyValuePair.Create(c, all[c]?.DeepClone())));
    }

    static readonly string[] RowColumns = ["file", "label", "confidence", "top"];

    static bool IsStandardInput(string input) => input is "-" or "/dev/stdin";

    /// <summary>
    /// Standard input, read once into memory (a pipe cannot be read twice nor seeked, which decoding a file needs).
    /// Ctrl-C stops the wait for it: a read blocked on a pipe does not see the token, so the wait is what is cancelled.
    /// </summary>
    static async Task<byte[]> ReadStandardInput(CancellationToken cancel)
    {
        if (!Console.IsInputRedirected)
            throw new GraftException("- reads an image from standard input, which is the terminal here.",
                "Pipe or redirect an image into graft (graft predict MODEL - < photo.jpg), or pass the file's path.");
        using var memory = new MemoryStream();
        await using var stdin = Console.OpenStandardInput();
        await stdin.CopyToAsync(memory, cancel).WaitAsync(cancel);
        if (memory.Length == 0) throw new GraftException("standard input is empty: no image was piped in.", "Pipe an image into graft (graft predict MODEL - < photo.jpg).");
        return memory.ToArray();
    }

    /// <summary>
    /// The image files the inputs name or hold (predict and embed). A macOS AppleDouble file (<c>._x.jpg</c>, the
    /// resource fork a Mac leaves beside each file it copies to a non-Mac disk) named on the command line, as a
    /// shell glob does, is left out with a note; folder walks skip it as a hidden file.
    /// </summary>
    public static List<string> ExpandInputs(IEnumerable<string> inputs)
    {
        var files = new List<string>();
        var metadata = new List<string>();
        foreach (var input in inputs)
            if (IsAppleDouble(input)) metadata.Add(input);
            else files.AddRange(ListImages(input));
        if (files.Count == 0 && metadata.Count > 0)
        {
            var image = Path.Combine(Path.GetDirectoryName(metadata[0])!, Path.GetFileName(metadata[0])[2..]);
            throw new GraftException(metadata.Count == 1
                    ? $"{metadata[0]} is macOS metadata (an AppleDouble \"._\" file), not an image."
                    : $"the {metadata.Count} files given are macOS metadata (AppleDouble \"._\" files), not images: {string.Join(", ", metadata.Take(3))}{(metadata.Count > 3 ? ", ..." : "")}.",
                $"Pass the images themselves (e.g. {image}).");
        }
        foreach (var m in metadata) Cli.Err.MarkupLine($"[yellow]note:[/] skipped {Cli.Escape(m)}: macOS metadata, not an image.");
        return files.Distinct().ToList();
    }

    static bool IsAppleDouble(string input) => Path.GetFileName(input).StartsWith("._", StringComparison.Ordinal) && File.Exists(input);

    public static List<string> ListImages(string input)
    {
        if (File.Exists(input)) return [input];
        if (!Directory.Exists(input))
            throw new GraftException($"{input} does not exist.", "Pass an image file or a folder of images.");
        var notRegular = new List<string>();
        var files = FolderWalk.Files(input, notRegular) // linked folders never lead out of the input folder, nor round in a loop
            .Where(ImageLoader.IsImageFile).Order(StringComparer.Ordinal).ToList();
        foreach (var n in notRegular) Cli.Err.MarkupLine($"[yellow]note:[/] skipped {Cli.Escape(n)}: not a regular file, never opened.");
        if (files.Count > 0) return files;
        var unconverted = FolderWalk.Files(input).Count(ImageFolder.IsUnconvertedImage);
        throw new GraftException($"{input} holds no image files" + (unconverted > 0 ? $" Graft can read ({Plural.Of(unconverted, "TIFF/HEIC file")}, which it does not decode)." : "."),
            unconverted > 0 ? "Convert them to JPEG or PNG." : $"Add images ({string.Join(", ", ImageLoader.Extensions)}).");
    }
}
