using TorchSharp;
using TorchSharp.Modules;
using Graft.Engine;
using Graft.Heads;
using static TorchSharp.torch;

namespace Graft.Runtime;

/// <summary>
/// The seam for running a frozen trunk: images [N,3,H,W] in, pooled features [N,C] out (or the feature map, for
/// the frozen part of a network being fine-tuned). Feature extraction, prediction and fine-tuning go through it,
/// so a faster runtime can replace the plain one.
/// </summary>
public interface ITrunkRunner : IDisposable
{
    /// <summary>Where <see cref="Features"/> takes its images and gives its features: where the trunk's weights are.</summary>
    Device Device { get; }
    Tensor Features(Tensor images);
}

/// <summary>
/// Chooses how frozen trunks run. ONNX Runtime by default: it is faster than libtorch alone and degrades far less
/// when the input pipeline decodes on the same cores (libtorch's OpenMP threads spin and contend, ONNX Runtime's
/// workers sleep); `graft bench` reports both (docs/benchmarks.md).
/// GRAFT_TRUNK_RUNTIME=torch selects the plain libtorch runner. ONNX Runtime runs on the CPU and on CUDA (its GPU
/// package); on any other libtorch device (meta, where tests trace devices) the trunk runs in libtorch.
/// </summary>
internal static class TrunkRunners
{
    public const string Variable = "GRAFT_TRUNK_RUNTIME";

    public static bool UseOnnxRuntime => Environment.GetEnvironmentVariable(Variable) is not ("torch" or "libtorch");

    /// <summary>A runner for the trunk's current weights, on their device (build a new one after the weights change or move).</summary>
    /// <param name="pooling">How features are pooled; null: the feature map itself.</param>
    public static ITrunkRunner Create(Graft.Backbones.Graph trunk, int inputSize, Pooling? pooling) =>
        UseOnnxRuntime && TorchDevices.Of(trunk).type is DeviceType.CPU or DeviceType.CUDA
            ? new OnnxTrunkRunner(trunk, inputSize, pooling)
            : new TorchTrunkRunner(trunk, pooling);

    /// <summary>
    /// The trunk quantized to int8 with its calibration (<see cref="Export.Int8Quantization"/>), pooled (null: the feature
    /// map), in ONNX Runtime whatever <see cref="Variable"/> says: libtorch has no int8 kernels for it.
    /// </summary>
    public static ITrunkRunner CreateInt8(Graft.Backbones.Graph trunk, int inputSize, Pooling? pooling, Export.Int8Calibration calibration) =>
        new OnnxTrunkRunner(Export.OnnxExport.TrunkModel(trunk, inputSize, pooling, calibration), inputSize, TorchDevices.Of(trunk));
}

/// <summary>The numbers a frozen trunk computes in: float32, or int8 (quantized, calibrated on the user's images; feature extraction only).</summary>
public enum Precision
{
    /// <summary>float32: the trunk as its weights are.</summary>
    Float,
    /// <summary>int8 weights and uint8 activations (ONNX Runtime's QLinearConv), with a calibration stored in the model.</summary>
    Int8,
}

/// <summary>
/// An ONNX image model as the trunk (<see cref="Inference.OnnxTrunk"/>, owned by its backbone): images [N,3,S,S] in, its
/// pooled features [N,C] out, on <paramref name="device"/> (where the head is).
/// </summary>
internal sealed class ExternalTrunkRunner(Inference.OnnxTrunk trunk, Device device) : ITrunkRunner
{
    public Device Device => device;

    public Tensor Features(Tensor images)
    {
        using var scope = NewDisposeScope();
        int n = (int)images.shape[0];
        var pixels = images.detach().to(float32).cpu().contiguous().data<float>().ToArray();
        return tensor(trunk.Features(pixels, n), [n, trunk.Channels], device: device).MoveToOuterDisposeScope();
    }

    /// <summary>Nothing to release: the trunk belongs to its backbone.</summary>
    public void Dispose() { }
}

/// <summary>The plain runner: the TorchSharp trunk without autograd, then the head's pooling (if any).</summary>
internal sealed class TorchTrunkRunner(Graft.Backbones.Graph trunk, Pooling? pooling = Pooling.Gap) : ITrunkRunner
{
    public Device Device { get; } = TorchDevices.Of(trunk);

    public Tensor Features(Tensor images)
    {
        trunk.eval();
        if (pooling is not { } p)
        {
            // A map feeds layers that train: no_grad, as inference_mode's tensors cannot enter autograd later.
            using var noGrad = no_grad();
            return trunk.forward(images);
        }
        using var _ = inference_mode();
        using var map = trunk.forward(images);
        return HeadConfig.Pool(map, p);
    }

    /// <summary>Nothing to release: the trunk belongs to its backbone.</summary>
    public void Dispose() { }
}
