using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Schema;

namespace Graft.Serve;

/// <summary>
/// The OpenAPI 3.1 document of the endpoints. The answers' schemas are exported from the very types and JSON options
/// the server writes them with (snake_case, as the CLI's <c>--json</c>), so they cannot drift; a generator reading
/// the app's global JSON options would describe camelCase fields the server never sends.
/// </summary>
static class OpenApiDocument
{
    public static string Build(JsonSerializerOptions json, bool apiKey)
    {
        var schemaOptions = new JsonSchemaExporterOptions { TreatNullObliviousAsNonNullable = true };
        JsonNode Schema(Type type) => JsonSchemaExporter.GetJsonSchemaAsNode(json, type, schemaOptions);
        var model = Schema(typeof(ModelInfo)).AsObject();
        var properties = model["properties"]!.AsObject();
        properties.Insert(0, "name", new JsonObject { ["type"] = "string", ["description"] = "What ?model= names it: its file name without the extension." });
        properties.Insert(1, "default", new JsonObject { ["type"] = "boolean", ["description"] = "Whether a request without ?model= uses it." });
        properties["preprocessing"] = new JsonObject { ["type"] = "string", ["description"] = "The input and pixel mapping, for people." };

        var binary = new JsonObject { ["type"] = "string", ["contentMediaType"] = "application/octet-stream" };
        JsonObject Json(string schema) => new() { ["application/json"] = new JsonObject { ["schema"] = Ref(schema) } };
        JsonObject Text(string type) => new() { [type] = new JsonObject { ["schema"] = new JsonObject { ["type"] = "string" } } };
        JsonObject Answer(string description, JsonObject? content = null) => content is null
            ? new() { ["description"] = description } : new() { ["description"] = description, ["content"] = content };
        JsonObject Errors(params (int Status, string Description)[] errors)
        {
            var all = errors.ToList();
            if (apiKey) all.Add((401, "The API key is missing or wrong."));
            var answers = new JsonObject();
            foreach (var (status, description) in all.OrderBy(e => e.Status)) answers[status.ToString()] = Answer(description, Json("Error"));
            return answers;
        }
        JsonObject Get(string summary, JsonObject answers, bool open = false)
        {
            var operation = new JsonObject { ["summary"] = summary, ["responses"] = answers };
            if (open && apiKey) operation["security"] = new JsonArray();
            return new() { ["get"] = operation };
        }
        JsonObject With(JsonObject answers, string status, JsonObject answer)
        {
            answers.Insert(0, status, answer);
            return answers;
        }

        var predictAnswers = With(Errors((400, "Not an image, or ?top= out of range."), (404, "No model of that name is served."), (413, "The body is larger than the limit."),
            (415, "Not an image type."), (429, "Too many requests in progress: retry in a moment."), (504, "The request took longer than the timeout.")),
            "200", Answer("The predictions: the same object as graft predict --json.", Json("PredictResponse")));
        var document = new JsonObject
        {
            ["openapi"] = "3.1.0",
            ["info"] = new JsonObject
            {
                ["title"] = "Graft model server",
                ["version"] = typeof(OpenApiDocument).Assembly.GetName().Version?.ToString(3),
                ["description"] = "Image classifiers trained with Graft, served over HTTP. Errors answer {\"error\": \"one line\"}.",
            },
            ["paths"] = new JsonObject
            {
                ["/predict"] = new JsonObject
                {
                    ["post"] = new JsonObject
                    {
                        ["summary"] = "Classify one image (the body) or several (multipart/form-data files).",
                        ["parameters"] = new JsonArray(
                            new JsonObject { ["name"] = "top", ["in"] = "query", ["description"] = "How many classes to list per image (default 3, or all if fewer).", ["schema"] = new JsonObject { ["type"] = "integer", ["minimum"] = 1 } },
                            new JsonObject { ["name"] = "model", ["in"] = "query", ["description"] = "Which served model (see /models); default: the first.", ["schema"] = new JsonObject { ["type"] = "string" } }),
                        ["requestBody"] = new JsonObject
                        {
                            ["required"] = true,
                            ["content"] = new JsonObject
                            {
                                ["image/*"] = new JsonObject { ["schema"] = binary.DeepClone() },
                                ["application/octet-stream"] = new JsonObject { ["schema"] = binary.DeepClone() },
                                ["multipart/form-data"] = new JsonObject
                                {
                                    ["schema"] = new JsonObject
                                    {
                                        ["type"] = "object",
                                        ["description"] = "Every file field is an image, whatever its name.",
                                        ["properties"] = new JsonObject { ["files"] = new JsonObject { ["type"] = "array", ["items"] = binary.DeepClone() } },
                                    },
                                },
                            },
                        },
                        ["responses"] = predictAnswers,
                    },
                },
                ["/models"] = Get("The served models: classes, input and preprocessing.", With(Errors(), "200", Answer("The models, the default first.", Json("Models")))),
                ["/metrics"] = Get("Prometheus metrics (names prefixed graft_).", With(Errors(), "200", Answer("Prometheus text format 0.0.4.", Text("text/plain")))),
                ["/openapi.json"] = Get("This document.", With(Errors(), "200", Answer("OpenAPI 3.1.", new JsonObject { ["application/json"] = new JsonObject() }))),
                ["/healthz"] = Get("Liveness: the process answers.", new JsonObject { ["200"] = Answer("Alive.", Text("text/plain")) }, open: true),
                ["/readyz"] = Get("Readiness: the models are loaded and the server is not stopping.", new JsonObject
                {
                    ["200"] = Answer("Serving.", Text("text/plain")),
                    ["503"] = Answer("Stopping: requests in progress are finishing.", Text("text/plain")),
                }, open: true),
                ["/"] = Get("A page to try the models with photos or the webcam.", new JsonObject { ["200"] = Answer("The page.", Text("text/html")) }, open: true),
            },
            ["components"] = new JsonObject
            {
                ["schemas"] = new JsonObject
                {
                    ["PredictResponse"] = Schema(typeof(PredictResponse)),
                    ["Error"] = Schema(typeof(ErrorResponse)),
                    ["Models"] = new JsonObject
                    {
                        ["type"] = "object",
                        ["properties"] = new JsonObject { ["models"] = new JsonObject { ["type"] = "array", ["items"] = model } },
                    },
                },
            },
        };
        if (apiKey)
        {
            document["components"]!["securitySchemes"] = new JsonObject { ["bearer"] = new JsonObject { ["type"] = "http", ["scheme"] = "bearer" } };
            document["security"] = new JsonArray(new JsonObject { ["bearer"] = new JsonArray() });
        }
        return document.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    static JsonObject Ref(string schema) => new() { ["$ref"] = $"#/components/schemas/{schema}" };
}
