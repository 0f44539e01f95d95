using System.Collections;
using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;

namespace Graft.Cli;

/// <summary>
/// `graft COMMAND --help`: the description, usage and arguments, then the options under the headings the command gives
/// (the rest under "Options"), each with its default in one form, "(default: X)", wrapped to <see cref="Width"/>
/// columns. And what a command line that does not parse becomes: one line, a suggestion for a mistyped name, exit 2.
/// </summary>
public static class HelpPage
{
    const int Width = 100, NameColumn = 28;

    static readonly ConditionalWeakTable<Option, string> DefaultTexts = new();
    static readonly ConditionalWeakTable<Command, List<(string Heading, Option[] Options)>> Groups = new();

    /// <summary>Shows <paramref name="text"/> as the option's default (one that depends on other options, say).</summary>
    public static T ShowDefault<T>(this T option, string text) where T : Option
    {
        DefaultTexts.AddOrUpdate(option, text);
        return option;
    }

    /// <summary>Adds <paramref name="options"/> to the command, listed under <paramref name="heading"/> in its help, in this order.</summary>
    public static void Group(this Command command, string heading, params Option[] options)
    {
        Groups.GetOrCreateValue(command).Add((heading, options));
        foreach (var option in options) command.Options.Add(option);
    }

    /// <summary>Makes --help show this page for every command.</summary>
    public static void Install(RootCommand root)
    {
        foreach (var help in root.Options.OfType<HelpOption>()) help.Action = new Show();
    }

