using Graft.Inference;
using TorchSharp;
using static TorchSharp.torch;

namespace Graft.Engine;

/// <summary>
/// The libtorch side of a <see cref="ComputeDevice"/>. A run resolves its device once (<see cref="Resolve"/>, which refuses
/// CUDA where this build or machine lacks it, before anything runs) and moves its networks there; from then on tensors are
/// made where the module that takes them lives (<see cref="Of"/>), so the device is said in one place, the options.
/// </summary>
internal static class TorchDevices
{
    /// <summary>
    /// libtorch's device for <paramref name="device"/>, checked: CUDA needs a libtorch built with it that sees the GPU, and
    /// ONNX Runtime's CUDA provider (frozen trunks and the model file's network run there).
    /// </summary>
    /// <exception cref="GraftException">CUDA was asked for and cannot be used here.</exception>
    public static Device Resolve(ComputeDevice device)
    {
        TorchRuntime.EnsureInitialized();
        if (device.CudaIndex is not { } index) return CPU;
        var name = device.ToString();
        bool available;
        // TorchSharp looks for its CUDA backend here: a CPU build has none, which it may say by throwing.
        try { available = torch.cuda.is_available(); }
        catch (Exception e) when (e is NotSupportedException or InvalidOperationException or DllNotFoundException)
        {
            throw ModelFile.NoCuda(name, $"this libtorch has no CUDA ({GraftException.FirstLine(e.Message)})");
        }
        if (!available)
            throw ModelFile.NoCuda(name, "this libtorch sees no CUDA device (TorchSharp-cpu, or no NVIDIA driver)");
        int count = torch.cuda.device_count();
        if (index >= count)
            throw ModelFile.NoCuda(name, $"libtorch sees {count} CUDA device(s), numbered from 0");
        ModelFile.CheckCuda(index);
        return new Device(DeviceType.CUDA, index);
    }

    /// <summary>The GPU's number when <paramref name="device"/> is a CUDA one (ONNX Runtime's CUDA provider takes it); else null.</summary>
    public static int? CudaIndex(Device device) => device.type == DeviceType.CUDA ? Math.Max(0, (int)device.index) : null;

    /// <summary>Where a module's weights live (the CPU for a module without any): where the tensors it takes are made.</summary>
    public static Device Of(nn.Module module) =>
        module.parameters().Select(p => p.device).Concat(module.buffers().Select(b => b.device)).FirstOrDefault() ?? CPU;

    /// <summary>A batch of preprocessed images (CHW floats back to back, as the image pipeline gives them) as [N,3,S,S] on <paramref name="device"/>.</summary>
    public static Tensor Images(float[] pixels, int count, int size, Device device) => tensor(pixels, [count, 3, size, size], device: device);
}
