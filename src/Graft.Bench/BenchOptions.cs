using System.ComponentModel;
using System.ComponentModel.DataAnnotations;

namespace Graft.Bench;

/// <summary>
/// What a bench run measures. The defaults and the help text live here; a host maps its own flags onto these.
/// A new benchmark family is a file of its own plus, where a run may leave it out or run it alone, one option here.
/// </summary>
public sealed record BenchOptions
{
    /// <summary>The sample dataset the bench makes itself: phone-camera photos (<see cref="PhonePhotos"/>).</summary>
    public const string PhoneDataset = "phone_photos";

    /// <summary>Sample datasets to train on, each with `graft train` in a process of its own.</summary>
    [Description("Sample datasets to train on (none: no training runs). " + PhoneDataset + ": 4032x3024 JPEGs the bench makes "
        + "from the shared photos, once, in Graft's cache.")]
    public IReadOnlyList<string> Datasets { get; init; } = ["hymenoptera", "cats_vs_dogs", PhoneDataset];

    /// <summary>Which backbones' trunks to measure: 'available', 'all', '' or a comma-separated list of names.</summary>
    [Description("Backbones to measure, each in child processes of its own: forward in Graft's runner, ONNX Runtime defaults "
        + "and libtorch; a fine-tuning step; GFLOPs and the share of the machine's convolution peak; peak memory. "
        + "available: those whose weights are on this machine; all: every pretrained backbone, random weights where the file "
        + "is missing (speed does not depend on them); a list of names; or none.")]
    public string Backbones { get; init; } = "available";

    /// <summary>The most timed batches (or training steps) per runner and round.</summary>
    [Description("At most this many timed batches (or training steps) per runner and round; a round also ends after its time budget.")]
    [Range(1, int.MaxValue)]
    public int Batches { get; init; } = 30;

    /// <summary>Run the Keras blog's study instead (<see cref="KerasBlogExperiments"/>).</summary>
    [Description("Instead: the Keras blog's three experiments on cats_vs_dogs (scratch, feature extraction, fine-tuning) and "
        + "fine-tuning on hymenoptera, next to the published numbers (the longest bench).")]
    public bool Experiments { get; init; }

    /// <summary>Run the advisor's bench instead (<see cref="AdvisorBench"/>).</summary>
    [Description("Instead: on each of the datasets, the advisor with three seeds, and every strategy it weighs trained in full, "
        + "scored on held-out images it never saw: its regret.")]
    public bool Advisor { get; init; }

    /// <summary>Run the decoders' comparison instead (<see cref="DecoderBench"/>).</summary>
    [Description("Instead: each image decoder (libvips, SkiaSharp) on " + PhoneDataset + "' 12 MP JPEGs and on small JPEGs (hymenoptera "
        + "and cats_vs_dogs): decode + centre crop to 224 on all cores, images/s and peak memory, each decoder in child processes of "
        + "its own; and how far apart the decoders' pixels are.")]
    public bool Decoders { get; init; }

    /// <summary>Run the recipes' accuracy study instead (<see cref="AccuracyBench"/>).</summary>
    [Description("Instead: on each of the datasets, feature extraction and fine-tuning by each recipe, three seeds each, every run "
        + "in a process of its own, scored on the same held-out images: mean and sd of test accuracy, wall time, peak memory. "
        + "Runs are kept in Graft's cache, so a stopped study continues.")]
    public bool Accuracy { get; init; }

    /// <summary>More candidates for <see cref="Accuracy"/>, each a `graft train` argument line (e.g. "--strategy fine-tune --mixup 0.2").</summary>
    [Description("More candidates for --accuracy, each a `graft train` argument line.")]
    public IReadOnlyList<string> Candidates { get; init; } = [];

    /// <summary>Run the serving bench instead on this model file (<see cref="ServeBench"/>).</summary>
    [Description("Instead: graft serve with this model file on loopback, under a bounded load of the shared hymenoptera validation "
        + "photos at concurrency 1, 8 and 32, then a burst past its concurrency limit, beside offline graft predict on the same photos.")]
    public string? Serve { get; init; }

    /// <summary>Requests per concurrency level of <see cref="Serve"/> (each level also stops after its time budget).</summary>
    [Description("Requests per concurrency level of --serve (each level also stops after 90 seconds).")]
    public int ServeRequests { get; init; } = 2000;

