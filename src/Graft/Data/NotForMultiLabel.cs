namespace Graft.Data;

/// <summary>The one refusal of what does not handle multi-label data yet (rather than numbers that would mislead).</summary>
internal static class NotForMultiLabel
{
    public static GraftException Error(string what) =>
        new($"{what} is not available for multi-label data yet.",
            "Use it on single-label data (one class per image); training, evaluation and prediction take multi-label data.");

    /// <summary>Refuses <paramref name="what"/> when the dataset is multi-label.</summary>
    public static void Check(ImageDataset dataset, string what)
    {
        if (dataset.MultiLabel) throw Error(what);
    }

    /// <summary>Refuses <paramref name="what"/> when the model is multi-label (its head has one sigmoid output per class).</summary>
    public static void Check(bool multiLabelModel, string what)
    {
        if (multiLabelModel) throw Error(what);
    }
}
