using System.Text;
using System.Text.Json;
using Graft.Imaging;
namespace Graft.Data;

/// <summary>
/// Reads a label file: the images of DATA and their labels as a table beside them (Kaggle's <c>train.csv</c>, a labelling
/// tool's export) instead of class folders. A <c>.csv</c> (RFC 4180: quoted fields may hold commas, doubled quotes and line
/// breaks), a <c>.tsv</c> (the same with tabs) or a <c>.jsonl</c> (one JSON object per line), UTF-8 with or without a BOM,
/// LF or CRLF. Its columns (keys): <c>file</c>, the image's path relative to DATA; <c>label</c>, its one class, or
/// <c>labels</c>, its classes separated by <c>;</c> (in JSON lines also an array); optionally <c>split</c>: <c>train</c>,
/// <c>val</c> (or <c>validation</c>) or <c>test</c>.
/// <para>
/// A <c>labels</c> cell may be empty: an image with no label, which only multi-label data can have. The data is
/// multi-label when a row carries more than one label, or when the caller asks. A multi-label image's
/// <see cref="LabeledImage.Label"/> is its class of lowest index (-1 with none), its <see cref="LabeledImage.Labels"/> all of
/// them in index order.
/// </para>
/// <para>
/// The roles are the split column's; where it has none, validation (and test) images are held out of the training rows as
/// from class folders (<see cref="ImageFolder.Roles"/>), stratified by <see cref="LabeledImage.Label"/>: for multi-label
/// data, by each image's first class, images without a label forming a stratum of their own. The images of a label file
/// in the same order as class folders (class by class, ordinal paths within a class) get the same roles, so a model
/// trains the same from either.
/// </para>
/// Each problem in the file is one <see cref="GraftException"/> naming the file and its line.
/// </summary>
internal static class LabelFile
{
    static readonly string[] Columns = ["file", "label", "labels", "split"];

    /// <summary>One row: where it is in the file, the image's path as written and as found, its labels, its split (null without a split column).</summary>
    sealed record Row(int Line, string Written, string Path, IReadOnlyList<string> Labels, string? Split);

    /// <summary>
    /// The label file to use: <paramref name="file"/> as given (relative to the current folder), or relative to DATA
    /// when only that exists.
    /// </summary>
    public static string Locate(string root, string file)
    {
        if (File.Exists(file) || System.IO.Path.IsPathRooted(file)) return System.IO.Path.GetFullPath(file);
        var beside = System.IO.Path.Combine(root, file);
        return System.IO.Path.GetFullPath(File.Exists(beside) ? beside : file);
    }

    /// <summary>The label file a model was trained from, when <paramref name="root"/> is its DATA and the file is still there; else null.</summary>
    public static string? OfModel(string root, DatasetInfo? trainedOn) =>
        trainedOn?.LabelsFile is { } relative && System.IO.Path.GetFullPath(root) == trainedOn.Root
            && System.IO.Path.Combine(trainedOn.Root, relative) is var file && File.Exists(file) ? file : null;

    /// <summary>The label file's path relative to DATA, as a model file records it (<see cref="DatasetInfo.LabelsFile"/>).</summary>
    public static string Relative(string root, string file) => System.IO.Path.GetRelativePath(System.IO.Path.GetFullPath(root), file);

