using Graft.Backbones;
using Graft.Backbones.Architectures;

namespace Graft.Tests;

/// <summary>The networks of keras.applications as the registry builds them, against what Keras publishes.</summary>
public class ApplicationsTests
{
    /// <summary>
    /// Parameters with the ImageNet top at the default input size (batch norm's moving statistics included), as
    /// <c>model.summary()</c> totals them and keras.io/api/applications publishes them; built without memory, never run.
    /// </summary>
    [Theory]
    [InlineData("vgg16", 138_357_544)]
    [InlineData("vgg19", 143_667_240)]
    [InlineData("resnet50", 25_636_712)]
    [InlineData("resnet101", 44_707_176)]
    [InlineData("resnet152", 60_419_944)]
    [InlineData("resnet50_v2", 25_613_800)]
    [InlineData("resnet101_v2", 44_675_560)]
    [InlineData("resnet152_v2", 60_380_648)]
    [InlineData("inception_v3", 23_851_784)]
    [InlineData("inception_resnet_v2", 55_873_736)]
    [InlineData("xception", 22_910_480)]
    [InlineData("mobilenet", 4_253_864)]
    [InlineData("mobilenet_v2", 3_538_984)]
    [InlineData("densenet121", 8_062_504)]
    [InlineData("densenet169", 14_307_880)]
    [InlineData("densenet201", 20_242_984)]
    [InlineData("nasnet_mobile", 5_326_716)]
    [InlineData("nasnet_large", 88_949_818)]
    [InlineData("efficientnet_b0", 5_330_571)]
    [InlineData("efficientnet_b1", 7_856_239)]
    [InlineData("efficientnet_b2", 9_177_569)]
    [InlineData("efficientnet_b3", 12_320_535)]
    [InlineData("efficientnet_b4", 19_466_823)]
    [InlineData("efficientnet_b5", 30_562_527)]
    [InlineData("efficientnet_b6", 43_265_143)]
    [InlineData("efficientnet_b7", 66_658_687)]
    [InlineData("efficientnet_v2_b0", 7_200_312)]
    [InlineData("efficientnet_v2_b1", 8_212_124)]
    [InlineData("efficientnet_v2_b2", 10_178_374)]
    [InlineData("efficientnet_v2_b3", 14_467_622)]
    [InlineData("efficientnet_v2_s", 21_612_360)]
    [InlineData("efficientnet_v2_m", 54_431_388)]
    [InlineData("efficientnet_v2_l", 119_027_848)]
    [InlineData("mobilenet_v3_small", 2_554_968)]
    [InlineData("mobilenet_v3_large", 5_507_432)]
    [InlineData("convnext_tiny", 28_589_128)]
    [InlineData("convnext_small", 50_223_688)]
    [InlineData("convnext_base", 88_591_464)]
    [InlineData("convnext_large", 197_767_336)]
    [InlineData("convnext_xlarge", 350_196_968)]
    public void Totals_with_the_top_are_kerass_published_ones(string name, long published)
    {
        Assert.Equal(published, NetworkFacts.Of(BackboneRegistry.Get(name)).ParametersWithTop);
    }

    /// <summary>
    /// The registry's feature layer is the network's last layer without its top, so the trunk is the same either way
    /// (ConvNeXt's aside, whose top replaces the last normalization: with the top its trunk ends at
    /// <see cref="BackboneConfig.FeatureLayerWithTop"/>, a layer of the network).
    /// </summary>
    [Fact]
    public void The_feature_layer_is_the_last_layer_before_the_top()
    {
        foreach (var config in BackboneRegistry.All)
        {
            var (output, blocks) = NetworkFacts.Inspect(config, new ArchitectureOptions(config.InputSize), n => (n.Output.Name, n.Blocks));
            Assert.Equal(config.FeatureLayer, output);
            Assert.Contains(config.GenericFeatureBlock, blocks);
            if (config.FeatureLayerWithTop is { } withTop)
                Assert.Contains(withTop, NetworkFacts.Inspect(config, new ArchitectureOptions(config.InputSize, IncludeTop: true), n => n.Nodes.Select(node => node.Name).ToList()));
        }
    }
}
