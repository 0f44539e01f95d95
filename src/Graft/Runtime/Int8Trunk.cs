using System.Security.Cryptography;
using System.Text;
using Graft.Backbones;
using Graft.Data;
using Graft.Engine;
using Graft.Export;
using Graft.Imaging;
using static TorchSharp.torch;

namespace Graft.Runtime;

/// <summary>
/// Calibrates an int8 trunk on the user's own training images: the float trunk runs over a fixed sample of them and
/// every layer's output range is recorded (<see cref="Int8Calibration"/>), which the model file then keeps.
/// </summary>
internal static class Int8Trunk
{
    /// <summary>
    /// How many training images calibrate. Few are enough: MobileNetV2's ReLU6 layers span [0, 6] whatever the sample,
    /// so only the linear projections, sums and input depend on it, and more images only widen the min/max ranges;
    /// 64 covers each class of a many-class set. The bench's int8 rows hold the result to its accuracy target.
    /// </summary>
    public const int CalibrationImages = 64;

    /// <summary>
    /// A fixed sample of the training images: each class in proportion to its share (at least one image), and within a
    /// class the images whose file names hash lowest. It depends on the images only, not on --seed or their order,
    /// so the same training images always give the same calibration (and the same cached int8 features).
    /// </summary>
    public static IReadOnlyList<LabeledImage> CalibrationSample(IReadOnlyList<LabeledImage> train, int count = CalibrationImages)
    {
        static string Rank(LabeledImage image) =>
            Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Path.GetFileName(image.Path)))) + image.Path;
        return train.GroupBy(i => i.Label).OrderBy(g => g.Key)
            .SelectMany(g => g.OrderBy(Rank, StringComparer.Ordinal)
                .Take(Math.Max(1, (int)Math.Round(count * (double)g.Count() / train.Count))))
            .ToList();
    }

    /// <summary>Checks that the trunk has an int8 form, then calibrates it on <see cref="CalibrationSample"/> of <paramref name="train"/>.</summary>
    public static async Task<Int8Calibration> CalibrateAsync(Graph trunk, string backbone, ImageSpec input, IReadOnlyList<LabeledImage> train,
        int count = CalibrationImages, CancellationToken cancel = default)
    {
        Int8Quantization.CheckSupported(trunk, backbone);
        var sample = CalibrationSample(train, count).Select(i => i.Path).ToList();
        var observer = new Int8Calibration.Observer();
        var device = TorchDevices.Of(trunk); // the float trunk runs where its weights are
        string? firstFailure = null;
        await foreach (var batch in BatchPipeline.Batches(sample, input, 32, cancel: cancel))
        {
            firstFailure ??= batch.Failures.Select(f => $"{Path.GetFileName(f.Path)}: {GraftException.FirstLine(f.Reason)}").FirstOrDefault();
            if (batch.Count == 0) continue;
            using var images = TorchDevices.Images(batch.Pixels, batch.Count, input.Size, device);
            observer.Observe(trunk, images);
        }
        var calibration = observer.Result();
        if (calibration.Images == 0)
            throw new GraftException($"None of the {sample.Count} training images picked to calibrate the int8 trunk could be read ({firstFailure}).",
                "Replace the damaged images, or use --precision float.");
        return calibration;
    }
}
