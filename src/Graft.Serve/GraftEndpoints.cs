using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Graft.Serve;

/// <summary>What a prediction request answers: the same object as <c>graft predict --json</c>.</summary>
/// <param name="Predictions">One per image that could be read, in the order sent.</param>
/// <param name="Images">How many were predicted.</param>
/// <param name="Skipped">The images that could not be read, and why.</param>
/// <param name="Seconds">How long it took.</param>
public sealed record PredictResponse(IReadOnlyList<Prediction> Predictions, int Images, IReadOnlyList<SkippedImage> Skipped, double Seconds);

/// <summary>
/// Serves Graft models from an ASP.NET Core app: <c>app.MapGraft("model.graft")</c>. Inference only (ONNX Runtime
/// through <see cref="ImageClassifier"/>, no libtorch); the app decides where it listens.
/// </summary>
/// <remarks>
/// Endpoints, relative to where they are mapped:
/// <list type="bullet">
/// <item><c>POST /predict</c>: an image as the body, or <c>multipart/form-data</c> with one or more files; <c>?top=K</c>,
/// <c>?model=NAME</c> (a served model's file name without extension; the first is the default). Answers a
/// <see cref="PredictResponse"/>; errors are <c>{"error": "one line"}</c> with 400 (not an image), 404 (no such
/// model), 413 (body too large), 415 (not an image type), 429 (too many requests in progress), 504 (timed out).</item>
/// <item><c>GET /models</c>: each model's classes, input and preprocessing.</item>
/// <item><c>GET /healthz</c> (alive), <c>GET /readyz</c> (serving; 503 once stopping), <c>GET /metrics</c>
/// (Prometheus), <c>GET /openapi.json</c>, and <c>GET /</c>, a page to try the model with photos or the webcam.</item>
/// </list>
/// Requests are batched (<see cref="ServeOptions.MaxBatch"/>); no request can name a file: models are those given here.
/// </remarks>
public static class GraftEndpoints
{
    /// <summary>Serves one model file.</summary>
    /// <param name="endpoints">The app, or a route group to serve under a prefix.</param>
    /// <param name="modelFile">A <c>.graft</c> file written by <c>graft train</c>.</param>
    /// <param name="options">Batching, limits and access; null: the defaults.</param>
    /// <returns>The group holding the endpoints, for more conventions (authorization, rate limits).</returns>
    /// <exception cref="GraftException">The file does not load, or an option is out of range.</exception>
    public static RouteGroupBuilder MapGraft(this IEndpointRouteBuilder endpoints, string modelFile, ServeOptions? options = null) =>
        endpoints.MapGraft([modelFile], options);

    /// <summary>Serves several model files, chosen by <c>?model=NAME</c> (the file name without its extension); the first is the default.</summary>
    /// <param name="endpoints">The app, or a route group to serve under a prefix.</param>
    /// <param name="modelFiles"><c>.graft</c> files written by <c>graft train</c>, with different file names.</param>
    /// <param name="options">Batching, limits and access; null: the defaults.</param>
    /// <returns>The group holding the endpoints, for more conventions (authorization, rate limits).</returns>
    /// <exception cref="GraftException">A file does not load, two share a name, or an option is out of range.</exception>
    public static RouteGroupBuilder MapGraft(this IEndpointRouteBuilder endpoints, IReadOnlyList<string> modelFiles, ServeOptions? options = null)
    {
        options ??= new ServeOptions();
        if (options.Problem() is { } problem) throw new GraftException($"The serving options are out of range: {problem}.", "Change that option.");
        var services = endpoints.ServiceProvider;
        var lifetime = services.GetRequiredService<IHostApplicationLifetime>();
        var server = new GraftServer(modelFiles, options, services.GetRequiredService<ILoggerFactory>().CreateLogger("Graft.Serve"), lifetime.ApplicationStopping);
        // After the host stopped, hence after the server drained the requests in progress.
        lifetime.ApplicationStopped.Register(server.Dispose);

        var group = endpoints.MapGroup("");
        group.AddEndpointFilter(server.Observe);
        group.MapGet("/", server.Page).WithMetadata(new GraftEndpoint("page"));
        group.MapGet("/healthz", () => Results.Text("ok\n")).WithMetadata(new GraftEndpoint("healthz"));
        group.MapGet("/readyz", server.Ready).WithMetadata(new GraftEndpoint("readyz"));
        if (options.CorsOrigin is not null) group.MapMethods("/{**path}", [HttpMethods.Options], server.Preflight).WithMetadata(new GraftEndpoint("preflight"));

        var api = group.MapGroup("");
        api.AddEndpointFilter(server.Authorize);
        // As a Delegate: a route handler whose IResult is written, not a bare RequestDelegate that would drop it.
        api.MapPost("/predict", (Delegate)server.Predict).WithMetadata(new GraftEndpoint("predict"));
        api.MapGet("/models", server.Models).WithMetadata(new GraftEndpoint("models"));
        api.MapGet("/metrics", server.Metrics).WithMetadata(new GraftEndpoint("metrics"));
        api.MapGet("/openapi.json", server.OpenApi).WithMetadata(new GraftEndpoint("openapi"));
        return group;
    }
}

/// <summary>Marks an endpoint as Graft's, with the name the metrics count it under.</summary>
sealed record GraftEndpoint(string Name);
