using System.CommandLine;
using System.Globalization;
using System.Reflection;
using Graft.Imaging;

namespace Graft.Cli;

/// <summary>
/// The augmentation options shared by `train` and `augment`, mapped onto <see cref="Augmentation"/> (Keras
/// ImageDataGenerator's names and meanings): a preset, then any setting given on its own overrides the preset's.
/// </summary>
public sealed class AugmentOptions
{
    static readonly Flags<Augmentation> Flags = new(Augmentation.None);

    /// <summary>The presets: <see cref="Augmentation"/>'s named instances, by their names in kebab-case.</summary>
    static readonly Dictionary<string, Augmentation> Presets = typeof(Augmentation).GetFields(BindingFlags.Public | BindingFlags.Static)
        .Where(f => f.FieldType == typeof(Augmentation)).ToDictionary(f => Names.Kebab(f.Name), f => (Augmentation)f.GetValue(null)!);

    readonly Option<string?> _preset = new("--augment") { HelpName = string.Join('|', Presets.Keys) };
    readonly Option<double?> _rotation = Flags.Override("--rotation", a => a.RotationRange);
    readonly Option<double?> _widthShift = Flags.Override("--width-shift", a => a.WidthShiftRange);
    readonly Option<double?> _heightShift = Flags.Override("--height-shift", a => a.HeightShiftRange);
    readonly Option<double?> _shear = Flags.Override("--shear", a => a.ShearRange);
    readonly Option<double?> _zoom = Flags.Override("--zoom", a => a.ZoomRange);
    readonly Option<string?> _flip = new("--flip")
        { Description = $"horizontal: {HelpPage.LowerFirst(Flags.Help(a => a.HorizontalFlip))} vertical: {HelpPage.LowerFirst(Flags.Help(a => a.VerticalFlip))} both: either; none: neither.", HelpName = "horizontal|vertical|both|none" };
    readonly Option<FillMode?> _fillMode = Flags.Override("--fill-mode", a => a.FillMode);
    readonly Option<byte?> _fillValue = Flags.Override("--fill-value", a => a.FillValue);
    readonly Option<string?> _brightness = new("--brightness") { Description = Flags.Help(a => a.BrightnessRange), HelpName = "LOW,HIGH" };
    readonly Option<bool> _randomResizedCrop = Flags.Option("--random-resized-crop", a => a.RandomResizedCrop);

    public AugmentOptions()
    {
        _preset.AcceptOnlyFromAmong([.. Presets.Keys]);
        _flip.AcceptOnlyFromAmong("horizontal", "vertical", "both", "none");
        _preset.Description = "A preset, which the settings below change: "
            + string.Join("; ", Presets.Select(p => p.Value.IsIdentity ? $"{p.Key}: no augmentation" : $"{p.Key}: {Settings(p.Value)}")) + ".";
    }

    /// <summary>The options, for a command's help page.</summary>
    public Option[] All => [_preset, _rotation, _widthShift, _heightShift, _shear, _zoom, _flip, _fillMode, _fillValue, _brightness, _randomResizedCrop];

    public void AddTo(Command command)
    {
        foreach (var option in All) command.Add(option);
    }

    /// <summary>The augmentation asked for; <paramref name="fallback"/> (the strategy's default) when no option was given.</summary>
    public Augmentation? Read(ParseResult parse, Augmentation? fallback = null)
    {
        var preset = parse.GetValue(_preset) is { } name ? Presets[name] : null;
        bool anyTransform = parse.GetValue(_rotation) is not null || parse.GetValue(_widthShift) is not null || parse.GetValue(_heightShift) is not null
            || parse.GetValue(_shear) is not null || parse.GetValue(_zoom) is not null || parse.GetValue(_flip) is not null
            || parse.GetValue(_brightness) is not null || parse.GetValue(_randomResizedCrop);
        // Transforms given without a preset are the whole augmentation (as in Keras); fill settings alone only
        // change how the default's transforms fill.
        var a = preset ?? (anyTransform ? Augmentation.None : fallback);
        if (a is null) return null;
        var flip = parse.GetValue(_flip);
        return a with
        {
            RotationRange = parse.GetValue(_rotation) ?? a.RotationRange,
            WidthShiftRange = parse.GetValue(_widthShift) ?? a.WidthShiftRange,
            HeightShiftRange = parse.GetValue(_heightShift) ?? a.HeightShiftRange,
            ShearRange = parse.GetValue(_shear) ?? a.ShearRange,
            ZoomRange = parse.GetValue(_zoom) ?? a.ZoomRange,
            HorizontalFlip = flip is null ? a.HorizontalFlip : flip is "horizontal" or "both",
            VerticalFlip = flip is null ? a.VerticalFlip : flip is "vertical" or "both",
            FillMode = parse.GetValue(_fillMode) ?? a.FillMode,
            FillValue = parse.GetValue(_fillValue) ?? a.FillValue,
            BrightnessRange = parse.GetValue(_brightness) is { } b ? Range(b) : a.BrightnessRange,
            RandomResizedCrop = parse.GetValue(_randomResizedCrop) || a.RandomResizedCrop,
        };
    }

    /// <summary>A preset as the options that would set it: "--rotation 15 --width-shift 0.1 ... --flip horizontal".</summary>
    string Settings(Augmentation a)
    {
        static string N(double x) => x.ToString("0.###", CultureInfo.InvariantCulture);
        var flip = (a.HorizontalFlip, a.VerticalFlip) switch { (true, true) => "both", (true, false) => "horizontal", (false, true) => "vertical", _ => null };
        return string.Join(" ", new (Option Option, string? Value)[]
        {
            (_rotation, a.RotationRange > 0 ? N(a.RotationRange) : null), (_widthShift, a.WidthShiftRange > 0 ? N(a.WidthShiftRange) : null),
            (_heightShift, a.HeightShiftRange > 0 ? N(a.HeightShiftRange) : null), (_shear, a.ShearRange > 0 ? N(a.ShearRange) : null),
            (_zoom, a.ZoomRange > 0 ? N(a.ZoomRange) : null), (_flip, flip),
            (_fillMode, a.FillMode != Augmentation.None.FillMode ? Names.Of(a.FillMode) : null),
            (_brightness, a.BrightnessRange is { } r ? $"{N(r[0])},{N(r[1])}" : null),
        }.Where(s => s.Value is not null).Select(s => $"{s.Option.Name} {s.Value}")
            .Concat(a.RandomResizedCrop ? [_randomResizedCrop.Name] : []));
    }

    static double[] Range(string text)
    {
        var parts = text.Split(',');
        if (parts.Length == 2 && double.TryParse(parts[0], CultureInfo.InvariantCulture, out var low) &&
            double.TryParse(parts[1], CultureInfo.InvariantCulture, out var high) && low > 0 && low <= high)
            return [low, high];
        throw new GraftException($"--brightness {text} is not a range.", "Pass LOW,HIGH with 0 < LOW <= HIGH, e.g. 0.8,1.2.");
    }
}
