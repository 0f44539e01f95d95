using Graft.Backbones.Layers;

namespace Graft.Backbones.Architectures;

/// <summary>VGG16 and VGG19 (Simonyan and Zisserman 2014) exactly as keras.applications.vgg16 / vgg19 build them.</summary>
internal static class Vgg
{
    public static Graph Vgg16(ArchitectureOptions o) => Build("vgg16", [2, 2, 3, 3, 3], o);
    public static Graph Vgg19(ArchitectureOptions o) => Build("vgg19", [2, 2, 4, 4, 4], o);

    static Graph Build(string name, int[] convs, ArchitectureOptions o)
    {
        var b = new GraphBuilder(name, o.InputSize, o.FoldedBatchNorm);
        int x = b.Input;
        int[] filters = [64, 128, 256, 512, 512];
        for (int block = 1; block <= 5; block++)
        {
            b.Block = $"block{block}";
            for (int i = 1; i <= convs[block - 1]; i++)
                x = b.Conv2D($"block{block}_conv{i}", x, filters[block - 1], 3, padding: Padding.Same, activation: Activation.Relu);
            x = b.MaxPooling2D($"block{block}_pool", x, 2, 2);
        }
        if (o.IncludeTop)
        {
            b.Block = "top";
            x = b.Flatten("flatten", x);
            x = b.Dense("fc1", x, 4096, Activation.Relu);
            x = b.Dense("fc2", x, 4096, Activation.Relu);
            b.Dense("predictions", x, o.Classes);
        }
        return b.Build();
    }
}
