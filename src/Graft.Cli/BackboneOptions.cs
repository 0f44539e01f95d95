using System.CommandLine;
using Graft.Backbones;

namespace Graft.Cli;

/// <summary>
/// The options that pick a network's weights and input, shared by every command that builds a backbone:
/// <c>--weights FILE</c> (the user's own Keras .h5, TF.js model.json or TFLite file, checked by structure) and
/// <c>--input-size N</c> (Keras's input_shape, within the network's minimum).
/// </summary>
public sealed class BackboneOptions
{
    public readonly Option<string?> Weights = new("--weights") { Description = "The backbone's weights from this file (Keras .h5, TF.js model.json, TFLite) instead of the known sources." };
    public readonly Option<int?> InputSize = new("--input-size") { Description = "Input size N (NxN) of the network, e.g. 150 as in the Keras blog; default: the backbone's own (graft models)." };

    public void AddTo(Command command)
    {
        command.Options.Add(Weights);
        command.Options.Add(InputSize);
    }

    public string? WeightsFile(ParseResult parse) =>
        parse.GetValue(Weights) is { } file
            ? File.Exists(file) ? file : throw new GraftException($"--weights {file} does not exist.", "Pass the path of a Keras .h5, TF.js model.json or TFLite file.")
            : null;

    public int? Size(ParseResult parse) => parse.GetValue(InputSize) is { } n
        ? n is >= 16 and <= 2048 ? n : throw new GraftException($"--input-size {n} is out of range.", "Pass a size from the network's minimum (graft models) to 2048.")
        : null;
}
