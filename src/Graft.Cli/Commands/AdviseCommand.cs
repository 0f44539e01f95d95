using System.CommandLine;
using Graft.Data;
using Graft.Training;
using Graft.Imaging;
using Graft.Heads;
using Spectre.Console;

namespace Graft.Cli.Commands;

public static class AdviseCommand
{
    public static Command Create()
    {
        var data = new Argument<string>("DATA") { Description = "A dataset folder (as for train)." };
        var backbone = new Option<string>("--backbone") { Description = "Pretrained backbone to measure with: a registry name, or an ONNX image model (.onnx).", DefaultValueFactory = _ => Graft.Backbones.BackboneRegistry.Default.Name };
        var seed = new Option<int>("--seed") { Description = "As for train: the seed of --test-split's hold-out. The advice itself does not depend on it.", DefaultValueFactory = _ => 42 };
        var labels = Cli.LabelsOption();
        var testSplit = new Option<double>("--test-split") { Description = "As for train: this share is held out as test images, which the advisor never sees." };
        var noCache = new Option<bool>("--no-cache") { Description = "Do not read or write the bottleneck cache." };
        var device = Cli.DeviceOption();
        var json = Cli.JsonOption();
        var verbose = Cli.VerboseOption();
        var command = new Command("advise",
            "Estimate each strategy's accuracy (with its 95% interval) and training time on the data's own training and validation images, and recommend one.")
            { data, labels, backbone, seed, testSplit, noCache, device, json, verbose };
        var weights = new BackboneOptions();
        weights.AddTo(command);
        foreach (var option in weights.Onnx) command.Options.Add(option);
        command.SetHandler(async (parse, cancel) =>
        {
            var on = Cli.Device(parse, device);
            weights.CheckOnnx(parse, parse.GetValue(backbone)!, Graft.Backbones.OnnxBackboneOptions.IsOnnxFile(parse.GetValue(backbone)));
            var path = SampleDatasets.Resolve(parse.GetValue(data)!, Cli.Assets);
            var options = new TrainOptions
            {
                Device = on,
                WeightsFile = weights.WeightsFile(parse), InputSize = weights.Size(parse), Onnx = weights.OnnxOptions(parse), TestSplit = parse.GetValue(testSplit), LabelsFile = parse.GetValue(labels),
                Fit = new(Seed: parse.GetValue(seed)), UseCache = !parse.GetValue(noCache),
            };
            var clock = System.Diagnostics.Stopwatch.StartNew();
            Advice advice;
            bool details = parse.GetValue(verbose);
            // The probes' epochs and steps are the advisor's working: shown with --verbose.
            using (var progress = new ProgressLine(details))
                advice = await StrategyAdvisor.AdviseAsync(path, parse.GetValue(backbone)!, Cli.Assets, options,
                    details ? progress.Callbacks : progress.Callbacks with { Epochs = null }, cancel);
            Cli.ReportSkipped(advice.Skipped);
            var table = new Table().Border(TableBorder.Rounded).AddColumns("strategy", $"estimated {advice.Measure}", "95% interval", "against feature extraction", "graft train time");
            foreach (var e in advice.Estimates)
                table.AddRow(Cli.Escape(e.Arguments) + (e == advice.Chosen ? " [green](chosen)[/]" : ""), $"{e.Accuracy:0.000}", $"{e.Interval.Low:0.000}-{e.Interval.High:0.000}",
                    e.Gain is null ? "" : Cli.Escape(e.Gain.Describe()), e.Seconds < 10 ? $"about {e.Seconds:0.0} s" : $"about {e.Seconds:0} s");
            Cli.Out.Write(table);
            Cli.Out.MarkupLine("  (training times: on this machine now, feature extraction's with the features this advice cached)");
            // The decision; the measurements behind it with --verbose.
            foreach (var reason in details ? advice.Reasons : advice.Reasons.TakeLast(1)) Cli.Out.MarkupLine($"  {Cli.Escape(reason)}");
            if (!details) Cli.Out.MarkupLine("  (graft advise -v says how each estimate was measured)");
            Cli.Out.MarkupLine($"[bold]graft train {Cli.Escape(path)}{(options.LabelsFile is { } file ? $" --labels {Cli.Escape(file)}" : "")} {Cli.Escape(advice.Arguments)}[/] (advised in {clock.Elapsed.TotalSeconds:0} s)");
            if (parse.GetValue(json))
                Cli.WriteJson(new
                {
                    strategy = advice.Strategy, feature_block = advice.FeatureBlock, unfreeze = advice.Unfreeze, arguments = advice.Arguments,
                    estimates = advice.Estimates.Select(e => new
                    {
                        strategy = e.Strategy, feature_block = e.FeatureBlock, unfreeze = e.Unfreeze, arguments = e.Arguments, accuracy = e.Accuracy,
                        ci_low = e.Interval.Low, ci_high = e.Interval.High, seconds = e.Seconds,
                        gain = e.Gain?.Value, gain_ci_low = e.Gain?.Interval.Low, gain_ci_high = e.Gain?.Interval.High,
                    }),
                    reasons = advice.Reasons, skipped = advice.Skipped, seconds = clock.Elapsed.TotalSeconds, measure = advice.Measure,
                });
        });
        return command;
    }
}
