using Microsoft.Extensions.Logging;

namespace Graft.Serve;

/// <summary>
/// One model file as served: its current version (the loaded classifier and its batcher), swapped atomically when the
/// file changes. A request leases the version it started on and finishes on it; a replaced version is disposed
/// when its last lease ends.
/// </summary>
sealed class ModelSlot : IDisposable
{
    /// <summary>One loaded version of the file.</summary>
    public sealed class Version(ImageClassifier model, Batcher batcher, (DateTime, long) stamp)
    {
        public ImageClassifier Model { get; } = model;
        public Batcher Batcher { get; } = batcher;
        public (DateTime Written, long Length) Stamp { get; } = stamp;
        internal int Leases;

        internal void Dispose()
        {
            Batcher.Dispose();
            Model.Dispose();
        }
    }

    /// <summary>A request's hold on one version: dispose it when the request is done.</summary>
    public readonly struct Lease(ModelSlot slot, Version version) : IDisposable
    {
        public Version Version { get; } = version;
        public void Dispose() => slot.Release(Version);
    }

    readonly object _gate = new();
    readonly ServeOptions _options;
    readonly ServeMetrics _metrics;
    Version _current;

    /// <summary>The name requests use for it (<c>?model=NAME</c>): the file's name without its extension.</summary>
    public string Name { get; }
    public string Path { get; }

    public ModelSlot(string path, ServeOptions options, ServeMetrics metrics)
    {
        (Path, _options, _metrics) = (path, options, metrics);
        Name = System.IO.Path.GetFileNameWithoutExtension(path);
        _current = Load(Stamp(path) ?? throw new GraftException($"{path} does not exist.", "Pass a .graft file written by graft train."));
    }

    public Version Current { get { lock (_gate) return _current; } }

    public Lease Acquire()
    {
        lock (_gate)
        {
            _current.Leases++;
            return new Lease(this, _current);
        }
    }

    void Release(Version version)
    {
        bool retire;
        lock (_gate) retire = --version.Leases == 0 && version != _current;
        if (retire) version.Dispose();
    }

    Version Load((DateTime, long) stamp)
    {
        var model = ImageClassifier.Load(Path);
        return new Version(model, new Batcher(model, _options, _metrics), stamp);
    }

    static (DateTime, long)? Stamp(string path)
    {
        var file = new FileInfo(path);
        return file.Exists ? (file.LastWriteTimeUtc, file.Length) : null;
    }

    /// <summary>
    /// Loads the file again if it changed since the current version was loaded, and swaps it in. A file that does not
    /// load (being written without a rename, damaged) leaves the current version serving; it is tried again when it changes again.
    /// </summary>
    public void Reload(ILogger log, ref (DateTime, long)? failed)
    {
        var stamp = Stamp(Path);
        if (stamp is null || stamp == Current.Stamp || stamp == failed) return;
        Version next;
        try
        {
            next = Load(stamp.Value);
        }
        catch (Exception e) // whatever is wrong with the new file, the server goes on with the old model
        {
            failed = stamp;
            log.LogWarning("{Model}: kept the model already loaded: {Error}", Name, GraftException.FirstLine(e.Message));
            return;
        }
        failed = null;
        Version old;
        bool retire;
        lock (_gate)
        {
            old = _current;
            _current = next;
            retire = old.Leases == 0;
        }
        if (retire) old.Dispose();
        _metrics.Reloaded(Name);
        log.LogInformation("{Model}: reloaded {Path} ({Classes} classes)", Name, Path, next.Model.Classes.Count);
    }

    public void Dispose()
    {
        lock (_gate) _current.Dispose();
    }
}

/// <summary>The models a server serves, by name, the first being the default; with <see cref="ServeOptions.Watch"/>, a timer reloads changed files.</summary>
sealed class ModelSet : IDisposable
{
    readonly Timer? _watch;
    readonly ILogger _log;
    readonly (DateTime, long)?[] _failed;
    int _reloading;

    public IReadOnlyList<ModelSlot> Slots { get; }

    public ModelSet(IReadOnlyList<string> paths, ServeOptions options, ServeMetrics metrics, ILogger log)
    {
        if (paths.Count == 0) throw new GraftException("no model file was given.", "Pass one or more .graft files written by graft train.");
        var twin = paths.GroupBy(p => System.IO.Path.GetFileNameWithoutExtension(p)).FirstOrDefault(g => g.Count() > 1);
        if (twin is not null)
            throw new GraftException($"{string.Join(" and ", twin)} would both be served as '{twin.Key}' (a model's name is its file name).", "Rename one of the files.");
        var slots = new List<ModelSlot>();
        try
        {
            foreach (var path in paths) slots.Add(new ModelSlot(path, options, metrics));
        }
        catch
        {
            foreach (var slot in slots) slot.Dispose();
            throw;
        }
        Slots = slots;
        _log = log;
        _failed = new (DateTime, long)?[slots.Count];
        if (options.Watch) _watch = new Timer(_ => Reload(), null, options.WatchInterval, options.WatchInterval);
    }

    /// <summary>The model a request names, or the first when it names none; null for a name not served (never a path).</summary>
    public ModelSlot? Find(string? name) => name is null ? Slots[0] : Slots.FirstOrDefault(s => s.Name == name);

    void Reload()
    {
        if (Interlocked.Exchange(ref _reloading, 1) == 1) return; // a slow load is still running: the next tick looks again
        try
        {
            for (int i = 0; i < Slots.Count; i++) Slots[i].Reload(_log, ref _failed[i]);
        }
        finally
        {
            Volatile.Write(ref _reloading, 0);
        }
    }

    public void Dispose()
    {
        if (_watch is not null)
        {
            using var stopped = new ManualResetEvent(false);
            if (_watch.Dispose(stopped)) stopped.WaitOne(); // a reload in progress finishes first
        }
        foreach (var slot in Slots) slot.Dispose();
    }
}
