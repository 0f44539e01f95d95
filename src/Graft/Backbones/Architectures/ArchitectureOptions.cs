namespace Graft.Backbones.Architectures;

/// <summary>
/// How to build one network, as Keras's application functions take it: the input size, whether to include the
/// ImageNet top and for how many classes; plus what the weight file says about itself: batch norm folded into the
/// convolutions (TFLite), or a batch-norm epsilon other than the architecture's (the older ResNet50 file).
/// The classifier's activation is left linear: Graft applies softmax itself.
/// </summary>
public sealed record ArchitectureOptions(int InputSize, bool IncludeTop = false, int Classes = 1000, bool FoldedBatchNorm = false,
    double? BatchNormEpsilon = null);
