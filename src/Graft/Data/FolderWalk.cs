using Graft.Imaging;
namespace Graft.Data;

/// <summary>
/// Lists the files below a folder without ever leaving it: a linked folder is entered only when its real location
/// is inside the folder being walked and was not visited yet, so a link loop (<c>ants/up -> ..</c>) or a link
/// out of the dataset (<c>ants/root -> /</c>) adds nothing. Linked files are listed as they are. Hidden files
/// (names starting with a dot, such as macOS's AppleDouble <c>._photo.jpg</c>, which are not images) are not listed,
/// so training, evaluation and prediction skip the same files. Only regular files are listed: a named pipe (FIFO),
/// socket or device would hang or never end when read, so it is never opened (<see cref="FileKind.NotRegular"/>).
/// </summary>
internal static class FolderWalk
{
    /// <summary>
    /// Regular files below <paramref name="folder"/> (nested folders included), in no particular order; the others
    /// (pipes, sockets, devices) are added to <paramref name="notRegular"/> as "path (what it is)" when it is given.
    /// </summary>
    public static IEnumerable<string> Files(string folder, ICollection<string>? notRegular = null)
    {
        var top = RealPath(folder) ?? Path.GetFullPath(folder);
        var visited = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<(string Path, string Real)>();
        pending.Push((folder, top));
        while (pending.Count > 0)
        {
            var (dir, real) = pending.Pop();
            if (!visited.Add(real)) continue;
            string[] files, dirs;
            try
            {
                files = Directory.GetFiles(dir);
                dirs = Directory.GetDirectories(dir);
            }
            catch (UnauthorizedAccessException)
            {
                throw new GraftException($"The folder {dir} cannot be read (permission denied).",
                    $"Give read access (chmod -R u+rX '{dir}') or move it out of the folder.");
            }
            foreach (var file in files)
            {
                if (Path.GetFileName(file).StartsWith('.')) continue;
                if (FileKind.NotRegular(file) is { } kind) notRegular?.Add($"{file} ({kind})");
                else yield return file;
            }
            foreach (var sub in dirs)
            {
                var subReal = new DirectoryInfo(sub).LinkTarget is null ? Path.Combine(real, Path.GetFileName(sub)) : RealPath(sub);
                if (subReal is not null && IsInside(subReal, top)) pending.Push((sub, subReal));
            }
        }
    }

    /// <summary>Whether <paramref name="path"/> is <paramref name="folder"/> or below it (both real, absolute paths).</summary>
    public static bool IsInside(string path, string folder) =>
        path == folder || path.StartsWith(Path.TrimEndingDirectorySeparator(folder) + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    /// <summary>
    /// The absolute path with every link resolved (as realpath(3)); null when a link cannot be resolved (dangling,
    /// or a loop). A path that does not exist resolves as far as it exists.
    /// </summary>
    public static string? RealPath(string path)
    {
        var full = Path.GetFullPath(path);
        return Resolve(Path.GetPathRoot(full)!, full[Path.GetPathRoot(full)!.Length..], 0);
    }

    static string? Resolve(string start, string rest, int hops)
    {
        var result = start;
        foreach (var part in rest.Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == ".") continue;
            if (part == "..") { result = Path.GetDirectoryName(result) ?? result; continue; }
            var next = Path.Combine(result, part);
            string? target;
            try { target = new FileInfo(next).LinkTarget; }
            catch (IOException) { target = null; }
            catch (UnauthorizedAccessException) { target = null; }
            if (target is null) { result = next; continue; }
            if (++hops > 40) return null; // a loop of links
            // A link's target is relative to the (real) folder holding the link.
            var (root, remainder) = Path.IsPathRooted(target) ? (Path.GetPathRoot(target)!, target[Path.GetPathRoot(target)!.Length..]) : (result, target);
            var resolved = Resolve(root, remainder, hops);
            if (resolved is null) return null;
            result = resolved;
        }
        return result;
    }
}
