using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Graft.Serve;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Mono.Cecil;
using Mono.Cecil.Cil;
using SkiaSharp;

namespace Graft.Tests;

/// <summary>
/// <c>graft serve</c> and MapGraft: every endpoint, limit and fault, on Kestrel on a free loopback port in this
/// process (tiny untrained models, so each test takes a second or so), and as a child <c>graft serve</c> for what
/// only a process shows (SIGTERM, the native libraries it loads).
/// </summary>
public class ServeTests
{
    /// <summary>A Kestrel app serving models on a free loopback port.</summary>
    sealed class Server : IAsyncDisposable
    {
        public WebApplication App { get; }
        public HttpClient Http { get; }

        Server(WebApplication app)
        {
            App = app;
            Http = new HttpClient { BaseAddress = new Uri(app.Urls.First() + "/"), Timeout = TimeSpan.FromSeconds(60) };
        }

        public static async Task<Server> Start(IReadOnlyList<string> models, ServeOptions? options = null)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
            builder.Logging.ClearProviders();
            var app = builder.Build();
            app.MapGraft(models, options);
            await app.StartAsync();
            return new Server(app);
        }

        public async Task<(HttpStatusCode Status, JsonElement Json)> Post(string path, HttpContent content)
        {
            using var response = await Http.PostAsync(path, content);
            var text = await response.Content.ReadAsStringAsync();
            return (response.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
        }

        public async Task<string> Metrics() => await Http.GetStringAsync("metrics");

        /// <summary>Waits (bounded) until the server counts <paramref name="n"/> prediction requests in progress.</summary>
        public async Task InFlight(int n)
        {
            for (var clock = Stopwatch.StartNew(); clock.Elapsed < TimeSpan.FromSeconds(20); await Task.Delay(20))
                if ((await Metrics()).Contains($"graft_requests_in_flight {n}\n")) return;
            Assert.Fail($"the server never had {n} requests in progress");
        }

        public async ValueTask DisposeAsync()
        {
            Http.Dispose();
            await App.StopAsync();
            await App.DisposeAsync();
        }
    }

