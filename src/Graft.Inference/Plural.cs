using System.Globalization;

namespace Graft.Inference;

/// <summary>Counts in messages and the command line's output as a reader says them: "1 file", "2 files", never "1 files" or "file(s)".</summary>
internal static class Plural
{
    /// <summary><paramref name="count"/> and the noun: <paramref name="singular"/> for one, <paramref name="plural"/> (default: singular + s) otherwise.</summary>
    public static string Of(long count, string singular, string? plural = null) =>
        $"{count.ToString(CultureInfo.InvariantCulture)} {(count == 1 ? singular : plural ?? singular + "s")}";
}