    /// <summary>Run the calibration and "none of these" bench instead (<see cref="TrustBench"/>).</summary>
    [Description("Instead: on each of the datasets, models trained with --test-split 0.2 and three seeds; their test images' "
        + "calibration error before and after temperature scaling, and every out-of-distribution score's AUROC and false acceptance "
        + "against the other datasets' photos and the shared ImageNet photos.")]
    public bool Trust { get; init; }

    /// <summary>Run the audit's label-check bench instead (<see cref="AuditBench"/>).</summary>
    [Description("Instead: on each of the datasets, the audit's label check on clean photos (the set whole, and draws of 20, 50 and "
        + "100 photos per class) and on photos with 5% of their labels flipped: flags per 100 clean images, and the flips found.")]
    public bool Audit { get; init; }

    /// <summary>Run the multi-label bench instead (<see cref="MultiLabelBench"/>).</summary>
    [Description("Instead: 2x2 mosaics of the shared ants, bees, cats and dogs photos, each labelled with the classes it shows, in a label "
        + "file with a split column; a model trained from it by feature extraction; its test mAP and each label's AP, threshold, precision, recall and F1.")]
    public bool MultiLabel { get; init; }

    /// <summary>Where <see cref="MultiLabel"/> writes its mosaics and label file (kept); null: a temporary folder.</summary>
    [Description("Write --multi-label's mosaics and labels.csv into this folder and keep them (default: a temporary folder).")]
    public string? Mosaics { get; init; }

    /// <summary>In a child process: one backbone's measurement, written as one JSON object.</summary>
    public MeasureRequest? Measure { get; init; }

    /// <summary>In a child process: one decoder's measurement, written as one JSON object.</summary>
    public DecoderRequest? MeasureDecoder { get; init; }

    /// <summary>At least one timed batch.</summary>
    internal int TimedBatches => Math.Max(1, Batches);
}

/// <summary>What a child measures of one backbone: its trunk's forward pass, or fine-tuning steps.</summary>
public enum MeasurePart
{
    /// <summary>The frozen trunk's forward pass in Graft's runner, ONNX Runtime defaults and libtorch.</summary>
    Forward,
    /// <summary>Fine-tuning steps with the top 2 blocks unfrozen.</summary>
    Train,
}

/// <summary>
/// One backbone's measurement, made in a child process so that its peak memory is its own; the parent starts the
/// child with <see cref="Arguments"/>, and the host maps those flags back onto <see cref="BenchOptions.Measure"/>.
/// </summary>
public sealed record MeasureRequest(
    [property: Description("The backbone to measure.")] string Backbone,
    [property: Description("What to measure: its trunk's forward pass, or fine-tuning steps.")] MeasurePart Part = MeasurePart.Forward,
    [property: Description("Images per batch."), Range(1, int.MaxValue)] int Batch = 32)
{
    /// <summary>The child's flags: the backbone, the part and the batch size.</summary>
    public const string BackboneFlag = "--measure-backbone", PartFlag = "--measure-part", BatchFlag = "--measure-batch";

    /// <summary>`graft bench` arguments that make this measurement.</summary>
    internal IReadOnlyList<string> Arguments(int batches) =>
    [
        "bench", BackboneFlag, Backbone, "--batches", batches.ToString(System.Globalization.CultureInfo.InvariantCulture),
        PartFlag, Part.ToString().ToLowerInvariant(), BatchFlag, Batch.ToString(System.Globalization.CultureInfo.InvariantCulture),
    ];
}

/// <summary>
/// One decoder's measurement on a list of files, made in a child process so that its peak memory is its own; the
/// parent starts the child with <see cref="Arguments"/>, and the host maps those flags back onto <see cref="BenchOptions.MeasureDecoder"/>.
/// </summary>
/// <param name="Decoder">The decoder's name (<see cref="Imaging.IImageDecoder.Name"/>).</param>
/// <param name="FileList">A text file naming the images, one path a line.</param>
public sealed record DecoderRequest(string Decoder, string FileList)
{
    /// <summary>The child's flags: the decoder and the file list.</summary>
    public const string DecoderFlag = "--measure-decoder", FilesFlag = "--measure-files";

    /// <summary>`graft bench` arguments that make this measurement.</summary>
    internal IReadOnlyList<string> Arguments => ["bench", DecoderFlag, Decoder, FilesFlag, FileList];
}
