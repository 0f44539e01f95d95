using System.CommandLine;

namespace Graft.Cli;

/// <summary>
/// The options that pick a network's weights and input, shared by every command that builds a backbone:
/// <c>--weights FILE</c> (the user's own Keras .h5, TF.js model.json or TFLite file, checked by structure) and
/// <c>--input-size N</c> (Keras's input_shape), described by <see cref="TrainOptions"/>.
/// </summary>
public sealed class BackboneOptions
{
    static readonly Flags<TrainOptions> Flags = new(new TrainOptions());
    static readonly Flags<Backbones.OnnxBackboneOptions> OnnxFlags = new(new Backbones.OnnxBackboneOptions());

    public readonly Option<string?> Weights = Flags.Option("--weights", o => o.WeightsFile);
    public readonly Option<int?> InputSize = Flags.Option("--input-size", o => o.InputSize);
    /// <summary>What an ONNX backbone's file does not say (commands that take an .onnx file as the backbone).</summary>
    public readonly Option<Backbones.Preprocessing?> Preprocess = OnnxFlags.Option("--preprocess", o => o.Preprocess);
    public readonly Option<IReadOnlyList<float>?> Mean = OnnxFlags.Option("--mean", o => o.Mean);
    public readonly Option<IReadOnlyList<float>?> Std = OnnxFlags.Option("--std", o => o.Std);
    public readonly Option<Inference.TensorLayout?> Layout = OnnxFlags.Option("--layout", o => o.Layout);
    public readonly Option<string?> Output = OnnxFlags.Option("--output", o => o.Output);

    public BackboneOptions() => (Weights.HelpName, Output.HelpName) = ("FILE", "NAME");

    /// <summary>The options that describe an ONNX backbone, in help order.</summary>
    public Option[] Onnx => [Preprocess, Mean, Std, Layout, Output];

    /// <summary>The ONNX backbone's description as given.</summary>
    public Backbones.OnnxBackboneOptions OnnxOptions(ParseResult parse) => new()
    {
        Preprocess = parse.GetValue(Preprocess), Mean = parse.GetValue(Mean), Std = parse.GetValue(Std), Layout = parse.GetValue(Layout), Output = parse.GetValue(Output),
    };

    /// <summary>Refuses the ONNX options for a backbone that is not an ONNX file (<paramref name="onnx"/> false), and a weight file for one that is.</summary>
    public void CheckOnnx(ParseResult parse, string backbone, bool onnx)
    {
        if (!onnx && Onnx.FirstOrDefault(o => parse.GetResult(o) is { Implicit: false }) is { } onnxOnly)
            throw new GraftException($"{onnxOnly.Name} describes an ONNX backbone, and {backbone} is not one.", $"Drop {onnxOnly.Name}, or pass an .onnx file.");
        if (onnx && parse.GetValue(Weights) is not null)
            throw new GraftException($"{backbone} holds its own weights: --weights does not apply to it.", "Drop --weights.");
    }

    public void AddTo(Command command)
    {
        command.Options.Add(Weights);
        command.Options.Add(InputSize);
    }

    public string? WeightsFile(ParseResult parse) =>
        parse.GetValue(Weights) is { } file
            ? File.Exists(file) ? file : throw new GraftException($"--weights {file} does not exist.", "Pass the path of a Keras .h5, TF.js model.json or TFLite file.")
            : null;

    public int? Size(ParseResult parse) => parse.GetValue(InputSize);
}
