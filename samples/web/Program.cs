// Serves a .graft model with Graft.Serve: POST /predict (an image as the body, or files as a form), /models, /metrics,
// health probes, and a page to try it with photos or the webcam at /.
// Usage: dotnet run -- --model photos.graft   then   curl --data-binary @cat.jpg http://localhost:5000/predict
using Graft.Serve;

var app = WebApplication.Create(args);
app.MapGraft(app.Configuration["model"] ?? "model.graft"); // batching, limits, metrics: see ServeOptions
app.Run();
