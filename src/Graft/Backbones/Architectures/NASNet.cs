using Graft.Backbones.Layers;

namespace Graft.Backbones.Architectures;

/// <summary>
/// NASNet-A (Zoph et al. 2018) exactly as keras.applications.nasnet builds it: the stem convolution, two reduction
/// cells (<c>stem_1</c>, <c>stem_2</c>), then three stacks of normal cells separated by reduction cells
/// (<c>reduce_N</c>), and a final ReLU. Every cell reads the two cells before it: the previous one's output and,
/// adjusted to its shape (<c>adjust_…</c>: a strided two-path 1x1 reduction, or a 1x1 projection), the one before.
/// NASNetMobile (4 @ 1056) feeds each reduction cell's input on; NASNetLarge (6 @ 4032) skips the reduction
/// (Keras's <c>skip_reduction</c>). The ReLUs, the adjust blocks' pad, crop and concatenation, and one add per
/// reduction cell are unnamed in Keras and carry its automatic names.
/// </summary>
internal static class NASNet
{
    const double Epsilon = 1e-3;

    public static Graph NASNetMobile(ArchitectureOptions o) => Build("nasnet_mobile", 1056, 4, 32, skipReduction: false, o);
    public static Graph NASNetLarge(ArchitectureOptions o) => Build("nasnet_large", 4032, 6, 96, skipReduction: true, o);

    static Graph Build(string network, int penultimateFilters, int blocks, int stemFilters, bool skipReduction, ArchitectureOptions o)
    {
        const int multiplier = 2;
        int filters = penultimateFilters / 24;
        var b = new GraphBuilder(network, o.InputSize, o.FoldedBatchNorm);
        b.Block = "stem";
        int x = b.Conv2D("stem_conv1", b.Input, stemFilters, 3, strides: 2, useBias: false);
        x = b.BatchNormalization("stem_bn1", x, Epsilon);
        int? p = null;
        (x, p) = ReductionCell(b, x, p, filters / (multiplier * multiplier), "stem_1");
        (x, p) = ReductionCell(b, x, p, filters / multiplier, "stem_2");
        for (int stack = 0; stack < 3; stack++)
        {
            if (stack > 0)
            {
                int reduced;
                (x, reduced) = ReductionCell(b, x, p, filters, $"reduce_{stack * blocks}");
                if (!skipReduction) p = reduced;
            }
            // Keras numbers normal cells 0…N-1, then N+1…2N, 2N+1…3N (reduce_N and reduce_2N between).
            for (int i = 0; i < blocks; i++) (x, p) = NormalCell(b, x, p, filters, $"{(stack == 0 ? i : stack * blocks + i + 1)}");
            filters *= multiplier;
        }
        b.Block = "post";
        x = b.Activation(b.AutoName("activation"), x, Activation.Relu);
        if (o.IncludeTop) b.PooledClassifier(b.AutoName("global_average_pooling2d"), x, o.Classes);
        return b.Build();
    }

    /// <summary>Keras's _normal_a_cell: returns the cell's output and its input (the next cell's second input).</summary>
    static (int, int) NormalCell(GraphBuilder b, int ip, int? previous, int filters, string id)
    {
        b.Block = $"normal_{id}";
        int p = Adjust(b, previous, ip, filters, id);
        int h = b.Activation(b.AutoName("activation"), ip, Activation.Relu);
        h = b.Conv2D($"normal_conv_1_{id}", h, filters, 1, padding: Padding.Same, useBias: false);
        h = b.BatchNormalization($"normal_bn_1_{id}", h, Epsilon);
        int x1 = b.Sum($"normal_add_1_{id}", SeparableBlock(b, h, filters, 5, 1, $"normal_left1_{id}"), SeparableBlock(b, p, filters, 3, 1, $"normal_right1_{id}"));
        int x2 = b.Sum($"normal_add_2_{id}", SeparableBlock(b, p, filters, 5, 1, $"normal_left2_{id}"), SeparableBlock(b, p, filters, 3, 1, $"normal_right2_{id}"));
        int x3 = b.Sum($"normal_add_3_{id}", b.AveragePooling2D($"normal_left3_{id}", h, 3, 1, Padding.Same), p);
        int x4 = b.Sum($"normal_add_4_{id}", b.AveragePooling2D($"normal_left4_{id}", p, 3, 1, Padding.Same),
            b.AveragePooling2D($"normal_right4_{id}", p, 3, 1, Padding.Same));
        int x5 = b.Sum($"normal_add_5_{id}", SeparableBlock(b, h, filters, 3, 1, $"normal_left5_{id}"), h);
        return (b.Concatenate($"normal_concat_{id}", p, x1, x2, x3, x4, x5), ip);
    }

