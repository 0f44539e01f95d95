using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Graft.Engine;

/// <summary>
/// The seam for running a frozen trunk: images [N,3,H,W] in, pooled features [N,C] out. Feature
/// extraction and prediction go through it, so a faster runtime can replace the plain one.
/// </summary>
public interface ITrunkRunner
{
    Tensor Features(Tensor images);
}

/// <summary>The plain runner: the TorchSharp trunk in inference mode, then the head's pooling.</summary>
public sealed class TorchTrunkRunner(Sequential trunk, Training.Pooling pooling = Training.Pooling.Gap) : ITrunkRunner
{
    public Tensor Features(Tensor images)
    {
        trunk.eval();
        using var _ = inference_mode();
        using var map = trunk.forward(images);
        return Training.HeadConfig.Pool(map, pooling);
    }
}
