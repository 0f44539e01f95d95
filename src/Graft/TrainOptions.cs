using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Diagnostics;
using System.Text.Json.Serialization;
using Graft.Backbones;
using Graft.Data;
using Graft.Engine;
using Graft.Evaluation;
using Graft.Models;
using Graft.Training;
using Graft.Weights;
using Graft.Imaging;
using Graft.Runtime;
using Graft.Heads;
using Graft.Inference;
using static TorchSharp.torch;

namespace Graft;

/// <summary>
/// Everything about a training run. Null means "the strategy's default": scratch trains the Keras blog's
/// small CNN (flatten → dense 64 → dropout 0.5, heavy augmentation); the others graft a global-average-pooling
/// head (dropout 0.2) onto the default pretrained backbone (a registry flag), and fine-tuning augments mildly.
/// </summary>
public sealed record TrainOptions
{
    /// <summary>The pretrained network (a registry name, see <c>graft models</c>, or an ONNX image model's .onnx file); null: the default (or the scratch CNN).</summary>
    [Description("The pretrained network, by registry name; or an ONNX image model (a .onnx file) as a frozen trunk.")]
    public string? Backbone { get; init; }
    /// <summary>
    /// A model file to grow instead of starting from the backbone: its backbone, input, head and preprocessing (options that
    /// differ are refused), its classes first in its order (classes the data adds are appended: the head grows, the earlier
    /// classes keep their weights), its test images kept as test images (with no test share of its own, the run holds out the
    /// model's share of the new classes' images), and both models measured on the same test images (<see cref="TrainingResult.Growth"/>).
    /// With <see cref="Strategy.Auto"/> the run takes the model's strategy.
    /// </summary>
    [Description("Grow this model file instead of starting from the backbone: keep its classes, weights and test images, add the classes the "
        + "data has new, and measure both models on the same test images.")]
    public string? From { get; init; }
    /// <summary>An ONNX backbone (<see cref="Backbone"/> an .onnx file): what its file does not say.</summary>
    public OnnxBackboneOptions Onnx { get; init; } = new();
    /// <summary>The network's input size (Keras's input_shape); null: the backbone's default.</summary>
    [Description("The network's input size N (NxN), e.g. 150 as in the Keras blog; by default the backbone's own.")]
    [Range(16, 2048)]
    public int? InputSize { get; init; }
    /// <summary>The user's own weight file for the backbone (checked by structure, not hash); null: the registry's sources.</summary>
    [Description("The backbone's weights from this file (Keras .h5, TF.js model.json, TFLite) instead of the known sources; checked by structure.")]
    public string? WeightsFile { get; init; }
    /// <summary>How the run trains (JSON and the command line spell it "feature-extraction", "fine-tune", "scratch" or "auto").</summary>
    [Description("feature-extraction: train a head on cached features of the frozen trunk; fine-tune: then train the top of the trunk "
        + "too, on augmented images; scratch: train a small CNN from random weights; auto: measure the data and choose.")]
    public Strategy Strategy { get; init; } = Strategy.FeatureExtraction;
    /// <summary>Units of the head's hidden dense layer (0: none, a linear head); null: the strategy's default.</summary>
    [Description("Units of a hidden dense ReLU layer in the head (0: none).")]
    [Range(0, int.MaxValue)]
    public int? Hidden { get; init; }
    /// <summary>The head's dropout rate; null: the strategy's default.</summary>
    [Description("The head's dropout rate.")]
    [Range(0, 1, MaximumIsExclusive = true)]
    public double? Dropout { get; init; }
    /// <summary>Batch normalization in the head.</summary>
    [Description("Batch normalization in the head.")]
    public bool BatchNorm { get; init; }
    /// <summary>How the trunk's feature map becomes a vector: global average pooling or flatten; null: the strategy's default.</summary>
    [Description("How the trunk's feature map becomes the head's input: gap (global average pooling) or flatten (keeps the spatial layout).")]
    public Pooling? Pooling { get; init; }
    /// <summary>A squeeze-and-excitation block on the trunk's output before the head.</summary>
    [Description("A squeeze-and-excitation block on the trunk's output before the head.")]
    public bool SqueezeExcite { get; init; }
    /// <summary>Two classes as a single sigmoid output with binary cross-entropy.</summary>
    [Description("Two classes as one sigmoid output with binary cross-entropy.")]
    public bool Binary { get; init; }
    /// <summary>
    /// A label file naming DATA's images and their labels (<c>.csv</c>, <c>.tsv</c> or <c>.jsonl</c>: columns <c>file</c>,
    /// <c>label</c> or <c>labels</c>, optionally <c>split</c>), read instead of class folders; as given or relative to DATA.
    /// Null: class folders.
    /// </summary>
    [Description("A label file (.csv, .tsv or .jsonl) read instead of class folders: the columns file (the image's path relative to the data "
        + "folder), label (its class) or labels (its classes, separated by ';'), and optionally split (train, val or test).")]
    public string? LabelsFile { get; init; }
    /// <summary>Read the data as multi-label (<see cref="ImageDataset.MultiLabel"/>) even where every image carries one label.</summary>
    [Description("Multi-label data: an image may carry several classes, or none (chosen anyway when a label file's row has several labels).")]
    public bool MultiLabel { get; init; }
    /// <summary>The share of the images held out for validation when DATA has no validation folder.</summary>
    [Description("The share of each class held out for validation when the data has no validation folder.")]
    [Range(0, 1, MaximumIsExclusive = true)]
    public double ValidationSplit { get; init; } = 0.2;
    /// <summary>The share of the images held out as a test set, measured only after training, when DATA has no test folder (0: none).</summary>
    [Description("The share of each class held out as a test set, measured only after training (the reported accuracy), when the data "
        + "has no test folder.")]
    [Range(0, 1, MaximumIsExclusive = true)]
    public double TestSplit { get; init; }
    /// <summary>How a photo becomes the network's square input.</summary>
    [Description("How a photo becomes the square input: crop a centred square, then resize; or squash the whole image.")]
    public ResizeMode Resize { get; init; } = ResizeMode.CenterCrop;
    /// <summary>Training of the head on cached features (feature extraction, fine-tuning's phase 1) or of the scratch network.</summary>
    public FitOptions Fit { get; init; } = new();
    /// <summary>The fine-tuning recipe (<see cref="Recipes"/>): what fine-tuning's live phase does unless the fields below say otherwise.</summary>
    [Description("The fine-tuning recipe: deep (the whole trunk, AdamW, warm-up and cosine, label smoothing, batch norm frozen) or "
        + "top-blocks (the top 2 blocks, SGD, the Keras blog's); the options below override its settings one by one.")]
    public string Recipe { get; init; } = Recipes.Default.Name;
    /// <summary>Fine-tuning's phase 2 (the unfrozen trunk with the head, on live images); null: the recipe's.</summary>
    public FitOptions? FineTune { get; init; }
    /// <summary>What fine-tuning trains of the trunk; null: the recipe's, or what <see cref="Strategy.Auto"/> advises.</summary>
    public UnfreezeSpec? Unfreeze { get; init; }
    /// <summary>Live augmentation (fine-tuning, scratch); null: the recipe's (fine-tuning) or the Keras blog's (scratch).</summary>
    public Augmentation? Augmentation { get; init; }
    /// <summary>The learning-rate schedule of live training; null: the recipe's (fine-tuning), constant (scratch).</summary>
    [Description("The learning-rate schedule of live training.")]
    public LrSchedule? Schedule { get; init; }
    /// <summary>Fine-tuning: each unfrozen block's learning rate is this times the one above it (1: all equal); null: the recipe's.</summary>
    [Description("Fine-tuning: each unfrozen block learns at this times the rate of the block above (e.g. 0.5; 1: all equal).")]
    [Range(0, 1, MinimumIsExclusive = true)]
    public double? DiscriminativeFactor { get; init; }
    /// <summary>
    /// Choose the learning rate by a range test (<see cref="LearningRateSearch"/>) before training: fine-tuning's phase 2
    /// (after the head), the scratch network, or feature extraction's head. It replaces that phase's rate.
    /// </summary>
    [Description("Choose the learning rate of the phase that trains by a range test first (lr-find): fine-tuning's phase 2, "
        + "the scratch network, or feature extraction's head.")]
    public bool AutoLearningRate { get; init; }
    /// <summary>
    /// The most wall time the run should take, from opening the data to the trained model. With the auto strategy the
    /// advisor leaves out strategies whose estimated time does not fit what it leaves; live training (fine-tuning,
    /// scratch) plans only the epochs that fit the time left (at least one), its learning-rate schedule compressed to end
    /// there, and keeps its best epoch; the epoch under way and the final scoring may pass the budget. Null: no limit.
    /// </summary>
    [Description("The most wall time the run may take (e.g. 15m, 1h30m, 90s): auto leaves out strategies that would not fit, and "
        + "fine-tuning or scratch training runs only the epochs that fit (at least one), its learning-rate schedule compressed to end there.")]
    public TimeSpan? TimeBudget { get; init; }
    /// <summary>
    /// Weigh each class's loss by n / (classes x its count), for imbalanced data; on multi-label data, each class's
    /// positive term by its negatives / positives (binary cross-entropy's pos_weight).
    /// </summary>
    [Description("Weigh each class's loss inversely to its frequency, for imbalanced data (multi-label: each label's positives by its negatives / positives).")]
    public bool BalancedClassWeights { get; init; }
    /// <summary>Live training saves here after every epoch (and when stopped); with <see cref="Resume"/> it continues from it.</summary>
    public string? CheckpointPath { get; init; }
    /// <summary>Continue from <see cref="CheckpointPath"/> when it holds a checkpoint of this run.</summary>
    [Description("Continue a stopped run from its checkpoint; the run's settings must be the same otherwise.")]
    public bool Resume { get; init; }
    /// <summary>Take features from this block instead of the trunk's last (earlier features are more generic).</summary>
    [Description("Take features from this block instead of the trunk's last (e.g. block_12, block4, mixed7): more generic, for data unlike ImageNet.")]
    public string? FeatureBlock { get; init; }
    /// <summary>Where the bottleneck cache lives; null for the user cache (~/.cache/graft).</summary>
    public string? CacheRoot { get; init; }
    /// <summary>Read and write the bottleneck cache.</summary>
    [Description("The bottleneck feature cache: features of images seen before are read from it, new ones written to it.")]
    public bool UseCache { get; init; } = true;
    /// <summary>An actions CSV written by the audit: its removals and relabellings apply to the training and validation images.</summary>
    [Description("An actions CSV written by the audit: leave out or relabel the images it names (training and validation only; the "
        + "test set stays as it is).")]
    public string? Exclude { get; init; }
    /// <summary>The frozen trunk's numbers: int8 runs it quantized, calibrated on the training images (feature extraction only; its features are cached apart).</summary>
    [Description("The frozen trunk's numbers (feature extraction only): float, or int8, quantized after a calibration pass over training "
        + "images: faster, at a small cost in accuracy. int8 features are cached apart; the model file keeps the calibration.")]
    public Precision Precision { get; init; }
    /// <summary>
    /// Where the run computes: every network, tensor and ONNX Runtime session is made there. Not part of a checkpoint's
    /// identity: a run stopped on one device may resume on another.
    /// </summary>
    [Description("Where to compute: cpu, or cuda (cuda:N for the GPU numbered N), which needs a CUDA build of Graft and an NVIDIA GPU.")]
    [JsonIgnore]
    public ComputeDevice Device { get; init; } = ComputeDevice.Cpu;

