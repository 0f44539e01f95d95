using Graft.Data;
using Graft.Imaging;

namespace Graft.Cli;

/// <summary>
/// Where a command will write, checked before it starts work: never one of its inputs, a file where a file is
/// written and a folder where a folder is, and somewhere it can write with room to spare. A bad path is one line naming it.
/// </summary>
public static class OutputPaths
{
    /// <summary>Overrides the free space an output's filesystem must have (bytes; 0 turns the check off).</summary>
    public const string MinimumFreeVariable = "GRAFT_MIN_FREE_BYTES";

    /// <summary>
    /// Room for a report, a CSV or a small model, and for the temporary files written beside an output before it
    /// is renamed into place. A full disk would otherwise be found only when the result is written, after the work.
    /// </summary>
    const long DefaultMinimumFree = 64L << 20;

    /// <summary>A file to write (--out, --onnx, --csv): not an input, not a folder, in a folder that can be written.</summary>
    public static string File(string option, string path, params string?[] inputs)
    {
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full))
            throw new GraftException($"{option} {path} is a folder, and a file is written there.", "Pass the path of a file (in that folder or elsewhere).");
        NotAnInput(option, path, full, inputs);
        var existing = Writable(option, path, Path.GetDirectoryName(full)!);
        // A model made from a model or weights file is about its size, and the one it replaces stays until it is written whole.
        bool isModel = Path.GetExtension(full).ToLowerInvariant() is ".graft" or ".onnx";
        long largestInput = inputs.OfType<string>().Where(System.IO.File.Exists).Select(i => new FileInfo(i).Length).DefaultIfEmpty(0).Max();
        EnoughSpace(option, path, existing, isModel ? Math.Max(DefaultMinimumFree, 2 * largestInput) : DefaultMinimumFree);
        return path;
    }

    /// <summary>A folder to write files into (--report): not an input, not an existing file, writable.</summary>
    public static string Folder(string option, string path, params string?[] inputs)
    {
        var full = Path.GetFullPath(path);
        if (System.IO.File.Exists(full))
            throw new GraftException($"{option} {path} is an existing file, and a folder of files is written there.", "Pass a new folder (or an existing one) instead.");
        NotAnInput(option, path, full, inputs);
        NotInsideAnInputFolder(option, path, full, inputs);
        EnoughSpace(option, path, Writable(option, path, full), DefaultMinimumFree);
        return path;
    }

    /// <summary>Two outputs of one command must not be the same path.</summary>
    public static void Distinct(params (string Option, string? Path)[] outputs)
    {
        var given = outputs.Where(o => o.Path is not null).ToList();
        for (int i = 0; i < given.Count; i++)
            for (int j = i + 1; j < given.Count; j++)
                if (Real(given[i].Path!) == Real(given[j].Path!))
                    throw new GraftException($"{given[i].Option} and {given[j].Option} are both {given[i].Path}.", "Give each output its own path.");
    }

    static void NotAnInput(string option, string path, string full, string?[] inputs)
    {
        var target = Real(full);
        foreach (var input in inputs.OfType<string>().Where(i => System.IO.File.Exists(i) || Directory.Exists(i)))
            if (Real(input) == target)
                throw new GraftException($"{option} {path} is the input {input}: writing there would destroy it.", "Pass another path for the output.");
    }

    /// <summary>
    /// A folder written inside an input folder (--report DATA/report) would be read back as part of it: a report's
    /// thumbnails become a class called "report" on the next run.
    /// </summary>
    static void NotInsideAnInputFolder(string option, string path, string full, string?[] inputs)
    {
        var target = Real(full);
        foreach (var input in inputs.OfType<string>().Where(Directory.Exists))
            if (FolderWalk.IsInside(target, Real(input)))
                throw new GraftException($"{option} {path} is inside the data folder {input}: its images would be read as data (a class) on the next run.",
                    "Pass a folder outside the data folder.");
    }

    /// <summary>
    /// The folder (or, when it does not exist yet, the folder it will be created in) accepts a new file;
    /// returns the folder that exists.
    /// </summary>
    static string Writable(string option, string path, string folder)
    {
        var existing = folder;
        while (!Directory.Exists(existing))
        {
            if (System.IO.File.Exists(existing))
                throw new GraftException($"{option} {path}: {existing} is a file, not a folder.", "Pass a path whose folders are folders.");
            existing = Path.GetDirectoryName(existing) ?? throw new GraftException($"{option} {path}: no folder of it exists.", "Pass a path on an existing drive.");
        }
        var probe = Path.Combine(existing, $".graft-write-test-{Environment.ProcessId}");
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new GraftException($"{option} {path}: cannot write in {existing} ({GraftException.FirstLine(e.Message)}).",
                "Pass a path in a folder you can write to.");
        }
        return existing;
    }

    static void EnoughSpace(string option, string path, string folder, long estimate)
    {
        long needed = MinimumFree(estimate);
        if (needed <= 0) return;
        long free;
        try { free = new DriveInfo(folder).AvailableFreeSpace; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException) { return; } // not measurable: the write will tell
        if (free < needed)
            throw new GraftException($"{option} {path}: only {Megabytes(free)} free on the filesystem holding {folder}, and Graft wants {Megabytes(needed)} there before it starts.",
                $"Free some space there, or pass a path on another filesystem ({MinimumFreeVariable}=0 skips this check).");
    }

    static long MinimumFree(long estimate)
    {
        var value = Environment.GetEnvironmentVariable(MinimumFreeVariable);
        if (string.IsNullOrEmpty(value)) return estimate;
        return long.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var bytes) ? bytes
            : throw new GraftException($"{MinimumFreeVariable}={value} is not a number of bytes.", $"Set {MinimumFreeVariable} to a whole number (0 turns the free-space check off), or unset it.");
    }

    static string Megabytes(long bytes) => $"{bytes / (1024.0 * 1024.0):0.#} MB";

    static string Real(string path) => FolderWalk.RealPath(path) ?? Path.GetFullPath(path);
}
