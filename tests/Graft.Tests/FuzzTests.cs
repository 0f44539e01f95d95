using System.Diagnostics;
using System.Text;
using Graft.Backbones;
using Graft.Models;
using Graft.Training;
using Graft.Weights;
using Graft.Heads;
using Graft.Inference;
using TorchSharp;
using static TorchSharp.torch;

namespace Graft.Tests;

/// <summary>
/// Issue 11 ("Also"): valid files of every format Graft reads — a .graft model, a training checkpoint, TFLite, Keras
/// HDF5 and a TF.js model — are damaged by seeded random mutations (flipped bytes, truncation, ranges overwritten with
/// 0x00/0xFF, duplicated ranges, numbers in JSON replaced by extreme ones). Every load either succeeds or is refused with
/// a <see cref="GraftException"/>: never another exception, a hang, or a huge allocation.
/// </summary>
public class FuzzTests(Xunit.Abstractions.ITestOutputHelper output)
{
    // Fixed, so the test is deterministic; GRAFT_FUZZ_SEED / GRAFT_FUZZ_ITERATIONS run a longer or different search by hand.
    static readonly int Iterations = int.TryParse(Environment.GetEnvironmentVariable("GRAFT_FUZZ_ITERATIONS"), out int n) ? n : 40;
    static readonly int Seed = int.TryParse(Environment.GetEnvironmentVariable("GRAFT_FUZZ_SEED"), out int s) ? s : 1111;
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    const long MaxAllocatedBytes = 1L << 30; // managed bytes allocated by one load attempt

