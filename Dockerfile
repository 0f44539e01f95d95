# graft in a container: the CLI (train, predict, embed, serve, merge) on the .NET 10 ASP.NET Core runtime, non-root.
# Not built by CI (no container engine there); deploy/k8s/ runs it. Build: docker build -t graft .
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN dotnet publish src/Graft.Cli -c Release -o /app -nologo

FROM mcr.microsoft.com/dotnet/aspnet:10.0
RUN apt-get update && apt-get install -y --no-install-recommends libjemalloc2 && rm -rf /var/lib/apt/lists/*
COPY --from=build /app /app
# The image's non-root user (UID 1654); the root filesystem can be read-only: models and data are mounted, outputs go to a volume.
USER $APP_UID
ENV GRAFT_OFFLINE=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 HOME=/tmp
EXPOSE 8080
ENTRYPOINT ["dotnet", "/app/Graft.Cli.dll"]
CMD ["--help"]
