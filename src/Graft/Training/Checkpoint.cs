using System.IO.Compression;
using System.Text.Json;
using Graft.Heads;
using Graft.Inference;
using TorchSharp;
using TorchSharp.Modules;
using Graft.Weights;
using static TorchSharp.torch;

namespace Graft.Training;

/// <summary>Where a live training run stands: enough to continue it exactly.</summary>
internal sealed record TrainingProgress(
    string Fingerprint,
    int Epoch,
    int NextBatch,
    double LossSum,
    long Correct,
    long Seen,
    long Step,
    List<EpochRecord> History,
    int BestEpoch,
    double BestLoss,
    int SinceBest);

/// <summary>
/// A training checkpoint file (zip: progress.json, state.safetensors, best.safetensors, average.safetensors, optimizer.bin),
/// written atomically after every epoch and when a run is stopped, so `--resume` continues where it ended.
/// The fingerprint (data, options, seed) guards against resuming a different run.
/// </summary>
internal static class Checkpoint
{
    public static void Save(string path, TrainingProgress progress, nn.Module network, Dictionary<string, Tensor>? best, OptimizerHelper optimizer,
        Dictionary<string, Tensor>? averaged = null) =>
        ZipEntries.WriteAtomically(path, zip =>
        {
            ZipEntries.Write(zip, "progress.json", JsonSerializer.SerializeToUtf8Bytes(progress, ModelFile.Json));
            ZipEntries.Write(zip, "state.safetensors", Safetensors.Write(network.state_dict()));
            if (best is not null) ZipEntries.Write(zip, "best.safetensors", Safetensors.Write(best));
            if (averaged is not null) ZipEntries.Write(zip, "average.safetensors", Safetensors.Write(averaged));
            using var memory = new MemoryStream();
            using (var writer = new BinaryWriter(memory, System.Text.Encoding.UTF8, leaveOpen: true)) optimizer.save_state_dict(writer);
            ZipEntries.Write(zip, "optimizer.bin", memory.ToArray());
        });

    /// <summary>
    /// Loads a checkpoint into the network and optimizer; returns its progress, best weights and moving average of the
    /// weights. A checkpoint that is empty, truncated or otherwise damaged is one <see cref="GraftException"/> naming it
    /// (the file is left alone).
    /// </summary>
    public static (TrainingProgress Progress, Dictionary<string, Tensor>? Best, Dictionary<string, Tensor>? Averaged) Load(string path, string fingerprint,
        nn.Module network, OptimizerHelper optimizer)
    {
        Dictionary<string, Tensor>? best = null, averaged = null;
        try
        {
            using var zip = ZipFile.OpenRead(path);
            var expected = network.state_dict();
            // The weights entries hold the network's tensors and a header naming them, no more.
            long tensorBytes = expected.Values.Sum(t => t.numel() * t.ElementSize) + 65536 + 512L * expected.Count;
            var progress = JsonSerializer.Deserialize<TrainingProgress>(ZipEntries.Read(zip, "progress.json", path, ModelFile.MaxJsonBytes), ModelFile.Json)
                ?? throw Damaged(path, "progress.json is empty");
            if (progress.Fingerprint != fingerprint)
                throw new GraftException($"{path} is a checkpoint of a different run (other data, options or seed; under a learning-rate schedule, other --epochs).",
                    "Resume with the same command line, or delete the checkpoint to start afresh.");
            if (progress.History is null || progress.Epoch < 1 || progress.NextBatch < 0)
                throw Damaged(path, "progress.json is incomplete");
            var state = Safetensors.Read(ZipEntries.Read(zip, "state.safetensors", path, tensorBytes), path);
            try
            {
                Fits(path, "state.safetensors", expected, state);
                network.load_state_dict(state);
            }
            finally { foreach (var t in state.Values) t.Dispose(); }
            best = Weights(zip, path, "best.safetensors", expected, tensorBytes);
            averaged = Weights(zip, path, "average.safetensors", expected, tensorBytes);
            using var reader = new BinaryReader(new MemoryStream(ZipEntries.Read(zip, "optimizer.bin", path, 4 * tensorBytes)));
            optimizer.load_state_dict(reader);
            return (progress, best, averaged);
        }
        catch (Exception e) when (e is not GraftException)
        {
            Optimizers.Dispose(best);
            Optimizers.Dispose(averaged);
            // libtorch appends its C++ stack to the message: keep the first line.
            throw Damaged(path, e is InvalidDataException or EndOfStreamException && new FileInfo(path).Length == 0 ? "the file is empty" : GraftException.FirstLine(e.Message));
        }
        catch
        {
            Optimizers.Dispose(best);
            Optimizers.Dispose(averaged);
            throw;
        }
    }

    /// <summary>An optional entry of weights, which must be the network's (null: the checkpoint has none).</summary>
    static Dictionary<string, Tensor>? Weights(ZipArchive zip, string path, string entry, Dictionary<string, Tensor> expected, long tensorBytes)
    {
        if (zip.GetEntry(entry) is null) return null;
        var weights = Safetensors.Read(ZipEntries.Read(zip, entry, path, tensorBytes), path);
        try
        {
            Fits(path, entry, expected, weights);
            return weights;
        }
        catch
        {
            Optimizers.Dispose(weights);
            throw;
        }
    }

    /// <summary>Saved weights must be the network's: the same names and shapes.</summary>
    static void Fits(string path, string entry, Dictionary<string, Tensor> expected, Dictionary<string, Tensor> saved)
    {
        foreach (var (name, want) in expected)
            if (!saved.TryGetValue(name, out var have) || !have.shape.SequenceEqual(want.shape))
                throw Damaged(path, $"{entry} does not hold the network's {name}");
    }

    static GraftException Damaged(string path, string what) =>
        new($"The checkpoint {path} cannot be resumed: it is damaged ({what}).",
            "Delete it to train from the beginning, or run without --resume (it is then overwritten).");
}

/// <summary>
/// Saves a <see cref="Checkpoint"/> after every epoch and when the run is stopped, and with <paramref name="resume"/>
/// continues from the one at <paramref name="path"/> when it is this run's (<paramref name="fingerprint"/>). Comes after
/// the callbacks whose state it saves (early stopping).
/// </summary>
internal sealed class Checkpointing(string path, string fingerprint, bool resume, Action<string>? log = null) : FitCallback
{
    public override void OnFitBegin(FitState state)
    {
        state.Progress = state.Progress with { Fingerprint = fingerprint };
        if (!resume) return;
        if (!File.Exists(path))
        {
            log?.Invoke($"no checkpoint at {path} (a finished run deletes it): starting from the beginning");
            return;
        }
        (state.Progress, state.Best, state.Averaged) = Checkpoint.Load(path, fingerprint, state.Network, state.Optimizer);
        log?.Invoke($"resuming from {path}: epoch {state.Progress.Epoch}, batch {state.Progress.NextBatch}");
    }

    public override void OnEpochEnd(FitState state, EpochRecord record) => Save(state);

    public override void OnStopped(FitState state)
    {
        Save(state);
        state.SavedTo = path;
    }

    void Save(FitState state) => Checkpoint.Save(path, state.Progress, state.Network, state.Best, state.Optimizer, state.Averaged);
}