    /// <summary>A body that sends its first bytes, then waits to be released: a request kept in progress on purpose.</summary>
    sealed class StalledContent(byte[] bytes, Task release) : HttpContent
    {
        public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            await stream.WriteAsync(bytes.AsMemory(0, 16));
            await stream.FlushAsync();
            Started.TrySetResult();
            await release;
            await stream.WriteAsync(bytes.AsMemory(16));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = bytes.Length;
            return true;
        }
    }

    static string Model(TempDir dir, string name, params string[] classes)
    {
        using var model = Networks.ScratchModel(classes);
        model.Save(dir[name + ".graft"]);
        return dir[name + ".graft"];
    }

    static byte[] Photo(SKColor color, int seed = 1, string format = "png")
    {
        using var dir = new TempDir();
        TinyImages.WriteImage(dir["p." + format], color, 40, new Random(seed), format);
        return File.ReadAllBytes(dir["p." + format]);
    }

    static ByteArrayContent Body(byte[] bytes, string? type = "image/png")
    {
        var content = new ByteArrayContent(bytes);
        if (type is not null) content.Headers.ContentType = MediaTypeHeaderValue.Parse(type);
        return content;
    }

    static void AssertOneLineError(JsonElement json, string contains)
    {
        var error = json.GetProperty("error").GetString()!;
        Assert.Contains(contains, error);
        Assert.DoesNotContain('\n', error);
    }

    [Fact]
    public async Task Predict_answers_what_the_model_predicts_for_a_body_or_a_form_of_files()
    {
        using var dir = new TempDir();
        var path = Model(dir, "colours", "red", "green", "blue", "grey");
        await using var server = await Server.Start([path]);
        using var model = ImageClassifier.Load(path);
        var red = Photo(TinyImages.Palette[0].Color);
        var expected = model.Predict(red, "upload", top: 4);

        var (status, json) = await server.Post("predict", Body(red));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(1, json.GetProperty("images").GetInt32());
        Assert.Equal(0, json.GetProperty("skipped").GetArrayLength());
        var p = json.GetProperty("predictions")[0];
        Assert.Equal("upload", p.GetProperty("file").GetString());
        Assert.Equal(expected.Label, p.GetProperty("label").GetString());
        Assert.Equal(expected.Confidence, p.GetProperty("confidence").GetSingle(), 5);
        Assert.Equal(expected.Top.Take(3).Select(t => t.Label), p.GetProperty("top").EnumerateArray().Select(t => t.GetProperty("label").GetString()));

        var (_, one) = await server.Post("predict?top=1", Body(red, "application/octet-stream"));
        Assert.Equal(1, one.GetProperty("predictions")[0].GetProperty("top").GetArrayLength());
        var (tooMany, error) = await server.Post("predict?top=5", Body(red));
        Assert.Equal(HttpStatusCode.BadRequest, tooMany);
        AssertOneLineError(error, "?top=5");

        // curl --data-binary sends x-www-form-urlencoded unless told otherwise: taken as the image it is.
        Assert.Equal(HttpStatusCode.OK, (await server.Post("predict", Body(red, "application/x-www-form-urlencoded"))).Status);

        // A form of files: each predicted under its own name, in order; the one that is no image is skipped.
        var form = new MultipartFormDataContent
        {
            { Body(red), "file", "red.png" },
            { Body("not an image"u8.ToArray(), "image/jpeg"), "file", "broken.jpg" },
            { Body(Photo(TinyImages.Palette[1].Color, format: "jpg"), "image/jpeg"), "other", "green.jpg" },
            { new StringContent("a plain field"), "comment" },
        };
        var (formStatus, many) = await server.Post("predict?top=2", form);
        Assert.Equal(HttpStatusCode.OK, formStatus);
        Assert.Equal(["red.png", "green.jpg"], many.GetProperty("predictions").EnumerateArray().Select(x => x.GetProperty("file").GetString()));
        Assert.Equal(expected.Label, many.GetProperty("predictions")[0].GetProperty("label").GetString());
        Assert.Equal("broken.jpg", many.GetProperty("skipped")[0].GetProperty("path").GetString());
    }

    [Fact]
    public async Task The_answer_is_the_object_graft_predict_json_writes()
    {
        using var dir = new TempDir();
        var path = Model(dir, "m", "red", "green");
        File.WriteAllBytes(dir["red.png"], Photo(TinyImages.Palette[0].Color));
        var cli = GraftCli.Run(null, "predict", path, dir["red.png"], "--json");
        Assert.Equal(0, cli.ExitCode);
        var offline = JsonDocument.Parse(cli.LastLine).RootElement;
        await using var server = await Server.Start([path]);
        var (_, served) = await server.Post("predict", Body(File.ReadAllBytes(dir["red.png"])));

        static IEnumerable<string> Keys(JsonElement e) => e.EnumerateObject().Select(p => p.Name);
        Assert.Equal(Keys(offline), Keys(served));
        Assert.Equal(Keys(offline.GetProperty("predictions")[0]), Keys(served.GetProperty("predictions")[0]));
        Assert.Equal(offline.GetProperty("predictions")[0].GetProperty("label").GetString(), served.GetProperty("predictions")[0].GetProperty("label").GetString());
    }

    [Fact]
    public async Task Models_names_each_served_model_and_model_picks_one_by_name_never_by_path()
    {
        using var dir = new TempDir();
        var colours = Model(dir, "colours", "red", "green");
        var shapes = Model(dir, "shapes", "circle", "square", "triangle");
        await using var server = await Server.Start([colours, shapes]);
        var models = JsonDocument.Parse(await server.Http.GetStringAsync("models")).RootElement.GetProperty("models");
        Assert.Equal(["colours", "shapes"], models.EnumerateArray().Select(m => m.GetProperty("name").GetString()));
        Assert.True(models[0].GetProperty("default").GetBoolean());
        Assert.Equal(["circle", "square", "triangle"], models[1].GetProperty("classes").EnumerateArray().Select(c => c.GetString()));
        Assert.Equal(32, models[1].GetProperty("input").GetProperty("size").GetInt32());
        Assert.StartsWith("32x32 RGB", models[1].GetProperty("preprocessing").GetString());

        var photo = Photo(TinyImages.Palette[2].Color);
        var (_, byDefault) = await server.Post("predict", Body(photo));
        Assert.Contains(byDefault.GetProperty("predictions")[0].GetProperty("label").GetString(), new[] { "red", "green" });
        var (_, byName) = await server.Post("predict?model=shapes", Body(photo));
        Assert.Contains(byName.GetProperty("predictions")[0].GetProperty("label").GetString(), new[] { "circle", "square", "triangle" });

        // Only served names: a path, even to a model file that exists, names nothing.
        foreach (var name in new[] { shapes, "../shapes", "shapes.graft", "" })
        {
            var (status, error) = await server.Post($"predict?model={Uri.EscapeDataString(name)}", Body(photo));
            Assert.Equal(HttpStatusCode.NotFound, status);
            AssertOneLineError(error, "colours, shapes");
        }
        Assert.Equal(HttpStatusCode.NotFound, (await server.Http.GetAsync("..%2F..%2Fetc%2Fpasswd")).StatusCode);
    }

    [Fact]
    public async Task Bad_images_unsupported_types_and_oversized_bodies_get_one_line_errors()
    {
        using var dir = new TempDir();
        var path = Model(dir, "m", "red", "green");
        await using var server = await Server.Start([path], new ServeOptions { MaxBodyBytes = 4000 });
        var photo = Photo(TinyImages.Palette[0].Color);
        Assert.True(photo.Length < 4000);

        var (bad, badError) = await server.Post("predict", Body("not an image"u8.ToArray(), "image/jpeg"));
        Assert.Equal(HttpStatusCode.BadRequest, bad);
        AssertOneLineError(badError, "upload");
        var (empty, emptyError) = await server.Post("predict", Body([], null));
        Assert.Equal(HttpStatusCode.BadRequest, empty);
        AssertOneLineError(emptyError, "no body");

        // A PNG header declaring 50,000 x 50,000 pixels: the decoder's limit refuses it before allocating.
        var bomb = photo[..33].ToArray();
        BitConverter.GetBytes(IPAddress.HostToNetworkOrder(50_000)).CopyTo(bomb, 16);
        BitConverter.GetBytes(IPAddress.HostToNetworkOrder(50_000)).CopyTo(bomb, 20);
        var (huge, hugeError) = await server.Post("predict", Body(bomb));
        Assert.Equal(HttpStatusCode.BadRequest, huge);
        AssertOneLineError(hugeError, "upload");

        foreach (var type in new[] { "text/plain", "application/json", "image/tiff", "image/heic" })
        {
            var (status, error) = await server.Post("predict", Body(photo, type));
            Assert.Equal(HttpStatusCode.UnsupportedMediaType, status);
            AssertOneLineError(error, type);
        }
        var (formType, formError) = await server.Post("predict", new MultipartFormDataContent { { Body(photo, "image/heic"), "file", "a.heic" } });
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, formType);
        AssertOneLineError(formError, "a.heic");

        var large = new byte[20_000];
        photo.CopyTo(large, 0);
        var (tooLarge, tooLargeError) = await server.Post("predict", Body(large));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLarge);
        AssertOneLineError(tooLargeError, "4,000 bytes");
        // Without a Content-Length (chunked), the limit holds as the body arrives.
        var chunked = new StreamContent(new MemoryStream(large));
        chunked.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        var request = new HttpRequestMessage(HttpMethod.Post, "predict") { Content = chunked };
        request.Headers.TransferEncodingChunked = true;
        using (var response = await server.Http.SendAsync(request))
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        var (formLarge, _) = await server.Post("predict", new MultipartFormDataContent { { Body(large), "file", "a.png" } });
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, formLarge);

        Assert.Equal(HttpStatusCode.OK, (await server.Post("predict", Body(photo))).Status);
        var metrics = await server.Metrics();
        Assert.Contains("graft_requests_total{endpoint=\"predict\",code=\"415\"} 5\n", metrics);
        Assert.Contains("graft_request_errors_total{endpoint=\"predict\",code=\"413\"} 3\n", metrics);
    }

    [Fact]
    public async Task A_request_past_the_concurrency_limit_gets_429_at_once()
    {
        using var dir = new TempDir();
        var path = Model(dir, "m", "red", "green");
        await using var server = await Server.Start([path], new ServeOptions { MaxConcurrentRequests = 2, RequestTimeout = TimeSpan.FromSeconds(20) });
        var photo = Photo(TinyImages.Palette[0].Color);
        var release = new TaskCompletionSource();
        var stalled = Enumerable.Range(0, 2).Select(_ => new StalledContent(photo, release.Task)).ToList();
        var inFlight = stalled.Select(c => server.Http.PostAsync("predict", c)).ToList();
        await server.InFlight(2);

        var (busy, error) = await server.Post("predict", Body(photo));
        Assert.Equal(HttpStatusCode.TooManyRequests, busy);
        AssertOneLineError(error, "busy");
        Assert.Equal(HttpStatusCode.OK, (await server.Http.GetAsync("healthz")).StatusCode); // the probes are not limited

        release.SetResult();
        foreach (var response in await Task.WhenAll(inFlight)) Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await server.Post("predict", Body(photo))).Status);
        Assert.Contains("graft_requests_total{endpoint=\"predict\",code=\"429\"} 1\n", await server.Metrics());
    }

    [Fact]
    public async Task A_request_slower_than_the_timeout_gets_504()
    {
        using var dir = new TempDir();
        var path = Model(dir, "m", "red", "green");
        await using var server = await Server.Start([path], new ServeOptions { RequestTimeout = TimeSpan.FromMilliseconds(300) });
        // Half a body, then silence: on a raw socket, as HTTP clients wait to finish sending before they read.
        var photo = Photo(TinyImages.Palette[0].Color);
        using var socket = new TcpClient();
        await socket.ConnectAsync(IPAddress.Loopback, new Uri(server.App.Urls.First()).Port);
        var stream = socket.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\nContent-Length: {photo.Length}\r\nConnection: close\r\n\r\n"));
        await stream.WriteAsync(photo.AsMemory(0, photo.Length / 2));
        using var reader = new StreamReader(stream);
        var answer = await reader.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.StartsWith("HTTP/1.1 504", answer);
        Assert.Contains("took longer than 0.3 s", answer);
        Assert.Contains("graft_requests_total{endpoint=\"predict\",code=\"504\"} 1\n", await server.Metrics());
    }

    [Fact]
    public async Task With_an_api_key_the_api_answers_only_requests_that_carry_it()
    {
        using var dir = new TempDir();
        var path = Model(dir, "m", "red", "green");
        await using var server = await Server.Start([path], new ServeOptions { ApiKey = "s3cret-key" });
        var photo = Photo(TinyImages.Palette[0].Color);
        foreach (var header in new string?[] { null, "Bearer wrong", "Bearer s3cret-ke", "Bearer s3cret-key2", "Basic s3cret-key", "s3cret-key" })
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "predict") { Content = Body(photo) };
            if (header is not null) request.Headers.TryAddWithoutValidation("Authorization", header);
            using var response = await server.Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);
        }
        foreach (var open in new[] { "", "healthz", "readyz" }) Assert.Equal(HttpStatusCode.OK, (await server.Http.GetAsync(open)).StatusCode);
        foreach (var closed in new[] { "models", "metrics", "openapi.json" }) Assert.Equal(HttpStatusCode.Unauthorized, (await server.Http.GetAsync(closed)).StatusCode);

        server.Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "s3cret-key");
        Assert.Equal(HttpStatusCode.OK, (await server.Post("predict", Body(photo))).Status);
        Assert.Equal(HttpStatusCode.OK, (await server.Http.GetAsync("models")).StatusCode);
        Assert.Contains("\"bearer\"", await server.Http.GetStringAsync("openapi.json"));
    }

    [Fact]
    public void The_key_is_compared_in_constant_time()
    {
        var hash = System.Security.Cryptography.SHA256.HashData("key"u8);
        Assert.True(GraftServer.KeyMatches("Bearer key", hash));
        Assert.True(GraftServer.KeyMatches("bearer  key ", hash));
        Assert.False(GraftServer.KeyMatches("Bearer ke", hash));
        Assert.False(GraftServer.KeyMatches("key", hash));
        Assert.False(GraftServer.KeyMatches("", hash));

        // By construction: both sides hashed to 32 bytes, then CryptographicOperations.FixedTimeEquals; no string or
        // span comparison that returns at the first difference.
        using var module = ModuleDefinition.ReadModule(typeof(ServeOptions).Assembly.Location);
        var method = module.GetType("Graft.Serve.GraftServer").Methods.Single(m => m.Name == nameof(GraftServer.KeyMatches));
        var calls = method.Body.Instructions.Where(i => i.OpCode == OpCodes.Call || i.OpCode == OpCodes.Callvirt)
            .Select(i => (MethodReference)i.Operand).Select(m => $"{m.DeclaringType.Name}.{m.Name}").ToList();
        Assert.Contains("CryptographicOperations.FixedTimeEquals", calls);
        Assert.DoesNotContain(calls, c => c is "String.Equals" or "String.op_Equality" or "String.CompareOrdinal" or "MemoryExtensions.SequenceEqual");
    }

    [Fact]
    public async Task Cors_is_off_unless_an_origin_is_given_and_then_only_for_it()
    {
        using var dir = new TempDir();
        var path = Model(dir, "m", "red", "green");
        static HttpRequestMessage From(string origin, HttpMethod? method = null)
        {
            var request = new HttpRequestMessage(method ?? HttpMethod.Get, "models");
            request.Headers.Add("Origin", origin);
            if (method == HttpMethod.Options) request.Headers.Add("Access-Control-Request-Method", "POST");
            return request;
        }
        await using (var closed = await Server.Start([path]))
        {
            using var response = await closed.Http.SendAsync(From("https://example.com"));
            Assert.False(response.Headers.Contains("Access-Control-Allow-Origin"));
            using var preflight = await closed.Http.SendAsync(From("https://example.com", HttpMethod.Options));
            Assert.False(preflight.Headers.Contains("Access-Control-Allow-Origin"));
        }
        await using var open = await Server.Start([path], new ServeOptions { CorsOrigin = "https://example.com" });
        using (var allowed = await open.Http.SendAsync(From("https://example.com")))
            Assert.Equal("https://example.com", allowed.Headers.GetValues("Access-Control-Allow-Origin").Single());
        using (var other = await open.Http.SendAsync(From("https://evil.example")))
            Assert.False(other.Headers.Contains("Access-Control-Allow-Origin"));
        using var options = await open.Http.SendAsync(From("https://example.com", HttpMethod.Options));
        Assert.Equal(HttpStatusCode.NoContent, options.StatusCode);
        Assert.Contains("POST", options.Headers.GetValues("Access-Control-Allow-Methods").Single());
        Assert.Contains("Authorization", options.Headers.GetValues("Access-Control-Allow-Headers").Single());
    }

    [Fact]
    public async Task Metrics_openapi_probes_and_the_page_describe_the_server()
    {
        using var dir = new TempDir();
        var path = Model(dir, "m", "red", "green");
        await using var server = await Server.Start([path]);
        var photo = Photo(TinyImages.Palette[0].Color);
        await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => server.Post("predict", Body(photo))));

        var metrics = await server.Metrics();
        Assert.Contains("graft_requests_total{endpoint=\"predict\",code=\"200\"} 6\n", metrics);
        Assert.Contains("graft_request_duration_seconds_count 6\n", metrics);
        Assert.Contains("graft_request_duration_seconds_bucket{le=\"+Inf\"} 6\n", metrics);
        Assert.Contains("graft_images_total 6\n", metrics);
        Assert.Matches(@"graft_batch_size_sum 6\n", metrics);
        Assert.Matches(@"graft_images_per_second [0-9.]+\n", metrics);
        Assert.Contains("# TYPE graft_batch_size histogram\n", metrics);
        Assert.All(metrics.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith('#')), l => Assert.StartsWith("graft_", l));

        Assert.Equal("ok\n", await server.Http.GetStringAsync("healthz"));
        Assert.Equal("ready\n", await server.Http.GetStringAsync("readyz"));

        // The OpenAPI document names every endpoint mapped, and describes the answer the server sends.
        var document = JsonDocument.Parse(await server.Http.GetStringAsync("openapi.json")).RootElement;
        Assert.Equal("3.1.0", document.GetProperty("openapi").GetString());
        var mapped = server.App.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.Metadata.Any(m => m.GetType().Name == "GraftEndpoint") && e.RoutePattern.RawText != "/{**path}").Select(e => e.RoutePattern.RawText).ToList();
        Assert.Equal(7, mapped.Count);
        Assert.All(mapped, route => Assert.True(document.GetProperty("paths").TryGetProperty(route!, out _), $"{route} is not in the OpenAPI document"));
        var answer = document.GetProperty("components").GetProperty("schemas").GetProperty("PredictResponse").GetProperty("properties");
        Assert.Equal(["predictions", "images", "skipped", "seconds"], answer.EnumerateObject().Select(p => p.Name));

        // The page: self-contained (no external script, style, font or image), a file input, the webcam, its CSP.
        using var page = await server.Http.GetAsync("");
        var html = await page.Content.ReadAsStringAsync();
        Assert.Equal("text/html", page.Content.Headers.ContentType!.MediaType);
        Assert.Contains("<input type=\"file\" id=\"files\"", html);
        Assert.Contains("getUserMedia", html);
        Assert.DoesNotMatch(@"(src|href)\s*=\s*[""']?(https?:)?//", html);
        Assert.DoesNotContain("@import", html);
        var policy = page.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("default-src 'none'", policy);
        var script = html[(html.IndexOf("<script>") + 8)..html.LastIndexOf("</script>")];
        Assert.Contains($"'sha256-{Convert.ToBase64String(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(script)))}'", policy);
    }

    [Fact]
    public async Task Watch_swaps_in_a_new_model_file_without_failing_a_request()
    {
        using var dir = new TempDir();
        var path = Model(dir, "m", "red", "green");
        await using var server = await Server.Start([path], new ServeOptions { Watch = true, WatchInterval = TimeSpan.FromMilliseconds(50) });
        var photo = Photo(TinyImages.Palette[0].Color);
        using var replacement = Networks.ScratchModel(["circle", "square", "triangle"]);
        var swapped = new TaskCompletionSource();
        var statuses = new System.Collections.Concurrent.ConcurrentBag<HttpStatusCode>();

        async Task Client()
        {
            // Bounded: until the new model answers and a little after, or 30 s.
            int afterSwap = 0;
            for (var clock = Stopwatch.StartNew(); clock.Elapsed < TimeSpan.FromSeconds(30) && afterSwap < 10;)
            {
                var (status, json) = await server.Post("predict", Body(photo));
                statuses.Add(status);
                if (status == HttpStatusCode.OK && json.GetProperty("predictions")[0].GetProperty("label").GetString() is "circle" or "square" or "triangle") afterSwap++;
                if (afterSwap > 0) swapped.TrySetResult();
            }
        }
        var clients = Enumerable.Range(0, 4).Select(_ => Task.Run(Client)).ToList();
        for (var clock = Stopwatch.StartNew(); statuses.Count < 8 && clock.Elapsed < TimeSpan.FromSeconds(20);) await Task.Delay(20);
        File.WriteAllText(path + ".partial", "not yet a model");
        File.Copy(path + ".partial", path, overwrite: true); // a damaged file: the old model goes on serving
        await Task.Delay(300);
        replacement.Save(path); // written beside it, then renamed over it
        await Task.WhenAll(clients);

        Assert.True(swapped.Task.IsCompleted, "the new model never answered");
        Assert.All(statuses, s => Assert.Equal(HttpStatusCode.OK, s));
        Assert.Contains("graft_model_reloads_total{model=\"m\"} 1\n", await server.Metrics());
    }

    [Fact]
    public void Two_models_with_one_name_and_bad_options_are_refused_at_start()
    {
        using var dir = new TempDir();
        var path = Model(dir, "m", "red", "green");
        Directory.CreateDirectory(dir["other"]);
        File.Copy(path, dir["other/m.graft"]);
        var app = WebApplication.CreateSlimBuilder().Build();
        var twin = Assert.Throws<GraftException>(() => app.MapGraft([path, dir["other/m.graft"]]));
        Assert.Contains("'m'", twin.Message);
        Assert.Contains("largest batch", Assert.Throws<GraftException>(() => app.MapGraft(path, new ServeOptions { MaxBatch = 0 })).Message);
        Assert.Contains("CORS", Assert.Throws<GraftException>(() => app.MapGraft(path, new ServeOptions { CorsOrigin = "example.com/x" })).Message);
        Assert.Contains("nope.graft", Assert.Throws<GraftException>(() => app.MapGraft(dir["nope.graft"])).Message);
    }

    [Fact]
    public void The_serving_library_depends_on_the_inference_package_alone()
    {
        using var module = ModuleDefinition.ReadModule(typeof(ServeOptions).Assembly.Location);
        var graft = module.AssemblyReferences.Select(r => r.Name).Where(n => n.StartsWith("Graft") || n.StartsWith("TorchSharp")).Order().ToList();
        Assert.Equal(["Graft.Imaging", "Graft.Inference"], graft);
    }

    [DllImport("libc", SetLastError = true)]
    static extern int kill(int pid, int signal);

    [Fact]
    public async Task Graft_serve_loads_no_libtorch_and_drains_a_request_in_progress_on_SIGTERM()
    {
        using var dir = new TempDir();
        var path = Model(dir, "m", "red", "green");
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "Graft.Cli.dll"), "serve", path, "--port", port.ToString() }) start.ArgumentList.Add(a);
        start.Environment["GRAFT_OFFLINE"] = "1";
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(60) };
            for (var clock = Stopwatch.StartNew(); ; await Task.Delay(100))
            {
                try { if ((await http.GetAsync("readyz")).IsSuccessStatusCode) break; }
                catch (HttpRequestException) when (clock.Elapsed < TimeSpan.FromSeconds(60) && !process.HasExited) { }
            }
            var photo = Photo(TinyImages.Palette[0].Color);
            Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("predict", Body(photo))).StatusCode);

            // Serving ran ONNX Runtime and loaded no native library of libtorch or TorchSharp's glue to it. (TorchSharp.dll's
            // managed code may be mapped: the other commands' options are built at start-up; without libtorch it cannot run.)
            var native = File.ReadAllLines($"/proc/{process.Id}/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).Last())
                .Where(f => f.Contains(".so")).Distinct().ToList();
            Assert.Contains(native, f => f.Contains("libonnxruntime.so"));
            Assert.DoesNotContain(native, f => f.Contains("torch", StringComparison.OrdinalIgnoreCase) || f.Contains("libc10"));

            var release = new TaskCompletionSource();
            var body = new StalledContent(photo, release.Task);
            var inFlight = http.PostAsync("predict", body);
            for (var clock = Stopwatch.StartNew(); !(await http.GetStringAsync("metrics")).Contains("graft_requests_in_flight 1\n"); await Task.Delay(20))
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), "the request never started");
            Assert.Equal(0, kill(process.Id, 15)); // SIGTERM
            await Task.Delay(500);
            Assert.False(process.HasExited, "graft serve exited with a request in progress");
            release.SetResult();
            using var answer = await inFlight;
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            Assert.Contains("\"label\"", await answer.Content.ReadAsStringAsync());
            Assert.True(process.WaitForExit(TimeSpan.FromSeconds(30)), "graft serve did not stop after draining");
            Assert.Equal(0, process.ExitCode);
            Assert.DoesNotContain("   at ", await stderr);
        }
        finally
        {
            if (!process.HasExited) process.Kill(true);
        }
    }
}