    /// <summary>DATA's images and roles as the label file says, for training (<see cref="ImageFolder.OpenForTraining"/>).</summary>
    public static ImageDataset Open(string root, string labelsFile, double validationSplit, int seed, double testSplit, bool multiLabel)
    {
        var file = Locate(root, labelsFile);
        var (rows, hasSplit) = Read(root, file);
        multiLabel |= rows.Any(r => r.Labels.Count > 1);
        if (!multiLabel) CheckOneLabelEach(file, rows);
        var pool = rows.Where(r => r.Split is null or "train").ToList();
        var classes = pool.SelectMany(r => r.Labels).Distinct().Order(StringComparer.Ordinal).ToList();
        if (classes.Count < (multiLabel ? 1 : 2))
            throw new GraftException($"{file} names {(classes.Count == 0 ? "no class" : $"only one class ({classes[0]})")} among its training rows.",
                "A classifier needs at least two classes: label the images of each.");
        List<LabeledImage>? Part(string split) =>
            hasSplit && rows.Any(r => r.Split == split) ? Images(file, rows.Where(r => r.Split == split), classes, "its training rows") : null;
        var (givenValidation, givenTest) = (Part("val"), Part("test"));
        if (givenTest is not null && testSplit > 0)
            throw new GraftException($"{file} has test rows and a test split of {testSplit:0.##} was asked to hold out another.",
                "Hold out no test split: the rows with split test are the test set.");
        var (train, validation, test) = ImageFolder.Roles(Images(file, pool, classes, "its training rows"), givenValidation, givenTest,
            validationSplit, testSplit, seed);
        var name = System.IO.Path.GetFileName(file);
        var layout = new List<string>
        {
            givenValidation is not null ? $"{name}: train + val rows" : name + (hasSplit ? ": train rows" : "") + ImageFolder.SplitLayout(validationSplit, seed),
        };
        if (givenTest is not null) layout.Add("test rows for testing");
        else if (testSplit > 0) layout.Add($"{testSplit:0.##} held out for testing");
        return new ImageDataset(root, classes, train, validation, string.Join(" + ", layout))
            { Test = test, MultiLabel = multiLabel, LabelsFile = file };
    }

    /// <summary>
    /// DATA's images as the label file says, measured against a model's classes: its test rows, else its val rows, else
    /// every row; where DATA and the file are the model's own and the model held images out of them, those images.
    /// A label the model does not know is refused.
    /// </summary>
    public static ImageDataset OpenForEvaluation(string root, string labelsFile, IReadOnlyList<string> modelClasses, DatasetInfo? trainedOn, bool multiLabel)
    {
        var file = Locate(root, labelsFile);
        var (rows, _) = Read(root, file);
        multiLabel |= rows.Any(r => r.Labels.Count > 1);
        if (!multiLabel) CheckOneLabelEach(file, rows);
        bool hasTest = rows.Any(r => r.Split == "test"), hasValidation = rows.Any(r => r.Split == "val");
        bool sameData = trainedOn is not null && System.IO.Path.GetFullPath(root) == trainedOn.Root && trainedOn.LabelsFile == Relative(root, file);
        if (sameData && !hasTest && (trainedOn!.TestSplit > 0 || !hasValidation && trainedOn.ValidationSplit > 0)
            && ImageFolder.HeldOutSplit(root, modelClasses, trainedOn, file, multiLabel) is { } heldOut)
            return heldOut;
        var part = hasTest ? "test" : hasValidation ? "val" : null;
        var known = modelClasses.Select(c => c.Normalize(NormalizationForm.FormC)).ToList();
        var images = Images(file, rows.Where(r => part is null || r.Split == part), known, "the model");
        var notes = new List<string>();
        if (sameData && part is null)
            notes.Add("these are the images the model was trained on: their accuracy says nothing about new photos. Give the label file test rows, or hold out a test split in training.");
        else if (sameData && part == "val")
            notes.Add(ImageFolder.SelectionNote(file));
        return new ImageDataset(root, modelClasses, [], images, $"{System.IO.Path.GetFileName(file)}: {(part is null ? "every row" : part + " rows")}")
        {
            Notes = notes, MultiLabel = multiLabel, LabelsFile = file,
            Part = hasTest ? "test" : hasValidation ? "validation" : sameData ? "training" : null,
        };
    }

    /// <summary>Single-label data: every row names exactly one class (an empty labels cell is an empty label here).</summary>
    static void CheckOneLabelEach(string file, IReadOnlyList<Row> rows)
    {
        if (rows.FirstOrDefault(r => r.Labels.Count == 0) is { } empty)
            throw At(file, empty.Line, $"{empty.Written} has an empty label.",
                "Give every row its class; an image without any label belongs to multi-label data, where an image may carry several classes or none.");
    }

