using System.CommandLine;
using System.Text.Json;
using Graft.Models;
using Graft.Training;
using Graft.Heads;
using Graft.Inference;
using Spectre.Console;

namespace Graft.Cli;

/// <summary>What every command shares: the --json option, error handling, output and progress.</summary>
public static class Cli
{
    /// <summary>Where weight files and sample data come from, with any download shown on stderr.</summary>
    public static readonly Graft.Weights.AssetResolver Assets = new(progress: new ProgressLine());

    /// <summary>-v/--verbose: every epoch's line and the library's details, on a terminal too (<see cref="ProgressLine"/>).</summary>
    public static Option<bool> VerboseOption() => new("--verbose", "-v")
        { Description = "Show every epoch's line and how the weights were loaded (the full log, as when standard error is redirected)." };

    public static Option<bool> JsonOption() => new("--json") { Description = "End standard output with one JSON object (machine-readable)." };

    /// <summary>--labels FILE, as <see cref="TrainOptions.LabelsFile"/> describes it: a label file read instead of DATA's class folders.</summary>
    public static Option<string?> LabelsOption()
    {
        var option = new Flags<TrainOptions>(new TrainOptions()).Option("--labels", o => o.LabelsFile);
        option.HelpName = "FILE";
        return option;
    }

    /// <summary>--device, as <see cref="TrainOptions.Device"/> describes it (help and default).</summary>
    public static Option<ComputeDevice> DeviceOption() => new Flags<TrainOptions>(new TrainOptions()).Option("--device", o => o.Device);

    /// <summary>
    /// The device given, checked before the command does anything else: CUDA where this build or machine lacks it is one
    /// line and exit code 2, before any data is read or downloaded.
    /// </summary>
    public static ComputeDevice Device(ParseResult parse, Option<ComputeDevice> option)
    {
        var device = parse.GetValue(option)!;
        // The CPU needs no check, and loading libtorch for none would write its native fix into the cache before the
        // command has checked its outputs.
        if (device.IsCuda) Engine.TorchDevices.Resolve(device);
        return device;
    }

    /// <summary>Human output goes to stdout; progress and warnings to stderr so --json output stays clean.</summary>
    public static readonly IAnsiConsole Err = Create(Console.Error, Console.IsErrorRedirected);
    static readonly IAnsiConsole StandardOut = Create(Console.Out, Console.IsOutputRedirected);

    /// <summary>With --json, standard output holds only the JSON object (pipe it to jq); the human lines go to stderr.</summary>
    public static bool JsonOnly { get; set; }
    public static IAnsiConsole Out => JsonOnly ? Err : StandardOut;

