using Graft.Inference;
using Graft.Imaging;
namespace Graft.Data;

/// <summary>
/// An image and its label: <see cref="Label"/> is its class (single-label data), and <see cref="Labels"/> every class it
/// carries (multi-label data; for single-label data just <see cref="Label"/>). A multi-label image may carry none:
/// its <see cref="Label"/> is then -1.
/// </summary>
public sealed record LabeledImage(string Path, int Label)
{
    public IReadOnlyList<int> Labels { get; init; } = Label >= 0 ? [Label] : [];

    /// <summary>Equal images have the same path and the same labels (compared as sequences, not as list instances).</summary>
    public bool Equals(LabeledImage? other) =>
        other is not null && Path == other.Path && Label == other.Label && Labels.SequenceEqual(other.Labels);

    public override int GetHashCode() => HashCode.Combine(Path, Label, Labels.Count);
}

/// <summary>A dataset found on disk: class names (sorted), training and validation images.</summary>
public sealed record ImageDataset(string Root, IReadOnlyList<string> Classes, IReadOnlyList<LabeledImage> Train,
    IReadOnlyList<LabeledImage> Validation, string Layout)
{
    /// <summary>Images held out for the reported accuracy only (a test/ folder or --test-split); empty when there are none.</summary>
    public IReadOnlyList<LabeledImage> Test { get; init; } = [];

    /// <summary>Whether an image may carry several classes (or none): sigmoid outputs, one decision per class.</summary>
    public bool MultiLabel { get; init; }

    /// <summary>Training, then validation, then test images.</summary>
    public IEnumerable<LabeledImage> All => Train.Concat(Validation).Concat(Test);

    /// <summary>The folder holding the class folders read: DATA or DATA/train (for evaluation, the folder evaluated).</summary>
    public string ClassRoot { get; init; } = Root;

    /// <summary>A class's folder below <see cref="ClassRoot"/>.</summary>
    public string ClassFolder(int label) =>
        ClassFolderNames is { } names ? System.IO.Path.Combine(ClassRoot, names[label]) : System.IO.Path.Combine(ClassRoot, Classes[label]);

    /// <summary>The folder name on disk of each class (a class name is NFC; a macOS folder name may be NFD).</summary>
    public IReadOnlyList<string>? ClassFolderNames { get; init; }

    /// <summary>What was read differently from what the folder suggests (empty folders ignored, classes missing from validation...), one sentence each.</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    /// <summary>Files in formats Graft does not read (TIFF, HEIC), found in the class folders and not used.</summary>
    public IReadOnlyList<string> Unconverted { get; init; } = [];

    /// <summary>
    /// Where a dataset is a part of the model's data opened for evaluation (its images in <see cref="Validation"/>):
    /// which part, "test", "validation" or "training"; null for other data, all of which is evaluated.
    /// </summary>
    public string? Part { get; init; }

    /// <summary>Where <see cref="Part"/> was held out of one folder: the whole split it was held out of, every role; otherwise null.</summary>
    public ImageDataset? Whole { get; init; }

    /// <summary>The label file the images and their labels were read from (its full path); null where they were read from class folders.</summary>
    public string? LabelsFile { get; init; }
}

/// <summary>
/// Reads the one-folder-per-class layout. DATA is either a folder of class folders, or a folder holding
/// <c>train/</c> plus <c>val/</c> (or <c>validation/</c>, <c>valid/</c>) and/or <c>test/</c>. Without a
/// validation folder a seeded, stratified split holds out a fraction of every class. Given a label file, it reads that
/// instead (<see cref="LabelFile"/>): every command opens its data here.
/// </summary>
internal static class ImageFolder
{
    static readonly string[] ValidationNames = ["val", "validation", "valid"];

    /// <summary>Image formats Graft does not decode, which users often have (scanners, iPhones): found and reported, not read.</summary>
    public static readonly string[] UnconvertedExtensions = [".tif", ".tiff", ".heic", ".heif"];

    public static bool IsUnconvertedImage(string path) =>
        UnconvertedExtensions.Contains(System.IO.Path.GetExtension(path).ToLowerInvariant());

    /// <summary>
    /// A folder's class name: its name in Unicode NFC, so a folder written by macOS (NFD) and one typed elsewhere (NFC)
    /// are the same class.
    /// </summary>
    public static string ClassName(string folder) => System.IO.Path.GetFileName(folder).Normalize(System.Text.NormalizationForm.FormC);

