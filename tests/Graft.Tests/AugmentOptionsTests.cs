using System.CommandLine;
using Graft.Cli;
using Graft.Data;
using Graft.Imaging;

namespace Graft.Tests;

public class AugmentOptionsTests
{
    static Augmentation? Read(Augmentation? fallback, params string[] args)
    {
        var options = new AugmentOptions();
        var command = new Command("train");
        options.AddTo(command);
        return options.Read(command.Parse(args), fallback);
    }

    [Fact]
    public void Settings_without_a_preset_are_the_whole_augmentation_as_in_keras()
    {
        Assert.Equal(Augmentation.Default, Read(Augmentation.Default));
        Assert.Null(Read(null));
        Assert.Equal(Augmentation.None with { RotationRange = 20 }, Read(Augmentation.Default, "--rotation", "20"));
        Assert.Equal(Augmentation.KerasBlog with { ZoomRange = 0, VerticalFlip = true }, Read(null, "--augment", "keras-blog", "--zoom", "0", "--flip", "both"));
    }

    [Fact]
    public void Fill_settings_alone_change_how_the_default_fills_not_whether_it_augments()
    {
        Assert.Equal(Augmentation.KerasBlog with { FillMode = FillMode.Constant, FillValue = 9 },
            Read(Augmentation.KerasBlog, "--fill-mode", "constant", "--fill-value", "9"));
        Assert.Null(Read(null, "--fill-mode", "reflect"));
    }
}
