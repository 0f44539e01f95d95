using System.Diagnostics;
using Graft.Weights;
using SkiaSharp;

namespace Graft.Tests;

/// <summary>A temporary folder, deleted at the end of the test.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("graft-test-").FullName;
    public string this[string relative] => System.IO.Path.Combine(Path, relative);
    public void Dispose() { try { Directory.Delete(Path, recursive: true); } catch (IOException) { } }
}

public static class Assets
{
    /// <summary>The shared asset mirror beside the checkout (as every dev and CI machine has it).</summary>
    public static AssetResolver Resolver { get; } = new(cacheRoot: Directory.CreateTempSubdirectory("graft-test-cache-").FullName, allowDownload: false);

    public static string Shared(string relative) =>
        Resolver.SearchRoots.Select(r => System.IO.Path.Combine(r, relative)).FirstOrDefault(p => File.Exists(p) || Directory.Exists(p))
        ?? throw new FileNotFoundException($"{relative} not found in any shared/ mirror; the tests need ../shared beside the checkout.");
}

/// <summary>Small synthetic photos: each class a colour with noise and a random square, so a head can tell them apart.</summary>
public static class TinyImages
{
    public static readonly (string Name, SKColor Color)[] Palette =
        [("red", new SKColor(200, 40, 40)), ("green", new SKColor(40, 180, 60)), ("blue", new SKColor(40, 60, 200))];

    public static void WriteClassFolders(string root, int perClass, int classes = 2, int size = 48, int seed = 1, string format = "png")
    {
        var rng = new Random(seed);
        for (int c = 0; c < classes; c++)
        {
            var dir = System.IO.Path.Combine(root, Palette[c].Name);
            Directory.CreateDirectory(dir);
            for (int i = 0; i < perClass; i++)
                WriteImage(System.IO.Path.Combine(dir, $"{Palette[c].Name}_{i}.{format}"), Palette[c].Color, size, rng, format);
        }
    }

    public static void WriteImage(string path, SKColor color, int size, Random rng, string format = "png")
    {
        using var bitmap = new SKBitmap(size, size + 8);
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(color);
            using var paint = new SKPaint { Color = new SKColor((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256)) };
            canvas.DrawRect(rng.Next(size / 2), rng.Next(size / 2), size / 3, size / 3, paint);
        }
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(format == "jpg" ? SKEncodedImageFormat.Jpeg : SKEncodedImageFormat.Png, 90);
        File.WriteAllBytes(path, data.ToArray());
    }
}

/// <summary>Runs the graft CLI as users do: a separate process, its own allocator set-up, exit code and streams.</summary>
public static class GraftCli
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public string LastLine => Stdout.TrimEnd().Split('\n').Last();
    }

    public static Result Run(IDictionary<string, string>? env, params string[] args) => Run(env, null, args);

    /// <summary>As <see cref="Run(IDictionary{string, string}?, string[])"/>, with <paramref name="input"/> piped into standard input.</summary>
    public static Result Run(IDictionary<string, string>? env, byte[]? input, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = input is not null, UseShellExecute = false };
        start.ArgumentList.Add(System.IO.Path.Combine(AppContext.BaseDirectory, "Graft.Cli.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["GRAFT_OFFLINE"] = "1";
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) start.Environment[k] = v;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (input is not null)
        {
            process.StandardInput.BaseStream.Write(input);
            process.StandardInput.Close();
        }
        if (!process.WaitForExit(TimeSpan.FromMinutes(3))) { process.Kill(true); throw new TimeoutException("graft did not finish"); }
        return new Result(process.ExitCode, stdout.Result, stderr.Result);
    }
}

/// <summary>Registry networks with fresh (untrained) weights: architecture tests need no weight files.</summary>
public static class Networks
{
    /// <summary>The Keras blog's small CNN at 32x32 with a hidden layer of 8: a model file of a few hundred kB, made in milliseconds.</summary>
    public static Models.TrainableClassifier ScratchModel(IReadOnlyList<string> labels, int size = 32)
    {
        Engine.TorchRuntime.EnsureInitialized();
        var network = Backbones.BackboneRegistry.Get("small_cnn");
        var backbone = Backbones.Backbone.Create(network, new Backbones.Architectures.ArchitectureOptions(size), network.Spec(size));
        var (channels, positions) = backbone.FeatureShape(size);
        var head = new Heads.HeadConfig(channels * positions, labels.Count, Hidden: 8, Dropout: 0.5, Pooling: Heads.Pooling.Flatten);
        var config = new Models.ModelConfig(Models.ModelConfig.CurrentFormat, network.Name, "none", backbone.Input, labels, head, Training.StrategyNames.Name(Training.Strategy.Scratch),
            new Training.FitOptions(Epochs: 0), null, DateTime.UtcNow) { Architecture = backbone.Architecture };
        return new Models.TrainableClassifier(config, backbone, head.Build(), []);
    }

    public static Backbones.Graph Build(string backbone, int size, bool foldedBatchNorm = false)
    {
        Engine.TorchRuntime.EnsureInitialized();
        return Backbones.BackboneRegistry.Get(backbone).Build(new(size, FoldedBatchNorm: foldedBatchNorm));
    }
}

public static class Pixels
{
    /// <summary>Mean and largest absolute difference of two images' bytes (same size).</summary>
    public static (double Mean, int Max) Difference(byte[] a, byte[] b)
    {
        Assert.Equal(a.Length, b.Length);
        long sum = 0;
        int max = 0;
        for (int i = 0; i < a.Length; i++)
        {
            int d = Math.Abs(a[i] - b[i]);
            sum += d;
            max = Math.Max(max, d);
        }
        return (sum / (double)a.Length, max);
    }
}
