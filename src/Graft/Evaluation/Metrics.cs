namespace Graft.Evaluation;

public sealed record ClassMetrics(string Class, double Precision, double Recall, double F1, int Support);

/// <summary>One evaluated image: its true and predicted class and the predicted probability.</summary>
public sealed record ScoredImage(string File, int Truth, int Predicted, float Confidence)
{
    public bool Correct => Truth == Predicted;
}

/// <summary>Accuracy, loss, per-class precision/recall/F1 and the confusion matrix (rows: true class, columns: predicted).</summary>
public sealed record EvaluationResult(
    double Accuracy,
    double Loss,
    int Images,
    IReadOnlyList<string> Classes,
    int[][] ConfusionMatrix,
    IReadOnlyList<ClassMetrics> PerClass,
    IReadOnlyList<ScoredImage> Items)
{
    /// <summary>Computes every metric from the probabilities of each image and its true label.</summary>
    public static EvaluationResult From(IReadOnlyList<string> files, float[,] probabilities, IReadOnlyList<int> truth, IReadOnlyList<string> classes)
    {
        int n = truth.Count, k = classes.Count;
        var matrix = Enumerable.Range(0, k).Select(_ => new int[k]).ToArray();
        var items = new List<ScoredImage>(n);
        double loss = 0;
        for (int i = 0; i < n; i++)
        {
            int best = 0;
            for (int c = 1; c < k; c++) if (probabilities[i, c] > probabilities[i, best]) best = c;
            matrix[truth[i]][best]++;
            loss -= Math.Log(Math.Max(probabilities[i, truth[i]], 1e-12f));
            items.Add(new ScoredImage(files[i], truth[i], best, probabilities[i, best]));
        }
        var perClass = Enumerable.Range(0, k).Select(c =>
        {
            int tp = matrix[c][c];
            int predicted = matrix.Sum(row => row[c]);
            int support = matrix[c].Sum();
            double precision = predicted == 0 ? 0 : (double)tp / predicted;
            double recall = support == 0 ? 0 : (double)tp / support;
            double f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
            return new ClassMetrics(classes[c], precision, recall, f1, support);
        }).ToList();
        int correct = Enumerable.Range(0, k).Sum(c => matrix[c][c]);
        return new EvaluationResult(n == 0 ? 0 : (double)correct / n, n == 0 ? 0 : loss / n, n, classes, matrix, perClass, items);
    }
}
