using System.Text.Json;
using System.Text.Json.Serialization;

namespace Graft;

/// <summary>
/// Where Graft computes: the CPU (the default), or an NVIDIA GPU through CUDA, which needs a CUDA build of Graft (the
/// README's "GPU" section says how to make one). A run's device is chosen once, in its options, and every network,
/// tensor and ONNX Runtime session of the run is made there. Written <c>cpu</c>, <c>cuda</c> (the first GPU) or
/// <c>cuda:N</c>, as PyTorch writes devices.
/// </summary>
[JsonConverter(typeof(ComputeDeviceJson))]
public sealed record ComputeDevice
{
    ComputeDevice(int? cudaIndex) => CudaIndex = cudaIndex;

    /// <summary>The CPU: every core, the default.</summary>
    public static ComputeDevice Cpu { get; } = new((int?)null);

    /// <summary>The CUDA GPU numbered <paramref name="index"/> (0: the first), as <c>nvidia-smi</c> numbers them.</summary>
    public static ComputeDevice Cuda(int index = 0) =>
        index >= 0 ? new(index) : throw new ArgumentOutOfRangeException(nameof(index), index, "A CUDA device's number is 0 or more.");

    /// <summary>The GPU's number; null for the CPU.</summary>
    public int? CudaIndex { get; }

    /// <summary>Whether this is a CUDA GPU.</summary>
    public bool IsCuda => CudaIndex is not null;

    /// <summary>Reads <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c> (any case).</summary>
    /// <exception cref="GraftException">Anything else.</exception>
    public static ComputeDevice Parse(string text)
    {
        var t = text.Trim().ToLowerInvariant();
        if (t == "cpu") return Cpu;
        if (t == "cuda") return Cuda();
        if (t.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(t["cuda:".Length..], System.Globalization.NumberStyles.None,
                System.Globalization.CultureInfo.InvariantCulture, out var index))
            return Cuda(index);
        throw new GraftException($"'{text}' is not a device.", "Use cpu, cuda (the first GPU) or cuda:N (the GPU numbered N).");
    }

    /// <summary><c>cpu</c> or <c>cuda:N</c>.</summary>
    public override string ToString() => CudaIndex is { } i ? $"cuda:{i}" : "cpu";

}

/// <summary>A device in JSON: its text (<c>"cpu"</c>, <c>"cuda:0"</c>).</summary>
sealed class ComputeDeviceJson : JsonConverter<ComputeDevice>
{
    public override ComputeDevice Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        try { return ComputeDevice.Parse(reader.GetString() ?? ""); }
        catch (GraftException e) { throw new JsonException(e.Problem); }
    }

    public override void Write(Utf8JsonWriter writer, ComputeDevice value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToString());
}
