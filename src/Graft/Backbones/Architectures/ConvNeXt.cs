using Graft.Backbones.Layers;

namespace Graft.Backbones.Architectures;

/// <summary>
/// ConvNeXt Tiny, Small, Base, Large and XLarge (Liu et al. 2022) exactly as keras.applications.convnext builds them:
/// <c>NAME_prestem_normalization</c> (ImageNet mean and variance over 0..255 pixels, constants), a 4x4/4 stem, four
/// stages of ConvNeXt blocks (7x7 depthwise Conv2D → LayerNormalization → Dense 4C → GELU → Dense C → LayerScale →
/// an identity Activation, added to the block's input by an operator node Keras 3 names add_N) with 2x2/2
/// downsampling blocks between them. Keras's stem and downsampling blocks are nested Sequential models: their layers
/// are listed here one by one (Keras's summary with expand_nested), and their files keep them in nested groups,
/// which the weight readers take apart. Stochastic depth is off in Keras's ImageNet builds (drop_path_rate 0).
/// Without the top Keras ends in a LayerNormalization (<c>layer_normalization</c>) at every position.
/// </summary>
internal static class ConvNeXt
{
    const double Epsilon = 1e-6;

    /// <summary>A variant: its Keras name (convnext_tiny …), blocks per stage and channels per stage.</summary>
    public static Func<ArchitectureOptions, Graph> Variant(string name, int[] depths, int[] channels) => o => Build(name, depths, channels, o);

    /// <summary>The residual sum that ends the last block (add_17 in Tiny, add_35 in the deeper variants): the trunk's end with the top.</summary>
    public static string LastAdd(int[] depths) => $"add_{depths.Sum() - 1}";

    static Graph Build(string name, int[] depths, int[] channels, ArchitectureOptions o)
    {
        var b = new GraphBuilder(name, o.InputSize, o.FoldedBatchNorm);
        b.Block = $"{name}_stem";
        int x = b.Normalization($"{name}_prestem_normalization", b.Input,
            EfficientNet.Map(EfficientNet.ImageNetMean, m => m * 255), EfficientNet.Map(EfficientNet.ImageNetStd, s => s * 255 * (s * 255)), stored: false);
        x = b.Conv2D($"{name}_stem_conv", x, channels[0], 4, strides: 4);
        x = b.LayerNormalization($"{name}_stem_layernorm", x, Epsilon);
        for (int stage = 0; stage < depths.Length; stage++)
        {
            if (stage > 0)
            {
                b.Block = $"{name}_downsampling_block_{stage - 1}";
                x = b.LayerNormalization($"{name}_downsampling_layernorm_{stage - 1}", x, Epsilon);
                x = b.Conv2D($"{name}_downsampling_conv_{stage - 1}", x, channels[stage], 2, strides: 2);
            }
            for (int j = 0; j < depths[stage]; j++) x = Block(b, x, $"{name}_stage_{stage}_block_{j}");
        }
        if (o.IncludeTop)
        {
            b.Block = "top";
            x = b.GlobalAveragePooling2D($"{name}_head_gap", x);
            x = b.LayerNormalization($"{name}_head_layernorm", x, Epsilon);
            b.Dense($"{name}_head_dense", x, o.Classes);
        }
        else
        {
            b.Block = "layer_normalization";
            b.LayerNormalization(b.AutoName("layer_normalization"), x, Epsilon);
        }
        return b.Build();
    }

    static int Block(GraphBuilder b, int input, string name)
    {
        b.Block = name;
        int channels = b.Channels(input);
        int x = b.Conv2D($"{name}_depthwise_conv", input, channels, 7, padding: Padding.Same, groups: channels);
        x = b.LayerNormalization($"{name}_layernorm", x, Epsilon);
        x = b.Dense($"{name}_pointwise_conv_1", x, 4 * channels);
        x = b.Activation($"{name}_gelu", x, Activation.Gelu);
        x = b.Dense($"{name}_pointwise_conv_2", x, channels);
        x = b.LayerScale($"{name}_layer_scale", x);
        x = b.Activation($"{name}_identity", x, Activation.Linear);
        return b.Sum(b.AutoName("add"), input, x);
    }
}
