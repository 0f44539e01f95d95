using Graft.Inference;
using System.Diagnostics;
using Graft.Training;
using Graft.Heads;

namespace Graft.Cli;

/// <summary>
/// Progress on stderr. On a terminal: one line redrawn in place (done/total, images/s, ETA; the epoch and its metrics),
/// and one summary line when a training phase ends. With <c>--verbose</c>, or when stderr is redirected (CI logs, scripts):
/// a line per epoch, and image progress at most every few seconds. The library's details (how weights were matched)
/// show only with <c>--verbose</c>. Dispose ends the live line, before the command writes its results.
/// </summary>
public sealed class ProgressLine(bool verbose = false) : IProgress<ImageProgress>, IProgress<EpochProgress>, IProgress<Weights.AssetDownloadProgress>, IDisposable
{
    readonly bool _interactive = !Console.IsErrorRedirected;
    readonly bool _everyEpoch = verbose || Console.IsErrorRedirected;
    readonly Stopwatch _sinceLast = Stopwatch.StartNew();
    readonly object _lock = new();
    /// <summary>The epochs of the phase under way, on a terminal without --verbose: summarized in one line when it ends.</summary>
    readonly List<EpochProgress> _phase = [];
    /// <summary>Whether the terminal's last line is a live one, not ended yet.</summary>
    bool _live;

    public Callbacks Callbacks => new(this, this, Log, verbose ? Log : null);

    public void Report(ImageProgress p)
    {
        lock (_lock)
        {
            bool finished = p.Done >= p.Total;
            if (!_interactive && !finished && _sinceLast.Elapsed.TotalSeconds < 5) return;
            if (p.Total == 0) return;
            // A batch of the epoch under way, on a terminal: the live line only (the epoch's own line follows).
            bool withinEpoch = !_everyEpoch && p.Phase.StartsWith("epoch ", StringComparison.Ordinal);
            if (!withinEpoch) EndPhase();
            double eta = p.ImagesPerSecond > 0 ? (p.Total - p.Done) / p.ImagesPerSecond : 0;
            string text = $"{p.Phase}: {p.Done}/{p.Total} images ({100.0 * p.Done / p.Total:0}%), {p.ImagesPerSecond:0.0} images/s, ETA {Eta(eta)}";
            Write(text, finished && !withinEpoch);
            _sinceLast.Restart();
        }
    }

    public void Report(EpochProgress p)
    {
        var r = p.Record;
        double eta = r.Seconds * (p.Epochs - p.Epoch);
        lock (_lock)
        {
            if (_everyEpoch)
            {
                Write($"epoch {p.Epoch}/{p.Epochs}: {Metrics(r)} ({r.Seconds:0.00}s, {p.SamplesPerSecond:0} samples/s, ETA {Eta(eta)} at most)", final: true);
                return;
            }
            if (_phase.Count > 0 && p.Epoch <= _phase[^1].Epoch) EndPhase(); // epoch 1 again: the next phase began
            _phase.Add(p);
            Write($"epoch {p.Epoch}/{p.Epochs}: {Metrics(r)}, ETA {Eta(eta)} at most", final: false);
            if (p.Epoch == p.Epochs) EndPhase();
        }
    }

    /// <summary>A weight file or data set being downloaded: MB done of the total.</summary>
    public void Report(Weights.AssetDownloadProgress p)
    {
        lock (_lock)
        {
            bool finished = p.BytesReceived == p.TotalBytes;
            if (!_interactive && !finished && _sinceLast.Elapsed.TotalSeconds < 5) return;
            EndPhase();
            Write($"downloading {p.Asset.FileName}: {p.BytesReceived / 1e6:0.0}" + (p.TotalBytes is { } total ? $" of {total / 1e6:0.0} MB" : " MB"), finished);
            _sinceLast.Restart();
        }
    }

    public void Log(string message)
    {
        lock (_lock)
        {
            EndPhase();
            Write(message, final: true);
        }
    }

    /// <summary>Ends the live line: the phase under way gets its summary line, and the next output starts on a line of its own.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            EndPhase();
            if (_interactive && _live) Console.Error.Write("\r\u001b[2K");
            _live = false;
        }
    }

    /// <summary>
    /// One line for the epochs of the phase that ended: how many of the most, the time, and the best epoch by validation
    /// loss (the one training keeps), else the last.
    /// </summary>
    void EndPhase()
    {
        if (_phase.Count == 0) return;
        var last = _phase[^1];
        var best = _phase.Where(e => e.Record.ValLoss is not null).MinBy(e => e.Record.ValLoss!.Value) ?? last;
        int epochs = _phase.Count;
        string ran = epochs < last.Epochs ? $"{epochs} of at most {last.Epochs} epochs" : Plural.Of(epochs, "epoch");
        Write($"trained {ran} in {_phase.Sum(e => e.Record.Seconds):0.0}s; {(best.Record.ValLoss is null ? "last" : "best")} epoch {best.Epoch}: {Metrics(best.Record)}", final: true);
        _phase.Clear();
    }

    static string Metrics(EpochRecord r) =>
        $"loss {r.Loss:0.0000}, accuracy {r.Accuracy:0.0000}" + (r.ValLoss is null ? "" : $", val_loss {r.ValLoss:0.0000}, val_accuracy {r.ValAccuracy:0.0000}");

    void Write(string text, bool final)
    {
        if (_interactive)
        {
            Console.Error.Write("\r\u001b[2K" + text);
            if (final) Console.Error.WriteLine();
            _live = !final;
        }
        else
        {
            Console.Error.WriteLine(text);
        }
    }

    static string Eta(double seconds) =>
        seconds < 60 ? $"{seconds:0}s" : TimeSpan.FromSeconds(seconds).ToString(seconds < 3600 ? @"m\:ss" : @"h\:mm\:ss");
}
