using Graft.Heads;
using Graft.Imaging;
using static TorchSharp.torch;

namespace Graft.Training;

/// <summary>
/// A training batch as the network takes it, and how its loss is taken: plain, or mixed with a shuffled copy of itself
/// (MixUp blends whole inputs, CutMix pastes a box) with the two targets weighted by the share each input has.
/// </summary>
internal sealed class MixedBatch(Tensor inputs, Tensor labels, Tensor? partners = null, double share = 1)
{
    /// <summary>What goes through the network.</summary>
    public Tensor Inputs { get; } = inputs;

    /// <summary>The loss of the rows [start, start + count) of the batch.</summary>
    public Tensor Loss(Tensor logits, long start, long count, Tensor? classWeights, double labelSmoothing)
    {
        var own = Objective.Loss(logits, labels.narrow(0, start, count), classWeights, labelSmoothing);
        if (partners is null) return own;
        var other = Objective.Loss(logits, partners.narrow(0, start, count), classWeights, labelSmoothing);
        return own * share + other * (1 - share);
    }
}

/// <summary>
/// MixUp (Zhang et al.) and CutMix (Yun et al.) as timm applies them: per batch a share λ ~ Beta(a, a) and a shuffled
/// partner for each sample; with both on, each batch takes one of the two at even odds. The draws are a function of
/// (seed, epoch, batch), so a resumed run mixes as an uninterrupted one. Inputs that are not images (cached features)
/// can only be blended.
/// </summary>
internal static class BatchMixing
{
    public static MixedBatch Mix(Tensor inputs, Tensor labels, FitOptions options, int epoch, int batch)
    {
        if (options.MixUp <= 0 && options.CutMix <= 0 || inputs.shape[0] < 2) return new MixedBatch(inputs, labels);
        var random = Augmentation.RandomFor(options.Seed, epoch, -2 - batch);
        bool cut = options.CutMix > 0 && inputs.dim() == 4 && (options.MixUp <= 0 || random.NextDouble() < 0.5);
        double share = Beta(random, cut ? options.CutMix : options.MixUp);
        var order = Enumerable.Range(0, (int)inputs.shape[0]).ToArray();
        random.Shuffle(order);
        using var index = tensor(order.Select(i => (long)i).ToArray(), device: inputs.device);
        var partnerInputs = inputs.index_select(0, index);
        var partners = labels.index_select(0, index);
        if (!cut) return new MixedBatch(inputs * share + partnerInputs * (1 - share), labels, partners, share);

        long height = inputs.shape[2], width = inputs.shape[3];
        double side = Math.Sqrt(1 - share);
        long boxH = (long)(height * side), boxW = (long)(width * side);
        long cy = random.NextInt64(height), cx = random.NextInt64(width);
        long y0 = Math.Clamp(cy - boxH / 2, 0, height), y1 = Math.Clamp(cy + boxH / 2, 0, height);
        long x0 = Math.Clamp(cx - boxW / 2, 0, width), x1 = Math.Clamp(cx + boxW / 2, 0, width);
        var pasted = inputs.clone();
        if (y1 > y0 && x1 > x0)
            pasted[.., .., TensorIndex.Slice(y0, y1), TensorIndex.Slice(x0, x1)] = partnerInputs[.., .., TensorIndex.Slice(y0, y1), TensorIndex.Slice(x0, x1)];
        double area = (double)(y1 - y0) * (x1 - x0) / (height * width);
        return new MixedBatch(pasted, labels, partners, 1 - area);
    }

    /// <summary>A draw from Beta(a, a): X / (X + Y) with X, Y ~ Gamma(a, 1).</summary>
    static double Beta(Random random, double a)
    {
        double x = Gamma(random, a), y = Gamma(random, a);
        return x + y == 0 ? 0.5 : x / (x + y);
    }

    /// <summary>Marsaglia and Tsang's Gamma(a, 1) sampler (for a &lt; 1, boosted by U^(1/a)).</summary>
    static double Gamma(Random random, double a)
    {
        if (a < 1) return Gamma(random, a + 1) * Math.Pow(random.NextDouble(), 1 / a);
        double d = a - 1.0 / 3, c = 1 / Math.Sqrt(9 * d);
        while (true)
        {
            double x, v;
            do
            {
                x = Normal(random);
                v = 1 + c * x;
            } while (v <= 0);
            v = v * v * v;
            double u = random.NextDouble();
            if (u < 1 - 0.0331 * x * x * x * x || Math.Log(u) < 0.5 * x * x + d * (1 - v + Math.Log(v))) return d * v;
        }
    }

    static double Normal(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
