using Spectre.Console;
using System.CommandLine;
using Graft.Data;
using Graft.Training;

namespace Graft.Cli.Commands;

/// <summary>
/// `graft train`: its flags (<see cref="TrainFlags"/>) mapped onto <see cref="TrainOptions"/>, then
/// <see cref="Learner"/> and the results (<see cref="TrainView"/>).
/// </summary>
public static class TrainCommand
{
    public static Command Create()
    {
        var flags = new TrainFlags();
        var command = new Command("train", "Train a classifier on a folder of photos.");
        flags.AddTo(command);
        command.SetHandler(async (parse, cancel) =>
        {
            var data = parse.GetValue(flags.Data)!;
            var path = SampleDatasets.Resolve(data, Cli.Assets);
            var outPath = parse.GetValue(flags.Output) ?? DefaultModelPath(path);
            // Where the run will write is checked before it trains: a bad path found after training loses the run.
            OutputPaths.File("--out", outPath, path, parse.GetValue(flags.Weights.Weights), parse.GetValue(flags.Labels));
            var report = parse.GetValue(flags.Report);
            if (report is not null) OutputPaths.Folder("--report", report, path, outPath);
            var options = flags.Read(parse, outPath);
            TrainingResult result;
            using (var progress = new ProgressLine(parse.GetValue(flags.Verbose)))
                result = await Learner.TrainAsync(path, options, Cli.Assets, progress.Callbacks, cancel);
            result.Model.Save(outPath);
            await TrainView.ShowAsync(result, data, StrategyNames.Parse(result.Model.Config.Strategy), outPath, report, parse.GetValue(flags.Json), cancel);
        });
        return command;
    }

    static string DefaultModelPath(string data) =>
        Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(data))) + ".graft";
}

/// <summary>
/// train's flags: each made from the <see cref="TrainOptions"/> (or <see cref="FitOptions"/>, <see cref="UnfreezeSpec"/>,
/// <see cref="Imaging.Augmentation"/>) property it sets, which holds its help, default and range; grouped as the README
/// groups them.
/// </summary>
sealed class TrainFlags
{
    static readonly Flags<TrainOptions> Train = new(new TrainOptions());
    static readonly Flags<UnfreezeSpec> Unfreezing = new(UnfreezeSpec.Default);
    static readonly Flags<FitOptions> Fit = new(new FitOptions());

    static string FitHelp<T>(System.Linq.Expressions.Expression<Func<FitOptions, T>> property) => Fit.Help(property);

    public readonly Argument<string> Data = new("DATA")
    {
        Description = "Folder with one sub-folder per class, or with train/ and val/ (or validation/, test/) folders; or a sample dataset name (hymenoptera, cats_vs_dogs); " +
            "or, with --labels, the folder the label file's paths are relative to.",
    };

    public readonly Option<string?> Labels = Cli.LabelsOption();
    readonly Option<bool> _multiLabel = Train.Option("--multi-label", o => o.MultiLabel);

    readonly Option<double> _valSplit = Train.Option("--val-split", o => o.ValidationSplit);
    readonly Option<double> _testSplit = Train.Option("--test-split", o => o.TestSplit);
    readonly Option<string?> _exclude = Train.Option("--exclude", o => o.Exclude);
    readonly Option<Imaging.ResizeMode> _resize = Train.Option("--resize", o => o.Resize);
    readonly Option<int> _seed = Train.Option("--seed", o => o.Fit.Seed);
    readonly Option<bool> _noCache = Train.Off("--no-cache", o => o.UseCache);
    readonly Option<ComputeDevice> _device = Cli.DeviceOption();

