using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Graft.Data;
using Spectre.Console;

namespace Graft.Bench;

/// <summary>
/// `graft bench --serve MODEL`: `graft serve` in a process of its own on loopback, under a bounded load of the shared
/// hymenoptera validation photos at concurrency 1, 8 and 32 (each level stops at its request count or its time
/// budget), then a burst past the server's concurrency limit; beside it, offline `graft predict` on the same model and
/// photos in the same run. Loopback only: nothing leaves the machine.
/// </summary>
static class ServeBench
{
    static readonly int[] Concurrency = [1, 8, 32];
    /// <summary>The limit the server is started with: the highest level fits, the burst (four times as many) does not.</summary>
    const int Limit = 32;
    static readonly TimeSpan LevelBudget = TimeSpan.FromSeconds(90);

    sealed record Level(int Concurrency, int Requests, int Errors, double P50, double P95, double P99, double ImagesPerSecond);

    public static async Task RunAsync(BenchOptions options, BenchHost host, CancellationToken cancel)
    {
        var model = Path.GetFullPath(options.Serve!);
        if (!File.Exists(model)) throw new GraftException($"--serve {options.Serve}: no such model file.", "Pass a .graft file, e.g. one graft train wrote on hymenoptera.");
        var folder = Path.Combine(SampleDatasets.Resolve("hymenoptera", host.Assets), "val");
        var photos = Directory.GetFiles(folder, "*.jpg", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToArray();
        string loadAtStart = Machine.LoadAverage();
        host.Log($"serve bench: {Path.GetFileName(model)} on {photos.Length} photos; load average {loadAtStart}");

        var offline = Offline(host, model, folder);
        host.Log($"offline graft predict: {offline:0.0} images/s");

        int port = FreePort();
        var start = host.StartGraft(["serve", model, "--port", port.ToString(), "--max-concurrency", Limit.ToString()]);
        start.RedirectStandardError = true;
        using var server = Process.Start(start)!;
        _ = server.StandardError.ReadToEndAsync(cancel);
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(60) };
            await WaitReady(http, server, cancel);
            // Warm-up at the highest concurrency: ONNX Runtime's arena grows to the largest batch once, then stays.
            await Load(http, photos, Limit, 4 * Limit, LevelBudget, cancel);
            long rssStart = Rss(server.Id);
            var levels = new List<Level>();
            int sent = 0;
            foreach (int c in Concurrency)
            {
                var level = await Load(http, photos, c, options.ServeRequests, LevelBudget, cancel);
                sent += level.Requests;
                host.Log($"concurrency {c}: {level.Requests} requests, {level.ImagesPerSecond:0.0} images/s, p50 {level.P50:0} ms, {level.Errors} errors");
                levels.Add(level);
            }
            long rssEnd = Rss(server.Id);
            var burst = await Burst(http, photos[0], 4 * Limit, cancel);
            bool healthy = (await http.GetAsync("healthz", cancel)).IsSuccessStatusCode;
            string loadAtEnd = Machine.LoadAverage();

            host.Out.WriteLine($"graft serve under load (loopback; load average {loadAtStart} at start, {loadAtEnd} at end); offline graft predict: {offline:0.0} images/s");
            host.Out.WriteLine("| concurrency | requests | errors | p50 ms | p95 ms | p99 ms | images/s | vs offline |");
            host.Out.WriteLine("|---|---|---|---|---|---|---|---|");
            foreach (var l in levels)
                host.Out.WriteLine($"| {l.Concurrency} | {l.Requests} | {l.Errors} | {l.P50:0} | {l.P95:0} | {l.P99:0} | {l.ImagesPerSecond:0.0} | {l.ImagesPerSecond / offline:0.00}x |");
            host.Out.WriteLine($"resident memory of the server: {rssStart / 1024.0 / 1024:0} MB after warm-up, {rssEnd / 1024.0 / 1024:0} MB after {sent} more requests ({(rssEnd - rssStart) * 100.0 / rssStart:+0.0;-0.0}%)");
            host.Out.WriteLine($"burst of {4 * Limit} requests at once past the limit of {Limit}: {string.Join(", ", burst.OrderBy(b => b.Key).Select(b => $"{b.Value} x {b.Key}"))}; healthy afterwards: {(healthy ? "yes" : "no")}");
            host.WriteJson?.Invoke(new
            {
                model, photos = photos.Length, offline_images_per_second = offline, load_average_start = loadAtStart, load_average_end = loadAtEnd,
                levels, rss_start_bytes = rssStart, rss_end_bytes = rssEnd, requests_between = sent, burst, healthy_after_burst = healthy,
            });
        }
        finally
        {
            if (!server.HasExited) server.Kill();
        }
    }

    /// <summary>`graft predict MODEL FOLDER --json` in its own process: images per second of prediction (after loading).</summary>
    static double Offline(BenchHost host, string model, string folder)
    {
        var start = host.StartGraft(["predict", model, folder, "--top", "1", "--json"]);
        start.RedirectStandardOutput = start.RedirectStandardError = true;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new GraftException($"graft predict {model} failed during the benchmark (exit {process.ExitCode}).", "Run it alone to see the problem.");
        var json = JsonDocument.Parse(stdout.Result.TrimEnd().Split('\n')[^1]).RootElement;
        return json.GetProperty("images").GetInt32() / json.GetProperty("seconds").GetDouble();
    }

    /// <summary><paramref name="concurrency"/> loops sending the photos in turn, together at most <paramref name="count"/> requests or <paramref name="budget"/> of time.</summary>
    static async Task<Level> Load(HttpClient http, byte[][] photos, int concurrency, int count, TimeSpan budget, CancellationToken cancel)
    {
        int next = -1, errors = 0;
        var latencies = new List<double>();
        var clock = Stopwatch.StartNew();
        async Task Loop()
        {
            for (int i; (i = Interlocked.Increment(ref next)) < count && clock.Elapsed < budget;)
            {
                var sent = Stopwatch.GetTimestamp();
                bool ok;
                try
                {
                    using var body = new ByteArrayContent(photos[i % photos.Length]);
                    body.Headers.ContentType = new("image/jpeg");
                    using var response = await http.PostAsync("predict", body, cancel);
                    ok = response.StatusCode == HttpStatusCode.OK;
                }
                catch (HttpRequestException) { ok = false; }
                catch (TaskCanceledException) when (!cancel.IsCancellationRequested) { ok = false; }
                double ms = Stopwatch.GetElapsedTime(sent).TotalMilliseconds;
                lock (latencies)
                {
                    latencies.Add(ms);
                    if (!ok) errors++;
                }
            }
        }
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(Loop, cancel)));
        double seconds = clock.Elapsed.TotalSeconds;
        latencies.Sort();
        double Percentile(double p) => latencies[Math.Min(latencies.Count - 1, (int)Math.Ceiling(p * latencies.Count) - 1)];
        return new Level(concurrency, latencies.Count, errors, Percentile(0.5), Percentile(0.95), Percentile(0.99), (latencies.Count - errors) / seconds);
    }

    /// <summary>Requests sent all at once: how many got which status (or "failed" without one).</summary>
    static async Task<Dictionary<string, int>> Burst(HttpClient http, byte[] photo, int requests, CancellationToken cancel)
    {
        var statuses = await Task.WhenAll(Enumerable.Range(0, requests).Select(async _ =>
        {
            try
            {
                using var body = new ByteArrayContent(photo);
                body.Headers.ContentType = new("image/jpeg");
                using var response = await http.PostAsync("predict", body, cancel);
                return ((int)response.StatusCode).ToString();
            }
            catch (HttpRequestException) { return "failed"; }
            catch (TaskCanceledException) when (!cancel.IsCancellationRequested) { return "timed out"; }
        }));
        return statuses.GroupBy(s => s).ToDictionary(g => g.Key, g => g.Count());
    }

    static async Task WaitReady(HttpClient http, Process server, CancellationToken cancel)
    {
        for (var clock = Stopwatch.StartNew(); clock.Elapsed < TimeSpan.FromMinutes(2); await Task.Delay(200, cancel))
        {
            if (server.HasExited) throw new GraftException($"graft serve exited (code {server.ExitCode}) during the benchmark.", "Run it alone to see the problem.");
            try { if ((await http.GetAsync("readyz", cancel)).IsSuccessStatusCode) return; }
            catch (HttpRequestException) { }
        }
        throw new GraftException("graft serve was not ready after 2 minutes.", "Run it alone to see the problem.");
    }

    static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    /// <summary>A process's resident memory (VmRSS), in bytes.</summary>
    static long Rss(int pid) =>
        long.Parse(File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:"))["VmRSS:".Length..].Trim().Split(' ')[0]) * 1024;
}
