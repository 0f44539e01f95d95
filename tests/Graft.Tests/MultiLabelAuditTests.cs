using Graft.Audit;
using Graft.Data;
using Graft.Training;
using Xunit.Abstractions;

namespace Graft.Tests;

/// <summary>
/// The audit on multi-label mosaics (read from a label file) with planted faults: a label taken from some images, a
/// label they do not show given to others, and a byte copy labelled differently; and the strategy advisor, whose
/// estimates on multi-label data are exact-match figures.
/// </summary>
public class MultiLabelAuditTests(ITestOutputHelper output)
{
    [Fact]
    public async Task The_audit_finds_missing_and_extra_labels_and_copies_of_multi_label_images()
    {
        using var dir = new TempDir();
        var dataset = Mosaics.Write(dir["data"], train: 240, validation: 0, test: 0, seed: 11);
        var rng = new Random(5);
        var images = dataset.Train.ToArray();
        rng.Shuffle(images);
        // Images showing at least one class lose one; others, showing at most two, gain one they do not show.
        var dropped = images.Where(i => i.Labels.Count > 0).Take(12).Select(i => (File: Path.GetFullPath(i.Path), Label: i.Labels[rng.Next(i.Labels.Count)])).ToList();
        var added = images.Where(i => i.Labels.Count < 3 && dropped.All(d => d.File != Path.GetFullPath(i.Path))).Take(12)
            .Select(i => (File: Path.GetFullPath(i.Path), Label: Enumerable.Range(0, 3).Where(c => !i.Labels.Contains(c)).ElementAt(rng.Next(3 - i.Labels.Count)))).ToList();
        var given = dataset.Train.ToDictionary(i => Path.GetFullPath(i.Path), i => i.Labels.ToHashSet());
        foreach (var (file, label) in dropped) given[file].Remove(label);
        foreach (var (file, label) in added) given[file].Add(label);
        var copy = Path.Combine(dir["data"], "copy.png");
        File.Copy(dataset.Train[0].Path, copy);
        given[copy] = Enumerable.Range(0, 3).Except(given[Path.GetFullPath(dataset.Train[0].Path)]).Take(1).ToHashSet();
        var csv = Path.Combine(dir.Path, "labels.csv");
        File.WriteAllLines(csv, ["file,labels", .. given.Select(g => $"{Path.GetFileName(g.Key)},{string.Join(";", g.Value.Order().Select(c => Mosaics.Classes[c]))}")]);

        var audit = await DataAudit.RunAsync(dir["data"], new AuditOptions { LabelsFile = csv, CacheRoot = dir["cache"], InputSize = 64, ValidationSplit = 0 },
            Assets.Resolver);

        Assert.True(audit.MultiLabel);
        Assert.Equal(given.Count, audit.ImageCount);
        Assert.Empty(audit.LabelIssues);
        Assert.Null(audit.LearningCurve);
        var missing = audit.MissingLabels.Select(m => (Path.GetFullPath(m.File), Array.IndexOf(Mosaics.Classes, m.Label))).ToHashSet();
        var extra = audit.ExtraLabels.Select(e => (Path.GetFullPath(e.File), Array.IndexOf(Mosaics.Classes, e.Label))).ToHashSet();
        int foundMissing = dropped.Count(missing.Contains), foundExtra = added.Count(extra.Contains);
        int falseFlags = missing.Count - foundMissing + extra.Count - foundExtra;
        output.WriteLine($"{given.Count} images: {foundMissing} of {dropped.Count} removed labels found missing, {foundExtra} of {added.Count} added labels found extra; " +
            $"{falseFlags} other labels flagged ({missing.Count} missing, {extra.Count} extra in all, of {3 * given.Count} image-label pairs)");
        // Linear probes on a pretrained trunk's features of 64-pixel mosaics are weak witnesses: a third of the planted
        // faults found, and the flags several times richer in planted faults than the labels are.
        Assert.True(foundMissing >= dropped.Count / 3, $"{foundMissing} of {dropped.Count} removed labels found");
        Assert.True(foundExtra >= added.Count / 3, $"{foundExtra} of {added.Count} added labels found");
        double planted = (dropped.Count + added.Count) / (3.0 * given.Count), flagged = (foundMissing + foundExtra) / (double)(missing.Count + extra.Count);
        Assert.True(flagged >= 4 * planted, $"{flagged:0.000} of the flags are planted faults, {planted:0.000} of the labels");
        Assert.All(audit.MissingLabels, m => Assert.True(m.Probability >= m.Threshold));
        Assert.All(audit.ExtraLabels, e => Assert.True(e.Probability < e.Threshold));

        var pair = Assert.Single(audit.Duplicates, p => p.File == copy || p.Other == copy);
        Assert.True(pair.ConflictingLabels);
        Assert.Contains(audit.Classes, c => c.Total > 0);

        var report = File.ReadAllText(Graft.Reports.AuditReport.Write(audit, dir["report"]));
        Assert.Contains("Likely missing labels", report);
        Assert.Contains("missing_label,", File.ReadAllText(Path.Combine(dir["report"], "findings.csv")));
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir["report"], "audit.json")));
        Assert.Equal(audit.ExtraLabels.Count, json.RootElement.GetProperty("extra_labels").GetArrayLength());
        Assert.True(json.RootElement.GetProperty("missing_labels")[0].GetProperty("probability").GetDouble() > 0);

        // The actions name each label change; applied, they put the labels back.
        var actions = Path.Combine(dir.Path, "actions.csv");
        AuditActions.Write(actions, audit.Actions);
        var read = AuditActions.Read(actions);
        Assert.Equal(audit.Actions.Count(a => a.Action == AuditActions.AddLabel), read.Count(a => a.Action == AuditActions.AddLabel));
        Assert.Contains(read, a => a.Action == AuditActions.RemoveLabel);
        var relabelled = ImageFolder.OpenForTraining(dir["data"], 0, 42, 0, csv);
        var cleaned = AuditActions.Apply(relabelled, read, actions);
        var restored = dropped.Where(d => read.Any(a => a.Action == AuditActions.AddLabel && a.File == Path.GetFullPath(d.File) && a.Label == Mosaics.Classes[d.Label])).ToList();
        Assert.NotEmpty(restored);
        Assert.All(restored, d => Assert.Contains(d.Label, cleaned.Train.Single(i => Path.GetFullPath(i.Path) == Path.GetFullPath(d.File)).Labels));
        Assert.DoesNotContain(cleaned.Train, i => Path.GetFullPath(i.Path) == Path.GetFullPath(copy));
    }

    [Fact]
    public async Task The_advisor_estimates_exact_match_of_multi_label_data()
    {
        using var dir = new TempDir();
        var dataset = Mosaics.Write(dir["data"], train: 36, validation: 12, test: 0, seed: 4);
        var options = new TrainOptions
        {
            CacheRoot = dir["cache"], InputSize = 64, BalancedClassWeights = true,
            Fit = new FitOptions(Epochs: 4, BatchSize: 8, LearningRate: 3e-3),
            FineTune = new FitOptions(Epochs: 1, BatchSize: 8, LearningRate: 1e-4),
        };
        var advice = await StrategyAdvisor.AdviseAsync(dataset, options, Assets.Resolver);
        foreach (var reason in advice.Reasons) output.WriteLine(reason);
        Assert.Equal("exact match", advice.Measure);
        Assert.Contains(advice.Estimates, e => e.Strategy == Strategy.FineTune);
        Assert.All(advice.Estimates, e =>
        {
            Assert.InRange(e.Accuracy, 0, 1);
            Assert.True(double.IsFinite(e.Interval.Low) && e.Interval.Low <= e.Interval.High, $"{e.Arguments}: [{e.Interval.Low}, {e.Interval.High}]");
            Assert.True(double.IsFinite(e.Seconds));
            if (e.Gain is { } gain) Assert.True(double.IsFinite(gain.Value) && double.IsFinite(gain.Interval.Low) && double.IsFinite(gain.Interval.High));
        });
        Assert.Contains(advice.Reasons, r => r.Contains("scored exact match"));
        Assert.Contains(advice.Estimates, e => e == advice.Chosen);
    }
}
