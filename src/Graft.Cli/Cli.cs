using System.CommandLine;
using System.Text.Json;
using Graft.Models;
using Graft.Training;
using Spectre.Console;

namespace Graft.Cli;

/// <summary>What every command shares: the --json option, error handling, output and progress.</summary>
public static class Cli
{
    /// <summary>Where weight files and sample data come from, with any download shown on stderr.</summary>
    public static readonly Graft.Weights.AssetResolver Assets = new(progress: new ProgressLine());

    public static Option<bool> JsonOption() => new("--json") { Description = "End standard output with one JSON object (machine-readable)." };

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
            catch (GraftException e)
            {
                Console.Error.WriteLine($"graft: {e.Message}");
                return 2;
            }
            catch (TrainingStoppedException e)
            {
                Console.Error.WriteLine($"graft: {e.Message}");
                return 130;
            }
            catch (OperationCanceledException)
            {
                Console.Error.WriteLine("graft: stopped before finishing; no model was written.");
                return 130;
            }
            catch (Exception e) when (Environment.GetEnvironmentVariable("GRAFT_DEBUG") is null)
            {
                // libtorch appends its C++ stack to the message: keep the first line.
                Console.Error.WriteLine($"graft: internal error: {e.GetType().Name}: {e.Message.Split('\n')[0].Trim()} (set GRAFT_DEBUG=1 to see where)");
                return 1;
            }
        });

    public static void WriteJson(object value) =>
        Console.Out.WriteLine(JsonSerializer.Serialize(value, JsonLine));

    static readonly JsonSerializerOptions JsonLine = new(ImageClassifier.Json)
    {
        WriteIndented = false,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // plain "<" and "+" in a terminal
    };

    public static string Escape(string text) => Markup.Escape(text);

    public static void ReportSkipped(IReadOnlyList<SkippedImage> skipped)
    {
        if (skipped.Count == 0) return;
        Err.MarkupLine($"[yellow]skipped {skipped.Count} file(s) that could not be read:[/]");
        foreach (var s in skipped) Err.MarkupLine($"  [yellow]{Escape(s.Path)}[/]: {Escape(s.Reason)}");
    }
}
