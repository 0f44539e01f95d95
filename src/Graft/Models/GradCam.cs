using Graft.Heads;
using Graft.Imaging;
using TorchSharp;
using static TorchSharp.torch;

namespace Graft.Models;

/// <summary>
/// Grad-CAM (Selvaraju et al., 2017) on the trunk's last feature map: each channel weighted by the mean over positions of
/// the gradient of the class's logit, summed over channels. For a linear head on global average pooling the gradient is
/// the dense weight over the number of positions, so this is exactly the class activation map (CAM, Zhou et al. 2016)
/// that the ONNX network computes; deeper heads (hidden layers, batch norm, squeeze-excitation) need the gradient.
/// </summary>
internal static class GradCam
{
    /// <summary>Each image's heat map of <paramref name="classes"/>[i] from its feature map [N, C, H, W].</summary>
    public static HeatMap[] Maps(Tensor featureMap, nn.Module<Tensor, Tensor> head, Pooling pooling, IReadOnlyList<int> classes)
    {
        using var scope = NewDisposeScope();
        using var _ = enable_grad();
        head.eval();
        var map = featureMap.detach().requires_grad_(true);
        var logits = head.forward(HeadConfig.Pool(map, pooling));
        var chosen = tensor(classes.Select(c => (long)c).ToArray(), device: map.device);
        // A binary head's one logit is the second class's evidence and, negated, the first's.
        var score = logits.shape[1] == 1 ? logits.squeeze(1) * (chosen.to(float32) * 2 - 1) : logits.gather(1, chosen.unsqueeze(1)).squeeze(1);
        var gradient = autograd.grad([score.sum()], [map])[0];
        var activation = (gradient.mean([2, 3], keepdim: true) * map).sum(1).detach(); // [N, H, W]
        int rows = (int)activation.shape[1], columns = (int)activation.shape[2];
        var values = activation.contiguous().data<float>().ToArray();
        return Enumerable.Range(0, classes.Count)
            .Select(i => HeatMap.FromActivation(values.AsSpan(i * rows * columns, rows * columns), rows, columns)).ToArray();
    }
}
