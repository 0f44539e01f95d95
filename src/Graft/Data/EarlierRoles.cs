using Graft.Inference;

namespace Graft.Data;

/// <summary>
/// What an earlier model fixes about a dataset it grows on: its classes come first, in its order (classes the data adds
/// follow, in the data's order), and its test images stay test images. <see cref="TestFiles"/> are paths relative to DATA
/// with '/' separators; null: the model does not record them (the test images are then drawn as the options say).
/// </summary>
internal sealed record EarlierRoles(IReadOnlyList<string> Classes, IReadOnlyList<string>? TestFiles)
{
    /// <summary>A file's key in <see cref="TestFiles"/>: its path relative to DATA, '/'-separated.</summary>
    public static string Relative(string root, string file) => Path.GetRelativePath(root, file).Replace('\\', '/');

    /// <summary>
    /// DATA opened for training in these roles. Without <see cref="TestFiles"/> it is opened as usual with the earlier classes
    /// first. With them it is opened without a test split; the earlier test images found among its training and validation
    /// images become test images, and, where DATA gives no test images of its own, a seeded share <paramref name="testSplit"/>
    /// of each new class's images joins them: no image the earlier model trained on becomes a test image.
    /// </summary>
    public ImageDataset Open(string root, double validationSplit, int seed, double testSplit)
    {
        if (TestFiles is null) return Reorder(ImageFolder.OpenForTraining(root, validationSplit, seed, testSplit));
        var dataset = Reorder(ImageFolder.OpenForTraining(root, validationSplit, seed, testSplit: 0));
        var wanted = TestFiles.ToHashSet(StringComparer.Ordinal);
        var pool = dataset.Train.Concat(dataset.Validation).ToList();
        var kept = pool.Where(i => wanted.Contains(Relative(root, i.Path))).ToList();
        var present = dataset.All.Select(i => Relative(root, i.Path)).ToHashSet(StringComparer.Ordinal);
        var gone = TestFiles.Where(f => !present.Contains(f)).ToList();
        var added = dataset.Test.Count == 0 && testSplit > 0
            ? ImageFolder.StratifiedSplit(pool.Except(kept).Where(i => i.Label >= Classes.Count).ToList(), testSplit, seed).Validation : [];
        var moved = kept.Concat(added).Select(i => i.Path).ToHashSet(StringComparer.Ordinal);
        var notes = dataset.Notes.ToList();
        if (gone.Count > 0)
            notes.Add($"{Plural.Of(gone.Count, "test image")} of the earlier model {(gone.Count == 1 ? "is" : "are")} gone from {root}: " +
                $"{string.Join(", ", gone.Take(5))}{(gone.Count > 5 ? ", ..." : "")}.");
        return dataset with
        {
            Train = dataset.Train.Where(i => !moved.Contains(i.Path)).ToList(),
            Validation = dataset.Validation.Where(i => !moved.Contains(i.Path)).ToList(),
            Test = [.. dataset.Test.Concat(kept).Concat(added).OrderBy(i => i.Path, StringComparer.Ordinal)],
            Notes = notes,
            Layout = dataset.Layout + $" + the earlier model's {Plural.Of(kept.Count, "test image")} kept for testing" +
                (added.Count > 0 ? $", {testSplit:0.##} of the new classes held out for testing" : ""),
        };
    }

    /// <summary>
    /// The test images a model recorded (<see cref="DatasetInfo.TestFiles"/>), opened from its own DATA as training opened
    /// them, as a dataset to evaluate; null where it recorded none, or DATA's classes are no longer the model's.
    /// </summary>
    public static ImageDataset? HeldOut(string root, IReadOnlyList<string> modelClasses, DatasetInfo trainedOn)
    {
        if (trainedOn.TestFiles is not { Count: > 0 } files) return null;
        var whole = new EarlierRoles(modelClasses, files).Open(root, trainedOn.ValidationSplit, trainedOn.Seed, trainedOn.TestSplit);
        if (!whole.Classes.SequenceEqual(modelClasses)) return null;
        return whole with
        {
            Train = [], Validation = whole.Test, Test = [], Part = "test", Whole = whole,
            Layout = $"the {Plural.Of(whole.Test.Count, "test image")} held out in training",
        };
    }

    /// <summary>The dataset with the earlier classes first (those it lacks included, noted) and its own new ones after them.</summary>
    ImageDataset Reorder(ImageDataset dataset)
    {
        var found = dataset.Classes.ToList();
        var classes = Classes.Concat(found.Except(Classes)).ToList();
        var index = found.Select(c => classes.IndexOf(c)).ToArray();
        List<LabeledImage> Map(IEnumerable<LabeledImage> images) => images.Select(i => new LabeledImage(i.Path, index[i.Label])).ToList();
        var absent = Classes.Except(dataset.Classes).ToList();
        var notes = dataset.Notes.ToList();
        if (absent.Count > 0)
            notes.Add($"{dataset.Root} has no images of the model's class(es) {string.Join(", ", absent)}: kept in the model, though training " +
                "without their photos may make it predict them less. Keep their photos in the data to keep them measured.");
        var folders = dataset.ClassFolderNames;
        return dataset with
        {
            Classes = classes, Train = Map(dataset.Train), Validation = Map(dataset.Validation), Test = Map(dataset.Test), Notes = notes,
            ClassFolderNames = folders is null ? null : classes.Select(c => found.IndexOf(c) is var k and >= 0 ? folders[k] : c).ToList(),
        };
    }
}
