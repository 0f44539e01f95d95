using System.Text.Json.Serialization;
using Graft.Imaging;

namespace Graft;

/// <summary>A point of a photo, in its pixels as displayed (EXIF orientation applied), from the top-left corner.</summary>
/// <param name="X">Pixels from the left edge.</param>
/// <param name="Y">Pixels from the top edge.</param>
public sealed record PixelPoint(int X, int Y);

/// <summary>
/// Where the network looked for a prediction: the class activation map of the predicted class (for a linear head on
/// pooled features, exactly how much each part of the photo added to that class's score; Grad-CAM for deeper heads),
/// and its peak on the photo.
/// </summary>
/// <param name="Heatmap">The PNG written: the photo with the heat map over the part the network saw (null when none was asked for).</param>
/// <param name="Peak">The heat map's hottest point, in the original photo's pixels.</param>
public sealed record Explanation(string? Heatmap, PixelPoint Peak)
{
    /// <summary>The heat map over the network's input square (not serialized).</summary>
    [JsonIgnore] public HeatMap? Map { get; init; }

    /// <summary>A heat map with its peak placed on the photo (<see cref="ImageLoader.PlaceHeatMap(string, HeatMap, ResizeMode, string?)"/>).</summary>
    internal static Explanation Of(HeatMap map, (int X, int Y) peak, string? heatmap) => new(heatmap, new PixelPoint(peak.X, peak.Y)) { Map = map };
}
