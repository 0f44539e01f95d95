using System.Collections.Concurrent;
using System.Diagnostics;

namespace Graft.Serve;

/// <summary>
/// Dynamic batching for one loaded model: requests prepare their images on their own threads and queue them; one
/// thread runs the network on whatever is queued, up to <see cref="ServeOptions.MaxBatch"/> images. It waits for more
/// (at most <see cref="ServeOptions.MaxWait"/>) only while other requests are still being read or decoded, so under
/// load batches fill up and a lone request is not delayed.
/// </summary>
sealed class Batcher : IDisposable
{
    sealed record Job(PreparedImage Image, TaskCompletionSource<Prediction> Done);

    readonly ImageClassifier _model;
    readonly ServeOptions _options;
    readonly ServeMetrics _metrics;
    readonly BlockingCollection<Job> _queue = new();
    readonly Thread _thread;
    int _preparing;

    public Batcher(ImageClassifier model, ServeOptions options, ServeMetrics metrics)
    {
        (_model, _options, _metrics) = (model, options, metrics);
        _thread = new Thread(Loop) { IsBackground = true, Name = "graft batcher" };
        _thread.Start();
    }

    /// <summary>Announces images on their way (a request reading or decoding them): the batch being gathered may wait for them.</summary>
    public Expected Expect()
    {
        Interlocked.Increment(ref _preparing);
        return new Expected(this);
    }

    /// <summary>A request's promise of images; <see cref="Submit"/> keeps it, disposing withdraws it.</summary>
    public sealed class Expected(Batcher owner) : IDisposable
    {
        int _open = 1;

        /// <summary>Queues the request's images; each prediction lists all classes (the request trims them).</summary>
        public Task<Prediction[]> Submit(IReadOnlyList<PreparedImage> images, CancellationToken cancel)
        {
            var jobs = images.Select(i => new Job(i, new TaskCompletionSource<Prediction>(TaskCreationOptions.RunContinuationsAsynchronously))).ToList();
            foreach (var job in jobs)
            {
                cancel.Register(() => job.Done.TrySetCanceled(cancel));
                owner._queue.Add(job, CancellationToken.None);
            }
            Dispose();
            return Task.WhenAll(jobs.Select(j => j.Done.Task));
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _open, 0) == 1) Interlocked.Decrement(ref owner._preparing);
        }
    }

    void Loop()
    {
        var batch = new List<Job>(_options.MaxBatch);
        while (_queue.TryTake(out var first, Timeout.Infinite))
        {
            batch.Clear();
            Add(batch, first);
            var clock = Stopwatch.StartNew();
            while (batch.Count < _options.MaxBatch)
            {
                var left = _options.MaxWait - clock.Elapsed;
                int wait = Volatile.Read(ref _preparing) > 0 && left > TimeSpan.Zero ? (int)Math.Ceiling(left.TotalMilliseconds) : 0;
                if (!_queue.TryTake(out var next, wait)) break;
                Add(batch, next);
            }
            if (batch.Count > 0) Run(batch);
        }
    }

    /// <summary>A job whose request already gave up (timed out, disconnected) is dropped, not run.</summary>
    static void Add(List<Job> batch, Job job)
    {
        if (!job.Done.Task.IsCompleted) batch.Add(job);
    }

    void Run(List<Job> batch)
    {
        try
        {
            var predictions = _model.Predict(batch.Select(j => j.Image).ToList(), _model.Classes.Count);
            for (int i = 0; i < batch.Count; i++) batch[i].Done.TrySetResult(predictions[i]);
            _metrics.Batch(batch.Count);
        }
        catch (Exception e)
        {
            foreach (var job in batch) job.Done.TrySetException(e);
        }
    }

    /// <summary>Runs what is queued, then stops the thread (the model is disposed by its owner afterwards).</summary>
    public void Dispose()
    {
        _queue.CompleteAdding();
        _thread.Join();
        _queue.Dispose();
    }
}
