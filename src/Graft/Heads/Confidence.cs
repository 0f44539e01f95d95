using static TorchSharp.torch;

namespace Graft.Heads;

/// <summary>
/// Temperature scaling (Guo et al., "On calibration of modern neural networks", 2017): the logits are divided by one
/// number before the softmax (or the sigmoid), fitted on the validation images so that a confidence of 0.9 is right
/// nine times in ten. It changes no prediction, only how sure each one says it is.
/// </summary>
/// <param name="Temperature">Above 1 softens overconfident probabilities, below 1 sharpens underconfident ones.</param>
/// <param name="Images">The validation images it was fitted on.</param>
/// <param name="EceBefore">Their expected calibration error before scaling.</param>
/// <param name="Ece">Their expected calibration error after scaling.</param>
public sealed record TemperatureScaling(double Temperature, int Images, double EceBefore, double Ece)
{
    /// <summary>Logits divided by the temperature of <paramref name="scaling"/> (the logits themselves when there is none).</summary>
    public static Tensor Apply(Tensor logits, TemperatureScaling? scaling) =>
        scaling is { Temperature: var t } && t != 1 ? logits.div(t) : logits.alias();
}
