using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Graft.Serve;

/// <summary>
/// The server's counters, written in Prometheus's text format (names prefixed <c>graft_</c>). Written here rather
/// than with a metrics package: a dozen lines of format, no process-wide registry (two servers in one process keep
/// their own counts), and nothing more for the package's users to depend on.
/// </summary>
sealed class ServeMetrics
{
    /// <summary>A cumulative histogram: counts per upper bound, sum and count, as Prometheus reads them.</summary>
    sealed class Histogram(params double[] bounds)
    {
        readonly long[] _counts = new long[bounds.Length + 1];
        double _sum;

        public void Observe(double value)
        {
            lock (_counts)
            {
                int i = Array.FindIndex(bounds, b => value <= b);
                _counts[i < 0 ? bounds.Length : i]++;
                _sum += value;
            }
        }

        public void Write(StringBuilder text, string name)
        {
            lock (_counts)
            {
                long cumulative = 0;
                for (int i = 0; i <= bounds.Length; i++)
                {
                    cumulative += _counts[i];
                    text.Append(name).Append("_bucket{le=\"").Append(i < bounds.Length ? Number(bounds[i]) : "+Inf").Append("\"} ").Append(cumulative).Append('\n');
                }
                text.Append(name).Append("_sum ").Append(Number(_sum)).Append('\n');
                text.Append(name).Append("_count ").Append(cumulative).Append('\n');
            }
        }
    }

    /// <summary>The seconds over which <c>graft_images_per_second</c> is averaged.</summary>
    const int RateWindow = 10;

    readonly ConcurrentDictionary<(string Endpoint, int Code), long> _requests = new();
    readonly ConcurrentDictionary<string, long> _reloads = new();
    readonly Histogram _latency = new(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10);
    readonly Histogram _batchSize = new(1, 2, 4, 8, 16, 32, 64, 128);
    readonly long[] _imagesPerSecond = new long[RateWindow], _second = new long[RateWindow];
    readonly Stopwatch _clock = Stopwatch.StartNew();
    long _images, _inFlight;

    public void Request(string endpoint, int code) => _requests.AddOrUpdate((endpoint, code), 1, (_, n) => n + 1);

    public void Predicted(TimeSpan latency) => _latency.Observe(latency.TotalSeconds);

    public void Reloaded(string model) => _reloads.AddOrUpdate(model, 1, (_, n) => n + 1);

    /// <summary>Admits one more prediction request unless <paramref name="limit"/> are in progress; <see cref="Exit"/> ends it.</summary>
    public bool TryEnter(int limit)
    {
        if (Interlocked.Increment(ref _inFlight) <= limit) return true;
        Interlocked.Decrement(ref _inFlight);
        return false;
    }

    public void Exit() => Interlocked.Decrement(ref _inFlight);

    public void Batch(int images)
    {
        _batchSize.Observe(images);
        Interlocked.Add(ref _images, images);
        long now = (long)_clock.Elapsed.TotalSeconds;
        lock (_second)
        {
            int slot = (int)(now % RateWindow);
            if (_second[slot] != now) (_second[slot], _imagesPerSecond[slot]) = (now, 0);
            _imagesPerSecond[slot] += images;
        }
    }

    double ImagesPerSecond()
    {
        long now = (long)_clock.Elapsed.TotalSeconds, sum = 0;
        lock (_second)
            for (int i = 0; i < RateWindow; i++)
                if (now - _second[i] < RateWindow) sum += _imagesPerSecond[i];
        return sum / (double)RateWindow;
    }

    /// <summary>The metrics in Prometheus's text exposition format (version 0.0.4).</summary>
    public string Text(IEnumerable<ModelSlot> models)
    {
        var text = new StringBuilder();
        Header(text, "graft_requests_total", "counter", "Requests answered, by endpoint and HTTP status code.");
        foreach (var ((endpoint, code), n) in _requests.OrderBy(r => r.Key))
            text.Append($"graft_requests_total{{endpoint=\"{endpoint}\",code=\"{code}\"}} {n}\n");
        Header(text, "graft_request_errors_total", "counter", "Requests answered with an error (HTTP status 400 or more), by endpoint and status code.");
        foreach (var ((endpoint, code), n) in _requests.Where(r => r.Key.Code >= 400).OrderBy(r => r.Key))
            text.Append($"graft_request_errors_total{{endpoint=\"{endpoint}\",code=\"{code}\"}} {n}\n");
        Header(text, "graft_request_duration_seconds", "histogram", "Time from a prediction request's arrival to its answer.");
        _latency.Write(text, "graft_request_duration_seconds");
        Header(text, "graft_batch_size", "histogram", "Images per run of the network.");
        _batchSize.Write(text, "graft_batch_size");
        Header(text, "graft_images_total", "counter", "Images predicted.");
        text.Append($"graft_images_total {Interlocked.Read(ref _images)}\n");
        Header(text, "graft_images_per_second", "gauge", $"Images predicted per second, averaged over the last {RateWindow} seconds.");
        text.Append($"graft_images_per_second {Number(ImagesPerSecond())}\n");
        Header(text, "graft_requests_in_flight", "gauge", "Prediction requests in progress.");
        text.Append($"graft_requests_in_flight {Interlocked.Read(ref _inFlight)}\n");
        Header(text, "graft_model_reloads_total", "counter", "Times a model was reloaded because its file changed.");
        foreach (var slot in models) text.Append($"graft_model_reloads_total{{model=\"{Label(slot.Name)}\"}} {_reloads.GetValueOrDefault(slot.Name)}\n");
        return text.ToString();
    }

    static void Header(StringBuilder text, string name, string type, string help) =>
        text.Append($"# HELP {name} {help}\n# TYPE {name} {type}\n");

    static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>A label value as the format requires: backslash, double quote and newline escaped.</summary>
    static string Label(string value) => value.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");
}
