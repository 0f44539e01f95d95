using System.Text.Json;
using System.Text.Json.Serialization;
using Graft.Imaging;
using Microsoft.ML.OnnxRuntime;

namespace Graft.Inference;

/// <summary>
/// What the model file and its ONNX network mean to both sides: the inference package that reads them and the
/// training side that writes them (one definition, so neither can drift from the other).
/// </summary>
internal static class ModelFile
{
    public const string CurrentFormat = "graft-model/2";
    public const string ConfigEntry = "config.json";
    /// <summary>Most bytes a JSON entry of a model file (config, history) may take.</summary>
    public const int MaxJsonBytes = 16 << 20;
    /// <summary>The largest input size a model may declare (as --input-size allows).</summary>
    public const int MaxInputSize = 2048;
    public const string ImagesInput = "images", ProbabilitiesOutput = "probabilities";
    /// <summary>Optional outputs: each image's out-of-distribution score [N] (models with a detector), and every class's activation map [N, classes, rows, columns] (linear heads on pooled features).</summary>
    public const string OodScoreOutput = "ood_score", ClassActivationOutput = "class_activation";

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, // a checkpoint's best loss starts at infinity
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    /// <summary>What is wrong with a config's input (null: nothing): present, size in range, 3 finite means, 3 positive stds.</summary>
    public static string? InputProblem(ImageSpec? input, int minSize, string backbone) => input switch
    {
        null => "its config has no input",
        { Size: var size } when size < minSize || size > MaxInputSize => $"input size {size} is outside {minSize}..{MaxInputSize} ({backbone})",
        _ when input.Mean is not { Length: 3 } || !input.Mean.All(float.IsFinite) => $"the input mean {Numbers(input.Mean)} is not 3 finite numbers",
        _ when input.Std is not { Length: 3 } || !input.Std.All(x => float.IsFinite(x) && x > 0) => $"the input std {Numbers(input.Std)} is not 3 positive numbers",
        _ => null,
    };

    static string Numbers(float[]? v) => v is null ? "none" : "[" + string.Join(", ", v.Select(x => x.ToString(System.Globalization.CultureInfo.InvariantCulture))) + "]";

    /// <summary>
    /// ONNX Runtime session options for Graft's networks: every core, all graph optimizations, and idle workers that
    /// sleep instead of spinning (the image pipeline, or a server's other requests, decode on the same cores meanwhile,
    /// and spinning workers would take those cores from them).
    /// </summary>
    public static SessionOptions SessionOptions()
    {
        var options = new SessionOptions
        {
            IntraOpNumThreads = Environment.ProcessorCount,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        };
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        return options;
    }
}
