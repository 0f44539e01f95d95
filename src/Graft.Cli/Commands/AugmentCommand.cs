using Graft.Inference;
using System.CommandLine;
using Graft.Data;
using Graft.Weights;
using Graft.Imaging;
using Spectre.Console;

namespace Graft.Cli.Commands;

public static class AugmentCommand
{
    public static Command Create()
    {
        var data = new Argument<string>("DATA") { Description = "A dataset folder (as for train); its first training images are shown." };
        var output = new Option<string>("--out") { Description = "PNG file to write.", DefaultValueFactory = _ => "augmentation.png" };
        var images = new Option<int>("--images") { Description = "Rows: how many images.", DefaultValueFactory = _ => 4 };
        var variants = new Option<int>("--variants") { Description = "Columns: augmented versions of each.", DefaultValueFactory = _ => 6 };
        var size = new Option<int>("--size") { Description = "Tile size in pixels (the network's input size by default).", DefaultValueFactory = _ => 224 };
        var seed = new Option<int>("--seed") { Description = "Seed of the random draws.", DefaultValueFactory = _ => 42 };
        var labels = Cli.LabelsOption();
        var augment = new AugmentOptions();
        var command = new Command("augment", "Show what augmentation settings do: a grid of augmented samples, a row per image labelled with its class (first column: unaugmented).")
        {
            data, labels, output, images, variants, size, seed,
        };
        augment.AddTo(command);
        command.SetHandler((parse, _) =>
        {
            var path = OutputPaths.File("--out", parse.GetValue(output)!, parse.GetValue(data));
            int rows = InRange(parse.GetValue(images), "--images", 1, 64), columns = InRange(parse.GetValue(variants), "--variants", 1, 32);
            int tile = InRange(parse.GetValue(size), "--size", 32, 512);
            var dataset = ImageFolder.OpenForViewing(SampleDatasets.Resolve(parse.GetValue(data)!, Cli.Assets), parse.GetValue(labels));
            Cli.ReportDataset(dataset);
            // One image from each class in turn, so the grid shows every class.
            var shown = dataset.Train.GroupBy(i => i.Label).SelectMany(g => g.Select((img, k) => (img, k))).OrderBy(t => t.k).ThenBy(t => t.img.Label)
                .Take(rows).Select(t => t.img).ToList();
            var files = shown.Select(i => i.Path).ToList();
            AugmentationPreview.WriteGrid(files, tile, ResizeMode.CenterCrop,
                augment.Read(parse, Augmentation.Default)!, columns, parse.GetValue(seed), path, 
                shown.Select(i => i.Labels.Count == 0 ? "no label" : string.Join(" + ", i.Labels.Select(c => dataset.Classes[c]))).ToList());
            Cli.Out.MarkupLine($"wrote [green]{Cli.Escape(Path.GetFullPath(path))}[/] ({Plural.Of(files.Count, "image")} x {Plural.Of(columns, "augmentation")})");
            return Task.CompletedTask;
        });
        return command;
    }

    /// <summary>A value outside what the preview can draw is refused with its range, never silently clamped.</summary>
    static int InRange(int value, string option, int low, int high) =>
        value >= low && value <= high ? value
            : throw new GraftException($"{option} {value} is out of range.", $"Pass a whole number from {low} to {high}.");
}
