using System.ComponentModel;
using System.ComponentModel.DataAnnotations;

namespace Graft.Serve;

/// <summary>
/// How <see cref="GraftEndpoints.MapGraft(Microsoft.AspNetCore.Routing.IEndpointRouteBuilder, IReadOnlyList{string}, ServeOptions?)"/>
/// serves models: batching, limits, who may call it. The defaults suit one machine serving a few clients; each
/// property's <see cref="DescriptionAttribute"/> is the help text of its <c>graft serve</c> flag.
/// </summary>
public sealed record ServeOptions
{
    /// <summary>Most images the network runs at once: concurrent requests are gathered into one batch up to this size.</summary>
    [Description("Most images run through the network at once: concurrent requests are gathered into batches up to this size.")]
    [Range(1, int.MaxValue)]
    public int MaxBatch { get; init; } = 32;

    /// <summary>
    /// Longest a batch waits for more images once it has one, and only while other requests are still being read or
    /// decoded: a lone request never waits.
    /// </summary>
    [Description("Most milliseconds a batch waits for more images while other requests are still being read or decoded (a lone request never waits).")]
    public TimeSpan MaxWait { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>Largest request body (one image, or a multipart form of several); larger ones get 413.</summary>
    [Description("Largest request body in bytes; a larger one gets 413.")]
    [Range(1, long.MaxValue)]
    public long MaxBodyBytes { get; init; } = 32L << 20;

    /// <summary>How long a request may take, from reading its body to its answer; a slower one gets 504.</summary>
    [Description("Seconds a request may take, from reading its body to its answer; a slower one gets 504.")]
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Most prediction requests in progress at once; one more gets 429 at once rather than waiting.</summary>
    [Description("Most prediction requests in progress at once; one more gets 429 at once.")]
    [Range(1, int.MaxValue)]
    public int MaxConcurrentRequests { get; init; } = 64;

    /// <summary>
    /// When set, every request but the page and the probes must carry <c>Authorization: Bearer KEY</c> (401 otherwise,
    /// compared in constant time).
    /// </summary>
    [Description("Requests must then carry 'Authorization: Bearer KEY' (401 otherwise); the page and the health probes stay open.")]
    public string? ApiKey { get; init; }

    /// <summary>The one origin (e.g. <c>https://example.com</c>) whose pages may call the API from a browser; null: none (CORS off).</summary>
    [Description("Let pages from this origin (e.g. https://example.com) call the API from a browser (CORS); off by default.")]
    public string? CorsOrigin { get; init; }

    /// <summary>Reload a model when its file changes, swapping it in atomically: requests in progress finish on the old one.</summary>
    [Description("Reload a model when its file changes, swapping the new one in without failing a request.")]
    public bool Watch { get; init; }

    /// <summary>How often <see cref="Watch"/> looks at the model files.</summary>
    public TimeSpan WatchInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>What is wrong with these options (null: nothing), as the fix a user needs.</summary>
    internal string? Problem() =>
        MaxBatch < 1 ? "the largest batch must be 1 or more"
        : MaxWait < TimeSpan.Zero ? "the batch wait must not be negative"
        : MaxBodyBytes < 1 ? "the body limit must be 1 byte or more"
        : RequestTimeout <= TimeSpan.Zero ? "the request timeout must be positive"
        : MaxConcurrentRequests < 1 ? "the concurrency limit must be 1 or more"
        : ApiKey is "" ? "the API key is empty"
        : CorsOrigin is not null && !(Uri.TryCreate(CorsOrigin, UriKind.Absolute, out var o) && o.Scheme is "http" or "https" && o.PathAndQuery == "/" && !CorsOrigin.EndsWith('/'))
            ? $"the CORS origin '{CorsOrigin}' is not scheme://host[:port]"
        : WatchInterval <= TimeSpan.Zero ? "the watch interval must be positive"
        : null;
}
