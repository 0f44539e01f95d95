using static TorchSharp.torch;

namespace Graft.Audit;

/// <summary>Every image's nearest neighbours in feature space, most similar first (itself excluded).</summary>
internal sealed record Neighbours(int[][] Index, float[][] Similarity);

/// <summary>Cosine geometry of cached features: what duplicates and outliers are measured in.</summary>
internal static class FeatureSpace
{
    /// <summary>
    /// Rows scaled to unit length, so a dot product is a cosine similarity. Not centred: an image unlike any photo
    /// (a placeholder graphic) activates other channels than photos do, which centring on the photos would blur.
    /// </summary>
    public static float[][] Normalized(float[][] rows) => rows.Select(r =>
    {
        float norm = MathF.Sqrt(r.Sum(a => a * a));
        return norm > 0 ? r.Select(a => a / norm).ToArray() : r.ToArray();
    }).ToArray();

    /// <summary>The <paramref name="k"/> most similar other rows of each unit row, by blocks of rows (memory stays blocks x n), on <paramref name="device"/>.</summary>
    public static Neighbours Nearest(float[][] unit, int k, Device device, int block = 512)
    {
        Engine.TorchRuntime.EnsureInitialized();
        int n = unit.Length, c = unit[0].Length;
        k = Math.Min(k, n - 1);
        var index = new int[n][];
        var similarity = new float[n][];
        if (k <= 0) return new Neighbours(Enumerable.Repeat(Array.Empty<int>(), n).ToArray(), Enumerable.Repeat(Array.Empty<float>(), n).ToArray());
        using var scope = NewDisposeScope();
        var all = tensor(unit.SelectMany(r => r).ToArray(), [n, c], device: device);
        for (int start = 0; start < n; start += block)
        {
            using var inner = NewDisposeScope();
            int count = Math.Min(block, n - start);
            var s = all.narrow(0, start, count).matmul(all.t());
            s.narrow(1, start, count).sub_(eye(count, device: device).mul(3)); // its own similarity (1) drops below any other's (-1 at least): not its own neighbour
            var (values, indices) = s.topk(k, dim: 1);
            var v = values.cpu().data<float>().ToArray();
            var ix = indices.cpu().data<long>().ToArray();
            for (int i = 0; i < count; i++)
            {
                similarity[start + i] = v.AsSpan(i * k, k).ToArray();
                index[start + i] = ix.AsSpan(i * k, k).ToArray().Select(x => (int)x).ToArray();
            }
        }
        return new Neighbours(index, similarity);
    }
}
