namespace Graft;

/// <summary>
/// A fix only the caller can word, because it is one of the caller's own inputs (a command-line option, a parameter):
/// the library says which, the caller says how.
/// </summary>
public enum CallerFix
{
    /// <summary>None: the fix lines say everything.</summary>
    None,
    /// <summary>Pass a weight file the user already has instead of the one looked for.</summary>
    WeightsFile,
    /// <summary>Unpack the sample dataset's zip (named by <see cref="GraftException.Subject"/>) that the user downloaded.</summary>
    DatasetZip,
    /// <summary>Put the sample dataset named by <see cref="GraftException.Subject"/> on this machine first.</summary>
    GetDataset,
}

/// <summary>
/// An error the user can fix: what went wrong (naming the file) and what to do about it, one fix per line.
/// The CLI prints the problem on one line and the fixes after it, and exits non-zero; anything else is a bug.
/// </summary>
public class GraftException : Exception
{
    /// <summary>A problem with one fix.</summary>
    public GraftException(string problem, string fix) : this(problem, [fix]) { }

    /// <summary>A problem with its fixes, best first, and the fix only the caller can word.</summary>
    public GraftException(string problem, IReadOnlyList<string> fixes, CallerFix callerFix = CallerFix.None, string? subject = null)
        : base(string.Join(" ", fixes.Prepend(problem)))
    {
        Problem = problem;
        Fixes = fixes;
        CallerFix = callerFix;
        Subject = subject;
    }

    /// <summary>What went wrong, naming the file.</summary>
    public string Problem { get; }
    /// <summary>What to do about it, one sentence each, best first.</summary>
    public IReadOnlyList<string> Fixes { get; }
    /// <summary>The fixes as one text.</summary>
    public string Fix => string.Join(" ", Fixes);
    /// <summary>A further fix in the caller's own terms (<see cref="CallerFix.None"/>: none).</summary>
    public CallerFix CallerFix { get; }
    /// <summary>What <see cref="CallerFix"/> is about (a sample dataset's name), where it needs one.</summary>
    public string? Subject { get; }

    /// <summary>The first line of a message (libtorch and others append stacks and details): what an error line quotes.</summary>
    public static string FirstLine(string message) => message.Split('\n')[0].Trim();
}
