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
    /// An option for <paramref name="property"/> (a property, or a property of a property, of <typeparamref name="TOptions"/>).
    /// Its value is the property's own type; an option whose property is null by default has no default.
    /// </summary>
    public Option<T> Option<T>(string name, Expression<Func<TOptions, T>> property)
    {
        var member = Member(property);
        var option = new Option<T>(name) { Description = member.GetCustomAttribute<DescriptionAttribute>()?.Description };
        var value = property.Compile()(defaults);
        if (value is not null) option.DefaultValueFactory = _ => value;
        var type = Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T);
        if (type.IsEnum)
        {
            var names = Names.Of(type);
            option.CustomParser = result => (T)Names.Parse(type, result.Tokens[0].Value);
            option.AcceptOnlyFromAmong([.. names]);
            option.HelpName = string.Join('|', names);
        }
        else if (typeof(T) == typeof(IReadOnlyList<string>))
        {
            // A comma-separated list; '' (or the flag alone) is the empty list.
            option.Arity = ArgumentArity.ZeroOrOne;
            option.CustomParser = result => (T)(object)(result.Tokens.Count == 0 ? [] : List(result.Tokens[0].Value));
            option.HelpName = "a,b,...";
        }
        else if (type == typeof(ComputeDevice))
        {
            option.CustomParser = result => (T)(object)ParseDevice(name, result)!;
            option.HelpName = "cpu|cuda[:N]";
        }
        else if (IsNumber(type))
        {
            var range = member.GetCustomAttribute<RangeAttribute>();
            option.CustomParser = result => ParseNumber<T>(name, type, range, result);
        }
        return option;
    }

    /// <summary>The items of a comma-separated list, trimmed, without empty ones.</summary>
    public static IReadOnlyList<string> List(string text) => text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    static MemberInfo Member(LambdaExpression property) =>
        property.Body is MemberExpression { Member: PropertyInfo or FieldInfo } m ? m.Member
            : throw new ArgumentException($"{property} does not name a property.", nameof(property));

    static bool IsNumber(Type type) => type.IsPrimitive && type != typeof(bool) && type != typeof(char);

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
    static T ParseNumber<T>(string name, Type type, RangeAttribute? range, ArgumentResult result)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
        bool integral = type != typeof(double) && type != typeof(float);
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) || double.IsNaN(number)
            || (integral && number != Math.Floor(number)))
        {
            result.AddError($"{name} {text} is not {(integral ? "a whole number" : "a number")}.");
            return default!;
        }
        var (low, high) = range is null ? Limits(type) : (Convert.ToDouble(range.Minimum, CultureInfo.InvariantCulture), Convert.ToDouble(range.Maximum, CultureInfo.InvariantCulture));
        bool above = range?.MinimumIsExclusive == true ? number > low : number >= low;
        bool below = range?.MaximumIsExclusive == true ? number < high : number <= high;
        if (!above || !below)
        {
            result.AddError($"{name} {text} is out of range: pass {Interval(low, high, range)}.");
            return default!;
        }
        return (T)Convert.ChangeType(number, type, CultureInfo.InvariantCulture);
    }

    static (double Low, double High) Limits(Type type) => Type.GetTypeCode(type) switch
    {
        TypeCode.Byte => (byte.MinValue, byte.MaxValue),
        TypeCode.Int32 => (int.MinValue, int.MaxValue),
        TypeCode.Int64 => (long.MinValue, long.MaxValue),
        _ => (double.MinValue, double.MaxValue),
    };

    static string Interval(double low, double high, RangeAttribute? range)
    {
        string Number(double x) => x.ToString(CultureInfo.InvariantCulture);
        string from = range?.MinimumIsExclusive == true ? $"above {Number(low)}" : $"from {Number(low)}";
        if (high >= int.MaxValue) return range?.MinimumIsExclusive == true ? $"a value {from}" : $"{Number(low)} or more";
        string to = range?.MaximumIsExclusive == true ? $"below {Number(high)}" : $"to {Number(high)}";
        return $"a value {from} {to}";
    }
}

/// <summary>
/// An enum's values on the command line: their names in kebab-case (<c>OneCycle</c> → <c>one-cycle</c>), except where the
/// command line spoke another word before the enum existed (kept, since scripts use them).
/// </summary>
public static class Names
{
    static readonly Dictionary<Enum, string> Kept = new()
    {
        [Training.OptimizerKind.RmsProp] = "rmsprop",
        [Imaging.ResizeMode.CenterCrop] = "crop",
    };

    public static string Of(Enum value) => Kept.GetValueOrDefault(value) ?? Kebab(value.ToString());

    public static IReadOnlyList<string> Of(Type enumType) => Enum.GetValues(enumType).Cast<Enum>().Select(Of).ToList();

    public static object Parse(Type enumType, string text) =>
        Enum.GetValues(enumType).Cast<Enum>().FirstOrDefault(v => Of(v) == text.ToLowerInvariant())
        ?? throw new ArgumentException($"{text} is not one of {string.Join(", ", Of(enumType))}.");

    static string Kebab(string name) => System.Text.Json.JsonNamingPolicy.KebabCaseLower.ConvertName(name);
}
