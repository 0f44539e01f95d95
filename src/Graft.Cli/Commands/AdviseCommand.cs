using System.CommandLine;
using Graft.Data;
using Graft.Training;
using Graft.Weights;
using Spectre.Console;

namespace Graft.Cli.Commands;

public static class AdviseCommand
{
    public static Command Create()
    {
        var data = new Argument<string>("DATA") { Description = "A dataset folder (as for train)." };
        var backbone = new Option<string>("--backbone") { Description = "Pretrained backbone to measure against.", DefaultValueFactory = _ => Graft.Backbones.BackboneRegistry.Default.Name };
        var sample = new Option<int>("--sample") { Description = "Images sampled (stratified) for the ImageNet and linear-probe measurements.", DefaultValueFactory = _ => 300 };
        var seed = new Option<int>("--seed") { Description = "Seed of the sample and the folds.", DefaultValueFactory = _ => 42 };
        var json = Cli.JsonOption();
        var command = new Command("advise", "Measure a dataset's size and its similarity to ImageNet, and recommend a strategy.") { data, backbone, sample, seed, json };
        var weights = new BackboneOptions();
        weights.AddTo(command);
        command.SetHandler(async (parse, cancel) =>
        {
            var path = SampleDatasets.Resolve(parse.GetValue(data)!, Cli.Assets);
            var advice = await StrategyAdvisor.AdviseAsync(path, parse.GetValue(backbone)!, Cli.Assets,
                Math.Clamp(parse.GetValue(sample), 20, 5000), parse.GetValue(seed), new ProgressLine().Callbacks, cancel, weights.WeightsFile(parse), weights.Size(parse));
            Cli.Out.MarkupLine($"[bold]{Cli.Escape(advice.Case)}[/]: graft train {Cli.Escape(path)} {Cli.Escape(advice.Arguments)}");
            foreach (var reason in advice.Reasons) Cli.Out.MarkupLine($"  {Cli.Escape(reason)}");
            if (parse.GetValue(json))
                Cli.WriteJson(new { advice.Case, advice.Strategy, unfreeze = advice.Unfreeze, feature_block = advice.FeatureBlock, advice.Reasons, facts = advice.Facts });
        });
        return command;
    }
}