    /// <summary>
    /// Opens DATA for training with three roles kept apart: training images; validation images (they pick the
    /// epoch and stop training early, so their accuracy is optimistic); test images (only measured, for the
    /// reported number). Validation is a val/ folder or a seeded, stratified split of the training images;
    /// test is a test/ folder or, with <paramref name="testSplit"/>, a seeded split held out first.
    /// </summary>
    /// <param name="labelsFile">A label file (<see cref="LabelFile"/>) naming the images of DATA and their labels, read
    /// instead of class folders; null: class folders.</param>
    /// <param name="multiLabel">Read the data as multi-label (<see cref="ImageDataset.MultiLabel"/>) even where every image
    /// carries one label; a label file with a row of several labels is multi-label anyway.</param>
    public static ImageDataset OpenForTraining(string root, double validationSplit = 0.2, int seed = 42, double testSplit = 0,
        string? labelsFile = null, bool multiLabel = false)
    {
        var dataset = Open(root, validationSplit, seed, testSplit, labelsFile, multiLabel);
        var notes = dataset.Notes.ToList();
        NoteSmallClasses(dataset.Classes, dataset.Train, dataset.Validation, notes);
        return dataset with { Notes = notes };
    }

    /// <summary>
    /// Every image of DATA's training folder (or label file) under its class, for looking at (<c>graft augment</c>): no
    /// roles held out, and none of the notes that only matter to training.
    /// </summary>
    public static ImageDataset OpenForViewing(string root, string? labelsFile = null) =>
        Open(root, validationSplit: 0, seed: 0, testSplit: 0, labelsFile, multiLabel: false);

    /// <summary>DATA's class folders, or its label file when one is given: the one place the two ways of labelling part.</summary>
    static ImageDataset Open(string root, double validationSplit, int seed, double testSplit, string? labelsFile, bool multiLabel)
    {
        CheckSplits(validationSplit, testSplit);
        return labelsFile is null ? OpenFolders(root, validationSplit, seed, testSplit) with { MultiLabel = multiLabel }
            : LabelFile.Open(root, labelsFile, validationSplit, seed, testSplit, multiLabel);
    }

    static void CheckSplits(double validationSplit, double testSplit)
    {
        if (validationSplit is < 0 or >= 1)
            throw new GraftException($"--val-split {validationSplit} is out of range.", "Use a fraction from 0 (no validation) to below 1, e.g. 0.2.");
        if (testSplit is < 0 or >= 1 || validationSplit + testSplit >= 1)
            throw new GraftException($"--test-split {testSplit} is out of range{(testSplit is >= 0 and < 1 ? $" with --val-split {validationSplit}" : "")}.",
                "Use a fraction from 0 (no test set) such that validation and test together stay below 1, e.g. 0.2.");
    }

    static ImageDataset OpenFolders(string root, double validationSplit, int seed, double testSplit)
    {
        var folders = FindSplitFolders(root);
        var trainDir = folders.Train;
        var notes = new List<string>();
        var unconverted = new List<string>();
        var classes = ClassFolders(trainDir, 2, notes, unconverted);
        var pool = ListImages(trainDir, classes);
        List<LabeledImage>? givenTest = null, givenValidation = null;
        if (folders.Test is { } testDir)
        {
            if (testSplit > 0)
                throw new GraftException($"{root} has a test folder ({testDir}) and --test-split asks to hold out another.",
                    "Leave out --test-split: the test folder is the test set.");
            givenTest = HeldOutFolder(testDir, trainDir, classes, notes, unconverted);
        }
        if (folders.Validation is { } valDir) givenValidation = HeldOutFolder(valDir, trainDir, classes, notes, unconverted);
        var (train, validation, test) = Roles(pool, givenValidation, givenTest, validationSplit, testSplit, seed);
        var layout = new List<string>
        {
            folders.Validation is { } v ? $"{System.IO.Path.GetFileName(trainDir)}/ + {System.IO.Path.GetFileName(v)}/"
                : (folders.Test is null ? "class folders" : $"{System.IO.Path.GetFileName(trainDir)}/") + SplitLayout(validationSplit, seed),
        };
        if (folders.Test is { } t) layout.Add($"{System.IO.Path.GetFileName(t)}/ for testing");
        else if (testSplit > 0) layout.Add($"{testSplit:0.##} held out for testing");
        return new ImageDataset(root, classes, train, validation, string.Join(" + ", layout))
            { Test = test, ClassRoot = trainDir, Notes = notes, Unconverted = unconverted, ClassFolderNames = FolderNames(trainDir, classes) };
    }