    readonly Option<Strategy> _strategy = Train.Option("--strategy", o => o.Strategy);
    readonly Option<string?> _from = Train.Option("--from", o => o.From);
    readonly Option<string?> _backbone = Train.Option("--backbone", o => o.Backbone).ShowDefault(ByStrategy(o => o.BackboneOrDefault));
    public readonly BackboneOptions Weights = new();
    readonly Option<string?> _featuresFrom = Train.Option("--features-from", o => o.FeatureBlock);
    readonly Option<Runtime.Precision> _precision = Train.Option("--precision", o => o.Precision);
    readonly Option<int> _epochs = Train.Option("--epochs", o => o.Fit.Epochs);
    readonly Option<int> _batchSize = Train.Option("--batch-size", o => o.Fit.BatchSize);
    readonly Option<string> _lr = Rate("--lr", Fit.Help(f => f.LearningRate), "the head and of scratch training").ShowDefault(HelpPage.Format(new FitOptions().LearningRate)!);
    readonly Option<OptimizerKind> _optimizer = Train.Option("--optimizer", o => o.Fit.Optimizer);
    readonly Option<int> _patience = Train.Option("--patience", o => o.Fit.Patience);
    readonly Option<TimeSpan?> _timeBudget = new("--time-budget")
        { Description = Train.Help(o => o.TimeBudget), HelpName = "DURATION", CustomParser = ParseDuration };
    readonly Option<string?> _classWeight = new("--class-weight")
        { Description = "balanced: " + HelpPage.LowerFirst(Train.Help(o => o.BalancedClassWeights)), HelpName = "balanced" };

    readonly Option<int?> _hidden = Train.Option("--hidden", o => o.Hidden).ShowDefault(ByStrategy(o => o.HiddenOrDefault));
    readonly Option<double?> _dropout = Train.Option("--dropout", o => o.Dropout).ShowDefault(ByStrategy(o => o.DropoutOrDefault));
    readonly Option<Heads.Pooling?> _head = Train.Option("--head", o => o.Pooling).ShowDefault(ByStrategy(o => o.PoolingOrDefault));
    readonly Option<bool> _batchNorm = Train.Option("--batchnorm", o => o.BatchNorm);
    readonly Option<bool> _se = Train.Option("--se", o => o.SqueezeExcite);
    readonly Option<bool> _binary = Train.Option("--binary", o => o.Binary);

    readonly Option<string> _recipe = Train.Option("--recipe", o => o.Recipe);
    readonly Option<string?> _unfreeze = new Option<string?>("--unfreeze")
        { Description = "N: " + HelpPage.LowerFirst(Unfreezing.Help(u => u.TopBlocks)) + " all: " + HelpPage.LowerFirst(Unfreezing.Help(u => u.All)), HelpName = "N|all" }
        .ShowDefault(ByRecipe(r => r.Unfreeze.ToArguments().Replace("--unfreeze ", "")));
    readonly Option<string?> _unfreezeFrom = Unfreezing.Option("--unfreeze-from", u => u.FromLayer);
    readonly Option<int?> _freezeFirst = Unfreezing.Option("--freeze-first", u => u.FreezeFirstLayers);
    readonly Option<int?> _ftEpochs = Fit.Override("--ft-epochs", f => f.Epochs).ShowDefault(ByRecipe(r => r.FineTune.Epochs));
    readonly Option<string> _ftLr = Rate("--ft-lr", Fit.Help(f => f.LearningRate), "fine-tuning's phase 2").ShowDefault(ByRecipe(r => r.FineTune.LearningRate));
    readonly Option<OptimizerKind?> _ftOptimizer = Fit.Override("--ft-optimizer", f => f.Optimizer).ShowDefault(ByRecipe(r => r.FineTune.Optimizer));
    readonly Option<LrSchedule?> _schedule = Train.Option("--schedule", o => o.Schedule).ShowDefault(ByRecipe(r => r.Schedule) + "; scratch: constant");
    readonly Option<double?> _discriminative = Train.Option("--discriminative", o => o.DiscriminativeFactor).ShowDefault(ByRecipe(r => r.DiscriminativeFactor));
    readonly Option<double?> _weightDecay = Fit.Override("--weight-decay", f => f.WeightDecay).ShowDefault(ByRecipe(r => r.FineTune.WeightDecay));
    readonly Option<double?> _warmup = Fit.Override("--warmup-epochs", f => f.WarmupEpochs).ShowDefault(ByRecipe(r => r.FineTune.WarmupEpochs));
    readonly Option<double?> _labelSmoothing = Fit.Override("--label-smoothing", f => f.LabelSmoothing).ShowDefault(ByRecipe(r => r.FineTune.LabelSmoothing));
    readonly Option<double?> _mixUp = Fit.Override("--mixup", f => f.MixUp).ShowDefault(ByRecipe(r => r.FineTune.MixUp));
    readonly Option<double?> _cutMix = Fit.Override("--cutmix", f => f.CutMix).ShowDefault(ByRecipe(r => r.FineTune.CutMix));
    readonly Option<bool?> _freezeBatchNorm = Fit.Override("--freeze-bn", f => f.FreezeBatchNorm).ShowDefault(ByRecipe(r => r.FineTune.FreezeBatchNorm));
    readonly Option<double?> _ema = Fit.Override("--ema", f => f.EmaDecay).ShowDefault(ByRecipe(r => r.FineTune.EmaDecay));
    readonly Option<int?> _microBatch = new Option<int?>("--micro-batch") { Description = FitHelp(f => f.MicroBatch), HelpName = "N" }
        .ShowDefault(ByRecipe(r => r.FineTune.MicroBatch));

