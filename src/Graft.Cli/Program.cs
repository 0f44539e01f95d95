using System.Globalization;
using System.CommandLine;
using Graft.Cli;
using Graft.Cli.Commands;
using Graft.Engine;
using Graft.Runtime;

// Numbers and dates print and parse the same whatever the user's locale (CSV, JSON and terminal output alike); ICU is
// loaded for Unicode normalization of class names, not for localized formatting.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.DefaultThreadCurrentUICulture = CultureInfo.CurrentCulture = CultureInfo.CurrentUICulture = CultureInfo.InvariantCulture;

// jemalloc must be in place before libtorch allocates anything: restart with it preloaded when available.
Allocator.ReexecWithJemallocIfPossible();

var root = new RootCommand("Graft: transfer learning for image classification. " +
    "Sort photos into one folder per class, run 'graft train PHOTOS', get a classifier.")
{
    TrainCommand.Create(),
    LrFindCommand.Create(),
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
    ServeCommand.Create(),
    MergeCommand.Create(),
};
HelpPage.Install(root);
Cli.JsonOnly = args.Contains("--json");
var parse = root.Parse(args);
if (parse.Errors.Count > 0 && !HelpPage.Asked(parse)) return HelpPage.Refuse(parse); // one line, exit 2, nothing run
// Ctrl-C cancels the command's token; a training run then finishes its step and saves a checkpoint, which
// can take a while: allow it rather than killing the process after the default two seconds.
return await parse.InvokeAsync(new InvocationConfiguration
{
    EnableDefaultExceptionHandler = false,
    ProcessTerminationTimeout = TimeSpan.FromMinutes(5),
});
