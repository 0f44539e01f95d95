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

    public readonly Option<string?> Weights = Flags.Option("--weights", o => o.WeightsFile);
    public readonly Option<int?> InputSize = Flags.Option("--input-size", o => o.InputSize);

    public BackboneOptions() => Weights.HelpName = "FILE";

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