    [Fact]
    public async Task Damaged_files_of_every_format_load_or_are_refused_with_a_clear_error()
    {
        using var dir = new TempDir();
        var problems = new List<string>();
        var clock = Stopwatch.StartNew();

        // A tiny trained model.
        TinyImages.WriteClassFolders(dir["data"], perClass: 4, classes: 2, size: 40);
        var trained = await Learner.TrainAsync(dir["data"],
            new TrainOptions { CacheRoot = dir["cache"], ValidationSplit = 0, Fit = new FitOptions(Epochs: 1) }, Assets.Resolver);
        using (trained.Model) trained.Model.Save(dir["model.graft"]);
        Fuzz("graft", dir["model.graft"], dir["fuzz.graft"], problems, path => { using var m = TrainableClassifier.Load(path); });

        // A training checkpoint of a small network after one optimizer step (as a live run writes it).
        FuzzCheckpoint(dir, problems);

        Fuzz("tflite", Assets.Shared("models/coral/mobilenet_v1_0.25_128_quant.tflite"), dir["fuzz.tflite"], problems, LoadWeights);
        Fuzz("keras-h5", Assets.Shared("models/keras/mobilenet_2_5_224_tf_no_top.h5"), dir["fuzz.h5"], problems, LoadWeights);
        FuzzTfjs(dir, problems);

        output.WriteLine($"total {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    static void LoadWeights(string path)
    {
        WeightReaders.Read(path);
        using var backbone = Backbone.LoadPretrained(BackboneRegistry.Get("mobilenet_0.25"), Assets.Resolver, weightsFile: path);
    }

    void FuzzCheckpoint(TempDir dir, List<string> problems)
    {
        var fit = new FitOptions(Epochs: 2, BatchSize: 4);
        using var network = nn.Sequential(("conv", nn.Conv2d(3, 4, 3)), ("bn", nn.BatchNorm2d(4)), ("flat", nn.Flatten()), ("fc", nn.Linear(4 * 6 * 6, 2)));
        var groups = new[] { new ParameterGroup(network.parameters().ToList(), 1.0) };
        using (var optimizer = Optimizers.Create(groups, fit))
        {
            using var loss = network.call(randn(2, 3, 8, 8)).sum();
            loss.backward();
            optimizer.step();
            var progress = new TrainingProgress("fp", 1, 1, 0.5, 1, 2, 1, [new EpochRecord(1, 0.5, 0.5, 0.4, 0.5, 1)], 1, 0.4, 0);
            var best = Optimizers.Snapshot(network);
            Checkpoint.Save(dir["run.checkpoint"], progress, network, best, optimizer, averaged: best);
            Optimizers.Dispose(best);
        }
        Fuzz("checkpoint", dir["run.checkpoint"], dir["fuzz.checkpoint"], problems, path =>
        {
            using var optimizer = Optimizers.Create(groups, fit);
            var (_, best, averaged) = Checkpoint.Load(path, "fp", network, optimizer);
            Optimizers.Dispose(best);
            Optimizers.Dispose(averaged);
        });
    }

    void FuzzTfjs(TempDir dir, List<string> problems)
    {
        var source = Assets.Shared("models/tfjs/mobilenet_v1_0.25_224/");
        var copy = dir["tfjs"];
        Directory.CreateDirectory(copy);
        foreach (var file in Directory.GetFiles(source))
            File.WriteAllBytes(Path.Combine(copy, Path.GetFileName(file)), File.ReadAllBytes(file));
        var modelJson = Path.Combine(copy, "mobilenet_model.json");
        var shard = Directory.GetFiles(copy, "*shard*").OrderByDescending(f => new FileInfo(f).Length).First();
        var jsonBytes = File.ReadAllBytes(modelJson);
        var shardBytes = File.ReadAllBytes(shard);
        var rng = new Random(Seed);
        int loaded = 0, refused = 0;
        Attempt("tfjs", -1, modelJson, LoadWeights, problems, ref loaded, ref refused);
        if (loaded != 1) problems.Add("tfjs: the undamaged model does not load");
        loaded = 0;
        for (int i = 0; i < Iterations; i++)
        {
            // Alternate: the model.json (half of those by its numbers), then the largest shard; the other file intact.
            bool json = i % 2 == 0;
            File.WriteAllBytes(modelJson, json ? (i % 4 == 0 ? MutateNumbers(jsonBytes, rng) : Mutate(jsonBytes, rng)) : jsonBytes);
            File.WriteAllBytes(shard, json ? shardBytes : Mutate(shardBytes, rng));
            Attempt("tfjs", i, modelJson, LoadWeights, problems, ref loaded, ref refused);
        }
        output.WriteLine($"tfjs: {loaded} loaded, {refused} refused of {Iterations}");
    }

    void Fuzz(string format, string original, string target, List<string> problems, Action<string> load)
    {
        var bytes = File.ReadAllBytes(original);
        var rng = new Random(Seed);
        int loaded = 0, refused = 0;
        File.WriteAllBytes(target, bytes);
        Attempt(format, -1, target, load, problems, ref loaded, ref refused);
        if (loaded != 1) problems.Add($"{format}: the undamaged file does not load");
        loaded = 0;
        for (int i = 0; i < Iterations; i++)
        {
            File.WriteAllBytes(target, Mutate(bytes, rng));
            Attempt(format, i, target, load, problems, ref loaded, ref refused);
        }
        output.WriteLine($"{format}: {loaded} loaded, {refused} refused of {Iterations}");
    }

    void Attempt(string format, int iteration, string path, Action<string> load, List<string> problems, ref int loaded, ref int refused)
    {
        Exception? error = null;
        long allocated = 0;
        var task = Task.Run(() =>
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            try { load(path); }
            catch (Exception e) { error = e; }
            finally { allocated = GC.GetAllocatedBytesForCurrentThread() - before; }
        });
        if (!task.Wait(Timeout))
        {
            problems.Add($"{format} #{iteration}: no answer within {Timeout.TotalSeconds} s");
            return;
        }
        if (allocated > MaxAllocatedBytes)
            problems.Add($"{format} #{iteration}: allocated {allocated >> 20} MB");
        switch (error)
        {
            case null: loaded++; break;
            case GraftException when iteration >= 0:
                refused++;
                if (!error.Message.Contains(Path.GetFileName(path)) && !error.Message.Contains(Path.GetFileName(Path.GetDirectoryName(path)!)))
                    problems.Add($"{format} #{iteration}: the refusal does not name the file: {error.Message}");
                break;
            default:
                problems.Add($"{format} #{iteration}: {error.GetType().Name}: {error.Message.Split('\n')[0]}\n{error.StackTrace?.Split('\n').FirstOrDefault(l => l.Contains("Graft."))}");
                break;
        }
    }

    /// <summary>One to three damages, each near the start, near the end (zip directories, headers) or anywhere.</summary>
    static byte[] Mutate(byte[] original, Random rng)
    {
        var bytes = new List<byte>(original);
        int damages = rng.Next(1, 4);
        for (int d = 0; d < damages && bytes.Count > 0; d++)
        {
            int at = Position(bytes.Count, rng);
            switch (rng.Next(4))
            {
                case 0: // flip a few bytes
                    for (int k = rng.Next(1, 9); k > 0; k--)
                    {
                        int p = Math.Clamp(at + rng.Next(-64, 64), 0, bytes.Count - 1);
                        bytes[p] ^= (byte)rng.Next(1, 256);
                    }
                    break;
                case 1: // truncate
                    bytes.RemoveRange(at, bytes.Count - at);
                    break;
                case 2: // overwrite a range with 0x00 or 0xFF
                {
                    byte fill = rng.Next(2) == 0 ? (byte)0x00 : (byte)0xFF;
                    int length = Math.Min(bytes.Count - at, 1 + rng.Next(rng.Next(2) == 0 ? 16 : 4096));
                    for (int p = at; p < at + length; p++) bytes[p] = fill;
                    break;
                }
                default: // duplicate a range elsewhere
                {
                    int length = Math.Min(bytes.Count - at, 1 + rng.Next(4096));
                    var range = bytes.GetRange(at, length);
                    bytes.InsertRange(Position(bytes.Count, rng), range);
                    break;
                }
            }
        }
        return bytes.ToArray();
    }

    static int Position(int length, Random rng) => rng.Next(3) switch
    {
        0 => rng.Next(Math.Min(length, 8192)),
        1 => Math.Max(0, length - 1 - rng.Next(Math.Min(length, 8192))),
        _ => rng.Next(length),
    };

    /// <summary>Replaces one to three numbers of a JSON text by extreme ones (shapes, offsets, sizes).</summary>
    static byte[] MutateNumbers(byte[] json, Random rng)
    {
        string[] extremes = ["0", "-1", "99999999", "2147483648", "4294967296", "1e300", "-2147483648", "3.5"];
        var text = Encoding.UTF8.GetString(json);
        var numbers = System.Text.RegularExpressions.Regex.Matches(text, @"-?\d+(\.\d+)?([eE][-+]?\d+)?");
        var chosen = Enumerable.Range(0, rng.Next(1, 4)).Select(_ => numbers[rng.Next(numbers.Count)]).DistinctBy(m => m.Index).OrderByDescending(m => m.Index);
        var builder = new StringBuilder(text);
        foreach (var m in chosen)
            builder.Remove(m.Index, m.Length).Insert(m.Index, extremes[rng.Next(extremes.Length)]);
        return Encoding.UTF8.GetBytes(builder.ToString());
    }
}
