using Graft.Data;

namespace Graft.Cli;

/// <summary>
/// Where a command will write, checked before it starts work: never one of its inputs, a file where a file is
/// written and a folder where a folder is, and somewhere it can write. A bad path is one line naming it.
/// </summary>
public static class OutputPaths
{
    /// <summary>A file to write (--out, --onnx, --csv): not an input, not a folder, in a folder that can be written.</summary>
    public static string File(string option, string path, params string?[] inputs)
    {
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full))
            throw new GraftException($"{option} {path} is a folder, and a file is written there.", "Pass the path of a file (in that folder or elsewhere).");
        NotAnInput(option, path, full, inputs);
        Writable(option, path, Path.GetDirectoryName(full)!);
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
        Writable(option, path, full);
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

    /// <summary>The folder (or, when it does not exist yet, the folder it will be created in) accepts a new file.</summary>
    static void Writable(string option, string path, string folder)
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
    }

    static string Real(string path) => FolderWalk.RealPath(path) ?? Path.GetFullPath(path);
}
