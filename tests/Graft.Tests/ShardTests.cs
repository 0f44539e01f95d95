namespace Graft.Tests;

/// <summary>
/// Batch jobs that scale out: N processes with --shard K/N, each writing its own row file (JSON Lines, CSV, Parquet),
/// merged by graft merge, equal one process over the same photos, byte for byte; --resume finishes a file a stopped
/// job left cut short. On the shared hymenoptera validation photos with a tiny model (decoding dominates: seconds), and
/// the audit's features with MobileNetV2.
/// </summary>
public class ShardTests
{
    static readonly string Photos = Assets.Shared("data/hymenoptera/val");

    static string Run(params string[] args)
    {
        var result = GraftCli.Run(null, args);
        Assert.True(result.ExitCode == 0, $"graft {string.Join(' ', args)}: {result.Stderr}");
        return result.Stderr;
    }

    [Fact]
    public void Three_predict_shards_merged_equal_one_process_and_resume_finishes_a_cut_short_file()
    {
        using var dir = new TempDir();
        using (var model = Networks.ScratchModel(["ants", "bees"])) model.Save(dir["m.graft"]);
        Run("predict", dir["m.graft"], Photos, "--out", dir["all.jsonl"]);
        string[] shards = [dir["0.jsonl"], dir["1.csv"], dir["2.parquet"]];
        for (int k = 0; k < 3; k++) Run("predict", dir["m.graft"], Photos, "--shard", $"{k}/3", "--out", shards[k]);
        Run(["merge", dir["merged.jsonl"], .. shards]);

        var all = File.ReadAllLines(dir["all.jsonl"]);
        Assert.Equal(153, all.Length);
        Assert.Equal(all, File.ReadAllLines(dir["merged.jsonl"]));
        var sizes = shards.Select(s => Graft.Cli.RowFile.Read(s).Count).ToList();
        Assert.Equal(153, sizes.Sum());
        Assert.All(sizes, n => Assert.InRange(n, 20, 90)); // a hash spreads the files, not a prefix

        // A job stopped while writing: its file ends in half a line; --resume keeps the whole lines and does the rest.
        var text = File.ReadAllText(dir["0.jsonl"]);
        File.WriteAllText(dir["0.jsonl"], text[..(text.Length / 2)]);
        var log = Run("predict", dir["m.graft"], Photos, "--shard", "0/3", "--out", dir["0.jsonl"], "--resume");
        Assert.Contains("already there", log);
        Assert.Equal(text, File.ReadAllText(dir["0.jsonl"]));

        var twice = GraftCli.Run(null, "merge", dir["again.jsonl"], shards[0], shards[0]);
        Assert.Equal(2, twice.ExitCode);
        Assert.Contains("in both", twice.Stderr);
        Assert.Contains("--shard 3/3", GraftCli.Run(null, "predict", dir["m.graft"], Photos, "--shard", "3/3").Stderr);
    }

    [Fact]
    public void Two_embed_shards_merged_equal_one_process()
    {
        using var dir = new TempDir();
        using (var model = Networks.ScratchModel(["ants", "bees"])) model.Save(dir["m.graft"]);
        Run("embed", dir["m.graft"], Photos, "--out", dir["all.csv"]);
        Run("embed", dir["m.graft"], Photos, "--shard", "0/2", "--out", dir["0.parquet"]);
        Run("embed", dir["m.graft"], Photos, "--shard", "1/2", "--out", dir["1.jsonl"]);
        Run("merge", dir["merged.csv"], dir["0.parquet"], dir["1.jsonl"]);
        Assert.Equal(File.ReadAllText(dir["all.csv"]), File.ReadAllText(dir["merged.csv"]));
        Assert.Equal(154, File.ReadAllLines(dir["all.csv"]).Length);
    }

    /// <summary>
    /// The audit compares images with each other, so only its per-image step shards: two shards' features, merged, equal
    /// one process's; they land in the cache the whole audit then reads without computing a feature.
    /// </summary>
    [Fact]
    public void Two_audit_shards_fill_the_cache_the_whole_audit_reads_and_merge_to_one_process()
    {
        using var dir = new TempDir();
        Run("audit", Photos, "--shard", "0/1", "--out", dir["all.jsonl"], "--cache", dir["one"]);
        Run("audit", Photos, "--shard", "0/2", "--out", dir["0.parquet"], "--cache", dir["cache"]);
        Run("audit", Photos, "--shard", "1/2", "--out", dir["1.jsonl"], "--cache", dir["cache"]);
        Run("merge", dir["merged.jsonl"], dir["0.parquet"], dir["1.jsonl"]);
        var all = File.ReadAllLines(dir["all.jsonl"]);
        Assert.Equal(153, all.Length);
        Assert.Equal(all, File.ReadAllLines(dir["merged.jsonl"]));

        var audit = GraftCli.Run(null, "audit", Photos, "--cache", dir["cache"], "--json");
        Assert.True(audit.ExitCode == 0, audit.Stderr);
        using var json = System.Text.Json.JsonDocument.Parse(audit.LastLine);
        var features = json.RootElement.GetProperty("features");
        Assert.Equal(153, features.GetProperty("cache_hits").GetInt32());
        Assert.Equal(0, features.GetProperty("computed").GetInt32());

        var refused = GraftCli.Run(null, "audit", Photos, "--shard", "0/2", "--report", dir["report"]);
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("need every image", refused.Stderr);
    }
}
