using System.CommandLine;
using System.Globalization;
using Graft.Data;
using Graft.Imaging;

namespace Graft.Cli;

/// <summary>
/// The augmentation options shared by `train` and `augment`, with Keras ImageDataGenerator's names and
/// meanings: a preset, then any setting given on its own overrides the preset's.
/// </summary>
public sealed class AugmentOptions
{
    readonly Option<string?> _preset = new("--augment") { Description = "Preset: none, default (mild: rotation 15, shifts/zoom 0.1, horizontal flip) or keras-blog (rotation 40, shifts 0.2, shear, zoom 0.2, flip)." };
    readonly Option<double?> _rotation = new("--rotation") { Description = "rotation_range: degrees, drawn from [-r, r]." };
    readonly Option<double?> _widthShift = new("--width-shift") { Description = "width_shift_range: fraction of the width." };
    readonly Option<double?> _heightShift = new("--height-shift") { Description = "height_shift_range: fraction of the height." };
    readonly Option<double?> _shear = new("--shear") { Description = "shear_range: degrees (counter-clockwise)." };
    readonly Option<double?> _zoom = new("--zoom") { Description = "zoom_range: x and y zoom drawn from [1 - z, 1 + z]." };
    readonly Option<string?> _flip = new("--flip") { Description = "horizontal, vertical, both or none." };
    readonly Option<string?> _fillMode = new("--fill-mode") { Description = "What fills pixels from outside the image: nearest, reflect, wrap or constant." };
    readonly Option<int?> _fillValue = new("--fill-value") { Description = "The grey level for --fill-mode constant (0-255)." };
    readonly Option<string?> _brightness = new("--brightness") { Description = "brightness_range LOW,HIGH, e.g. 0.8,1.2." };
    readonly Option<bool> _randomResizedCrop = new("--random-resized-crop") { Description = "A random window of 8-100% of the area (aspect 3/4 to 4/3), resized to the input." };

    public AugmentOptions()
    {
        _preset.AcceptOnlyFromAmong("none", "default", "keras-blog");
        _flip.AcceptOnlyFromAmong("horizontal", "vertical", "both", "none");
        _fillMode.AcceptOnlyFromAmong("nearest", "reflect", "wrap", "constant");
    }

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { _preset, _rotation, _widthShift, _heightShift, _shear, _zoom, _flip, _fillMode, _fillValue, _brightness, _randomResizedCrop })
            command.Add(option);
    }

    /// <summary>The augmentation asked for; <paramref name="fallback"/> (the strategy's default) when no option was given.</summary>
    public Augmentation? Read(ParseResult parse, Augmentation? fallback = null)
    {
        var preset = parse.GetValue(_preset) switch
        {
            "none" => Augmentation.None,
            "default" => Augmentation.Default,
            "keras-blog" => Augmentation.KerasBlog,
            _ => null,
        };
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
            RotationRange = NonNegative(parse.GetValue(_rotation), "--rotation") ?? a.RotationRange,
            WidthShiftRange = NonNegative(parse.GetValue(_widthShift), "--width-shift") ?? a.WidthShiftRange,
            HeightShiftRange = NonNegative(parse.GetValue(_heightShift), "--height-shift") ?? a.HeightShiftRange,
            ShearRange = NonNegative(parse.GetValue(_shear), "--shear") ?? a.ShearRange,
            ZoomRange = NonNegative(parse.GetValue(_zoom), "--zoom") ?? a.ZoomRange,
            HorizontalFlip = flip is null ? a.HorizontalFlip : flip is "horizontal" or "both",
            VerticalFlip = flip is null ? a.VerticalFlip : flip is "vertical" or "both",
            FillMode = parse.GetValue(_fillMode) is { } mode ? Enum.Parse<FillMode>(mode, ignoreCase: true) : a.FillMode,
            FillValue = parse.GetValue(_fillValue) is { } v ? (byte)Math.Clamp(v, 0, 255) : a.FillValue,
            BrightnessRange = parse.GetValue(_brightness) is { } b ? Range(b) : a.BrightnessRange,
            RandomResizedCrop = parse.GetValue(_randomResizedCrop) || a.RandomResizedCrop,
        };
    }

    static double? NonNegative(double? value, string option) =>
        value is < 0 ? throw new GraftException($"{option} {value} is negative.", $"Pass 0 or more to {option}.") : value;

    static double[] Range(string text)
    {
        var parts = text.Split(',');
        if (parts.Length == 2 && double.TryParse(parts[0], CultureInfo.InvariantCulture, out var low) &&
            double.TryParse(parts[1], CultureInfo.InvariantCulture, out var high) && low > 0 && low <= high)
            return [low, high];
        throw new GraftException($"--brightness {text} is not a range.", "Pass LOW,HIGH with 0 < LOW <= HIGH, e.g. 0.8,1.2.");
    }
}
