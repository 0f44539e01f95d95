// Train on a folder of labelled photos, measure on held-out test images, save, reload, predict.
// Usage: dotnet run -- PHOTOS [MODEL.graft]
using Graft;

string photos = args[0], modelPath = args.Length > 1 ? args[1] : "photos.graft";

var learner = ImageClassifierLearner.FromFolder(photos, testSplit: 0.2);
var result = await learner.FitAsync(new Progress<LearnerProgress>(p => { if (p.Stage is "epoch" or "note") Console.Error.WriteLine(p); }));
var test = result.Test ?? result.Validation!;
Console.WriteLine($"accuracy {test.Accuracy:P1} (95% CI {test.AccuracyInterval.Low:P1}-{test.AccuracyInterval.High:P1}) on {test.Images} test images");

using (result.Model) result.Model.Save(modelPath);

using var model = ImageClassifier.Load(modelPath);
var images = Directory.EnumerateFiles(photos, "*.jpg", SearchOption.AllDirectories).Take(5);
var batch = await model.PredictAsync(images, top: 2);
foreach (var p in batch.Predictions) Console.WriteLine($"{Path.GetFileName(p.File)}: {p.Label} ({p.Confidence:P0})");
foreach (var s in batch.Skipped) Console.WriteLine($"skipped {s.Path}: {s.Reason}");
