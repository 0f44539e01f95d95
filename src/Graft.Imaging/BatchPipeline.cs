using System.Threading.Channels;

namespace Graft.Imaging;

/// <summary>A batch of decoded images: CHW floats back to back, with the index of each in the source list.</summary>
public sealed record ImageBatch(float[] Pixels, int[] Indices, IReadOnlyList<ImageDecodeException> Failures)
{
    /// <summary>The number of decoded images.</summary>
    public int Count => Indices.Length;
}

/// <summary>
/// Live augmentation for one epoch: the draw for the image at position i of the epoch depends on (seed,
/// epoch, i) only. <see cref="FirstPosition"/> is the position of the list's first image (when resuming mid-epoch).
/// </summary>
public sealed record EpochAugmentation(Augmentation Augmentation, int Seed, int Epoch, int FirstPosition = 0);

/// <summary>
/// Decodes and resizes (and augments) images in parallel, a batch or two ahead of the consumer, so decoding overlaps
/// with the network's compute. Memory stays bounded: at most <c>prefetch</c> batches wait at any time.
/// Files that fail to decode are reported with the batch they would have been in.
/// </summary>
public static class BatchPipeline
{
    /// <param name="paths">The image files, in order.</param>
    /// <param name="spec">How each image is prepared.</param>
    /// <param name="batchSize">Images per batch (the last may be smaller).</param>
    /// <param name="prefetch">Batches decoded ahead of the consumer.</param>
    /// <param name="augment">The epoch's live augmentation, if any.</param>
    /// <param name="decoded">Keeps decoded images across calls (live training's epochs); it must share <paramref name="spec"/>.</param>
    /// <param name="cancel">Stops decoding.</param>
    public static async IAsyncEnumerable<ImageBatch> Batches(IReadOnlyList<string> paths, ImageSpec spec, int batchSize,
        int prefetch = 2, EpochAugmentation? augment = null, DecodedImageCache? decoded = null,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancel = default)
    {
        var channel = Channel.CreateBounded<ImageBatch>(new BoundedChannelOptions(prefetch) { SingleReader = true, SingleWriter = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var producer = Task.Run(async () =>
        {
            try
            {
                for (int start = 0; start < paths.Count; start += batchSize)
                    await channel.Writer.WriteAsync(Decode(paths, start, Math.Min(batchSize, paths.Count - start), spec, augment, decoded, stop.Token), stop.Token);
                channel.Writer.Complete();
            }
            catch (Exception e) { channel.Writer.Complete(e); }
        }, stop.Token);

        try
        {
            await foreach (var batch in channel.Reader.ReadAllAsync(cancel)) yield return batch;
            await producer;
        }
        finally { stop.Cancel(); } // a consumer that stops early (break, exception) must not leave the producer blocked on a full channel
    }

    static ImageBatch Decode(IReadOnlyList<string> paths, int start, int count, ImageSpec spec, EpochAugmentation? augment,
        DecodedImageCache? decoded, CancellationToken cancel)
    {
        // Images decode straight into one batch buffer: per-image arrays would be large-object-heap garbage.
        int imageSize = 3 * spec.Size * spec.Size;
        var pixels = new float[count * imageSize];
        var errors = new ImageDecodeException?[count];
        Parallel.For(0, count, new ParallelOptions { CancellationToken = cancel, MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            var slot = pixels.AsSpan(i * imageSize, imageSize);
            try
            {
                var rng = augment is null ? null : Augmentation.RandomFor(augment.Seed, augment.Epoch, augment.FirstPosition + start + i);
                if (decoded is not null) decoded.LoadInto(paths[start + i], slot, augment?.Augmentation, rng);
                else ImageLoader.LoadInto(paths[start + i], spec, slot, augment?.Augmentation, rng);
            }
            catch (ImageDecodeException e) { errors[i] = e; }
        });
        var ok = Enumerable.Range(0, count).Where(i => errors[i] is null).ToArray();
        if (ok.Length < count)
        {
            // Close the gaps the failures left, keeping order.
            for (int k = 0; k < ok.Length; k++) Array.Copy(pixels, ok[k] * imageSize, pixels, k * imageSize, imageSize);
            Array.Resize(ref pixels, ok.Length * imageSize);
        }
        return new ImageBatch(pixels, ok.Select(i => start + i).ToArray(), errors.OfType<ImageDecodeException>().ToList());
    }
}
