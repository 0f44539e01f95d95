namespace Graft.Imaging;

/// <summary>
/// How strongly each part of the network's input square drove a prediction: <see cref="Rows"/> x <see cref="Columns"/>
/// cells (the trunk's last feature map, each cell a square of the input), values from 0 to 1, the hottest 1.
/// </summary>
public sealed class HeatMap
{
    readonly float[] _values;

    /// <summary>Cells from top to bottom.</summary>
    public int Rows { get; }
    /// <summary>Cells from left to right.</summary>
    public int Columns { get; }

    HeatMap(float[] values, int rows, int columns) => (_values, Rows, Columns) = (values, rows, columns);

    /// <summary>A cell's value, from 0 to 1.</summary>
    /// <param name="row">From 0 (top) to <see cref="Rows"/> - 1.</param>
    /// <param name="column">From 0 (left) to <see cref="Columns"/> - 1.</param>
    public float this[int row, int column] => _values[row * Columns + column];

    /// <summary>The values row by row.</summary>
    public IReadOnlyList<float> Values => _values;

    /// <summary>
    /// A heat map of a class activation map (any sign, row by row): its positive part, scaled so that the largest value is 1
    /// (all zeros when nothing is positive). Evidence against the class does not show.
    /// </summary>
    /// <param name="activation">rows x columns values, row by row.</param>
    /// <param name="rows">Cells from top to bottom.</param>
    /// <param name="columns">Cells from left to right.</param>
    public static HeatMap FromActivation(ReadOnlySpan<float> activation, int rows, int columns)
    {
        if (rows < 1 || columns < 1 || activation.Length != rows * columns)
            throw new ArgumentException($"A {rows}x{columns} heat map needs {rows * columns} values, not {activation.Length}.", nameof(activation));
        var values = new float[activation.Length];
        float max = 0;
        foreach (var v in activation) if (float.IsFinite(v)) max = Math.Max(max, v);
        if (max > 0)
            for (int i = 0; i < values.Length; i++) values[i] = float.IsFinite(activation[i]) ? Math.Max(0, activation[i]) / max : 0;
        return new HeatMap(values, rows, columns);
    }

    /// <summary>
    /// The hottest point, as fractions (0 to 1) of the input square's width and height: the centre of the hottest cell,
    /// moved towards the hotter neighbour by the vertex of a parabola through it and its two neighbours on each axis.
    /// The centre of the square when the map is all zeros.
    /// </summary>
    public (double X, double Y) Peak
    {
        get
        {
            int best = 0;
            for (int i = 1; i < _values.Length; i++) if (_values[i] > _values[best]) best = i;
            if (_values[best] <= 0) return (0.5, 0.5);
            int row = best / Columns, column = best % Columns;
            double dx = Vertex(column > 0 ? this[row, column - 1] : double.NaN, this[row, column], column < Columns - 1 ? this[row, column + 1] : double.NaN);
            double dy = Vertex(row > 0 ? this[row - 1, column] : double.NaN, this[row, column], row < Rows - 1 ? this[row + 1, column] : double.NaN);
            return ((column + 0.5 + dx) / Columns, (row + 0.5 + dy) / Rows);
        }
    }

    /// <summary>The vertex of the parabola through (-1, a), (0, b), (1, c), within half a cell; 0 at an edge or on a plateau.</summary>
    static double Vertex(double a, double b, double c)
    {
        double curvature = a - 2 * b + c;
        if (double.IsNaN(a) || double.IsNaN(c) || curvature >= 0) return 0;
        return Math.Clamp((a - c) / (2 * curvature), -0.5, 0.5);
    }

    /// <summary>The map's value at a point of the input square (fractions 0 to 1), bilinear between cell centres.</summary>
    /// <param name="x">From 0 (left edge) to 1 (right edge).</param>
    /// <param name="y">From 0 (top edge) to 1 (bottom edge).</param>
    public float At(double x, double y)
    {
        double fx = Math.Clamp(x * Columns - 0.5, 0, Columns - 1), fy = Math.Clamp(y * Rows - 0.5, 0, Rows - 1);
        int x0 = (int)fx, y0 = (int)fy, x1 = Math.Min(x0 + 1, Columns - 1), y1 = Math.Min(y0 + 1, Rows - 1);
        double tx = fx - x0, ty = fy - y0;
        double top = this[y0, x0] * (1 - tx) + this[y0, x1] * tx, bottom = this[y1, x0] * (1 - tx) + this[y1, x1] * tx;
        return (float)(top * (1 - ty) + bottom * ty);
    }
}