    /// <summary>
    /// The rows' images labelled by <paramref name="classes"/>, class by class with ordinal paths within each (as
    /// class folders list them); a label not among them is refused, naming its row.
    /// </summary>
    static List<LabeledImage> Images(string file, IEnumerable<Row> rows, IReadOnlyList<string> classes, string whose)
    {
        var index = classes.Select((c, i) => (c, i)).ToDictionary(t => t.c, t => t.i, StringComparer.Ordinal);
        var images = new List<LabeledImage>();
        foreach (var row in rows)
        {
            var labels = new List<int>();
            foreach (var label in row.Labels)
                labels.Add(index.TryGetValue(label, out int c) ? c
                    : throw At(file, row.Line, $"{row.Written} is labelled {label}, a class {whose} do{(whose == "the model" ? "es" : "")} not have.",
                        $"The classes are: {string.Join(", ", classes)}."));
            labels = labels.Distinct().Order().ToList();
            images.Add(new LabeledImage(row.Path, labels.Count > 0 ? labels[0] : -1) { Labels = labels });
        }
        return images.OrderBy(i => i.Label).ThenBy(i => i.Path, StringComparer.Ordinal).ToList();
    }

    /// <summary>The file's rows, each checked (its image there and readable, its labels and split), and whether it has a split column.</summary>
    static (List<Row> Rows, bool HasSplit) Read(string root, string file)
    {
        if (!File.Exists(file))
            throw new GraftException($"The label file {file} does not exist.", "Pass the path of a .csv, .tsv or .jsonl file naming DATA's images and their labels.");
        var extension = System.IO.Path.GetExtension(file).ToLowerInvariant();
        string text;
        try { text = File.ReadAllText(file, Encoding.UTF8); } // a UTF-8 BOM is dropped
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new GraftException($"The label file {file} cannot be read ({e.Message}).", "Check that it is a readable file.");
        }
        var records = extension switch
        {
            ".csv" => Delimited(file, text, ','),
            ".tsv" => Delimited(file, text, '\t'),
            ".jsonl" => JsonLines(file, text),
            _ => throw new GraftException($"{file} is not a label file Graft reads (.csv, .tsv or .jsonl).", "Save the labels as CSV, TSV or JSON lines."),
        };
        var top = System.IO.Path.GetFullPath(root);
        if (!Directory.Exists(top))
            throw new GraftException($"{root} does not exist.", "Pass the folder the label file's paths are relative to.");
        var rows = new List<Row>();
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        bool hasSplit = false;
        foreach (var (line, cells) in records)
        {
            hasSplit |= cells.ContainsKey("split");
            var written = cells.GetValueOrDefault("file")?.Trim() ?? "";
            if (written.Length == 0) throw At(file, line, "the row names no file.", "Give every row the image's path, relative to the data folder.");
            var full = System.IO.Path.GetFullPath(written, top);
            if (!FolderWalk.IsInside(full, top) || full == top)
                throw At(file, line, $"{written} is outside the data folder {top}.", "Give paths relative to the data folder, inside it.");
            var relative = System.IO.Path.GetRelativePath(top, full);
            if (seen.TryGetValue(relative, out int first))
                throw At(file, line, $"{written} is listed again (first on line {first}).", "List each image once; give a multi-label image all its labels in one labels cell, separated by ';'.");
            seen[relative] = line;
            CheckImage(file, line, written, full);
            rows.Add(new Row(line, written, System.IO.Path.Combine(root, relative), Labels(cells), Split(file, line, cells)));
        }
        if (rows.Count == 0) throw new GraftException($"The label file {file} has no rows.", "Add a row per image: its file and its label.");
        return (rows, hasSplit);
    }

    /// <summary>The row's image must be there, a regular file, in a format Graft decodes.</summary>
    static void CheckImage(string file, int line, string written, string full)
    {
        if (Directory.Exists(full)) throw At(file, line, $"{written} is a folder, not an image.", "Name one image file per row.");
        if (!File.Exists(full)) throw At(file, line, $"{written} does not exist.", "Fix the path (relative to the data folder), or remove the row.");
        if (FileKind.NotRegular(full) is { } kind) throw At(file, line, $"{written} is {kind}, not an image file.", "Name a regular image file, or remove the row.");
        if (ImageFolder.IsUnconvertedImage(full))
            throw At(file, line, $"{written} is a TIFF or HEIC image, which Graft does not decode.", "Convert it to JPEG or PNG and name that file.");
        if (!ImageLoader.IsImageFile(full))
            throw At(file, line, $"{written} is not an image Graft reads ({string.Join(", ", ImageLoader.Extensions)}).", "Name an image file, or remove the row.");
    }

    /// <summary>A row's labels: the label cell's one, or the labels cell's, split on ';' (empty pieces dropped), each in NFC.</summary>
    static List<string> Labels(Dictionary<string, string?> cells)
    {
        var text = cells.GetValueOrDefault("label") ?? cells.GetValueOrDefault("labels") ?? "";
        var pieces = cells.ContainsKey("label") ? [text] : text.Split(';');
        return pieces.Select(p => p.Trim().Normalize(NormalizationForm.FormC)).Where(p => p.Length > 0).Distinct().ToList();
    }

    /// <summary>A row's role: train, val (also written validation) or test; null without a split column.</summary>
    static string? Split(string file, int line, Dictionary<string, string?> cells)
    {
        if (!cells.TryGetValue("split", out var split)) return null;
        return (split ?? "").Trim().ToLowerInvariant() switch
        {
            "train" => "train",
            "val" or "validation" => "val",
            "test" => "test",
            _ => throw At(file, line, $"the split '{split}' is not train, val or test.", "Give every row's split as train, val (or validation) or test."),
        };
    }

    /// <summary>A CSV or TSV file's records after its header, as column name to cell, each with the line it starts on.</summary>
    static IEnumerable<(int Line, Dictionary<string, string?> Cells)> Delimited(string file, string text, char separator)
    {
        using var records = Records(file, text, separator).GetEnumerator();
        if (!records.MoveNext()) yield break;
        var header = records.Current.Fields.Select(h => h.Trim().ToLowerInvariant()).ToList();
        CheckColumns(file, records.Current.Line, header);
        while (records.MoveNext())
        {
            var (line, fields) = records.Current;
            if (fields.Count != header.Count)
                throw At(file, line, $"the row has {fields.Count} field{(fields.Count == 1 ? "" : "s")} and the header {header.Count}.",
                    separator == ',' ? "Quote a field that holds a comma (\"a, b\")." : "Give every row one cell per column.");
            yield return (line, header.Zip(fields).ToDictionary(t => t.First, t => (string?)t.Second));
        }
    }

    /// <summary>
    /// The file's records as RFC 4180 reads them: fields between separators, a quoted field holding separators, line
    /// breaks and doubled quotes; CRLF, LF or CR ends a record; blank lines are skipped.
    /// </summary>
    internal static IEnumerable<(int Line, List<string> Fields)> Records(string file, string text, char separator)
    {
        int i = 0, line = 1;
        while (i < text.Length)
        {
            int start = line;
            var fields = new List<string>();
            var field = new StringBuilder();
            bool quoted = false, closed = false, ended = false;
            while (!ended)
            {
                if (i == text.Length)
                {
                    if (quoted) throw At(file, start, "a quoted field is never closed.", "Close the field with a quote; write a quote inside a field as two (\"\").");
                    break;
                }
                char c = text[i++];
                if (quoted)
                {
                    if (c != '"') { field.Append(c); line += c == '\n' ? 1 : 0; }
                    else if (i < text.Length && text[i] == '"') { field.Append('"'); i++; }
                    else (quoted, closed) = (false, true);
                }
                else if (c == separator) { fields.Add(field.ToString()); field.Clear(); closed = false; }
                else if (c is '\n' or '\r')
                {
                    if (c == '\r' && i < text.Length && text[i] == '\n') i++;
                    line++;
                    ended = true;
                }
                else if (closed) throw At(file, line, $"a quoted field is followed by '{c}'.", "Quote the whole field; write a quote inside it as two (\"\").");
                else if (c == '"' && field.Length == 0) quoted = true;
                else field.Append(c);
            }
            fields.Add(field.ToString());
            if (fields is [""] && !closed) continue;
            yield return (start, fields);
        }
    }

    /// <summary>A JSON lines file's objects, as key to text (a labels array joined with ';'), each with its line.</summary>
    static IEnumerable<(int Line, Dictionary<string, string?> Cells)> JsonLines(string file, string text)
    {
        var lines = text.Split('\n');
        var keys = new HashSet<string>();
        for (int n = 0; n < lines.Length; n++)
        {
            var json = lines[n].TrimEnd('\r');
            if (json.Trim().Length == 0) continue;
            JsonDocument document;
            try { document = JsonDocument.Parse(json); }
            catch (JsonException e) { throw At(file, n + 1, $"the line is not JSON ({e.Message.Split(" Path:")[0]}).", "Write one JSON object per line."); }
            using (document)
            {
                if (document.RootElement.ValueKind != JsonValueKind.Object)
                    throw At(file, n + 1, "the line is not a JSON object.", "Write one object per line, e.g. {\"file\": \"a.jpg\", \"label\": \"cat\"}.");
                var cells = new Dictionary<string, string?>();
                foreach (var property in document.RootElement.EnumerateObject())
                {
                    var key = property.Name.Trim().ToLowerInvariant();
                    if (!cells.TryAdd(key, Text(file, n + 1, key, property.Value)))
                        throw At(file, n + 1, $"the key {key} appears twice.", "Give each key once.");
                }
                keys.UnionWith(cells.Keys);
                CheckColumns(file, n + 1, keys.ToList());
                if (keys.Contains("split")) cells.TryAdd("split", null);
                yield return (n + 1, cells);
            }
        }
    }

    /// <summary>A JSON value as a cell's text: a string or number as written, an array of them joined with ';', null as empty.</summary>
    static string? Text(string file, int line, string key, JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString(),
        JsonValueKind.Number => value.GetRawText(),
        JsonValueKind.Null => null,
        JsonValueKind.Array when key == "labels" => string.Join(';', value.EnumerateArray().Select(v => v.ValueKind is JsonValueKind.String or JsonValueKind.Number
            ? Text(file, line, key, v) : throw At(file, line, "a label in the labels array is not a string.", "Write labels as strings, e.g. [\"beach\", \"dog\"]."))),
        _ => throw At(file, line, $"the value of {key} is {value.ValueKind.ToString().ToLowerInvariant()}, not a string.", "Write file, label, labels and split as strings (labels may be an array of strings)."),
    };

    /// <summary>The columns must be known, each once, with a file column and one of label and labels.</summary>
    static void CheckColumns(string file, int line, IReadOnlyList<string> columns)
    {
        const string Known = "Graft reads the columns file, label (one class) or labels (classes separated by ';') and split (train, val or test).";
        if (columns.FirstOrDefault(c => !Columns.Contains(c)) is { } unknown)
            throw At(file, line, $"the column '{unknown}' is not one Graft reads.", Known + " Remove or rename the others.");
        if (columns.GroupBy(c => c).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw At(file, line, $"the column {twice.Key} appears twice.", Known);
        if (columns.Contains("label") && columns.Contains("labels"))
            throw At(file, line, "there is both a label and a labels column.", "Keep one: label for one class per image, labels for several.");
        if (!columns.Contains("file"))
            throw At(file, line, "there is no file column.", Known);
        if (!columns.Contains("label") && !columns.Contains("labels"))
            throw At(file, line, "there is neither a label nor a labels column.", Known);
    }

    static GraftException At(string file, int line, string problem, string fix) => new($"{file}, line {line}: {problem}", fix);
}