    readonly AugmentOptions _augment = new();

    public readonly Option<string?> Output = new Option<string?>("--out") { Description = "Model file to write.", HelpName = "FILE" }
        .ShowDefault("DATA's folder name + .graft, in the current folder");
    public readonly Option<string?> Report = new("--report")
        { Description = "Write an HTML report into this folder at the end: of the test images, or without any, the validation images.", HelpName = "DIR" };
    readonly Option<bool> _resume = Train.Option("--resume", o => o.Resume);
    public readonly Option<bool> Json = Cli.JsonOption();
    public readonly Option<bool> Verbose = Cli.VerboseOption();

    public TrainFlags()
    {
        _classWeight.AcceptOnlyFromAmong("balanced");
        _recipe.AcceptOnlyFromAmong([.. Recipes.All.Select(r => r.Name)]);
        _recipe.HelpName = string.Join('|', Recipes.All.Select(r => r.Name));
        _unfreeze.CustomParser = result =>
        {
            var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
            if (text == "all" || int.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out int n) && n >= 1) return text;
            result.AddError($"--unfreeze {text} is not a number of blocks (1 or more) or 'all'.");
            return null;
        };
        _microBatch.CustomParser = result =>
        {
            var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
            if (int.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out int n) && n >= 1) return n;
            result.AddError($"--micro-batch {text} is not a whole number from 1.");
            return null;
        };
        _from.HelpName = "MODEL.graft";
        (_exclude.HelpName, _backbone.HelpName, _featuresFrom.HelpName, _unfreezeFrom.HelpName) = ("CSV", "NAME|FILE.onnx", "BLOCK", "LAYER");
    }

    /// <param name="outputs">With the output group (--out, --report, --resume, --json); lr-find has its own.</param>
    public void AddTo(Command command, bool outputs = true)
    {
        command.Add(Data);
        command.Group("Data", Labels, _multiLabel, _valSplit, _testSplit, _exclude, _resize, Weights.InputSize, _seed, _noCache);
        command.Group("Strategy", _strategy, _device, _from, _backbone, Weights.Weights, _featuresFrom, _precision, _epochs, _batchSize, _lr, _optimizer, _patience, _classWeight, _timeBudget);
        command.Group("ONNX backbone (--backbone FILE.onnx; what its file does not say)", Weights.Onnx);
        command.Group("Head", _hidden, _dropout, _head, _batchNorm, _se, _binary);
        command.Group("Fine-tuning (phase 2: a recipe, then its settings one by one)",
            _recipe, _unfreeze, _unfreezeFrom, _freezeFirst, _ftEpochs, _ftLr, _ftOptimizer, _schedule, _discriminative,
            _weightDecay, _warmup, _labelSmoothing, _mixUp, _cutMix, _freezeBatchNorm, _ema, _microBatch);
        command.Group("Augmentation (fine-tuning and scratch; Keras ImageDataGenerator's names)", _augment.All);
        if (outputs) command.Group("Output", Output, Report, _resume, Json, Verbose);
    }

    /// <summary>The run the flags ask for; options the strategy does not use are named in a note.</summary>
    public TrainOptions Read(ParseResult parse, string outPath)
    {
        bool Given(Option o) => parse.GetResult(o) is { Implicit: false };
        var strategy = parse.GetValue(_strategy);
        Option[] unfreezing = [_unfreeze, _unfreezeFrom, _freezeFirst];
        if (unfreezing.Count(Given) > 1)
            throw new GraftException("--unfreeze, --unfreeze-from and --freeze-first each say what to fine-tune.", "Pass only one of them.");
        Option[] regularisers = [_weightDecay, _warmup, _labelSmoothing, _mixUp, _cutMix, _freezeBatchNorm, _ema, _microBatch];
        Option[] fineTuning = [_recipe, .. unfreezing, _ftEpochs, _ftLr, _ftOptimizer, _discriminative];
        Option[] unused = strategy switch
        {
            Strategy.FeatureExtraction => [.. fineTuning, .. regularisers, _schedule, _resume],
            Strategy.Scratch => fineTuning,
            _ => [],
        };
        foreach (var option in unused.Where(Given))
            Cli.Out.MarkupLine($"[yellow]note:[/] {option.Name} does not apply to --strategy {strategy.Name()}: ignored.");
        var fit = new FitOptions(Epochs: parse.GetValue(_epochs), BatchSize: parse.GetValue(_batchSize), LearningRate: RateOf(parse, _lr) ?? new FitOptions().LearningRate,
            Optimizer: parse.GetValue(_optimizer), Seed: parse.GetValue(_seed), Patience: parse.GetValue(_patience));
        var recipe = Recipes.Get(parse.GetValue(_recipe)!);
        // The live phase's settings: the recipe's (fine-tuning) or phase 1's (scratch), each flag given overriding one.
        FitOptions Live(FitOptions basis) => basis with
        {
            Seed = fit.Seed,
            BatchSize = Given(_batchSize) ? fit.BatchSize : basis.BatchSize,
            Patience = Given(_patience) ? fit.Patience : basis.Patience,
            Epochs = parse.GetValue(_ftEpochs) ?? basis.Epochs,
            LearningRate = RateOf(parse, _ftLr) ?? basis.LearningRate,
            Optimizer = parse.GetValue(_ftOptimizer) ?? basis.Optimizer,
            WeightDecay = parse.GetValue(_weightDecay) ?? basis.WeightDecay,
            WarmupEpochs = parse.GetValue(_warmup) ?? basis.WarmupEpochs,
            LabelSmoothing = parse.GetValue(_labelSmoothing) ?? basis.LabelSmoothing,
            MixUp = parse.GetValue(_mixUp) ?? basis.MixUp,
            CutMix = parse.GetValue(_cutMix) ?? basis.CutMix,
            FreezeBatchNorm = parse.GetValue(_freezeBatchNorm) ?? basis.FreezeBatchNorm,
            EmaDecay = parse.GetValue(_ema) ?? basis.EmaDecay,
            MicroBatch = parse.GetValue(_microBatch) ?? basis.MicroBatch,
        };
        if (strategy == Strategy.Scratch)
            fit = Live(fit) with { Epochs = fit.Epochs, LearningRate = fit.LearningRate, Optimizer = fit.Optimizer };
        return new TrainOptions
        {
            Backbone = parse.GetValue(_backbone),
            WeightsFile = Weights.WeightsFile(parse),
            InputSize = parse.GetValue(Weights.InputSize),
            // Growing a model continues its strategy unless one is asked for (auto, with a model to grow, is the model's).
            Strategy = parse.GetValue(_from) is not null && !Given(_strategy) ? Strategy.Auto : strategy,
            From = parse.GetValue(_from),
            Hidden = parse.GetValue(_hidden),
            Dropout = parse.GetValue(_dropout),
            Pooling = parse.GetValue(_head),
            Unfreeze = parse.GetValue(_freezeFirst) is { } first ? new UnfreezeSpec(FreezeFirstLayers: first)
                : parse.GetValue(_unfreezeFrom) is { } from ? new UnfreezeSpec(FromLayer: from)
                : parse.GetValue(_unfreeze) is "all" ? new UnfreezeSpec(All: true)
                : parse.GetValue(_unfreeze) is { } top ? new UnfreezeSpec(TopBlocks: int.Parse(top, System.Globalization.CultureInfo.InvariantCulture))
                : null,
            Recipe = recipe.Name,
            AutoLearningRate = parse.GetValue(_lr) == "auto" || parse.GetValue(_ftLr) == "auto",
            FineTune = strategy == Strategy.FineTune ? Live(recipe.FineTune) : null,
            Augmentation = _augment.Read(parse, strategy is Strategy.FineTune or Strategy.Scratch ? TrainOptions.DefaultAugmentation(strategy, recipe) : null),
            Schedule = parse.GetValue(_schedule),
            DiscriminativeFactor = parse.GetValue(_discriminative),
            BalancedClassWeights = parse.GetValue(_classWeight) == "balanced",
            FeatureBlock = parse.GetValue(_featuresFrom),
            Onnx = Weights.OnnxOptions(parse),
            CheckpointPath = outPath + ".checkpoint",
            Resume = parse.GetValue(_resume),
            BatchNorm = parse.GetValue(_batchNorm),
            SqueezeExcite = parse.GetValue(_se),
            Binary = parse.GetValue(_binary),
            Resize = parse.GetValue(_resize),
            ValidationSplit = parse.GetValue(_valSplit),
            TestSplit = parse.GetValue(_testSplit),
            UseCache = !parse.GetValue(_noCache),
            Exclude = parse.GetValue(_exclude),
            LabelsFile = parse.GetValue(Labels),
            MultiLabel = parse.GetValue(_multiLabel),
            Precision = parse.GetValue(_precision),
            Device = Cli.Device(parse, _device),
            TimeBudget = parse.GetValue(_timeBudget),
            Fit = fit,
        };
    }

    /// <summary>
    /// A learning rate: a number above 0 and below 10, or "auto" (<see cref="TrainOptions.AutoLearningRate"/>: a range
    /// test chooses the rate of the phase that trains).
    /// </summary>
    static Option<string> Rate(string name, string help, string phase)
    {
        var option = new Option<string>(name) { Description = $"{help.TrimEnd('.')} of {phase}; auto: a range test chooses it first (graft lr-find).", HelpName = "X|auto" };
        option.CustomParser = result =>
        {
            var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
            if (text == "auto" || double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double x) && x > 0 && x < 10)
                return text;
            result.AddError($"{name} {text} is not a learning rate: pass a value above 0 below 10, or auto.");
            return null;
        };
        return option;
    }

    /// <summary>A duration such as 15m, 1h30m, 90s or 2h (whole numbers of hours, minutes and seconds, in that order), above 0.</summary>
    static TimeSpan? ParseDuration(System.CommandLine.Parsing.ArgumentResult result)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
        var match = System.Text.RegularExpressions.Regex.Match(text, @"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$");
        int Part(int group) => match.Groups[group].Success ? int.Parse(match.Groups[group].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
        if (match.Success && text.Length > 0 && Part(1) * 3600L + Part(2) * 60L + Part(3) is var seconds and > 0 and < int.MaxValue)
            return TimeSpan.FromSeconds(seconds);
        result.AddError($"--time-budget {text} is not a duration: write it as 15m, 1h30m or 90s.");
        return null;
    }

    /// <summary>A rate flag's number, or null for "auto" or not given.</summary>
    static double? RateOf(ParseResult parse, Option<string> option) =>
        parse.GetValue(option) is { } text && text != "auto" ? double.Parse(text, System.Globalization.CultureInfo.InvariantCulture) : null;

    /// <summary>A default that depends on the recipe: "1e-4 (deep); 1e-4 (top-blocks)" style, the default recipe first.</summary>
    static string ByRecipe<T>(Func<Recipe, T> value) =>
        string.Join("; ", Recipes.All.Select(r => $"{r.Name}: {(value(r) is bool b ? (b ? "true" : "false") : HelpPage.Format(value(r)) ?? "none")}"));

    /// <summary>A default that depends on the strategy, from <see cref="TrainOptions"/>' resolved values: "0; scratch: 64".</summary>
    static string ByStrategy<T>(Func<TrainOptions, T> resolved)
    {
        var values = Enum.GetValues<Strategy>().Where(s => s != Strategy.Auto)
            .Select(s => (Strategy: s.Name(), Value: HelpPage.Format(resolved(new TrainOptions { Strategy = s })) ?? "none")).ToList();
        var usual = values.GroupBy(v => v.Value).MaxBy(g => g.Count())!.Key;
        return string.Join("; ", values.Where(v => v.Value != usual).Select(v => $"{v.Strategy}: {v.Value}").Prepend(usual));
    }
}
