using System.CommandLine;
using Spectre.Console;
using Graft.Export;

namespace Graft.Cli.Commands;

public static class ExportCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "A model file, or a backbone name (e.g. mobilenet_v2) for its ImageNet classifier." };
        var onnx = new Option<string?>("--onnx") { Description = "The ONNX file to write.", HelpName = "FILE" }
            .ShowDefault("MODEL with .onnx in place of .graft (a backbone: NAME.onnx in the current folder)");
        var json = Cli.JsonOption();
        var command = new Command("export", "Write a model as ONNX (normalized images in, class probabilities out) for ONNX Runtime and other engines.")
        {
            model, onnx, json,
        };
        command.SetHandler((parse, _) =>
        {
            var source = parse.GetValue(model)!;
            var path = Path.GetFullPath(OutputPaths.File("--onnx", parse.GetValue(onnx) ?? DefaultOnnxPath(source), source));
            using var classifier = ModelSource.Open(source, allowBackbone: true);
            classifier.SaveOnnx(path);
            long bytes = new FileInfo(path).Length;
            var input = classifier.Config.Input;
            Cli.Out.MarkupLine($"{Cli.Escape(path)}: {bytes / 1e6:0.0} MB, input \"{OnnxExport.ImagesInput}\" [[N,3,{input.Size},{input.Size}]], " +
                $"output \"{OnnxExport.ProbabilitiesOutput}\" [[N,{classifier.Classes.Count}]]; classes and preprocessing in the metadata" +
                (classifier.Detector is null ? "" : $"; output \"ood_score\" [[N]] with its threshold in the metadata") +
                (classifier.Config.Int8 is null ? "" : "; the int8 trunk as QDQ operators (ONNX Runtime fuses them), with the model's calibration"));
            if (parse.GetValue(json))
                Cli.WriteJson(new { onnx = path, bytes, classes = classifier.Classes, input_size = input.Size, precision = classifier.Config.Int8 is null ? "float" : "int8" });
            return Task.CompletedTask;
        });
        return command;
    }

    /// <summary>m.graft → m.onnx beside it; a backbone name → NAME.onnx in the current folder.</summary>
    static string DefaultOnnxPath(string model) =>
        File.Exists(model) ? Path.ChangeExtension(model, ".onnx") : Path.GetFileName(model) + ".onnx";
}