    /// <summary>Keras's _reduction_a_cell: halves the map; returns the cell's output and its input.</summary>
    static (int, int) ReductionCell(GraphBuilder b, int ip, int? previous, int filters, string id)
    {
        b.Block = id;
        int p = Adjust(b, previous, ip, filters, id);
        int h = b.Activation(b.AutoName("activation"), ip, Activation.Relu);
        h = b.Conv2D($"reduction_conv_1_{id}", h, filters, 1, padding: Padding.Same, useBias: false);
        h = b.BatchNormalization($"reduction_bn_1_{id}", h, Epsilon);
        int h3 = b.CorrectPad($"reduction_pad_1_{id}", h, 3);
        int x1 = b.Sum($"reduction_add_1_{id}", SeparableBlock(b, h, filters, 5, 2, $"reduction_left1_{id}"),
            SeparableBlock(b, p, filters, 7, 2, $"reduction_right1_{id}"));
        int x2 = b.Sum($"reduction_add_2_{id}", b.MaxPooling2D($"reduction_left2_{id}", h3, 3, 2),
            SeparableBlock(b, p, filters, 7, 2, $"reduction_right2_{id}"));
        int x3 = b.Sum($"reduction_add3_{id}", b.AveragePooling2D($"reduction_left3_{id}", h3, 3, 2),
            SeparableBlock(b, p, filters, 5, 2, $"reduction_right3_{id}"));
        int x4 = b.Sum(b.AutoName("add"), x2, b.AveragePooling2D($"reduction_left4_{id}", x1, 3, 1, Padding.Same));
        int x5 = b.Sum($"reduction_add4_{id}", SeparableBlock(b, x1, filters, 3, 1, $"reduction_left4_{id}"),
            b.MaxPooling2D($"reduction_right5_{id}", h3, 3, 2));
        return (b.Concatenate($"reduction_concat_{id}", x2, x3, x4, x5), ip);
    }

    /// <summary>Keras's _separable_conv_block: twice ReLU → separable convolution → batch norm, the first at the stride.</summary>
    static int SeparableBlock(GraphBuilder b, int x, int filters, int kernel, int stride, string id)
    {
        x = b.Activation(b.AutoName("activation"), x, Activation.Relu);
        if (stride == 2) x = b.CorrectPad($"separable_conv_1_pad_{id}", x, kernel);
        x = b.SeparableConv2D($"separable_conv_1_{id}", x, filters, kernel, stride == 2 ? Padding.Valid : Padding.Same, useBias: false, strides: stride);
        x = b.BatchNormalization($"separable_conv_1_bn_{id}", x, Epsilon);
        x = b.Activation(b.AutoName("activation"), x, Activation.Relu);
        x = b.SeparableConv2D($"separable_conv_2_{id}", x, filters, kernel, Padding.Same, useBias: false);
        return b.BatchNormalization($"separable_conv_2_bn_{id}", x, Epsilon);
    }

    /// <summary>
    /// Keras's _adjust_block: the cell before last, made to fit this cell's input: itself when there is none before
    /// (the first cell); at twice the size, a ReLU then two strided 1x1 average poolings (the second shifted a pixel by
    /// a pad and a crop) each to half the filters, concatenated and normalized; with other channels, a 1x1 projection.
    /// </summary>
    static int Adjust(GraphBuilder b, int? previous, int ip, int filters, string id)
    {
        if (previous is not int p) return ip;
        if (b.Size(p) != b.Size(ip))
        {
            p = b.Activation($"adjust_relu_1_{id}", p, Activation.Relu);
            int p1 = b.AveragePooling2D($"adjust_avg_pool_1_{id}", p, 1, 2);
            p1 = b.Conv2D($"adjust_conv_1_{id}", p1, filters / 2, 1, padding: Padding.Same, useBias: false);
            int p2 = b.ZeroPadding2D(b.AutoName("zero_padding2d"), p, (0, 1), (0, 1));
            p2 = b.Cropping2D(b.AutoName("cropping2d"), p2, (1, 0), (1, 0));
            p2 = b.AveragePooling2D($"adjust_avg_pool_2_{id}", p2, 1, 2);
            p2 = b.Conv2D($"adjust_conv_2_{id}", p2, filters / 2, 1, padding: Padding.Same, useBias: false);
            return b.BatchNormalization($"adjust_bn_{id}", b.Concatenate(b.AutoName("concatenate"), p1, p2), Epsilon);
        }
        if (b.Channels(p) != filters)
        {
            p = b.Activation(b.AutoName("activation"), p, Activation.Relu);
            p = b.Conv2D($"adjust_conv_projection_{id}", p, filters, 1, padding: Padding.Same, useBias: false);
            return b.BatchNormalization($"adjust_bn_{id}", p, Epsilon);
        }
        return p;
    }
}
