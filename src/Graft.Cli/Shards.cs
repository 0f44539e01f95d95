using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Graft.Training;
using Parquet.Serialization;

namespace Graft.Cli;

/// <summary>
/// Batch jobs that scale out (predict and embed): <c>--shard K/N</c> takes a deterministic share of the files, by a hash
/// of each file's path relative to the input it was found in (so every machine agrees, wherever the data is mounted);
/// <c>--out</c> writes one row per image as JSON Lines, CSV or Parquet; <c>--resume</c> skips the files the output
/// already holds. <c>graft merge</c> puts the shards' files together.
/// </summary>
public sealed class ShardOptions
{
    /// <summary>Rows are written to the output every this many images, so a stopped job loses at most one chunk.</summary>
    public const int Chunk = 256;

    public readonly Option<string?> Shard = new("--shard") { Description = "Only share K of N of the files (K from 0 to N-1), chosen by a hash of each file's path relative to its input folder: N processes with K = 0..N-1 cover every file once (a Kubernetes Indexed Job's JOB_COMPLETION_INDEX is K)." };
    public readonly Option<bool> Resume = new("--resume") { Description = "Keep the rows --out already holds, skip their files and add the rest." };

    public void AddTo(Command command)
    {
        command.Options.Add(Shard);
        command.Options.Add(Resume);
    }

    /// <summary>The files of this shard, in the order given, and those --resume finds already written.</summary>
    public (List<string> Files, List<JsonObject> Done) Select(ParseResult parse, IReadOnlyList<string> inputs, List<string> files, string? output)
    {
        if (parse.GetValue(Shard) is { } text)
        {
            var (k, n) = Parse(text);
            files = files.Where(f => Of(Relative(inputs, f), n) == k).ToList();
        }
        if (!parse.GetValue(Resume)) return (files, []);
        if (output is null) throw new GraftException("--resume needs --out: the file whose rows are kept.", "Add --out FILE (.jsonl, .csv or .parquet).");
        var done = File.Exists(output) ? RowFile.Read(output, cutShort: true) : [];
        var written = done.Select(r => (string)r["file"]!).ToHashSet(StringComparer.Ordinal);
        return (files.Where(f => !written.Contains(f)).ToList(), done);
    }

