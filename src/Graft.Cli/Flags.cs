using System.CommandLine;
using System.CommandLine.Parsing;
using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Linq.Expressions;
using System.Reflection;

namespace Graft.Cli;

/// <summary>
/// Command-line options made from the properties of a library option type: the help is the property's
/// <see cref="DescriptionAttribute"/>, the default its value on a default instance, the allowed values an enum's names in
/// kebab-case (<see cref="Names"/>), the accepted range its <see cref="RangeAttribute"/> (else its type's). The command
/// names the flag and maps the value; what an option means and its default are said once, in the library.
/// </summary>
public sealed class Flags<TOptions>(TOptions defaults)
{
    /// <summary>
    /// An option for <paramref name="property"/> (a property, or a property of a property, of <typeparamref name="TOptions"/>),
    /// of the property's type; its default is the property's value on the default instance (none where that is null).
    /// </summary>
    public Option<T> Option<T>(string name, Expression<Func<TOptions, T>> property)
    {
        var option = Make<T>(name, Member(property), Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T));
        var value = property.Compile()(defaults);
        if (value is not null) option.DefaultValueFactory = _ => value;
        return option;
    }

    /// <summary>
    /// An option that overrides <paramref name="property"/> only when given: no default of its own, since the value falls
    /// back to something else (a preset, the strategy's choice).
    /// </summary>
    public Option<T?> Override<T>(string name, Expression<Func<TOptions, T>> property) where T : struct =>
        Make<T?>(name, Member(property), typeof(T));

    /// <summary>A flag that turns off <paramref name="property"/>, which is on by default.</summary>
    public Option<bool> Off(string name, Expression<Func<TOptions, bool>> property) =>
        new(name) { Description = "Turn off " + HelpPage.LowerFirst(Describe(Member(property))) };

    /// <summary>The help text of <paramref name="property"/>, for an option the command composes itself.</summary>
    public string Help<T>(Expression<Func<TOptions, T>> property) => Describe(Member(property));

    /// <summary>The default instance's value of <paramref name="property"/>.</summary>
    public T Default<T>(Func<TOptions, T> property) => property(defaults);

    static Option<T> Make<T>(string name, MemberInfo member, Type type)
    {
        var option = new Option<T>(name) { Description = Describe(member) };
        if (type.IsEnum)
        {
            var names = Names.Of(type);
            option.HelpName = string.Join('|', names);
            option.CustomParser = result => Names.TryParse(type, Token(result), out var value) ? (T)value
                : Error<T>(result, $"{name} {Token(result)} is not one of {string.Join(", ", names)}.");
            option.CompletionSources.Add([.. names]);
        }
        else if (type == typeof(IReadOnlyList<string>))
        {
            // A comma-separated list; '' (or the flag alone) is the empty list.
            option.Arity = ArgumentArity.ZeroOrOne;
            option.HelpName = "A,B,...";
            option.CustomParser = result => (T)List(Token(result));
        }
        else if (type == typeof(IReadOnlyList<float>))
        {
            // Three numbers, one per RGB channel: R,G,B.
            option.HelpName = "R,G,B";
            option.CustomParser = result => List(Token(result)) is { Count: 3 } items
                && items.All(i => float.TryParse(i, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) && float.IsFinite(x))
                    ? (T)(object)items.Select(i => float.Parse(i, NumberStyles.Float, CultureInfo.InvariantCulture)).ToArray()
                    : Error<T>(result, $"{name} {Token(result)} is not three numbers R,G,B.");
        }
        else if (type == typeof(ComputeDevice))
        {
            option.CustomParser = result => (T)(object)ParseDevice(name, result)!;
            option.HelpName = "cpu|cuda[:N]";
        }
        else if (type.IsPrimitive && type != typeof(bool) && type != typeof(char))
        {
            bool integral = type != typeof(double) && type != typeof(float);
            option.HelpName = integral ? "N" : "X";
            var range = member.GetCustomAttribute<RangeAttribute>();
            option.CustomParser = result => ParseNumber<T>(name, type, integral, range, result);
        }
        return option;
    }

    static string Describe(MemberInfo member) => member.GetCustomAttribute<DescriptionAttribute>()?.Description
        ?? throw new InvalidOperationException($"{member.DeclaringType!.Name}.{member.Name} has no [Description]: an option's help lives on its property.");

    static MemberInfo Member(LambdaExpression property) =>
        property.Body is MemberExpression { Member: PropertyInfo or FieldInfo } m ? m.Member
            : throw new ArgumentException($"{property} does not name a property.", nameof(property));

    static string Token(ArgumentResult result) => result.Tokens.Count > 0 ? result.Tokens[0].Value : "";

    static T Error<T>(ArgumentResult result, string message)
    {
        result.AddError(message);
        return default!;
    }

    /// <summary>A device as <see cref="ComputeDevice.Parse"/> reads it: anything else is one error naming the flag.</summary>
    static ComputeDevice? ParseDevice(string name, ArgumentResult result)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
        try { return ComputeDevice.Parse(text); }
        catch (GraftException e)
        {
            result.AddError($"{name} {e.Problem} {e.Fix}");
            return null;
        }
    }

    /// <summary>A number in the invariant culture, within the property's range: anything else is one error naming the flag.</summary>
    static T ParseNumber<T>(string name, Type type, bool integral, RangeAttribute? range, ArgumentResult result)
    {
        var text = Token(result);
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) || !double.IsFinite(number)
            || (integral && number != Math.Floor(number)))
            return Error<T>(result, $"{name} {text} is not {(integral ? "a whole number" : "a number")}.");
        var (low, high) = range is null ? Limits(type)
            : (Convert.ToDouble(range.Minimum, CultureInfo.InvariantCulture), Convert.ToDouble(range.Maximum, CultureInfo.InvariantCulture));
        bool lowOpen = range?.MinimumIsExclusive == true, highOpen = range?.MaximumIsExclusive == true;
        if (lowOpen ? number <= low : number < low) return Error<T>(result, $"{name} {text} is out of range: pass {Interval(low, high, lowOpen, highOpen)}.");
        if (highOpen ? number >= high : number > high) return Error<T>(result, $"{name} {text} is out of range: pass {Interval(low, high, lowOpen, highOpen)}.");
        return (T)Convert.ChangeType(number, type, CultureInfo.InvariantCulture);
    }

    static (double Low, double High) Limits(Type type) => Type.GetTypeCode(type) switch
    {
        TypeCode.Byte => (byte.MinValue, byte.MaxValue),
        TypeCode.Int32 => (int.MinValue, int.MaxValue),
        TypeCode.Int64 => (long.MinValue, long.MaxValue),
        _ => (double.MinValue, double.MaxValue),
    };

    static string Interval(double low, double high, bool lowOpen, bool highOpen)
    {
        static string N(double x) => x.ToString(CultureInfo.InvariantCulture);
        if (high >= int.MaxValue) return lowOpen ? $"a value above {N(low)}" : $"{N(low)} or more";
        return $"a value {(lowOpen ? "above" : "from")} {N(low)} {(highOpen ? "below" : "to")} {N(high)}";
    }

    /// <summary>The items of a comma-separated list, trimmed, without empty ones.</summary>
    static IReadOnlyList<string> List(string text) => text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}

