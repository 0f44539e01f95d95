using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace Graft.Weights;

/// <summary>
/// Named tensors in the safetensors layout: an 8-byte little-endian header length, a JSON header
/// (dtype, shape, byte offsets per tensor), then the raw little-endian data. No code, nothing executable,
/// and readable by the Python safetensors package.
/// </summary>
internal static class Safetensors
{
    public static byte[] Write(IReadOnlyDictionary<string, Tensor> tensors)
    {
        var header = new JsonObject();
        var blobs = new List<byte[]>();
        long offset = 0;
        foreach (var (name, tensor) in tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            using var t = tensor.detach().cpu().contiguous();
            var (dtype, bytes) = t.dtype switch
            {
                ScalarType.Float32 => ("F32", MemoryMarshal.AsBytes(t.data<float>().ToArray().AsSpan()).ToArray()),
                ScalarType.Int64 => ("I64", MemoryMarshal.AsBytes(t.data<long>().ToArray().AsSpan()).ToArray()),
                ScalarType.Float16 => ("F16", Halves(t)),
                _ => throw new NotSupportedException($"Tensor {name} has dtype {t.dtype}."),
            };
            header[name] = new JsonObject
            {
                ["dtype"] = dtype,
                ["shape"] = new JsonArray(t.shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes.Length),
            };
            blobs.Add(bytes);
            offset += bytes.Length;
        }
        var json = JsonSerializer.SerializeToUtf8Bytes(header);
        int padded = (json.Length + 7) / 8 * 8; // keep the data 8-byte aligned, padding with spaces as the format allows
        var result = new byte[8 + padded + offset];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)padded);
        json.CopyTo(result, 8);
        result.AsSpan(8 + json.Length, padded - json.Length).Fill((byte)' ');
        long at = 8 + padded;
        foreach (var blob in blobs) { blob.CopyTo(result, at); at += blob.Length; }
        return result;
    }

    /// <summary>A float16 tensor's values as IEEE half-precision little-endian bytes.</summary>
    public static byte[] Halves(Tensor t)
    {
        using var floats = t.to(ScalarType.Float32).contiguous();
        return MemoryMarshal.AsBytes(floats.data<float>().ToArray().Select(v => (Half)v).ToArray().AsSpan()).ToArray();
    }

    static Tensor FromHalves(ReadOnlySpan<byte> bytes, long[] shape)
    {
        var values = MemoryMarshal.Cast<byte, Half>(bytes).ToArray().Select(h => (float)h).ToArray();
        using var floats = tensor(values, shape, device: CPU);
        return floats.to(ScalarType.Float16);
    }

    public static Dictionary<string, Tensor> Read(byte[] data, string source)
    {
        try
        {
            var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(data);
            var header = JsonNode.Parse(data.AsSpan(8, headerLength))!.AsObject();
            var start = 8 + headerLength;
            var result = new Dictionary<string, Tensor>();
            foreach (var (name, node) in header)
            {
                if (name == "__metadata__") continue;
                var shape = node!["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray();
                var offsets = node["data_offsets"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray();
                var bytes = data.AsSpan(start + (int)offsets[0], (int)(offsets[1] - offsets[0]));
                result[name] = node["dtype"]!.GetValue<string>() switch
                {
                    // Read on the host: loading them copies them into the network's weights, wherever those are.
                    "F32" => tensor(MemoryMarshal.Cast<byte, float>(bytes).ToArray(), shape, device: CPU),
                    "I64" => tensor(MemoryMarshal.Cast<byte, long>(bytes).ToArray(), shape, device: CPU),
                    "F16" => FromHalves(bytes, shape),
                    var other => throw new NotSupportedException($"dtype {other}"),
                };
            }
            return result;
        }
        catch (Exception e) when (e is not GraftException)
        {
            throw new GraftException($"{source} holds damaged weights ({e.Message}).", "Train the model again or restore the file from a backup.");
        }
    }
}
