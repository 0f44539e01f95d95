using Graft.Inference;
using System.Text;
using Graft.Data;
using Graft.Imaging;

namespace Graft.Audit;

/// <summary>
/// One suggested change to a dataset: <c>relabel</c> (to <see cref="Label"/>), <c>remove</c> or <c>deduplicate</c>; for
/// multi-label data also <c>add-label</c> and <c>remove-label</c> (of <see cref="Label"/>; a file may have several).
/// The audit never touches a user's files; <c>graft train --exclude actions.csv</c> honours these instead.
/// </summary>
internal sealed record AuditAction(string File, string Action, string? Label, string Reason);

/// <summary>The actions CSV: <c>file,action,label,reason</c>, RFC 4180 quoting, one action per file.</summary>
internal static class AuditActions
{
    public const string Relabel = "relabel", Remove = "remove", Deduplicate = "deduplicate", AddLabel = "add-label", RemoveLabel = "remove-label";
    static readonly string[] Known = [Relabel, Remove, Deduplicate, AddLabel, RemoveLabel];
    const string Header = "file,action,label,reason";

    public static void Write(string csvPath, IEnumerable<AuditAction> actions)
    {
        var text = new StringBuilder(Header).Append('\n');
        foreach (var a in actions)
            text.Append(Quote(a.File)).Append(',').Append(a.Action).Append(',').Append(Quote(a.Label ?? "")).Append(',').Append(Quote(a.Reason)).Append('\n');
        File.WriteAllText(csvPath, text.ToString());
    }

    public static IReadOnlyList<AuditAction> Read(string csvPath)
    {
        string text;
        try { text = File.ReadAllText(csvPath); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new GraftException($"{csvPath} cannot be read ({GraftException.FirstLine(e.Message)}).", "Pass the actions CSV written by graft audit --actions.");
        }
        var records = LabelFile.Records(csvPath, text, ',').ToList(); // File.ReadAllText drops a byte-order mark
        if (records.Count == 0 || string.Join(",", records[0].Fields).Trim().ToLowerInvariant() != Header)
            throw new GraftException($"{csvPath}, line 1: the header is not \"{Header}\".", "Pass the actions CSV written by graft audit --actions, or give yours that header.");
        var actions = new List<AuditAction>();
        foreach (var (line, fields) in records.Skip(1))
        {
            string Where() => $"{csvPath}, line {line}";
            if (fields.Count != 4)
                throw new GraftException($"{Where()}: {fields.Count} columns where {Header} are 4.", "Quote a field holding a comma (\"a,b\").");
            var (file, action, label, reason) = (fields[0], fields[1].Trim().ToLowerInvariant(), fields[2], fields[3]);
            if (file.Length == 0) throw new GraftException($"{Where()}: the file is empty.", "Name the image file the action is about.");
            if (!Known.Contains(action))
                throw new GraftException($"{Where()}: unknown action \"{fields[1]}\".", $"Use one of {string.Join(", ", Known)}.");
            if (action is Relabel or AddLabel or RemoveLabel && label.Length == 0)
                throw new GraftException($"{Where()}: {action} names no label.", "Put the class the action is about in the label column.");
            actions.Add(new AuditAction(file, action, label.Length == 0 ? null : label, reason));
        }
        return actions;
    }

    /// <summary>
    /// The dataset with the actions applied to its training and validation images: removed and deduplicated files
    /// left out, relabelled ones moved to their class, labels added to and removed from multi-label images. Test images are never changed (they stay the yardstick that
    /// measures what cleaning bought). A note says what was applied; actions naming no image of the dataset are counted.
    /// </summary>
    public static ImageDataset Apply(ImageDataset dataset, IReadOnlyList<AuditAction> actions, string csvPath)
    {
        static bool Edits(AuditAction a) => a.Action is AddLabel or RemoveLabel;
        var byFile = actions.Where(a => !Edits(a)).GroupBy(a => Path.GetFullPath(a.File)).ToDictionary(g => g.Key, g => g.Last());
        var edits = actions.Where(Edits).GroupBy(a => Path.GetFullPath(a.File)).ToDictionary(g => g.Key, g => g.ToList());
        if (edits.Count > 0 && !dataset.MultiLabel)
            throw new GraftException($"{csvPath} adds or removes labels, which only multi-label data carries; {dataset.Root} has one class per image.",
                "Use relabel for single-label data, or pass the multi-label data the audit was run on.");
        var unknown = actions.Where(a => a.Action is Relabel or AddLabel or RemoveLabel && !dataset.Classes.Contains(a.Label)).Select(a => a.Label).Distinct().ToList();
        if (unknown.Count > 0)
            throw new GraftException($"{csvPath} relabels images to {string.Join(", ", unknown)}, which {dataset.Root} has no class folder for.",
                $"Use one of its classes: {string.Join(", ", dataset.Classes)}.");
        var classIndex = dataset.Classes.Select((name, i) => (name, i)).ToDictionary(c => c.name, c => c.i);
        int removed = 0, relabelled = 0;
        List<LabeledImage> Clean(IReadOnlyList<LabeledImage> images)
        {
            var kept = new List<LabeledImage>();
            foreach (var original in images)
            {
                var image = original;
                if (edits.Remove(Path.GetFullPath(image.Path), out var changes))
                {
                    var labels = image.Labels.ToHashSet();
                    foreach (var change in changes)
                        if (change.Action == AddLabel) labels.Add(classIndex[change.Label!]); else labels.Remove(classIndex[change.Label!]);
                    var sorted = labels.Order().ToList();
                    image = image with { Label = sorted.Count > 0 ? sorted[0] : -1, Labels = sorted };
                    relabelled++;
                }
                if (!byFile.Remove(Path.GetFullPath(image.Path), out var action)) kept.Add(image);
                else if (action.Action == Relabel) { kept.Add(image with { Label = classIndex[action.Label!] }); relabelled++; }
                else removed++;
            }
            return kept;
        }
        var train = Clean(dataset.Train);
        var validation = Clean(dataset.Validation);
        var test = dataset.Test.Select(t => Path.GetFullPath(t.Path)).ToHashSet();
        foreach (var (file, changes) in edits) byFile.TryAdd(file, changes[0]); // counted below with the actions not applied
        int elsewhere = byFile.Keys.Count(test.Contains);
        var note = $"{csvPath}: {Plural.Of(removed, "image")} left out and {relabelled} relabelled in training and validation" +
                   (elsewhere > 0 ? $"; {Plural.Of(elsewhere, "action")} on test images not applied (the test set stays as it is)" : "") +
                   (byFile.Count - elsewhere > 0 ? $"; {Plural.Of(byFile.Count - elsewhere, "action")} {(byFile.Count - elsewhere == 1 ? "names" : "name")} no image of this dataset" : "") + ".";
        return dataset with { Train = train, Validation = validation, Notes = [.. dataset.Notes, note] };
    }

    /// <summary>A CSV field, quoted when it must be (RFC 4180) or has edge spaces.</summary>
    internal static string Quote(string field) =>
        field.IndexOfAny([',', '"', '\n', '\r']) < 0 && field.Trim() == field ? field : $"\"{field.Replace("\"", "\"\"")}\"";
}