    /// <summary>
    /// The three roles from the images to train on and the validation and test images given as such (folders, or a label
    /// file's split column; null where there are none): a test part not given is held out of the pool first when
    /// <paramref name="testSplit"/> asks for one, then a validation part not given, both seeded and stratified. Folders and
    /// label files split alike, so the same images in either get the same roles.
    /// </summary>
    internal static (List<LabeledImage> Train, List<LabeledImage> Validation, List<LabeledImage> Test) Roles(List<LabeledImage> pool,
        List<LabeledImage>? validation, List<LabeledImage>? test, double validationSplit, double testSplit, int seed)
    {
        bool testGiven = test is not null;
        if (!testGiven && testSplit > 0) (pool, test) = StratifiedSplit(pool, testSplit, seed);
        if (validation is not null) return (pool, validation, test ?? []);
        // The validation share is of all images, as --test-split's: 0.2 and 0.2 leave 0.6 for training.
        var (train, held) = StratifiedSplit(pool, validationSplit / (1 - (testGiven ? 0 : testSplit)), seed);
        return (train, held, test ?? []);
    }

    /// <summary>How the validation images were held out of the training images, for a dataset's layout.</summary>
    internal static string SplitLayout(double validationSplit, int seed) =>
        validationSplit > 0 ? $", seeded split: {validationSplit:0.##} held out for validation (seed {seed})" : ", no validation";

    /// <summary>A validation or test folder: the training folder's classes (unknown ones refused, absent ones noted).</summary>
    static List<LabeledImage> HeldOutFolder(string dir, string trainDir, IReadOnlyList<string> classes, List<string> notes, List<string> unconverted)
    {
        var found = ClassFolders(dir, 1, notes, unconverted);
        var unknown = found.Except(classes).ToList();
        if (unknown.Count > 0)
            throw new GraftException($"{dir} has class folders that {trainDir} lacks: {string.Join(", ", unknown)}.",
                $"Give {System.IO.Path.GetFileName(trainDir)}/ and {System.IO.Path.GetFileName(dir)}/ the same class folders.");
        var absent = classes.Except(found).ToList();
        if (absent.Count > 0)
            notes.Add($"{dir} has no images of the class(es) {string.Join(", ", absent)}: it does not measure them.");
        return ListImages(dir, classes);
    }

    /// <summary>Classes too small to learn or to measure are named: training goes on, but the user should know.</summary>
    static void NoteSmallClasses(IReadOnlyList<string> classes, IReadOnlyList<LabeledImage> train, IReadOnlyList<LabeledImage> validation, List<string> notes)
    {
        var tiny = Enumerable.Range(0, classes.Count).Where(c => train.Count(i => i.Labels.Contains(c)) < 2).Select(c => classes[c]).ToList();
        if (tiny.Count > 0)
            notes.Add($"the class(es) {string.Join(", ", tiny)} have fewer than 2 training images: the model can hardly learn them, and accuracy says little. Add photos (20 or more per class).");
        if (validation.Count == 0)
            notes.Add("there are no validation images: the last epoch is kept, early stopping is off, and no accuracy is measured.");
    }

    /// <summary>
    /// Opens DATA for evaluation against a model's classes: its test folder if it has one, else its validation
    /// folder, otherwise every image of the class folders.
    /// </summary>
    /// <param name="trainedOn">Where and how the model was trained: evaluating the same DATA again measures the images
    /// it held out (its test split, else its validation split), never the ones it trained on.</param>
    /// <param name="labelsFile">A label file to read instead of class folders; null: class folders, or, when DATA is the
    /// model's own, the label file the model was trained from (<see cref="DatasetInfo.LabelsFile"/>).</param>
    /// <param name="multiLabel">Read the data as multi-label even where every image carries one label.</param>
    public static ImageDataset OpenForEvaluation(string root, IReadOnlyList<string> modelClasses, DatasetInfo? trainedOn = null,
        string? labelsFile = null, bool multiLabel = false)
    {
        labelsFile ??= LabelFile.OfModel(root, trainedOn);
        if (labelsFile is not null) return LabelFile.OpenForEvaluation(root, labelsFile, modelClasses, trainedOn, multiLabel);
        var split = FindSplitFolders(root);
        bool sameData = trainedOn is not null && System.IO.Path.GetFullPath(root) == trainedOn.Root;
        // The test images it recorded are the ones held out (a seeded split drawn again would move images when photos were added).
        if (sameData && split.Test is null && EarlierRoles.HeldOut(root, modelClasses, trainedOn!) is { } recorded) return recorded;
        if (sameData && split.Test is null && (trainedOn!.TestSplit > 0 || split.Validation is null && trainedOn.ValidationSplit > 0)
            && HeldOutSplit(root, modelClasses, trainedOn, null, false) is { } heldOut)
            return heldOut;
        var valDir = split.Test ?? split.Validation;
        var dir = valDir ?? split.Train;
        var notes = new List<string>();
        var unconverted = new List<string>();
        var folders = ClassFolders(dir, 1, notes, unconverted);
        var unknown = folders.Except(modelClasses.Select(c => c.Normalize(System.Text.NormalizationForm.FormC))).ToList();
        if (unknown.Count > 0)
            throw new GraftException($"{dir} has class folders the model does not know: {string.Join(", ", unknown)}.",
                $"The model's classes are: {string.Join(", ", modelClasses)}.");
        var images = ListImages(dir, modelClasses);
        if (sameData && valDir is null)
            notes.Add("these are the images the model was trained on: their accuracy says nothing about new photos. Evaluate on a test/ folder, or train with --test-split.");
        else if (sameData && valDir == split.Validation)
            notes.Add(SelectionNote(null));
        return new ImageDataset(root, modelClasses, [], images, valDir is null ? "all class folders" : $"{System.IO.Path.GetFileName(valDir)}/")
        {
            ClassRoot = dir, Notes = notes, Unconverted = unconverted, ClassFolderNames = FolderNames(dir, modelClasses),
            Part = split.Test is not null ? "test" : split.Validation is not null ? "validation" : sameData ? "training" : null,
        };
    }

