using System.Text.RegularExpressions;

namespace Graft.Weights.Keras;

/// <summary>Short Keras weight names ("kernel", "gamma", Keras 1's "W") from the names the files store.</summary>
internal static partial class KerasWeightNames
{
    /// <summary>
    /// The short name of a legacy-layout weight: the last path segment without the ":N" suffix TensorFlow adds
    /// ("conv1/kernel:0" → "kernel"). Keras 1 named variables "&lt;layer&gt;_&lt;name&gt;", and TensorFlow
    /// uniquified them with "_N" ("block1_conv1_W_1:0" → "W"); both are stripped only in that slash-less form.
    /// </summary>
    public static string ShortName(string layer, string weightName)
    {
        var name = TensorSuffix().Replace(weightName[(weightName.LastIndexOf('/') + 1)..], "");
        if (weightName.Contains('/') || !name.StartsWith(layer + "_", StringComparison.Ordinal) || name.Length == layer.Length + 1)
            return name;
        return UniquifyingSuffix().Replace(name[(layer.Length + 1)..], "");
    }

    /// <summary>
    /// Names for the numbered arrays ("0", "1", …) of a Keras 3 layer, known only from its class (Keras 3 names a
    /// layer's group after its class: "conv2d", "conv2d_1", …) and its array count; null when they cannot be known.
    /// The orders are those of the layers' build methods (trainable variables first, then the others).
    /// </summary>
    public static string[]? Keras3Names(string className, int count) =>
        Keras3Variables.TryGetValue(className, out var options) ? options.FirstOrDefault(o => o.Length == count) : null;

    /// <summary>The Keras class (snake case) behind a Keras 3 group name: "batch_normalization_3" → "batch_normalization".</summary>
    public static string Keras3ClassName(string groupName) => UniquifyingSuffix().Replace(groupName, "");

    /// <summary>The counter Keras 3 appended to the class name (0 for the first of its class).</summary>
    public static int Keras3Counter(string groupName) =>
        UniquifyingSuffix().Match(groupName) is { Success: true } m ? int.Parse(m.Value[1..]) : 0;

    static readonly string[][] KernelBias = [["kernel"], ["kernel", "bias"]];

    static readonly Dictionary<string, string[][]> Keras3Variables = new()
    {
        ["dense"] = KernelBias,
        ["conv1d"] = KernelBias,
        ["conv2d"] = KernelBias,
        ["conv3d"] = KernelBias,
        ["conv1d_transpose"] = KernelBias,
        ["conv2d_transpose"] = KernelBias,
        ["conv3d_transpose"] = KernelBias,
        ["depthwise_conv1d"] = [["depthwise_kernel"], ["depthwise_kernel", "bias"]],
        ["depthwise_conv2d"] = [["depthwise_kernel"], ["depthwise_kernel", "bias"]],
        ["separable_conv1d"] = [["depthwise_kernel", "pointwise_kernel"], ["depthwise_kernel", "pointwise_kernel", "bias"]],
        ["separable_conv2d"] = [["depthwise_kernel", "pointwise_kernel"], ["depthwise_kernel", "pointwise_kernel", "bias"]],
        // With center or scale off there are 2 or 3 arrays and which ones is ambiguous: those stay numbered.
        ["batch_normalization"] = [["gamma", "beta", "moving_mean", "moving_variance"]],
        ["embedding"] = [["embeddings"]],
        ["normalization"] = [["mean", "variance", "count"]],
        ["layer_normalization"] = [["gamma", "beta"]],
    };

    [GeneratedRegex(@":\d+$")]
    private static partial Regex TensorSuffix();

    [GeneratedRegex(@"_\d+$")]
    private static partial Regex UniquifyingSuffix();
}
