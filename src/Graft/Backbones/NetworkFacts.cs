using Graft.Backbones.Architectures;
using static TorchSharp.torch;

namespace Graft.Backbones;

/// <summary>
/// What a registry network is, weights aside: its parameters as Keras's <c>model.summary()</c> totals them (batch
/// norm's moving statistics included) with and without the ImageNet top, the trunk's multiply-accumulates per image
/// and its feature channels, at the default input size.
/// </summary>
internal sealed record NetworkFacts(int InputSize, long ParametersWithTop, long Parameters, double GigaMacs, int FeatureChannels)
{
    static readonly Lock MetaDevice = new();

    public static NetworkFacts Of(BackboneConfig config)
    {
        var (withTop, _) = Inspect(config, new(config.InputSize, IncludeTop: true), full => (KerasTotal(full), 0));
        return Inspect(config, new(config.InputSize), trunk =>
            new NetworkFacts(config.InputSize, withTop, KerasTotal(trunk), GraphCost.Of(trunk).GigaMacs, trunk.Output.Channels));
    }

    /// <summary>
    /// Builds the network on libtorch's meta device, where tensors have shapes but no memory and no values, so the
    /// largest network costs milliseconds, and reads what <paramref name="read"/> reads (names, shapes, counts; no
    /// values). The meta device is libtorch's process-wide default meanwhile: meant for listing networks (graft
    /// models, tests), not beside training in the same process.
    /// </summary>
    public static T Inspect<T>(BackboneConfig config, ArchitectureOptions options, Func<Graph, T> read)
    {
        Engine.TorchRuntime.EnsureInitialized();
        lock (MetaDevice)
        {
            var before = get_default_device();
            set_default_device(new Device(TorchSharp.DeviceType.META));
            try
            {
                using var network = config.Build(options);
                return read(network);
            }
            finally { set_default_device(before); }
        }
    }

    static long KerasTotal(Graph network) => network.Layers.Sum(l => l.parameters().Sum(p => p.numel()) + l.StatisticsCount);
}
