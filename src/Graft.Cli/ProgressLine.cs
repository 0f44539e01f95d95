using System.Diagnostics;
using Graft.Training;
using Graft.Heads;

namespace Graft.Cli;

/// <summary>
/// Progress on stderr: on a terminal one line redrawn in place (done/total, images/s, ETA); when
/// redirected (CI logs) a line at most every few seconds. Epochs always get a line of their own.
/// </summary>
public sealed class ProgressLine : IProgress<ImageProgress>, IProgress<EpochProgress>, IProgress<Weights.AssetDownloadProgress>
{
    readonly bool _interactive = !Console.IsErrorRedirected;
    readonly Stopwatch _sinceLast = Stopwatch.StartNew();
    readonly object _lock = new();

    public Callbacks Callbacks => new(this, this, Log);

    public void Report(ImageProgress p)
    {
        lock (_lock)
        {
            bool finished = p.Done >= p.Total;
            if (!_interactive && !finished && _sinceLast.Elapsed.TotalSeconds < 5) return;
            if (p.Total == 0) return;
            double eta = p.ImagesPerSecond > 0 ? (p.Total - p.Done) / p.ImagesPerSecond : 0;
            string text = $"{p.Phase}: {p.Done}/{p.Total} images ({100.0 * p.Done / p.Total:0}%), {p.ImagesPerSecond:0.0} images/s, ETA {Eta(eta)}";
            Write(text, finished);
            _sinceLast.Restart();
        }
    }

    public void Report(EpochProgress p)
    {
        var r = p.Record;
        var val = r.ValLoss is null ? "" : $", val_loss {r.ValLoss:0.0000}, val_accuracy {r.ValAccuracy:0.0000}";
        double eta = r.Seconds * (p.Epochs - p.Epoch);
        lock (_lock)
            Write($"epoch {p.Epoch}/{p.Epochs}: loss {r.Loss:0.0000}, accuracy {r.Accuracy:0.0000}{val} " +
                  $"({r.Seconds:0.00}s, {p.SamplesPerSecond:0} samples/s, ETA {Eta(eta)} at most)", final: true);
    }

    /// <summary>A weight file or data set being downloaded: MB done of the total.</summary>
    public void Report(Weights.AssetDownloadProgress p)
    {
        lock (_lock)
        {
            bool finished = p.BytesReceived == p.TotalBytes;
            if (!_interactive && !finished && _sinceLast.Elapsed.TotalSeconds < 5) return;
            Write($"downloading {p.Asset.FileName}: {p.BytesReceived / 1e6:0.0}" + (p.TotalBytes is { } total ? $" of {total / 1e6:0.0} MB" : " MB"), finished);
            _sinceLast.Restart();
        }
    }

    public void Log(string message)
    {
        lock (_lock) Write(message, final: true);
    }

    void Write(string text, bool final)
    {
        if (_interactive)
        {
            Console.Error.Write("\r\u001b[2K" + text);
            if (final) Console.Error.WriteLine();
        }
        else
        {
            Console.Error.WriteLine(text);
        }
    }

    static string Eta(double seconds) =>
        seconds < 60 ? $"{seconds:0}s" : TimeSpan.FromSeconds(seconds).ToString(seconds < 3600 ? @"m\:ss" : @"h\:mm\:ss");
}
