using System.CommandLine;
using Graft.Cli;
using Graft.Cli.Commands;
using Graft.Engine;
using Graft.Runtime;

// jemalloc must be in place before libtorch allocates anything: restart with it preloaded when available.
Allocator.ReexecWithJemallocIfPossible();

var root = new RootCommand("Graft: transfer learning for image classification. " +
    "Sort photos into one folder per class, run 'graft train PHOTOS', get a classifier.")
{
    TrainCommand.Create(),
    EvaluateCommand.Create(),
    PredictCommand.Create(),
    EmbedCommand.Create(),
    SummaryCommand.Create(),
    AugmentCommand.Create(),
    AdviseCommand.Create(),
    AuditCommand.Create(),
    ModelsCommand.Create(),
    DatasetsCommand.Create(),
    DoctorCommand.Create(),
    BenchCommand.Create(),
    ExportCommand.Create(),
    ImportCommand.Create(),
};
Cli.JsonOnly = args.Contains("--json");
// Ctrl-C cancels the command's token; a training run then finishes its step and saves a checkpoint, which
// can take a while: allow it rather than killing the process after the default two seconds.
return await root.Parse(args).InvokeAsync(new InvocationConfiguration
{
    EnableDefaultExceptionHandler = false,
    ProcessTerminationTimeout = TimeSpan.FromMinutes(5),
});