    /// <summary>What to say of validation images evaluated again, for folders or a label file.</summary>
    internal static string SelectionNote(string? labelsFile) => "these are the validation images that picked the model's epoch: their accuracy is optimistic. " +
        (labelsFile is null ? "A test/ folder" : "Test rows in the label file") + ", or training with --test-split, gives an unbiased one.";

    /// <summary>
    /// The images the model held out of its own DATA (its test split, else its validation split), opened as training
    /// opened them, as a dataset to evaluate; null where DATA's classes are no longer the model's.
    /// </summary>
    internal static ImageDataset? HeldOutSplit(string root, IReadOnlyList<string> modelClasses, DatasetInfo trainedOn, string? labelsFile, bool multiLabel)
    {
        var heldOut = OpenForTraining(root, trainedOn.ValidationSplit, trainedOn.Seed, trainedOn.TestSplit, labelsFile, multiLabel);
        if (!heldOut.Classes.SequenceEqual(modelClasses.Select(c => c.Normalize(System.Text.NormalizationForm.FormC)))) return null;
        bool test = heldOut.Test.Count > 0;
        return heldOut with
        {
            Train = [], Validation = test ? heldOut.Test : heldOut.Validation, Test = [], Notes = test ? heldOut.Notes : [.. heldOut.Notes, SelectionNote(labelsFile)],
            Part = test ? "test" : "validation", Whole = heldOut,
            Layout = test ? $"the {trainedOn.TestSplit:0.##} test split held out in training (seed {trainedOn.Seed})"
                : $"the {trainedOn.ValidationSplit:0.##} validation split of training (seed {trainedOn.Seed})",
        };
    }

    sealed record SplitFolders(string Train, string? Validation, string? Test);

    /// <summary>DATA itself (class folders), or DATA/train with the first of val/, validation/, valid/ and with test/.</summary>
    static SplitFolders FindSplitFolders(string root)
    {
        if (File.Exists(root))
            throw new GraftException($"{root} is a file, not a folder.", "Pass a folder with one sub-folder of images per class.");
        if (!Directory.Exists(root))
            throw new GraftException($"{root} does not exist.", "Pass a folder with one sub-folder of images per class.");
        var train = System.IO.Path.Combine(root, "train");
        if (!Directory.Exists(train)) return new(root, null, null);
        var val = ValidationNames.Select(n => System.IO.Path.Combine(root, n)).FirstOrDefault(Directory.Exists);
        var test = System.IO.Path.Combine(root, "test");
        return new(train, val, Directory.Exists(test) ? test : null);
    }

