namespace Graft.Evaluation;

/// <summary>One class of a grown model, measured on the same images before and after growing.</summary>
/// <param name="Class">The class.</param>
/// <param name="Images">Its images measured (readable test images, or validation images when the run had no test images).</param>
/// <param name="Before">The earlier model's accuracy on them (the share it classified right); null for a class it did not know, or without images.</param>
/// <param name="After">The grown model's accuracy on them; null without images.</param>
/// <param name="Added">Whether the class is new (the earlier model did not know it).</param>
public sealed record ClassGrowth(string Class, int Images, double? Before, double? After, bool Added)
{
    /// <summary>After minus before; null where either is missing.</summary>
    public double? Change => Before is { } b && After is { } a ? a - b : null;
}

/// <summary>
/// What growing a model bought: the earlier model and the grown one measured on the same images (the grown run's test
/// images, which include the earlier model's; its validation images when it has none), per class.
/// </summary>
/// <param name="From">The model file it grew from.</param>
/// <param name="ClassesAdded">Classes the data added, in the order the grown head has them (after the earlier ones).</param>
/// <param name="ClassesWithoutImages">Earlier classes the data has no image of: kept in the head, not measured.</param>
/// <param name="MeasuredOn">"test" or "validation": which images both models were measured on.</param>
/// <param name="PerClass">Every class of the grown model, the earlier ones first.</param>
public sealed record GrowthResult(string From, IReadOnlyList<string> ClassesAdded, IReadOnlyList<string> ClassesWithoutImages, string MeasuredOn,
    IReadOnlyList<ClassGrowth> PerClass)
{
    /// <summary>The earlier model's accuracy on the earlier classes' images; null without any.</summary>
    public double? Before { get; init; }
    /// <summary>The grown model's accuracy on the same images as <see cref="Before"/> (the earlier classes'); null without any.</summary>
    public double? AfterOnEarlierClasses { get; init; }
    /// <summary>The grown model's accuracy on all the images measured, new classes included; null without any.</summary>
    public double? After { get; init; }
    /// <summary>What growing did to the earlier classes: <see cref="AfterOnEarlierClasses"/> minus <see cref="Before"/>; null where either is missing.</summary>
    public double? Change => Before is { } b && AfterOnEarlierClasses is { } a ? a - b : null;
    /// <summary>The earlier classes' images measured.</summary>
    public int EarlierImages => PerClass.Where(c => !c.Added).Sum(c => c.Images);
}
