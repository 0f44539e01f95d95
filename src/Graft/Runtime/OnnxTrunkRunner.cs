using Graft.Engine;
using Graft.Export;
using Graft.Heads;
using Microsoft.ML.OnnxRuntime;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Graft.Runtime;

/// <summary>
/// Runs a frozen trunk in ONNX Runtime instead of libtorch: the trunk and the head's pooling are exported to
/// ONNX in memory (<see cref="OnnxExport.TrunkModel"/>) and run by one session that spreads each batch's
/// operators over every core. Images [N,3,S,S] in, pooled features [N,C] out, as <see cref="TorchTrunkRunner"/>. On a CUDA
/// device the session runs on that GPU (ONNX Runtime's CUDA provider), taking and giving host memory.
/// </summary>
internal sealed class OnnxTrunkRunner : ITrunkRunner, IDisposable
{
    readonly SessionOptions _options;
    readonly InferenceSession _session;
    readonly RunOptions _run = new();
    readonly int _inputSize;
    readonly long[] _outputDims;

    /// <param name="pooling">How the output is pooled; null: the feature map itself.</param>
    /// <param name="options">Session options (taken over and disposed); null for Graft's tuned ones.</param>
    public OnnxTrunkRunner(Graft.Backbones.Graph trunk, int inputSize, Pooling? pooling = Pooling.Gap, SessionOptions? options = null)
        : this(OnnxExport.TrunkModel(trunk, inputSize, pooling), inputSize, TorchDevices.Of(trunk), options) { }

    /// <summary>Runs a trunk model already exported (<see cref="OnnxExport.TrunkModel"/>: input "images", output "features").</summary>
    /// <param name="device">Where it runs and gives its features.</param>
    /// <param name="options">Session options (taken over and disposed); null for Graft's tuned ones on <paramref name="device"/>.</param>
    public OnnxTrunkRunner(byte[] model, int inputSize, Device device, SessionOptions? options = null)
    {
        _inputSize = inputSize;
        Device = device;
        try
        {
            _options = options ?? Inference.ModelFile.SessionOptions(TorchDevices.CudaIndex(device));
            _session = new InferenceSession(model, _options);
        }
        catch
        {
            _options?.Dispose();
            options?.Dispose();
            _run.Dispose();
            throw;
        }
        _outputDims = _session.OutputMetadata[OnnxExport.FeaturesOutput].Dimensions.Skip(1).Select(d => (long)d).ToArray();
    }

    public Device Device { get; }

    public Tensor Features(Tensor images)
    {
        if (images.dim() != 4 || images.shape[1] != 3 || images.shape[2] != _inputSize || images.shape[3] != _inputSize)
            throw new ArgumentException($"Expected images [N,3,{_inputSize},{_inputSize}], got [{string.Join(",", images.shape)}].", nameof(images));
        using var scope = NewDisposeScope();
        var input = images.detach().to(float32).cpu().contiguous();
        var features = empty([images.shape[0], .. _outputDims], device: CPU); // ONNX Runtime writes host memory
        if (images.shape[0] == 0) return features.to(Device).MoveToOuterDisposeScope();
        unsafe
        {
            // Both tensors are contiguous CPU memory that libtorch does not move: ONNX Runtime reads the images
            // and writes the features in place, without a copy of the (19 MB at batch 32) input.
            fixed (byte* pixels = input.bytes, pooled = features.bytes)
            {
                using var inputValue = OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, TensorElementType.Float,
                    input.shape, (nint)pixels, input.numel() * sizeof(float));
                using var outputValue = OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, TensorElementType.Float,
                    features.shape, (nint)pooled, features.numel() * sizeof(float));
                _session.Run(_run, [OnnxExport.ImagesInput], [inputValue], [OnnxExport.FeaturesOutput], [outputValue]);
            }
        }
        return features.to(Device).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        _session.Dispose();
        _run.Dispose();
        _options.Dispose();
    }
}
