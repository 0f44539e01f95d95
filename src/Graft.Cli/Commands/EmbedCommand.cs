using System.CommandLine;
using System.Text;
using Graft.Backbones;
using Graft.Models;
using Graft.Training;
using Graft.Weights;
using Graft.Heads;
using Spectre.Console;

namespace Graft.Cli.Commands;

/// <summary>
/// Each image's pooled trunk features (global average pooling of the last feature map): for search, clustering,
/// data checks, or checking a network against Keras.
/// </summary>
public static class EmbedCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "A backbone name (pretrained trunk), an ONNX image model (.onnx) or a model file (its trunk, fine-tuned or not)." };
        var inputs = new Argument<string[]>("IMAGES") { Description = "Image files and folders (searched recursively).", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string?>("--out") { Description = "Write the features to a .csv (file, then one column per feature), .jsonl or .parquet (file, vector) file, as it goes (graft merge combines the files of --shard runs), or to a .npy file (float32, images x features, in the order of the JSON) at the end." };
        var json = Cli.JsonOption();
        var weights = new BackboneOptions();
        var device = Cli.DeviceOption();
        var shards = new ShardOptions();
        var command = new Command("embed", "Write each image's pooled trunk features.") { model, inputs, output, device, json };
        weights.AddTo(command);
        foreach (var option in weights.Onnx) command.Options.Add(option);
        shards.AddTo(command);
        command.SetHandler(async (parse, cancel) =>
        {
            var on = Cli.Device(parse, device);
            var name = parse.GetValue(model)!;
            var outPath = parse.GetValue(output);
            bool npy = outPath is not null && Path.GetExtension(outPath).Equals(".npy", StringComparison.OrdinalIgnoreCase);
            if (outPath is not null && !npy) RowFile.Check("--out", outPath);
            if (outPath is not null) OutputPaths.File("--out", outPath, [name, .. parse.GetValue(inputs)!]);
            if (npy && parse.GetValue(shards.Resume)) throw new GraftException("--resume cannot add to a .npy file.", "Write .jsonl, .csv or .parquet to resume.");
            var (files, done) = shards.Select(parse, parse.GetValue(inputs)!, PredictCommand.ExpandInputs(parse.GetValue(inputs)!), outPath);
            var rowFile = npy ? null : outPath;

            // A model file embeds with its own trunk (fine-tuned or not) and resize; a backbone name with its pretrained weights
            // and Keras's whole-image resize. Global average pooling either way; no cache (not a training run's features).
            bool onnx = OnnxBackboneOptions.IsOnnxFile(name), modelFile = !onnx && File.Exists(name);
            weights.CheckOnnx(parse, name, onnx);
            if (modelFile && (weights.WeightsFile(parse) is not null || weights.Size(parse) is not null))
                throw new GraftException($"{name} is a trained model: its weights and input size are its own.", "Drop --weights and --input-size, or pass a backbone name.");
            using var classifier = modelFile ? TrainableClassifier.Load(name, on) : null;
            using var pretrained = classifier is not null ? null
                : onnx ? Backbone.FromOnnx(name, weights.OnnxOptions(parse), weights.Size(parse), on)
                : Backbone.LoadPretrained(BackboneRegistry.Get(name), Cli.Assets, inputSize: weights.Size(parse), weightsFile: weights.WeightsFile(parse));
            var backbone = classifier?.Backbone ?? pretrained!;
            var source = new FeatureSource(backbone.Config.Name) { Pooling = Pooling.Gap, Resize = backbone.Input.Resize, UseCache = false, Device = on };
            using var extraction = FeatureExtraction.Open(backbone, source);
            var (rows, skipped, _, _, _) = await FeatureRows.ExtractAsync(extraction, files, rowFile, done, cancel);
            int channels = extraction.Channels;
            Cli.ReportSkipped(skipped);
            if (outPath is not null)
            {
                if (npy) WriteNpy(outPath, rows.Select(r => r.Vector).ToList(), channels);
                Cli.Err.MarkupLine($"wrote {rows.Count} x {channels} features{(done.Count > 0 ? $" after the {done.Count} already there" : "")} to [green]{Cli.Escape(Path.GetFullPath(outPath))}[/]");
            }
            else if (!parse.GetValue(json))
                foreach (var (file, vector) in rows)
                    Cli.Out.WriteLine($"{file}: {channels} features, mean {vector.Average():0.####}, max {vector.Max():0.####}");
            if (parse.GetValue(json))
                Cli.WriteJson(new
                {
                    backbone = classifier?.Config.Backbone ?? backbone.Config.Name, input_size = backbone.Input.Size,
                    preprocessing = backbone.Onnx is null ? backbone.Config.Preprocessing.ToString().ToLowerInvariant() : backbone.Input.Describe(),
                    features = rows.Select(r => new { file = r.File, vector = r.Vector }),
                    skipped,
                });
        });
        return command;
    }

    /// <summary>NumPy's .npy format, version 1.0: magic, header dict padded to 64 bytes, little-endian float32 rows.</summary>
    static void WriteNpy(string path, IReadOnlyList<float[]> rows, int channels)
    {
        var header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows.Count}, {channels}), }}";
        int total = 10 + header.Length + 1;
        header = header.PadRight(header.Length + (64 - total % 64) % 64) + "\n";
        using var stream = File.Create(path);
        stream.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
        stream.Write(BitConverter.GetBytes((ushort)header.Length));
        stream.Write(Encoding.ASCII.GetBytes(header));
        foreach (var row in rows) stream.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(row.AsSpan()));
    }
}