/// <summary>
/// An enum's values on the command line: their names in kebab-case (<c>OneCycle</c> → <c>one-cycle</c>), except where the
/// command line spoke another word before the enum existed (kept: scripts use them).
/// </summary>
public static class Names
{
    static readonly Dictionary<Enum, string> Kept = new()
    {
        [Training.OptimizerKind.RmsProp] = "rmsprop",
        [Training.OptimizerKind.AdamW] = "adamw",
        [Imaging.ResizeMode.CenterCrop] = "crop",
    };

    public static string Of(Enum value) => Kept.GetValueOrDefault(value) ?? Kebab(value.ToString());

    public static IReadOnlyList<string> Of(Type enumType) => Enum.GetValues(enumType).Cast<Enum>().Select(Of).ToList();

    public static bool TryParse(Type enumType, string text, out object value)
    {
        value = Enum.GetValues(enumType).Cast<Enum>().FirstOrDefault(v => Of(v) == text.ToLowerInvariant())!;
        return value is not null;
    }

    /// <summary>A name in kebab-case: <c>FeatureExtraction</c> → <c>feature-extraction</c>, <c>KerasBlog</c> → <c>keras-blog</c>.</summary>
    public static string Kebab(string name) => System.Text.Json.JsonNamingPolicy.KebabCaseLower.ConvertName(name);
}
