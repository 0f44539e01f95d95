using System.CommandLine;
using Graft.Cli;
using Graft.Cli.Commands;
using Graft.Engine;

// jemalloc must be in place before libtorch allocates anything: restart with it preloaded when available.
Allocator.ReexecWithJemallocIfPossible();

var root = new RootCommand("Graft: transfer learning for image classification. " +
    "Sort photos into one folder per class, run 'graft train PHOTOS', get a classifier.")
{
    TrainCommand.Create(),
    EvaluateCommand.Create(),
    PredictCommand.Create(),
    SummaryCommand.Create(),
    ModelsCommand.Create(),
    DoctorCommand.Create(),
    BenchCommand.Create(),
};
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