    static (int K, int N) Parse(string text)
    {
        var parts = text.Split('/');
        if (parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int k)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= 1 && k < n)
            return (k, n);
        throw new GraftException($"--shard {text} is not K/N with 0 <= K < N.", "Pass e.g. --shard 0/4 ... --shard 3/4 for four processes.");
    }

    /// <summary>The shard (0..N-1) of a relative path: the first 8 bytes of its UTF-8 SHA-256, modulo N.</summary>
    public static int Of(string relative, int n) =>
        (int)(BitConverter.ToUInt64(SHA256.HashData(Encoding.UTF8.GetBytes(relative.Replace('\\', '/'))), 0) % (ulong)n);

    /// <summary>A file's path relative to the input folder that holds it; a file named directly is its own name.</summary>
    static string Relative(IReadOnlyList<string> inputs, string file)
    {
        foreach (var input in inputs)
            if (Directory.Exists(input) && Path.GetFullPath(file).StartsWith(Path.TrimEndingDirectorySeparator(Path.GetFullPath(input)) + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                return Path.GetRelativePath(input, file);
        return Path.GetFileName(file);
    }
}

/// <summary>
/// Features as rows (embed, and audit's shards): with a row file, chunk by chunk, each chunk's rows written before the next
/// is extracted, so a stopped job resumes where it was (<c>--resume</c>).
/// </summary>
static class FeatureRows
{
    /// <summary>What a pass wrote: each readable image's features, the images skipped, what the cache saved or could not keep.</summary>
    public sealed record Extracted(List<(string File, float[] Vector)> Rows, List<SkippedImage> Skipped, int CacheHits, int Computed, string? CacheWarning);

    /// <summary>
    /// The features of <paramref name="files"/>; <paramref name="rowFile"/> (when given) is rewritten with
    /// <paramref name="done"/>, then each chunk's rows are added to it.
    /// </summary>
    public static async Task<Extracted> ExtractAsync(
        FeatureExtraction extraction, List<string> files, string? rowFile, IReadOnlyList<JsonObject> done, CancellationToken cancel)
    {
        var progress = new ProgressLine();
        var rows = new List<(string File, float[] Vector)>();
        var skipped = new List<SkippedImage>();
        int hits = 0, computed = 0;
        string? warning = null;
        if (rowFile is not null) RowFile.Write(rowFile, done);
        foreach (var chunk in rowFile is null ? [files.ToArray()] : files.Chunk(ShardOptions.Chunk))
        {
            var features = await extraction.ExtractAsync(chunk, progress.Callbacks.Images, cancel);
            skipped.AddRange(features.Skipped);
            (hits, computed, warning) = (hits + features.Stats.CacheHits, computed + features.Stats.Computed, warning ?? features.CacheWarning);
            var got = chunk.Select((f, i) => (File: f, Vector: features.Rows[i])).Where(r => r.Vector is not null).Select(r => (r.File, Vector: r.Vector!)).ToList();
            if (rowFile is not null) RowFile.Append(rowFile, got.Select(r => new JsonObject { ["file"] = r.File, ["vector"] = new JsonArray(r.Vector.Select(v => (JsonNode)v).ToArray()) }).ToList());
            rows.AddRange(got);
        }
        return new Extracted(rows, skipped, hits, computed, warning);
    }
}

/// <summary>
/// One row per image (a JSON object with a <c>file</c>) in JSON Lines, CSV or Parquet, by the file's extension.
/// Predictions are <c>file, label, confidence, top</c>; embeddings <c>file, vector</c> (CSV: <c>file, f0, f1, ...</c>).
/// In CSV and Parquet, <c>top</c> is its JSON text.
/// </summary>
public static class RowFile
{
    public static readonly string[] Extensions = [".jsonl", ".csv", ".parquet"];

    static readonly JsonSerializerOptions Line = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    sealed class PredictionRow
    {
        public string File { get; set; } = "";
        public string Label { get; set; } = "";
        public float Confidence { get; set; }
        public string Top { get; set; } = "";
    }

    sealed class EmbeddingRow
    {
        public string File { get; set; } = "";
        public float[] Vector { get; set; } = [];
    }

    /// <summary>Checks an output path's format before any work is done.</summary>
    public static void Check(string option, string path)
    {
        if (!Extensions.Contains(Path.GetExtension(path).ToLowerInvariant()))
            throw new GraftException($"{option} {path}: unknown format.", $"Name a {string.Join(", ", Extensions)} file.");
    }

    /// <summary>Adds rows to the file (creating it): JSON Lines and CSV append lines, Parquet a row group.</summary>
    public static void Append(string path, IReadOnlyList<JsonObject> rows)
    {
        if (rows.Count == 0) return;
        bool exists = File.Exists(path) && new FileInfo(path).Length > 0;
        switch (Path.GetExtension(path).ToLowerInvariant())
        {
            case ".jsonl":
                File.AppendAllLines(path, rows.Select(r => r.ToJsonString(Line)));
                break;
            case ".csv":
                File.AppendAllText(path, Csv(rows, header: !exists));
                break;
            default:
                using (var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite))
                {
                    var options = new Parquet.ParquetOptions { Append = exists };
                    if (rows[0].ContainsKey("vector"))
                        ParquetSerializer.SerializeAsync(rows.Select(r => new EmbeddingRow { File = (string)r["file"]!, Vector = r["vector"]!.AsArray().Select(v => (float)v!).ToArray() }), stream, options).GetAwaiter().GetResult();
                    else
                        ParquetSerializer.SerializeAsync(rows.Select(r => new PredictionRow { File = (string)r["file"]!, Label = (string)r["label"]!, Confidence = (float)r["confidence"]!, Top = r["top"]!.ToJsonString(Line) }), stream, options).GetAwaiter().GetResult();
                }
                break;
        }
    }

    /// <summary>Writes the rows as a new file (atomically: a temporary file, then a rename).</summary>
    public static void Write(string path, IReadOnlyList<JsonObject> rows)
    {
        var temp = $"{path}.{Environment.ProcessId}.tmp{Path.GetExtension(path)}";
        try
        {
            File.Delete(temp);
            Append(temp, rows);
            if (rows.Count == 0) File.WriteAllText(temp, "");
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>The rows of a file; with <paramref name="cutShort"/>, a last line a stopped job left unfinished is dropped (resume writes it again).</summary>
    public static List<JsonObject> Read(string path, bool cutShort = false)
    {
        try
        {
            var extension = Path.GetExtension(path).ToLowerInvariant();
            if (extension == ".parquet") return ReadParquet(path);
            var text = File.ReadAllText(path);
            if (cutShort && text.Length > 0 && !text.EndsWith('\n')) text = text[..(text.LastIndexOf('\n') + 1)];
            return extension switch
            {
                ".jsonl" => text.Split('\n').Where(l => l.Length > 0).Select(l => JsonNode.Parse(l)!.AsObject()).ToList(),
                _ => ReadCsv(text),
            };
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidDataException or IOException or NullReferenceException or InvalidOperationException)
        {
            throw new GraftException($"{path} is not a complete row file ({GraftException.FirstLine(e.Message)}).",
                "It was cut short (a job stopped while writing it) or is not Graft's: delete it and run the shard again.");
        }
    }

    static List<JsonObject> ReadParquet(string path)
    {
        if (new FileInfo(path).Length == 0) return [];
        using var stream = File.OpenRead(path);
        var fields = Parquet.ParquetReader.CreateAsync(stream).GetAwaiter().GetResult().Schema.Fields.Select(f => f.Name).ToList();
        stream.Position = 0;
        return fields.Contains("Vector")
            ? ParquetSerializer.DeserializeAsync<EmbeddingRow>(stream).GetAwaiter().GetResult().Data
                .Select(r => new JsonObject { ["file"] = r.File, ["vector"] = new JsonArray(r.Vector.Select(v => (JsonNode)v).ToArray()) }).ToList()
            : ParquetSerializer.DeserializeAsync<PredictionRow>(stream).GetAwaiter().GetResult().Data
                .Select(r => new JsonObject { ["file"] = r.File, ["label"] = r.Label, ["confidence"] = r.Confidence, ["top"] = JsonNode.Parse(r.Top) }).ToList();
    }

    static string Csv(IReadOnlyList<JsonObject> rows, bool header)
    {
        var text = new StringBuilder();
        var vector = rows[0]["vector"]?.AsArray().Count;
        if (header)
        {
            text.Append(vector is { } n ? "file" + string.Concat(Enumerable.Range(0, n).Select(i => $",f{i}")) : string.Join(",", rows[0].Select(p => p.Key)));
            text.Append('\n');
        }
        foreach (var row in rows)
        {
            text.AppendJoin(',', row.SelectMany(p => p.Key == "vector" ? p.Value!.AsArray().Select(v => ((float)v!).ToString("R", CultureInfo.InvariantCulture))
                : [Cell(p.Value)]));
            text.Append('\n');
        }
        return text.ToString();
    }

    static string Cell(JsonNode? value) => value switch
    {
        JsonValue v when v.TryGetValue(out string? s) => Quote(s),
        JsonValue v when v.TryGetValue(out float f) => f.ToString("R", CultureInfo.InvariantCulture),
        JsonValue v => v.ToJsonString(Line),
        _ => Quote(value?.ToJsonString(Line) ?? ""),
    };

    static string Quote(string s) => '"' + s.Replace("\"", "\"\"") + '"';

    static List<JsonObject> ReadCsv(string text)
    {
        var lines = ParseCsv(text);
        if (lines.Count == 0) return [];
        var header = lines[0];
        return lines.Skip(1).Select(cells =>
        {
            var row = new JsonObject();
            if (header.Count > 1 && header[1] == "f0")
            {
                row["file"] = cells[0];
                row["vector"] = new JsonArray(cells.Skip(1).Select(c => (JsonNode)float.Parse(c, CultureInfo.InvariantCulture)).ToArray());
            }
            else
                for (int i = 0; i < header.Count; i++)
                    row[header[i]] = header[i] == "file" ? cells[i]
                        : cells[i].StartsWith('[') || cells[i].StartsWith('{') ? JsonNode.Parse(cells[i])
                        : float.TryParse(cells[i], NumberStyles.Float, CultureInfo.InvariantCulture, out float f) ? f : cells[i];
            return row;
        }).ToList();
    }

    /// <summary>RFC 4180: quoted cells may hold commas, doubled quotes and line breaks.</summary>
    static List<List<string>> ParseCsv(string text)
    {
        var lines = new List<List<string>>();
        var cells = new List<string>();
        var cell = new StringBuilder();
        bool quoted = false;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < text.Length && text[i + 1] == '"') { cell.Append('"'); i++; }
                else if (c == '"') quoted = false;
                else cell.Append(c);
            }
            else if (c == '"') quoted = true;
            else if (c == ',') { cells.Add(cell.ToString()); cell.Clear(); }
            else if (c == '\n')
            {
                cells.Add(cell.ToString());
                cell.Clear();
                lines.Add(cells);
                cells = [];
            }
            else if (c != '\r') cell.Append(c);
        }
        if (quoted) throw new FormatException("the last line is cut short");
        if (cell.Length > 0 || cells.Count > 0) throw new FormatException("the last line has no end");
        return lines;
    }
}
