namespace Graft.Data;

public sealed record LabeledImage(string Path, int Label);

/// <summary>A dataset found on disk: class names (sorted), training and validation images.</summary>
public sealed record ImageDataset(string Root, IReadOnlyList<string> Classes, IReadOnlyList<LabeledImage> Train,
    IReadOnlyList<LabeledImage> Validation, string Layout)
{
    public IEnumerable<LabeledImage> All => Train.Concat(Validation);

    /// <summary>The folder holding the class folders read: DATA or DATA/train (for evaluation, the folder evaluated).</summary>
    public string ClassRoot { get; init; } = Root;

    /// <summary>A class's folder below <see cref="ClassRoot"/>.</summary>
    public string ClassFolder(int label) => System.IO.Path.Combine(ClassRoot, Classes[label]);
}

/// <summary>
/// Reads the one-folder-per-class layout. DATA is either a folder of class folders, or a folder holding
/// <c>train/</c> plus <c>val/</c>, <c>validation/</c> or <c>test/</c>. Without a validation folder a seeded,
/// stratified split holds out a fraction of every class.
/// </summary>
public static class ImageFolder
{
    static readonly string[] ValidationNames = ["val", "validation", "test", "valid"];

    /// <summary>Opens DATA for training: separate validation folder, or a split of the class folders.</summary>
    public static ImageDataset OpenForTraining(string root, double validationSplit = 0.2, int seed = 42)
    {
        if (validationSplit is < 0 or >= 1)
            throw new GraftException($"--val-split {validationSplit} is out of range.", "Use a fraction from 0 (no validation) to below 1, e.g. 0.2.");
        var (trainDir, valDir) = FindSplitFolders(root);
        var classes = ClassFolders(trainDir, 2).Select(System.IO.Path.GetFileName).ToList()!;
        var train = ListImages(trainDir, classes!);
        if (valDir is not null)
        {
            var valClasses = ClassFolders(valDir, 1).Select(System.IO.Path.GetFileName).ToList();
            var unknown = valClasses.Except(classes).ToList();
            if (unknown.Count > 0)
                throw new GraftException($"{valDir} has class folders that {trainDir} lacks: {string.Join(", ", unknown)}.",
                    "Give train/ and the validation folder the same class folders.");
            return new ImageDataset(root, classes!, train, ListImages(valDir, classes!),
                $"{System.IO.Path.GetFileName(trainDir)}/ + {System.IO.Path.GetFileName(valDir)}/") { ClassRoot = trainDir };
        }
        var (trainPart, valPart) = StratifiedSplit(train, validationSplit, seed);
        return new ImageDataset(root, classes!, trainPart, valPart,
            validationSplit > 0 ? $"class folders, seeded split: {validationSplit:0.##} held out (seed {seed})" : "class folders, no validation") { ClassRoot = trainDir };
    }

    /// <summary>
    /// Opens DATA for evaluation against a model's classes: the validation folder if there is one,
    /// otherwise every image of the class folders.
    /// </summary>
    public static ImageDataset OpenForEvaluation(string root, IReadOnlyList<string> modelClasses)
    {
        var (trainDir, valDir) = FindSplitFolders(root);
        var dir = valDir ?? trainDir;
        var folders = ClassFolders(dir, 1).Select(System.IO.Path.GetFileName).ToList();
        var unknown = folders.Except(modelClasses).ToList();
        if (unknown.Count > 0)
            throw new GraftException($"{dir} has class folders the model does not know: {string.Join(", ", unknown)}.",
                $"The model's classes are: {string.Join(", ", modelClasses)}.");
        var images = ListImages(dir, modelClasses);
        return new ImageDataset(root, modelClasses, [], images, valDir is null ? "all class folders" : $"{System.IO.Path.GetFileName(valDir)}/") { ClassRoot = dir };
    }