    static IAnsiConsole Create(TextWriter writer, bool redirected)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(writer) });
        if (redirected) console.Profile.Width = 200; // logs and pipes: do not wrap tables at 80 columns
        return console;
    }

    /// <summary>Runs a command body: a user error becomes one line and exit code 2, never a stack trace.</summary>
    public static void SetHandler(this Command command, Func<ParseResult, CancellationToken, Task> body) =>
        command.SetAction(async (parse, cancel) =>
        {
            try
            {
                await body(parse, cancel);
                return 0;
            }
            catch (Exception e)
            {
                var (code, message) = ErrorOf(e);
                if (code == 1 && Environment.GetEnvironmentVariable("GRAFT_DEBUG") is not null) throw;
                Console.Error.WriteLine($"graft: {string.Join("\n", message.Split('\n').Select(Printable))}");
                return code;
            }
        });

    /// <summary>
    /// The exit code and the message an exception becomes: 2 for what the user can fix (bad input, and files or
    /// folders that cannot be read or written: permissions, a full disk), 130 when stopped, 1 for a bug. The
    /// message is one line, or for a problem with several fixes the problem's line and one line per fix.
    /// </summary>
    public static (int ExitCode, string Message) ErrorOf(Exception e)
    {
        while (e is AggregateException { InnerExceptions.Count: 1 } single) e = single.InnerExceptions[0]; // thrown inside Parallel.For
        return e switch
        {
            GraftException g => (2, Lines(GraftException.FirstLine(g.Problem), Fixes(g))),
            TrainingStoppedException t => (130, t.Message),
            OperationCanceledException => (130, "stopped before finishing; no model was written."),
            UnauthorizedAccessException => (2, $"{GraftException.FirstLine(e.Message)} Check the permissions of that file or folder, or run as a user who may use it."),
            IOException => (2, $"{GraftException.FirstLine(e.Message)} Check the path, the permissions and the free disk space."),
            // libtorch appends its C++ stack to the message: keep the first line.
            _ => (1, $"internal error: {e.GetType().Name}: {GraftException.FirstLine(e.Message)} (set GRAFT_DEBUG=1 to see where)"),
        };
    }


    /// <summary>A problem and its fixes: one line for a single fix, else the problem's line and each fix indented on its own.</summary>
    public static string Lines(string problem, IReadOnlyList<string> fixes) =>
        fixes.Count <= 1 ? string.Join(" ", fixes.Prepend(problem)) : string.Join("\n  ", fixes.Prepend(problem));

    /// <summary>The error's fixes, then the one the library leaves to the caller, in this command line's terms.</summary>
    public static IReadOnlyList<string> Fixes(GraftException e) =>
        e.Fixes.Select(GraftException.FirstLine).Where(f => f.Length > 0).Concat(CallerFixLines(e.CallerFix, e.Subject)).ToList();

    /// <summary><see cref="CallerFix"/> as this tool's options and commands say it.</summary>
    public static IEnumerable<string> CallerFixLines(CallerFix fix, string? subject)
    {
        switch (fix)
        {
            case CallerFix.WeightsFile:
                yield return "Or pass a weight file you have: --weights FILE.";
                break;
            case CallerFix.DatasetZip:
                yield return $"Or unpack the zip you downloaded: graft datasets get {subject} --from {Data.SampleDatasets.Named(subject ?? "")?.ZipName ?? "FILE.zip"}";
                break;
            case CallerFix.GetDataset:
                yield return $"Put it into Graft's cache: graft datasets get {subject}";
                break;
        }
    }

    public static void WriteJson(object value) =>
        Console.Out.WriteLine(JsonSerializer.Serialize(value, JsonLine));

    static readonly JsonSerializerOptions JsonLine = new(ModelFile.Json) // the model file's JSON (snake_case), on one line; no training types, so graft serve loads no TorchSharp
    {
        WriteIndented = false,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // plain "<" and "+" in a terminal
    };

    /// <summary>Text for Spectre markup: markup characters escaped, and control characters made visible (<see cref="Printable"/>).</summary>
    public static string Escape(string text) => Markup.Escape(Printable(text));

    /// <summary>
    /// Text safe to print on a terminal: control characters (a file named with ESC [2J would clear the screen, or
    /// forge output) are shown as \e, \n, \t, \xNN or \uNNNN, and so are Unicode direction overrides.
    /// </summary>
    public static string Printable(string text)
    {
        if (!text.Any(NeedsEscape)) return text;
        var b = new System.Text.StringBuilder(text.Length + 8);
        foreach (var c in text)
            b.Append(!NeedsEscape(c) ? c.ToString() : c switch
            {
                '\x1b' => "\\e",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                < '\u0100' => $"\\x{(int)c:x2}",
                _ => $"\\u{(int)c:x4}",
            });
        return b.ToString();
    }

    static bool NeedsEscape(char c) => char.IsControl(c) || c is >= '\u202a' and <= '\u202e' or >= '\u2066' and <= '\u2069';

    /// <summary>What a dataset's reading noticed (empty folders, classes missing from validation, TIFF/HEIC files), as notes on stderr.</summary>
    public static void ReportDataset(Graft.Data.ImageDataset dataset)
    {
        foreach (var note in dataset.Notes) Err.MarkupLine($"[yellow]note:[/] {Escape(note)}");
        if (dataset.Unconverted.Count > 0)
            Err.MarkupLine($"[yellow]note:[/] {Plural.Of(dataset.Unconverted.Count, ".tif/.tiff/.heic/.heif file")} {(dataset.Unconverted.Count == 1 ? "was" : "were")} not read (Graft does not decode TIFF or HEIC), " +
                $"e.g. {Escape(dataset.Unconverted[0])}: convert them to JPEG or PNG to use them.");
    }

    public static void ReportSkipped(IReadOnlyList<SkippedImage> skipped)
    {
        if (skipped.Count == 0) return;
        Err.MarkupLine($"[yellow]skipped {Plural.Of(skipped.Count, "file")} that could not be read:[/]");
        foreach (var s in skipped) Err.MarkupLine($"  [yellow]{Escape(s.Path)}[/]: {Escape(s.Reason)}");
    }
}