    /// <summary>Temperature scaling and the "none of these" detector, fitted on the validation images after training.</summary>
    public TrustOptions Trust { get; init; } = new();

    bool Scratch => Strategy == Strategy.Scratch;
    /// <summary>Whether <see cref="Backbone"/> is an ONNX file (any ONNX image model as a frozen trunk) rather than a registry name.</summary>
    public bool OnnxBackbone => OnnxBackboneOptions.IsOnnxFile(Backbone);
    /// <summary>The backbone this run uses.</summary>
    public string BackboneOrDefault => Backbone ?? (Scratch ? BackboneRegistry.All.First(b => !b.Pretrained) : BackboneRegistry.Default).Name;
    /// <summary>The hidden units this run uses.</summary>
    public int HiddenOrDefault => Hidden ?? (Scratch ? 64 : 0);
    /// <summary>The dropout this run uses.</summary>
    public double DropoutOrDefault => Dropout ?? (Scratch ? 0.5 : 0.2);
    /// <summary>The pooling this run uses.</summary>
    public Pooling PoolingOrDefault => Pooling ?? (Scratch ? Heads.Pooling.Flatten : Heads.Pooling.Gap);
    /// <summary>The fine-tuning recipe this run uses.</summary>
    public Recipe RecipeOrDefault => Recipes.Get(Recipe);
    /// <summary>What fine-tuning trains of the trunk in this run.</summary>
    public UnfreezeSpec UnfreezeOrDefault => Unfreeze ?? RecipeOrDefault.Unfreeze;
    /// <summary>Fine-tuning's phase 2 in this run: the recipe's, with the run's seed.</summary>
    public FitOptions FineTuneOrDefault => FineTune ?? RecipeOrDefault.FineTune with { Seed = Fit.Seed };
    /// <summary>The learning-rate schedule of this run's live phase.</summary>
    public LrSchedule ScheduleOrDefault => Schedule ?? (Scratch ? LrSchedule.Constant : RecipeOrDefault.Schedule);
    /// <summary>The discriminative factor of this run's fine-tuning.</summary>
    public double DiscriminativeOrDefault => DiscriminativeFactor ?? RecipeOrDefault.DiscriminativeFactor;
    /// <summary>The augmentation this run uses.</summary>
    public Augmentation AugmentationOrDefault => Augmentation ?? DefaultAugmentation(Strategy, RecipeOrDefault);

    /// <summary>What a strategy augments with unless told: the blog's heavy settings from scratch, the recipe's when fine-tuning.</summary>
    public static Augmentation DefaultAugmentation(Strategy strategy, Recipe? recipe = null) =>
        strategy == Strategy.Scratch ? Imaging.Augmentation.KerasBlog : (recipe ?? Recipes.Default).Augmentation;
}