    /// <summary>
    /// The class names (NFC) of the sub-folders holding at least one image file, sorted (the class index order).
    /// Folders without images, folders nested in a class folder (their images are the class's), TIFF/HEIC files and
    /// folder names that differ only in Unicode normalization are noted.
    /// </summary>
    static List<string> ClassFolders(string dir, int minimum, List<string> notes, List<string> unconverted)
    {
        var withImages = new List<string>();
        var empty = new List<string>();
        var notRegular = new List<string>();
        var nested = new List<string>();
        foreach (var folder in SubFolders(dir).Where(d => StaysInside(d, dir)).OrderBy(System.IO.Path.GetFileName, StringComparer.Ordinal))
        {
            var files = FolderWalk.Files(folder, notRegular).ToList();
            nested.AddRange(files.Where(ImageLoader.IsImageFile).Select(f => System.IO.Path.GetDirectoryName(f)!).Where(d => d != folder)
                .Distinct().Select(d => System.IO.Path.GetRelativePath(dir, d)).Order(StringComparer.Ordinal));
            unconverted.AddRange(files.Where(IsUnconvertedImage).Order(StringComparer.Ordinal));
            (files.Any(ImageLoader.IsImageFile) ? withImages : empty).Add(folder);
        }
        if (notRegular.Count > 0)
            notes.Add($"{dir}: {Plural.Of(notRegular.Count, "file")} that {(notRegular.Count == 1 ? "is not a regular file" : "are not regular files")} skipped, never opened: {string.Join(", ", notRegular.Take(5))}{(notRegular.Count > 5 ? ", ..." : "")}.");
        if (nested.Count > 0)
            notes.Add($"{dir}: the images in {Plural.Of(nested.Count, "folder")} inside class folders are read as their class: " +
                $"{string.Join(", ", nested.Take(5))}{(nested.Count > 5 ? ", ..." : "")}.");
        if (empty.Count > 0)
            notes.Add($"{dir}: {Plural.Of(empty.Count, "folder")} without images ignored (not classes): {string.Join(", ", empty.Select(System.IO.Path.GetFileName))}.");
        foreach (var same in withImages.GroupBy(ClassName).Where(g => g.Count() > 1))
            notes.Add($"{dir}: the folders {string.Join(" and ", same.Select(f => System.IO.Path.GetFileName(f)))} differ only in Unicode normalization: read as one class {same.Key}.");
        var classes = withImages.Select(ClassName).Distinct().Order(StringComparer.Ordinal).ToList();
        if (classes.Count == 0)
            throw new GraftException($"{dir} has no class folders with images.",
                "Put the images in one sub-folder per class, e.g. photos/cats/*.jpg and photos/dogs/*.jpg.");
        if (classes.Count < minimum)
            throw new GraftException($"{dir} has only one class folder ({classes[0]}).",
                "A classifier needs at least two classes: add a folder per class.");
        return classes;
    }

    /// <summary>Each class's folder name in <paramref name="dir"/> (the first, if NFC and NFD both exist; the class name if none).</summary>
    static List<string> FolderNames(string dir, IReadOnlyList<string> classes)
    {
        var names = SubFolders(dir).Select(d => System.IO.Path.GetFileName(d)).Order(StringComparer.Ordinal).ToList();
        return classes.Select(c => names.FirstOrDefault(n => n.Normalize(System.Text.NormalizationForm.FormC) == c.Normalize(System.Text.NormalizationForm.FormC)) ?? c).ToList();
    }

    /// <summary>The sub-folders of <paramref name="dir"/> that are not hidden.</summary>
    static IEnumerable<string> SubFolders(string dir) =>
        Directory.GetDirectories(dir).Where(d => !System.IO.Path.GetFileName(d).StartsWith('.'));

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
        // A class's images may be in more than one folder: names equal in NFC (macOS writes NFD) are one class.
        var byName = SubFolders(dir).GroupBy(ClassName).ToDictionary(g => g.Key, g => g.ToList());
        var images = new List<LabeledImage>();
        for (int label = 0; label < classes.Count; label++)
        {
            if (!byName.TryGetValue(classes[label].Normalize(System.Text.NormalizationForm.FormC), out var folders)) continue;
            images.AddRange(folders.SelectMany(EnumerateImageFiles).Order(StringComparer.Ordinal).Select(f => new LabeledImage(f, label)));
        }
        return images;
    }

    /// <summary>Image files below a class folder (nested folders included, hidden files skipped; links never lead out of it).</summary>
    static IEnumerable<string> EnumerateImageFiles(string folder) =>
        FolderWalk.Files(folder)
            .Where(f => !System.IO.Path.GetFileName(f).StartsWith('.') && ImageLoader.IsImageFile(f));

    /// <summary>Fold numbers 0..folds-1, dealt round-robin within each class after a seeded shuffle.</summary>
    public static int[] StratifiedFolds(int[] y, int folds, int seed)
    {
        var fold = new int[y.Length];
        var rng = new Random(seed);
        foreach (var group in Enumerable.Range(0, y.Length).GroupBy(i => y[i]).OrderBy(g => g.Key))
        {
            var members = group.ToArray();
            rng.Shuffle(members);
            for (int k = 0; k < members.Length; k++) fold[members[k]] = k % folds;
        }
        return fold;
    }

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
