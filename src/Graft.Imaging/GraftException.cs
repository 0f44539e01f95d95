namespace Graft;

/// <summary>
/// An error the user can fix: what went wrong (naming the file) and what to do about it.
/// The CLI prints it as one line and exits non-zero; anything else is a bug.
/// </summary>
public class GraftException(string problem, string fix) : Exception($"{problem} {fix}")
{
    /// <summary>What went wrong, naming the file.</summary>
    public string Problem { get; } = problem;
    /// <summary>What to do about it.</summary>
    public string Fix { get; } = fix;

    /// <summary>The first line of a message (libtorch and others append stacks and details): what an error line quotes.</summary>
    public static string FirstLine(string message) => message.Split('\n')[0].Trim();
}
