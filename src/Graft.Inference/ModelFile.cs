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
    /// <summary>The input of a network that is a head on an ONNX trunk's features [N, C] (<see cref="OnnxTrunk"/>).</summary>
    public const string FeaturesInput = "features";
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
    /// and spinning workers would take those cores from them). With <paramref name="cudaDevice"/>, the network runs on that
    /// GPU through ONNX Runtime's CUDA execution provider (its GPU package), the CPU taking what CUDA lacks.
    /// </summary>
    /// <exception cref="GraftException">CUDA was asked for and this ONNX Runtime cannot use it.</exception>
    public static SessionOptions SessionOptions(int? cudaDevice = null)
    {
        var options = new SessionOptions
        {
            IntraOpNumThreads = Environment.ProcessorCount,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        };
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        if (cudaDevice is not { } index) return options;
        try
        {
            CheckCuda(index);
            options.AppendExecutionProvider_CUDA(index);
            return options;
        }
        catch (OnnxRuntimeException e)
        {
            options.Dispose();
            throw NoCuda($"cuda:{index}", $"ONNX Runtime's CUDA execution provider does not start ({GraftException.FirstLine(e.Message)})");
        }
        catch
        {
            options.Dispose();
            throw;
        }
    }

    /// <summary>The name ONNX Runtime gives its CUDA execution provider.</summary>
    public const string CudaProvider = "CUDAExecutionProvider";

    /// <summary>Refuses CUDA when this ONNX Runtime is the CPU package (it has no CUDA execution provider).</summary>
    public static void CheckCuda(int index)
    {
        if (!OrtEnv.Instance().GetAvailableProviders().Contains(CudaProvider))
            throw NoCuda($"cuda:{index}", "this ONNX Runtime is its CPU package (no CUDA execution provider)");
    }

    /// <summary>
    /// The one error for a CUDA device that cannot be used here: <paramref name="why"/> says which part lacks it
    /// (libtorch, ONNX Runtime, the driver); the fix says what a CUDA build needs.
    /// </summary>
    public static GraftException NoCuda(string device, string why) =>
        new($"no CUDA device or CUDA build: {device} was asked for, and {why}.",
            "Use the cpu device, or a CUDA build of Graft (built with -p:GraftCuda=true; README, \"GPU\") on a machine with an NVIDIA GPU, its driver and the CUDA libraries README lists.");
}
