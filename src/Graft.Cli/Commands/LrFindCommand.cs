using Spectre.Console;
using System.CommandLine;
using Graft.Data;
using Graft.Reports;
using Graft.Training;

namespace Graft.Cli.Commands;

/// <summary>
/// `graft lr-find DATA [train's flags]`: the learning-rate range test of the phase `graft train` with those flags would
/// train (<see cref="Learner.FindLearningRateAsync"/>), its suggestion, and the curve as a picture.
/// </summary>
public static class LrFindCommand
{
    public static Command Create()
    {
        var flags = new TrainFlags();
        var plot = new Option<string?>("--plot") { Description = "Write the curve (loss against learning rate) to this PNG file.", HelpName = "FILE" };
        var json = Cli.JsonOption();
        var command = new Command("lr-find", "Find a learning rate: a range test of the phase that `graft train` with the same flags trains " +
            "(fine-tuning's phase 2 after the head, the scratch network, or feature extraction's head). Train with --lr auto to use it.");
        flags.AddTo(command, outputs: false);
        command.Group("Output", plot, json);
        command.SetHandler(async (parse, cancel) =>
        {
            var data = parse.GetValue(flags.Data)!;
            var path = SampleDatasets.Resolve(data, Cli.Assets);
            if (parse.GetValue(plot) is { } picture) OutputPaths.File("--plot", picture, path);
            var options = flags.Read(parse, Path.Combine(Path.GetTempPath(), "graft-lr-find.graft"));
            var search = await Learner.FindLearningRateAsync(path, options, Cli.Assets, new ProgressLine().Callbacks, cancel);
            for (int i = 0; i < search.Rates.Count; i += Math.Max(1, search.Rates.Count / 12))
                Cli.Out.MarkupLine($"  lr {search.Rates[i],-10:0.######e+0}  loss {search.Losses[i]:0.0000}");
            Cli.Out.MarkupLine($"suggested learning rate for the {search.Phase} phase: [bold]{search.Suggested:0.######}[/] " +
                $"(train with --lr auto to choose it this way, or pass it as {(search.Phase == "fine-tune" ? "--ft-lr" : "--lr")})");
            if (parse.GetValue(plot) is { } file)
            {
                Charts.LearningRateSearch(search, file);
                Cli.Out.MarkupLine($"plot [green]{Cli.Escape(Path.GetFullPath(file))}[/]");
            }
            if (parse.GetValue(json))
                Cli.WriteJson(new { phase = search.Phase, suggested = search.Suggested, rates = search.Rates, losses = search.Losses });
        });
        return command;
    }
}
