using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using Graft.Imaging;
using Graft.Inference;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Logging;
using Microsoft.Net.Http.Headers;

namespace Graft.Serve;

/// <summary>A request's fault: the status it answers and one line saying what to do.</summary>
sealed class RequestException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}

/// <summary>The error every endpoint answers with: <c>{"error": "one line"}</c>.</summary>
sealed record ErrorResponse(string Error);

/// <summary>The handlers behind <see cref="GraftEndpoints.MapGraft(Microsoft.AspNetCore.Routing.IEndpointRouteBuilder, IReadOnlyList{string}, ServeOptions?)"/>.</summary>
sealed class GraftServer : IDisposable
{
    /// <summary>The JSON of the CLI's <c>--json</c> output and of the model file (snake_case), for answers.</summary>
    internal static readonly JsonSerializerOptions Json = new(ModelFile.Json) { TypeInfoResolver = new DefaultJsonTypeInfoResolver() };

    /// <summary>Decodable image types; any other image/* type is refused with 415.</summary>
    static readonly string[] ImageTypes = ["image/jpeg", "image/jpg", "image/pjpeg", "image/png", "image/bmp", "image/x-ms-bmp", "image/gif", "image/webp"];

    /// <summary>
    /// Types taken as one image in the body: the image types, none, application/octet-stream, and
    /// application/x-www-form-urlencoded (what <c>curl --data-binary @photo.jpg</c> sends unless told otherwise).
    /// </summary>
    static readonly string[] RawTypes = [.. ImageTypes, "application/octet-stream", "application/x-www-form-urlencoded"];

    const string Formats = "Send JPEG, PNG, BMP, GIF or WebP images";

    readonly ServeOptions _options;
    readonly ModelSet _models;
    readonly ServeMetrics _metrics = new();
    readonly CancellationToken _stopping;
    readonly byte[]? _keyHash;
    readonly Lazy<(string Html, string Policy)> _page = new(Graft.Serve.Page.Build);
    readonly Lazy<string> _openApi;

    public GraftServer(IReadOnlyList<string> modelFiles, ServeOptions options, ILogger log, CancellationToken stopping)
    {
        (_options, _stopping) = (options, stopping);
        _models = new ModelSet(modelFiles, options, _metrics, log);
        _keyHash = options.ApiKey is null ? null : SHA256.HashData(Encoding.UTF8.GetBytes(options.ApiKey));
        _openApi = new(() => OpenApiDocument.Build(Json, apiKey: _keyHash is not null));
    }

    public void Dispose() => _models.Dispose();

    /// <summary>Counts every answer by endpoint and status, and adds the CORS headers for the allowed origin.</summary>
    public async ValueTask<object?> Observe(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        if (_options.CorsOrigin is { } origin)
        {
            http.Response.Headers.Vary = HeaderNames.Origin;
            if (http.Request.Headers.Origin == origin) http.Response.Headers.AccessControlAllowOrigin = origin;
        }
        var result = await next(context);
        var name = http.GetEndpoint()?.Metadata.GetMetadata<GraftEndpoint>()?.Name ?? "other";
        _metrics.Request(name, result is IStatusCodeHttpResult { StatusCode: int code } ? code : http.Response.StatusCode);
        return result;
    }

    /// <summary>With an API key, the API answers only requests that carry it.</summary>
    public ValueTask<object?> Authorize(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        if (_keyHash is null || KeyMatches(context.HttpContext.Request.Headers.Authorization.ToString(), _keyHash)) return next(context);
        context.HttpContext.Response.Headers.WWWAuthenticate = "Bearer";
        return ValueTask.FromResult<object?>(Error(StatusCodes.Status401Unauthorized, "this server needs an API key. Send the header 'Authorization: Bearer KEY'."));
    }

