using Spectre.Console;
using System.CommandLine;

namespace Graft.Cli.Commands;

public static class BenchCommand
{
    public static Command Create()
    {
        var command = new Command("bench", "Measure speed and accuracy.");
        command.SetHandler((_, _) => Task.CompletedTask);
        return command;
    }
}