    static (string Train, string? Validation) FindSplitFolders(string root)
    {
        if (File.Exists(root))
            throw new GraftException($"{root} is a file, not a folder.", "Pass a folder with one sub-folder of images per class.");
        if (!Directory.Exists(root))
            throw new GraftException($"{root} does not exist.", "Pass a folder with one sub-folder of images per class.");
        var train = System.IO.Path.Combine(root, "train");
        if (!Directory.Exists(train)) return (root, null);
        var val = ValidationNames.Select(n => System.IO.Path.Combine(root, n)).FirstOrDefault(Directory.Exists);
        return (train, val);
    }

    /// <summary>Sub-folders holding at least one image file, sorted by name (the class index order).</summary>
    static List<string> ClassFolders(string dir, int minimum)
    {
        var folders = Directory.GetDirectories(dir)
            .Where(d => !System.IO.Path.GetFileName(d).StartsWith('.'))
            .Where(d => StaysInside(d, dir) && EnumerateImageFiles(d).Any())
            .OrderBy(d => System.IO.Path.GetFileName(d), StringComparer.Ordinal)
            .ToList();
        if (folders.Count == 0)
            throw new GraftException($"{dir} has no class folders with images.",
                "Put the images in one sub-folder per class, e.g. photos/cats/*.jpg and photos/dogs/*.jpg.");
        if (folders.Count < minimum)
            throw new GraftException($"{dir} has only one class folder ({System.IO.Path.GetFileName(folders[0])}).",
                "A classifier needs at least two classes: add a folder per class.");
        return folders;
    }

    /// <summary>A class folder that is a link must lead to a folder inside <paramref name="dir"/> (never out of the dataset, nor back to it).</summary>
    static bool StaysInside(string classFolder, string dir)
    {
        if (new DirectoryInfo(classFolder).LinkTarget is null) return true;
        var top = FolderWalk.RealPath(dir) ?? System.IO.Path.GetFullPath(dir);
        var real = FolderWalk.RealPath(classFolder);
        if (real is null || real == top || !FolderWalk.IsInside(real, top))
            throw new GraftException($"The class folder {classFolder} is a link to {real ?? "a link loop"}, outside {dir}; Graft does not follow links out of the data folder.",
                "Copy or move that folder into the data folder (links to single image files are fine).");
        return true;
    }

    static List<LabeledImage> ListImages(string dir, IReadOnlyList<string> classes)
    {
        var images = new List<LabeledImage>();
        for (int label = 0; label < classes.Count; label++)
        {
            var folder = System.IO.Path.Combine(dir, classes[label]);
            if (!Directory.Exists(folder)) continue;
            images.AddRange(EnumerateImageFiles(folder).Order(StringComparer.Ordinal).Select(f => new LabeledImage(f, label)));
        }
        return images;
    }

    /// <summary>Image files below a class folder (nested folders included, hidden files skipped; links never lead out of it).</summary>
    static IEnumerable<string> EnumerateImageFiles(string folder) =>
        FolderWalk.Files(folder)
            .Where(f => !System.IO.Path.GetFileName(f).StartsWith('.') && ImageLoader.IsImageFile(f));

    /// <summary>Holds out round(fraction * n) images of every class (at least one where the class has two or more).</summary>
    public static (List<LabeledImage> Train, List<LabeledImage> Validation) StratifiedSplit(
        IReadOnlyList<LabeledImage> images, double fraction, int seed)
    {
        var train = new List<LabeledImage>();
        var val = new List<LabeledImage>();
        var rng = new Random(seed);
        foreach (var group in images.GroupBy(i => i.Label).OrderBy(g => g.Key))
        {
            var shuffled = group.ToArray();
            rng.Shuffle(shuffled);
            int held = fraction <= 0 ? 0 : Math.Max(shuffled.Length >= 2 ? 1 : 0, (int)Math.Round(fraction * shuffled.Length));
            val.AddRange(shuffled.Take(held));
            train.AddRange(shuffled.Skip(held));
        }
        return (train.OrderBy(i => i.Path, StringComparer.Ordinal).ToList(), val.OrderBy(i => i.Path, StringComparer.Ordinal).ToList());
    }
}
