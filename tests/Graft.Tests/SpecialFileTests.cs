using System.Diagnostics;
using Graft.Cli.Commands;
using Graft.Data;
using Graft.Imaging;

namespace Graft.Tests;

/// <summary>
/// Issue 17 §7: only regular files are read (a named pipe in a data folder is skipped with a note, never opened, so
/// nothing waits for a writer for ever), and <c>graft predict MODEL -</c> (or <c>/dev/stdin</c>) reads standard input once.
/// </summary>
public class SpecialFileTests
{
    static void MakeFifo(string path)
    {
        using var mkfifo = Process.Start("mkfifo", [path])!;
        mkfifo.WaitForExit();
        Assert.Equal(0, mkfifo.ExitCode);
    }

    /// <summary>Runs <paramref name="work"/>, failing (not hanging) when it takes longer than 30 s.</summary>
    static T Within<T>(Func<T> work)
    {
        var task = Task.Run(work);
        Assert.True(task.Wait(TimeSpan.FromSeconds(30)), "it hung: a named pipe was opened");
        return task.Result;
    }

    [Fact]
    public void A_named_pipe_in_a_data_folder_is_skipped_with_a_note_and_never_opened()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 3, classes: 2, size: 16);
        MakeFifo(dir["data/red/pipe.png"]);
        Assert.Equal("a named pipe (FIFO)", FileKind.NotRegular(dir["data/red/pipe.png"]));
        Assert.Null(FileKind.NotRegular(dir["data/red/0.png"]));

        var dataset = Within(() => ImageFolder.OpenForTraining(dir["data"], validationSplit: 0));
        Assert.Equal(6, dataset.Train.Count);
        Assert.DoesNotContain(dataset.Train, i => i.Path.EndsWith("pipe.png"));
        Assert.Contains(dataset.Notes, n => n.Contains("1 file that is not a regular file skipped") && n.Contains("pipe.png (a named pipe (FIFO))"));
        Assert.Equal(6, Within(() => PredictCommand.ListImages(dir["data"])).Count);

        // Named directly, it is a bad image at once, not a wait.
        var e = Within(() => Assert.Throws<ImageDecodeException>(() => ImageLoader.LoadRgb(dir["data/red/pipe.png"], 32, ResizeMode.Squash)));
        Assert.Contains("named pipe", e.Reason);
    }

    [Fact]
    public void Predict_reads_one_image_from_standard_input()
    {
        using var dir = new TempDir();
        using (var model = Networks.ScratchModel(["a", "b"])) model.Save(dir["m.graft"]);
        TinyImages.WriteImage(dir["x.png"], TinyImages.Palette[0].Color, 40, new Random(1));
        var image = File.ReadAllBytes(dir["x.png"]);
        var fromFile = GraftCli.Run(null, "predict", dir["m.graft"], dir["x.png"]);
        Assert.Equal(0, fromFile.ExitCode);
        foreach (var name in new[] { "-", "/dev/stdin" })
        {
            var run = GraftCli.Run(null, image, "predict", dir["m.graft"], name);
            Assert.True(run.ExitCode == 0, run.Stderr);
            Assert.StartsWith("stdin: ", run.LastLine);
            Assert.Equal(fromFile.LastLine[(dir["x.png"].Length + 2)..], run.LastLine["stdin: ".Length..]); // the same prediction
        }
        var bad = GraftCli.Run(null, "not an image"u8.ToArray(), "predict", dir["m.graft"], "-");
        Assert.Equal(2, bad.ExitCode);
        Assert.StartsWith("graft: stdin: not a recognised image format.", Assert.Single(bad.Stderr.Trim().Split('\n')));
    }
}
