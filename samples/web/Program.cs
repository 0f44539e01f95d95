// Serves a .graft model: POST /predict with an image as the request body returns its classes as JSON.
// Usage: dotnet run -- --model photos.graft   then   curl --data-binary @cat.jpg http://localhost:5000/predict
// A photo like none of the training images comes back with "unknown": true (its closest class still in "label", and
// its "ood_score"); JSON names as graft predict --json writes them.
using System.Text.Json;
using Graft;

var builder = WebApplication.CreateBuilder(args);
builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower);
builder.Services.AddSingleton(_ => ImageClassifier.Load(builder.Configuration["model"] ?? "model.graft")); // thread-safe: one for all requests
var app = builder.Build();

app.MapGet("/", (ImageClassifier model) => new { model.Info.Backbone, model.Classes });
app.MapPost("/predict", async (HttpRequest request, ImageClassifier model) =>
{
    using var body = new MemoryStream();
    await request.Body.CopyToAsync(body);
    try
    {
        return Results.Ok(model.Predict(body.ToArray(), name: "upload", top: 3));
    }
    catch (GraftException e) // not an image, or a damaged one
    {
        return Results.BadRequest(new { error = e.Message });
    }
});
app.Run();
