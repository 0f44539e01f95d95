using System.CommandLine;
using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Net;
using Graft.Serve;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Spectre.Console;

namespace Graft.Cli.Commands;

/// <summary>
/// <c>graft serve</c>: the models over HTTP with Graft.Serve on Kestrel (inference only: this command never loads
/// libtorch). The flags map onto <see cref="ServeOptions"/> (and <see cref="ServeListen"/>), which hold their defaults and help.
/// </summary>
public static class ServeCommand
{
    static readonly Flags<ServeOptions> Serving = new(new ServeOptions());
    static readonly Flags<ServeListen> Listening = new(new ServeListen());

    public static Command Create()
    {
        var models = new Argument<string[]>("MODELS") { Description = "Model files written by graft train; ?model=NAME (the file name without .graft) picks one, the first is the default.", Arity = ArgumentArity.OneOrMore };
        var port = Listening.Option("--port", o => o.Port);
        var host = Listening.Option("--host", o => o.Host);
        var maxBatch = Serving.Option("--max-batch", o => o.MaxBatch);
        // The library's spans are milliseconds and seconds on the command line.
        var maxWait = new Option<double>("--max-wait-ms") { Description = Serving.Help(o => o.MaxWait), HelpName = "X", DefaultValueFactory = _ => Serving.Default(o => o.MaxWait).TotalMilliseconds };
        var maxBody = Serving.Option("--max-body-bytes", o => o.MaxBodyBytes);
        var timeout = new Option<double>("--timeout") { Description = Serving.Help(o => o.RequestTimeout), HelpName = "X", DefaultValueFactory = _ => Serving.Default(o => o.RequestTimeout).TotalSeconds };
        var concurrency = Serving.Option("--max-concurrency", o => o.MaxConcurrentRequests);
        var apiKeyEnv = new Option<string?>("--api-key-env") { Description = "Name of an environment variable holding an API key. " + Serving.Help(o => o.ApiKey), HelpName = "NAME" };
        var cors = Serving.Option("--cors", o => o.CorsOrigin);
        cors.HelpName = "ORIGIN";
        var watch = Serving.Option("--watch", o => o.Watch);
        var command = new Command("serve", "Serve models over HTTP: POST /predict, /models, /metrics, health probes, and a page to try them at /.")
        {
            models, port, host, maxBatch, maxWait, maxBody, timeout, concurrency, apiKeyEnv, cors, watch,
        };
        command.SetHandler(async (parse, cancel) =>
        {
            var options = new ServeOptions
            {
                MaxBatch = parse.GetValue(maxBatch),
                MaxWait = TimeSpan.FromMilliseconds(parse.GetValue(maxWait)),
                MaxBodyBytes = parse.GetValue(maxBody),
                RequestTimeout = TimeSpan.FromSeconds(parse.GetValue(timeout)),
                MaxConcurrentRequests = parse.GetValue(concurrency),
                ApiKey = ApiKey(parse.GetValue(apiKeyEnv)),
                CorsOrigin = parse.GetValue(cors),
                Watch = parse.GetValue(watch),
            };
            var address = parse.GetValue(host)!;
            var ip = address == "localhost" ? IPAddress.Loopback : IPAddress.TryParse(address, out var a) ? a
                : throw new GraftException($"--host {address} is not an IP address.", "Pass one, e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (every interface).");
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.ConfigureKestrel(k => k.Listen(ip, parse.GetValue(port)));
            builder.Logging.ClearProviders().AddSimpleConsole(o => o.SingleLine = true)
                .AddFilter("Microsoft", LogLevel.Warning).AddFilter("Graft.Serve", LogLevel.Information);
            builder.Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
            // On SIGTERM or Ctrl-C, requests in progress may finish (up to their timeout) before the process exits.
            builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = options.RequestTimeout + TimeSpan.FromSeconds(5));
            await using var app = builder.Build();
            var files = parse.GetValue(models)!;
            app.MapGraft(files, options);
            await app.StartAsync(cancel);
            Cli.Err.MarkupLine($"serving {Cli.Escape(string.Join(", ", files))} on [green]{Cli.Escape(string.Join(", ", app.Urls))}/[/] (Ctrl-C to stop)");
            await app.WaitForShutdownAsync(cancel);
        });
        return command;
    }

    static string? ApiKey(string? variable) => variable is null ? null
        : Environment.GetEnvironmentVariable(variable) is { Length: > 0 } key ? key
        : throw new GraftException($"--api-key-env {variable}: that environment variable is not set or empty.", $"Set it to the key clients will send (export {variable}=...), or drop --api-key-env.");
}

/// <summary>Where <c>graft serve</c> listens (the library's <see cref="ServeOptions"/> leave that to the host app).</summary>
sealed record ServeListen
{
    [Description("TCP port to listen on (0: any free port).")]
    [Range(0, 65535)]
    public int Port { get; init; } = 8080;

    [Description("Address to listen on; loopback unless you say otherwise (0.0.0.0: every IPv4 interface).")]
    public string Host { get; init; } = "127.0.0.1";
}
