using Graft.Backbones.Layers;

namespace Graft.Backbones;

/// <summary>
/// Builds a <see cref="Graph"/> the way Keras application code reads: each call adds one named layer on top of
/// earlier nodes and returns the new node. Tracks channels and spatial size, so layers get their input widths
/// and a too-small input fails with the layer that runs out of pixels. With folded batch norm (TFLite files)
/// BatchNormalization adds nothing and every convolution carries the bias the folding produced.
/// </summary>
internal sealed class GraphBuilder
{
    readonly List<GraphNode> _nodes = [];
    readonly Dictionary<string, int> _autoNames = [];
    readonly string _network;

    /// <summary>The block the next layers belong to (Keras's stage or block prefix).</summary>
    public string Block { get; set; } = "stem";
    public bool FoldedBatchNorm { get; }

    public GraphBuilder(string network, int inputSize, bool foldedBatchNorm, string inputName = "input_1")
    {
        _network = network;
        FoldedBatchNorm = foldedBatchNorm;
        _nodes.Add(new GraphNode(inputName, null, [], "input", 3, inputSize));
    }

    public int Input => 0;
    public int Channels(int node) => _nodes[node].Channels;
    public int Size(int node) => _nodes[node].Size;

    public int Add(Layer layer, params int[] inputs)
    {
        var first = _nodes[inputs[0]];
        int size = first.Size == 0 ? 0 : layer.OutputSize(first.Size);
        if (first.Size > 0 && size < 1 && layer is not (Layers.Flatten or Layers.Reshape or Layers.GlobalAveragePooling2D))
            throw new GraftException($"{_network}: an input of {_nodes[0].Size}x{_nodes[0].Size} is too small; layer {layer.Name} gets {first.Size}x{first.Size} pixels and would output none.",
                "Use a larger --input-size (graft models lists each network's minimum).");
        _nodes.Add(new GraphNode(layer.Name, layer, inputs, Block, layer.OutputChannels(inputs.Select(Channels).ToArray(), first.Size), size));
        return _nodes.Count - 1;
    }

    /// <summary>Keras's automatic layer names in a fresh session: conv2d, conv2d_1, conv2d_2, …</summary>
    public string AutoName(string prefix)
    {
        int n = _autoNames.GetValueOrDefault(prefix);
        _autoNames[prefix] = n + 1;
        return n == 0 ? prefix : $"{prefix}_{n}";
    }

    public int Conv2D(string name, int x, int filters, (int, int) kernel, (int, int)? strides = null, Padding padding = Padding.Valid,
        bool useBias = true, Activation activation = Layers.Activation.Linear, int groups = 1) =>
        Add(new Conv2D(name, Channels(x), filters, kernel, strides ?? (1, 1), padding, useBias || FoldedBatchNorm, activation, groups), x);

    public int Conv2D(string name, int x, int filters, int kernel, int strides = 1, Padding padding = Padding.Valid,
        bool useBias = true, Activation activation = Layers.Activation.Linear, int groups = 1) =>
        Conv2D(name, x, filters, (kernel, kernel), (strides, strides), padding, useBias, activation, groups);

    public int DepthwiseConv2D(string name, int x, int kernel, int strides = 1, Padding padding = Padding.Valid, bool useBias = true) =>
        Add(new DepthwiseConv2D(name, Channels(x), (kernel, kernel), (strides, strides), padding, useBias || FoldedBatchNorm, Layers.Activation.Linear), x);

    public int SeparableConv2D(string name, int x, int filters, int kernel, Padding padding = Padding.Valid, bool useBias = true, int strides = 1) =>
        Add(new SeparableConv2D(name, Channels(x), filters, (kernel, kernel), (strides, strides), padding, useBias || FoldedBatchNorm, Layers.Activation.Linear), x);

    public int BatchNormalization(string name, int x, double epsilon = 1e-3, bool scale = true) =>
        FoldedBatchNorm ? x : Add(new BatchNormalization(name, Channels(x), epsilon, scale: scale), x);

    public int Activation(string name, int x, Activation activation) => Add(new ActivationLayer(name, activation), x);

    /// <summary>Keras's ReLU layer (MobileNets: ReLU(6.)).</summary>
    public int ReLU(string name, int x, bool six) => Add(new ActivationLayer(name, six ? Layers.Activation.Relu6 : Layers.Activation.Relu, "ReLU"), x);

    public int MaxPooling2D(string name, int x, int pool, int strides, Padding padding = Padding.Valid) =>
        Add(new Pooling2D(name, true, (pool, pool), (strides, strides), padding), x);

    public int AveragePooling2D(string name, int x, int pool, int strides, Padding padding = Padding.Valid) =>
        Add(new Pooling2D(name, false, (pool, pool), (strides, strides), padding), x);

    public int ZeroPadding2D(string name, int x, (int Top, int Bottom) rows, (int Left, int Right) columns) =>
        Add(new ZeroPadding2D(name, rows.Top, rows.Bottom, columns.Left, columns.Right), x);

    /// <summary>
    /// Keras's <c>imagenet_utils.correct_pad</c> as a ZeroPadding2D: TensorFlow SAME's padding for a window of
    /// <paramref name="kernel"/> at stride 2 on this map, made explicit before a VALID strided layer.
    /// </summary>
    public int CorrectPad(string name, int x, int kernel)
    {
        int after = kernel / 2, before = after - (1 - Size(x) % 2);
        return ZeroPadding2D(name, x, (before, after), (before, after));
    }

    public int Cropping2D(string name, int x, (int Top, int Bottom) rows, (int Left, int Right) columns) =>
        Add(new Cropping2D(name, rows.Top, rows.Bottom, columns.Left, columns.Right), x);

    public int Sum(string name, params int[] xs) => Add(new Add(name), xs);

    /// <summary>x + branch · scale (InceptionResNetV2's <c>CustomScaleLayer</c>).</summary>
    public int ScaledSum(string name, int x, int branch, double scale) => Add(new CustomScaleLayer(name, scale), x, branch);
    public int Concatenate(string name, params int[] xs) => Add(new Concatenate(name), xs);
    public int GlobalAveragePooling2D(string name, int x, bool keepDims = false) => Add(new GlobalAveragePooling2D(name, keepDims), x);
    public int Flatten(string name, int x) => Add(new Flatten(name), x);
    public int Dropout(string name, int x, double rate, bool perSample = false) => Add(new Dropout(name, rate, perSample), x);
    public int Multiply(string name, int x, int gate) => Add(new Multiply(name), x, gate);
    public int Rescaling(string name, int x, float[] scale, float[] offset) => Add(new Rescaling(name, scale, offset), x);
    public int Normalization(string name, int x, float[] mean, float[] variance, bool stored) => Add(new Normalization(name, mean, variance, stored), x);
    public int LayerNormalization(string name, int x, double epsilon) => Add(new LayerNormalization(name, Channels(x), epsilon), x);
    public int LayerScale(string name, int x) => Add(new LayerScale(name, Channels(x)), x);
    public int Reshape(string name, int x, bool toMap) => Add(new Reshape(name, toMap), x);

    public int Dense(string name, int x, int units, Activation activation = Layers.Activation.Linear) =>
        Add(new Dense(name, Channels(x), units, activation), x);

    /// <summary>Keras's usual ImageNet top: global average pooling, then the classifier <c>predictions</c> (its softmax is Graft's).</summary>
    public void PooledClassifier(string poolName, int x, int classes)
    {
        Block = "top";
        Dense("predictions", GlobalAveragePooling2D(poolName, x), classes);
    }

    public Graph Build() => new(_nodes);
}
