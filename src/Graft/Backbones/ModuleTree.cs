using TorchSharp;

namespace Graft.Backbones;

public static class ModuleTree
{
    /// <summary>A module's descendants in execution order (libtorch's own listing is breadth-first).</summary>
    public static IEnumerable<torch.nn.Module> Descendants(torch.nn.Module module)
    {
        foreach (var (_, child) in module.named_children())
        {
            yield return child;
            foreach (var grandchild in Descendants(child)) yield return grandchild;
        }
    }
}
