using System.IO.Compression;
using System.Text.Json;
using Graft.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Graft.Training;

/// <summary>Where a live training run stands: enough to continue it exactly.</summary>
public sealed record TrainingProgress(
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
/// A training checkpoint file (zip: progress.json, state.safetensors, best.safetensors, optimizer.bin),
/// written atomically after every epoch and when a run is stopped, so `--resume` continues where it ended.
/// The fingerprint (data, options, seed) guards against resuming a different run.
/// </summary>
public static class Checkpoint
{
    public static void Save(string path, TrainingProgress progress, nn.Module network, Dictionary<string, Tensor>? best, OptimizerHelper optimizer) =>
        ZipEntries.WriteAtomically(path, zip =>
        {
            ZipEntries.Write(zip, "progress.json", JsonSerializer.SerializeToUtf8Bytes(progress, ImageClassifier.Json));
            ZipEntries.Write(zip, "state.safetensors", Safetensors.Write(network.state_dict()));
            if (best is not null) ZipEntries.Write(zip, "best.safetensors", Safetensors.Write(best));
            using var memory = new MemoryStream();
            using (var writer = new BinaryWriter(memory, System.Text.Encoding.UTF8, leaveOpen: true)) optimizer.save_state_dict(writer);
            ZipEntries.Write(zip, "optimizer.bin", memory.ToArray());
        });

    /// <summary>Loads a checkpoint into the network and optimizer; returns its progress and best weights.</summary>
    public static (TrainingProgress Progress, Dictionary<string, Tensor>? Best) Load(string path, string fingerprint, nn.Module network, OptimizerHelper optimizer)
    {
        using var zip = ZipFile.OpenRead(path);
        var progress = JsonSerializer.Deserialize<TrainingProgress>(ZipEntries.Read(zip, "progress.json", path), ImageClassifier.Json)!;
        if (progress.Fingerprint != fingerprint)
            throw new GraftException($"{path} is a checkpoint of a different run (other data, options or seed; under a learning-rate schedule, other --epochs).",
                "Resume with the same command line, or delete the checkpoint to start afresh.");
        var state = Safetensors.Read(ZipEntries.Read(zip, "state.safetensors", path), path);
        network.load_state_dict(state);
        foreach (var t in state.Values) t.Dispose();
        var best = zip.GetEntry("best.safetensors") is null ? null : Safetensors.Read(ZipEntries.Read(zip, "best.safetensors", path), path);
        using var reader = new BinaryReader(new MemoryStream(ZipEntries.Read(zip, "optimizer.bin", path)));
        optimizer.load_state_dict(reader);
        return (progress, best);
    }
}
