namespace Graft.Weights;

/// <summary>
/// One reader per weight-file format, chosen by the file's content (not its name): HDF5 (Keras), TFLite
/// flatbuffers, TF.js layers models (model.json).
/// </summary>
internal static class WeightReaders
{
    static readonly (string Format, Func<byte[], bool> Matches, Func<string, NamedWeights> Read)[] Readers =
    [
        ("Keras HDF5", head => head.AsSpan().StartsWith(HdfSignature), Keras.KerasH5Reader.Read),
        ("TFLite", head => head.Length >= 8 && head.AsSpan(4, 4).SequenceEqual("TFL3"u8), Tflite.TfliteReader.Read),
        ("TF.js layers model", head => head.AsSpan().TrimStart(" \t\r\n\uFEFF"u8).StartsWith("{"u8), Tfjs.TfjsReader.Read),
    ];

    static ReadOnlySpan<byte> HdfSignature => [0x89, (byte)'H', (byte)'D', (byte)'F', 0x0D, 0x0A, 0x1A, 0x0A];

    public static NamedWeights Read(string path)
    {
        byte[] head = new byte[16];
        int read;
        try
        {
            using var stream = File.OpenRead(path);
            read = stream.Read(head);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new GraftException($"Cannot read weights {path}: {e.Message}.", "Check the path and its permissions.");
        }
        var reader = Readers.FirstOrDefault(r => r.Matches(head[..read]));
        if (reader.Read is null)
            throw new GraftException($"{path} is not a weight file Graft reads.",
                $"Pass a Keras .h5 file, a TFLite file or a TF.js model.json ({string.Join(", ", Readers.Select(r => r.Format))}).");
        try { return reader.Read(path); }
        catch (Exception e) when (e is not GraftException and not OutOfMemoryException)
        {
            // The readers refuse what they check with their own message; anything else a damaged file makes them
            // (or a library under them) throw is still one line naming the file, not a stack trace.
            throw new GraftException($"{path} is a damaged {reader.Format} file ({GraftException.FirstLine(e.Message).TrimEnd('.')}).",
                "Download or export it again; a published file's SHA-256 should match.");
        }
    }
}
