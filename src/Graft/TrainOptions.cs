using System.ComponentModel;
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
    /// <summary>The pretrained network (a registry name, see <c>graft models</c>); null: the default (or the scratch CNN).</summary>
    public string? Backbone { get; init; }
    /// <summary>The network's input size (Keras's input_shape); null: the backbone's default.</summary>
    public int? InputSize { get; init; }
    /// <summary>The user's own weight file for the backbone (checked by structure, not hash); null: the registry's sources.</summary>
    public string? WeightsFile { get; init; }
    /// <summary>How the run trains (JSON and the command line spell it "feature-extraction", "fine-tune", "scratch" or "auto").</summary>
    public Strategy Strategy { get; init; } = Strategy.FeatureExtraction;
    /// <summary>Units of the head's hidden dense layer (0: none, a linear head); null: the strategy's default.</summary>
    public int? Hidden { get; init; }
    /// <summary>The head's dropout rate; null: the strategy's default.</summary>
    public double? Dropout { get; init; }
    /// <summary>Batch normalization in the head.</summary>
    public bool BatchNorm { get; init; }
    /// <summary>How the trunk's feature map becomes a vector: global average pooling or flatten; null: the strategy's default.</summary>
    public Pooling? Pooling { get; init; }
    /// <summary>A squeeze-and-excitation block on the trunk's output before the head.</summary>
    public bool SqueezeExcite { get; init; }
    /// <summary>Two classes as a single sigmoid output with binary cross-entropy.</summary>
    public bool Binary { get; init; }
    /// <summary>The share of the images held out for validation when DATA has no validation folder.</summary>
    public double ValidationSplit { get; init; } = 0.2;
    /// <summary>The share of the images held out as a test set, measured only after training, when DATA has no test folder (0: none).</summary>
    public double TestSplit { get; init; }
    /// <summary>How a photo becomes the network's square input.</summary>
    public ResizeMode Resize { get; init; } = ResizeMode.CenterCrop;
    /// <summary>Training of the head on cached features (feature extraction, fine-tuning's phase 1) or of the scratch network.</summary>
    public FitOptions Fit { get; init; } = new();
    /// <summary>Fine-tuning's phase 2: the unfrozen top of the trunk with the head, on live images (the Keras blog's SGD 1e-4, momentum 0.9).</summary>
    public FitOptions FineTune { get; init; } = new(Epochs: 10, LearningRate: 1e-4, Optimizer: OptimizerKind.Sgd);
    /// <summary>What fine-tuning trains of the trunk; null: the top 2 blocks, or what <see cref="Strategy.Auto"/> advises.</summary>
    public UnfreezeSpec? Unfreeze { get; init; }
    /// <summary>Live augmentation (fine-tuning, scratch); null: the strategy's default.</summary>
    public Augmentation? Augmentation { get; init; }
    /// <summary>The learning-rate schedule of live training.</summary>
    public LrSchedule Schedule { get; init; } = LrSchedule.Constant;
    /// <summary>Fine-tuning: each unfrozen block's learning rate is this times the one above it (1: all equal).</summary>
    public double DiscriminativeFactor { get; init; } = 1.0;
    /// <summary>Weigh each class's loss by n / (classes x its count), for imbalanced data.</summary>
    public bool BalancedClassWeights { get; init; }
    /// <summary>Live training saves here after every epoch (and when stopped); with <see cref="Resume"/> it continues from it.</summary>
    public string? CheckpointPath { get; init; }
    /// <summary>Continue from <see cref="CheckpointPath"/> when it holds a checkpoint of this run.</summary>
    public bool Resume { get; init; }
    /// <summary>Take features from this block instead of the trunk's last (earlier features are more generic).</summary>
    public string? FeatureBlock { get; init; }
    /// <summary>Where the bottleneck cache lives; null for the user cache (~/.cache/graft).</summary>
    public string? CacheRoot { get; init; }
    /// <summary>Read and write the bottleneck cache.</summary>
    public bool UseCache { get; init; } = true;
    /// <summary>An actions CSV written by the audit: its removals and relabellings apply to the training and validation images.</summary>
    public string? Exclude { get; init; }
    /// <summary>The frozen trunk's numbers: int8 runs it quantized, calibrated on the training images (feature extraction only; its features are cached apart).</summary>
    public Precision Precision { get; init; }
    /// <summary>
    /// Where the run computes: every network, tensor and ONNX Runtime session is made there. Not part of a checkpoint's
    /// identity: a run stopped on one device may resume on another.
    /// </summary>
    [Description("Where to compute: cpu, or cuda (cuda:N for the GPU numbered N), which needs a CUDA build of Graft and an NVIDIA GPU.")]
    [JsonIgnore]
    public ComputeDevice Device { get; init; } = ComputeDevice.Cpu;

    bool Scratch => Strategy == Strategy.Scratch;
    /// <summary>The backbone this run uses.</summary>
    public string BackboneOrDefault => Backbone ?? (Scratch ? BackboneRegistry.All.First(b => !b.Pretrained) : BackboneRegistry.Default).Name;
    /// <summary>The hidden units this run uses.</summary>
    public int HiddenOrDefault => Hidden ?? (Scratch ? 64 : 0);
    /// <summary>The dropout this run uses.</summary>
    public double DropoutOrDefault => Dropout ?? (Scratch ? 0.5 : 0.2);
    /// <summary>The pooling this run uses.</summary>
    public Pooling PoolingOrDefault => Pooling ?? (Scratch ? Heads.Pooling.Flatten : Heads.Pooling.Gap);
    /// <summary>What fine-tuning trains of the trunk in this run.</summary>
    public UnfreezeSpec UnfreezeOrDefault => Unfreeze ?? UnfreezeSpec.Default;
    /// <summary>The augmentation this run uses.</summary>
    public Augmentation AugmentationOrDefault => Augmentation ?? DefaultAugmentation(Strategy);

    /// <summary>What a strategy augments with unless told: the blog's heavy settings from scratch, mild ones otherwise.</summary>
    public static Augmentation DefaultAugmentation(Strategy strategy) =>
        strategy == Strategy.Scratch ? Imaging.Augmentation.KerasBlog : Imaging.Augmentation.Default;
}