    sealed class Show : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parse)
        {
            Console.Out.Write(Render(parse.CommandResult.Command));
            return 0;
        }
    }

    /// <summary>The help page of <paramref name="command"/>.</summary>
    public static string Render(Command command)
    {
        var text = new StringBuilder();
        if (command.Description is { } description) Wrap(text, description, 0);
        var path = string.Join(' ', Ancestry(command).Reverse().Select(c => c is RootCommand ? "graft" : c.Name));
        var arguments = command.Arguments.Where(a => !a.Hidden).ToList();
        text.Append($"\nUsage: {path}{string.Concat(arguments.Select(a => $" {a.Name}{(a.Arity.MaximumNumberOfValues > 1 ? "..." : "")}"))}"
            + (command.Subcommands.Count > 0 ? " COMMAND" : "") + " [options]\n");
        if (arguments.Count > 0)
        {
            text.Append('\n');
            foreach (var a in arguments) Entry(text, a.Name, a.Description ?? "");
        }
        if (command.Subcommands.Count > 0)
        {
            text.Append("\nCommands:\n");
            foreach (var c in command.Subcommands.Where(c => !c.Hidden)) Entry(text, c.Name, c.Description ?? "");
        }
        var options = Ancestry(command).SelectMany(c => c == command ? c.Options : c.Options.Where(o => o.Recursive)).Where(o => !o.Hidden).ToList();
        var groups = Groups.TryGetValue(command, out var g) ? g : [];
        var grouped = groups.SelectMany(x => x.Options).ToHashSet();
        foreach (var (heading, members) in groups.Append(("Options", options.Where(o => !grouped.Contains(o)).ToArray())))
        {
            text.Append($"\n{heading}:\n");
            foreach (var o in members.Where(o => !o.Hidden)) Entry(text, Usage(o), Describe(o));
        }
        return text.ToString();
    }

    static IEnumerable<Command> Ancestry(Command command)
    {
        for (Symbol? s = command; s is Command c; s = c.Parents.FirstOrDefault()) yield return c;
    }

    static string Usage(Option o)
    {
        // Of the aliases, the short ones a user types (-h), not the DOS-style ones (/h, /?, -?).
        var names = string.Join(", ", o.Aliases.Where(a => a.Length == 2 && a[0] == '-' && char.IsLetter(a[1])).Order(StringComparer.Ordinal).Append(o.Name));
        if (o.ValueType == typeof(bool) || o.Arity.MaximumNumberOfValues == 0) return names;
        var type = Nullable.GetUnderlyingType(o.ValueType) ?? o.ValueType;
        if (type == typeof(bool)) return $"{names} {o.HelpName ?? "true|false"}";
        return $"{names} {o.HelpName ?? (type == typeof(int) ? "N" : type == typeof(double) ? "X" : o.Name.TrimStart('-').ToUpperInvariant())}";
    }

    static string Describe(Option o)
    {
        var text = o.Description ?? "";
        var shown = DefaultTexts.TryGetValue(o, out var given) ? given : o.HasDefaultValue ? Format(o.GetDefaultValue()) : null;
        return string.IsNullOrEmpty(shown) ? text : $"{text} (default: {shown})";
    }

    /// <summary>A default as it would be typed: an enum by its command-line name, numbers invariant, lists comma-separated; false and null are no default.</summary>
    public static string? Format(object? value) => value switch
    {
        null or false => null,
        Enum e => Names.Of(e),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        string s => s,
        IEnumerable items => string.Join(",", items.Cast<object>().Select(Format)),
        _ => value.ToString(),
    };

    /// <summary>Text made to follow a colon: its first letter in lower case.</summary>
    public static string LowerFirst(string text) => text.Length == 0 ? text : char.ToLowerInvariant(text[0]) + text[1..];

    /// <summary>A name in the first column and its text beside it, wrapped; a long name puts the text on the next line.</summary>
    static void Entry(StringBuilder text, string name, string description)
    {
        text.Append("  ").Append(name);
        if (name.Length + 2 > NameColumn - 2) text.Append('\n').Append(' ', NameColumn);
        else text.Append(' ', NameColumn - 2 - name.Length);
        Wrap(text, description, NameColumn);
    }

    static void Wrap(StringBuilder text, string words, int indent)
    {
        int column = indent;
        bool first = true;
        foreach (var word in words.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!first && column + 1 + word.Length > Width)
            {
                text.Append('\n').Append(' ', indent);
                column = indent;
                first = true;
            }
            if (!first) { text.Append(' '); column++; }
            text.Append(word);
            column += word.Length;
            first = false;
        }
        text.Append('\n');
    }

    /// <summary>
    /// A command line that does not parse: one line on stderr and exit code 2, nothing run. A mistyped option or command
    /// gets the nearest name (<c>--epoch 5</c>: "did you mean --epochs?").
    /// </summary>
    public static int Refuse(ParseResult parse)
    {
        var command = parse.CommandResult.Command;
        var path = string.Join(' ', Ancestry(command).Reverse().Select(c => c is RootCommand ? "graft" : c.Name));
        string message;
        if (parse.UnmatchedTokens.FirstOrDefault() is { } token)
        {
            var names = Ancestry(command).SelectMany(c => c == command ? c.Options : c.Options.Where(o => o.Recursive)).Where(o => !o.Hidden)
                .SelectMany(o => o.Aliases.Append(o.Name)).Concat(command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name));
            var nearest = Nearest(token, names);
            message = $"{(token.StartsWith('-') ? "unknown option" : command.Subcommands.Count > 0 ? "unknown command" : "unexpected argument")} {token}"
                + (nearest is null ? $": '{path} --help' lists what it takes." : $": did you mean {nearest}?");
        }
        else if (command.Subcommands.Count > 0 && parse.Errors.All(e => e.SymbolResult is null or System.CommandLine.Parsing.CommandResult))
            message = $"{path} needs a command: {string.Join(", ", command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name))} ('{path} --help' says more).";
        else
            message = string.Join(" ", parse.Errors[0].Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Console.Error.WriteLine($"graft: {Cli.Printable(message)}");
        return 2;
    }

    /// <summary>Whether the command line asks for help (which then shows, whatever else is wrong with it).</summary>
    public static bool Asked(ParseResult parse) => parse.Action is Show;

    /// <summary>The candidate a mistyped name most likely meant: one it begins, or one within two edits (null: none is close).</summary>
    static string? Nearest(string typed, IEnumerable<string> candidates)
    {
        var scored = candidates.Distinct().Select(c => (Name: c, Distance: c.StartsWith(typed, StringComparison.Ordinal) && typed.Length >= 3 ? 0 : Edits(typed, c)))
            .Where(c => c.Distance <= Math.Min(2, Math.Max(1, typed.Length / 3))).OrderBy(c => c.Distance).ThenBy(c => c.Name.Length).ToList();
        return scored.Count > 0 ? scored[0].Name : null;
    }

    /// <summary>Edits from one name to the other: insertions, deletions, substitutions and swaps of neighbours ("trian").</summary>
    static int Edits(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
            {
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        return d[a.Length, b.Length];
    }
}