    /// <summary>
    /// Whether an Authorization header carries the key, in time that does not depend on where they differ: both are
    /// hashed to 32 bytes, then compared in constant time (the length of the key does not show either).
    /// </summary>
    internal static bool KeyMatches(string authorization, byte[] keyHash)
    {
        const string scheme = "Bearer ";
        var given = authorization.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) ? authorization[scheme.Length..].Trim() : "";
        return CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(given)), keyHash);
    }

    public IResult Page(HttpContext http)
    {
        var (html, policy) = _page.Value;
        http.Response.Headers.ContentSecurityPolicy = policy;
        http.Response.Headers.XContentTypeOptions = "nosniff";
        return Results.Content(html, "text/html; charset=utf-8");
    }

    public IResult Ready() => _stopping.IsCancellationRequested
        ? Results.Text("stopping\n", statusCode: StatusCodes.Status503ServiceUnavailable)
        : Results.Text("ready\n");

    public IResult Preflight(HttpContext http)
    {
        if (http.Request.Headers.Origin == _options.CorsOrigin)
        {
            http.Response.Headers.AccessControlAllowMethods = "GET, POST";
            http.Response.Headers.AccessControlAllowHeaders = "Authorization, Content-Type";
            http.Response.Headers.AccessControlMaxAge = "600";
        }
        return Results.NoContent();
    }

    public IResult Metrics() => Results.Text(_metrics.Text(_models.Slots), "text/plain; version=0.0.4; charset=utf-8");

    public IResult OpenApi() => Results.Text(_openApi.Value, "application/json; charset=utf-8");

    public IResult Models() => Results.Json(new JsonObject
    {
        ["models"] = new JsonArray(_models.Slots.Select((slot, i) =>
        {
            var model = slot.Current.Model;
            var entry = new JsonObject { ["name"] = slot.Name, ["default"] = i == 0 };
            foreach (var (key, value) in JsonSerializer.SerializeToNode(model.Info, Json)!.AsObject()) entry[key] = value?.DeepClone();
            entry["preprocessing"] = model.Info.Input.Describe();
            return (JsonNode)entry;
        }).ToArray()),
    }, Json);

    public async Task<IResult> Predict(HttpContext http)
    {
        long started = Stopwatch.GetTimestamp();
        if (!_metrics.TryEnter(_options.MaxConcurrentRequests))
        {
            http.Response.Headers.RetryAfter = "1";
            return Error(StatusCodes.Status429TooManyRequests, $"the server is busy ({_options.MaxConcurrentRequests} requests in progress). Retry in a moment.");
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
        timeout.CancelAfter(_options.RequestTimeout);
        try
        {
            var slot = _models.Find(http.Request.Query["model"].FirstOrDefault())
                ?? throw new RequestException(StatusCodes.Status404NotFound,
                    $"no model named '{http.Request.Query["model"]}' is served. Pass ?model= with one of: {string.Join(", ", _models.Slots.Select(s => s.Name))}.");
            using var lease = slot.Acquire();
            var model = lease.Version.Model;
            int top = Top(http.Request.Query["top"].FirstOrDefault(), model.Classes.Count);
            using var expected = lease.Version.Batcher.Expect();
            var (images, skipped) = await Read(http, model, timeout.Token);
            var predictions = await expected.Submit(images, timeout.Token);
            var seconds = Stopwatch.GetElapsedTime(started);
            _metrics.Predicted(seconds);
            return Results.Json(new PredictResponse(predictions.Select(p => p with { Top = p.Top.Take(top).ToList() }).ToList(), predictions.Length, skipped, seconds.TotalSeconds), Json);
        }
        catch (RequestException e)
        {
            return Error(e.Status, e.Message);
        }
        catch (BadHttpRequestException e) // from the server: the body was larger than allowed, or came too slowly
        {
            return Error(e.StatusCode, e.StatusCode == StatusCodes.Status413PayloadTooLarge ? TooLarge() : $"{GraftException.FirstLine(e.Message)}.");
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !http.RequestAborted.IsCancellationRequested)
        {
            return Error(StatusCodes.Status504GatewayTimeout, $"the request took longer than {_options.RequestTimeout.TotalSeconds:0.###} s. Retry, or send fewer or smaller images.");
        }
        finally
        {
            _metrics.Exit();
        }
    }

    /// <summary>The number of classes to list: <c>?top=K</c> within the model's classes; by default 3, or fewer if the model has fewer (as <c>graft predict</c>).</summary>
    static int Top(string? text, int classes)
    {
        if (text is null) return Math.Min(3, classes);
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int k) && k >= 1 && k <= classes ? k
            : throw new RequestException(StatusCodes.Status400BadRequest, $"?top={text} is out of range. Pass a whole number from 1 to {classes} (the model's classes).");
    }

    /// <summary>The request's images, prepared for the model, and those that could not be read.</summary>
    async Task<(List<PreparedImage> Images, List<SkippedImage> Skipped)> Read(HttpContext http, ImageClassifier model, CancellationToken cancel)
    {
        var request = http.Request;
        if (request.ContentLength > _options.MaxBodyBytes) throw new RequestException(StatusCodes.Status413PayloadTooLarge, TooLarge());
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = _options.MaxBodyBytes;
        MediaTypeHeaderValue.TryParse(request.ContentType, out var type);
        var mediaType = type?.MediaType.Value?.ToLowerInvariant();
        var images = new List<PreparedImage>();
        var skipped = new List<SkippedImage>();
        if (mediaType == "multipart/form-data")
        {
            var boundary = HeaderUtilities.RemoveQuotes(type!.Boundary).Value;
            if (string.IsNullOrEmpty(boundary)) throw new RequestException(StatusCodes.Status400BadRequest, "the multipart form has no boundary. Send it as a browser or curl -F does.");
            var reader = new MultipartReader(boundary, request.Body) { BodyLengthLimit = _options.MaxBodyBytes };
            int unsupported = 0;
            long read = 0;
            for (MultipartSection? section; (section = await reader.ReadNextSectionAsync(cancel)) is not null;)
            {
                if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition) || !disposition.IsFileDisposition()) continue; // a plain form field
                var name = HeaderUtilities.RemoveQuotes(disposition.FileNameStar.HasValue ? disposition.FileNameStar : disposition.FileName).Value is { Length: > 0 } n ? n : "upload";
                var bytes = await ReadAll(section.Body, _options.MaxBodyBytes - read, cancel);
                read += bytes.Length;
                if (TypeProblem(section.ContentType, ImageTypes) is { } problem)
                {
                    unsupported++;
                    skipped.Add(new SkippedImage(name, problem));
                }
                else if (Prepare(model, bytes, name, skipped) is { } image) images.Add(image);
            }
            if (images.Count == 0)
                throw skipped.Count == 0 ? new RequestException(StatusCodes.Status400BadRequest, "the form holds no file. Attach one or more images.")
                    : new RequestException(unsupported == skipped.Count ? StatusCodes.Status415UnsupportedMediaType : StatusCodes.Status400BadRequest,
                        skipped.Count == 1 ? $"{skipped[0].Path}: {skipped[0].Reason}. {Formats}."
                            : $"none of the {skipped.Count} files could be read ({skipped[0].Path}: {skipped[0].Reason}; ...). {Formats}.");
        }
        else
        {
            if (TypeProblem(request.ContentType, RawTypes) is { } problem)
                throw new RequestException(StatusCodes.Status415UnsupportedMediaType, $"{problem}. {Formats}: one as the body, or files as multipart/form-data.");
            var bytes = await ReadAll(request.Body, _options.MaxBodyBytes, cancel);
            if (bytes.Length == 0) throw new RequestException(StatusCodes.Status400BadRequest, $"the request has no body. {Formats}: one as the body, or files as multipart/form-data.");
            images.Add(Prepare(model, bytes, "upload", skipped) ?? throw new RequestException(StatusCodes.Status400BadRequest, $"{skipped[0].Path}: {skipped[0].Reason}. {Formats}."));
        }
        return (images, skipped);
    }

    static string? TypeProblem(string? contentType, string[] accepted)
    {
        if (contentType is null) return null;
        var media = MediaTypeHeaderValue.TryParse(contentType, out var type) ? type.MediaType.Value?.ToLowerInvariant() : null;
        return media is not null && accepted.Contains(media) ? null
            : media?.StartsWith("image/") == true ? $"{media} is not an image type Graft decodes"
            : $"{contentType} is not an image type";
    }

    static PreparedImage? Prepare(ImageClassifier model, byte[] bytes, string name, List<SkippedImage> skipped)
    {
        try
        {
            return model.Prepare(bytes, name);
        }
        catch (ImageDecodeException e)
        {
            skipped.Add(new SkippedImage(name, e.Reason));
            return null;
        }
    }

    async Task<byte[]> ReadAll(Stream body, long limit, CancellationToken cancel)
    {
        using var memory = new MemoryStream();
        var buffer = new byte[81920];
        for (int n; (n = await body.ReadAsync(buffer, cancel)) > 0;)
        {
            if (memory.Length + n > limit) throw new RequestException(StatusCodes.Status413PayloadTooLarge, TooLarge());
            memory.Write(buffer, 0, n);
        }
        return memory.ToArray();
    }

    string TooLarge() => $"the request is larger than this server's limit of {_options.MaxBodyBytes:N0} bytes. Send a smaller image, or fewer at once.";

    static IResult Error(int status, string message) => Results.Json(new ErrorResponse(message), Json, statusCode: status);
}
