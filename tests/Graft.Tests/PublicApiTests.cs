using System.Reflection;
using System.Xml.Linq;

namespace Graft.Tests;

/// <summary>
/// The common path's public surface (namespace Graft, and all of Graft.Imaging, Graft.Inference and Graft.Serve) is a promise: a snapshot catches
/// accidental changes, every member is documented, and TorchSharp types appear only where asked for.
/// </summary>
public class PublicApiTests
{
    static readonly Assembly Imaging = typeof(Graft.Imaging.ImageSpec).Assembly;
    static readonly Assembly Inference = typeof(ImageClassifier).Assembly;
    static readonly Assembly Training = typeof(ImageClassifierLearner).Assembly;
    static readonly Assembly Serving = typeof(Graft.Serve.ServeOptions).Assembly;

    /// <summary>The types users program against: all of the imaging, inference and serving packages, and the Graft namespace of the training one.</summary>
    static IEnumerable<Type> Surface() =>
        Imaging.GetExportedTypes().Concat(Inference.GetExportedTypes()).Concat(Serving.GetExportedTypes()).Concat(Training.GetExportedTypes().Where(t => t.Namespace == "Graft"))
            .OrderBy(t => t.FullName, StringComparer.Ordinal);

    /// <summary>Everything the packages export: the surface above, and the engine types its public members expose.</summary>
    static IEnumerable<Type> Exported() =>
        Surface().Concat(Training.GetExportedTypes()).Distinct().OrderBy(t => t.FullName, StringComparer.Ordinal);

    static IEnumerable<MemberInfo> Members(Type type) =>
        type.GetMembers(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly)
            .Where(m => m is not MethodInfo { IsSpecialName: true } && !IsRecordPlumbing(m))
            .OrderBy(m => m.ToString(), StringComparer.Ordinal);

    /// <summary>What the compiler writes for every record (equality, cloning, printing): not part of the design.</summary>
    static bool IsRecordPlumbing(MemberInfo m) =>
        m.Name is "<Clone>$" or "Equals" or "GetHashCode" or "PrintMembers" or "EqualityContract" or "Deconstruct" or "op_Equality" or "op_Inequality"
        || (m.Name == "ToString" && m.DeclaringType!.GetMethod("<Clone>$") is not null && m.DeclaringType.GetMethod("ToString", Type.EmptyTypes)!.GetCustomAttribute<System.Runtime.CompilerServices.CompilerGeneratedAttribute>() is not null);

    static string Snapshot() => string.Join("\n", Exported().SelectMany(t =>
        new[] { $"{(t.IsEnum ? "enum" : t.IsValueType ? "struct" : t.IsInterface ? "interface" : "class")} {t.FullName}" }
            .Concat(Members(t).Select(m => $"  {m.MemberType}: {m}")))) + "\n";

    [Fact]
    public void Public_surface_matches_the_snapshot()
    {
        var path = Path.Combine(RepoRoot(), "tests", "Graft.Tests", "PublicApi.txt");
        var actual = Snapshot();
        if (Environment.GetEnvironmentVariable("GRAFT_UPDATE_API") == "1") File.WriteAllText(path, actual);
        Assert.True(File.Exists(path), $"{path} is missing: run the tests once with GRAFT_UPDATE_API=1 and review it.");
        var expected = File.ReadAllText(path).ReplaceLineEndings("\n");
        var added = actual.Split('\n').Except(expected.Split('\n')).ToList();
        var removed = expected.Split('\n').Except(actual.Split('\n')).ToList();
        Assert.True(added.Count == 0 && removed.Count == 0,
            "The public API changed (if on purpose, rerun with GRAFT_UPDATE_API=1 and commit PublicApi.txt):\n" +
            string.Join("\n", added.Select(a => "+ " + a).Concat(removed.Select(r => "- " + r))));
    }

    /// <summary>
    /// The training package exports its facade (namespace Graft) and the types the facade's public members reach, and
    /// nothing else: a lower layer's type stays internal (visible to the CLI, the bench and the tests) until the facade
    /// hands it to users.
    /// </summary>
    [Fact]
    public void The_training_package_exports_only_what_its_facade_reaches()
    {
        var reached = new HashSet<Type>();
        var queue = new Queue<Type>(Surface().Where(t => t.Assembly == Training));
        void Reach(Type t)
        {
            foreach (var part in Flatten(t))
            {
                var type = part.IsGenericType ? part.GetGenericTypeDefinition() : part;
                if (type.Assembly == Training && !type.IsGenericParameter && reached.Add(type)) queue.Enqueue(type);
            }
        }
        foreach (var t in queue.ToList()) reached.Add(t);
        while (queue.Count > 0)
        {
            var t = queue.Dequeue();
            if (t.BaseType is { } b) Reach(b);
            foreach (var i in t.GetInterfaces()) Reach(i);
            foreach (var m in t.GetMembers(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly))
                foreach (var used in m switch
                {
                    PropertyInfo p => [p.PropertyType],
                    FieldInfo f => [f.FieldType],
                    MethodInfo mi => mi.GetParameters().Select(p => p.ParameterType).Append(mi.ReturnType),
                    ConstructorInfo c => c.GetParameters().Select(p => p.ParameterType),
                    Type nested => [nested],
                    _ => Array.Empty<Type>(),
                })
                    Reach(used.IsByRef ? used.GetElementType()! : used);
        }
        var unreached = Training.GetExportedTypes().Where(t => !reached.Contains(t) && !(t.DeclaringType is { } d && reached.Contains(d))).Select(t => t.FullName).ToList();
        Assert.True(unreached.Count == 0, "Public types no public member of namespace Graft reaches (make them internal):\n" + string.Join("\n", unreached));
    }

    [Fact]
    public void Every_public_member_is_documented()
    {
        var undocumented = new List<string>();
        foreach (var assembly in new[] { Imaging, Inference, Serving, Training })
        {
            var xml = Path.ChangeExtension(assembly.Location, ".xml");
            var documented = XDocument.Load(xml).Descendants("member").Select(m => (string)m.Attribute("name")!).ToHashSet();
            foreach (var type in Surface().Where(t => t.Assembly == assembly))
            {
                if (!documented.Contains("T:" + Name(type))) undocumented.Add(type.FullName!);
                foreach (var m in Members(type))
                {
                    var id = m switch
                    {
                        PropertyInfo p => "P:" + Name(type) + "." + p.Name,
                        FieldInfo f => "F:" + Name(type) + "." + f.Name,
                        MethodBase b => (b is ConstructorInfo ? "M:" + Name(type) + ".#ctor" : "M:" + Name(type) + "." + b.Name),
                        _ => null,
                    };
                    // Positional record properties are documented by the record's <param> tags; an enum's value__ field and
                    // an implicit parameterless constructor have no source to document.
                    bool positional = m is PropertyInfo && type.GetConstructors().Any(c => c.GetParameters().Any(p => p.Name == m.Name));
                    bool implicitMember = m is FieldInfo { IsSpecialName: true } || (m is ConstructorInfo c && c.GetParameters().Length == 0);
                    if (id is not null && !positional && !implicitMember && !documented.Any(d => d == id || d.StartsWith(id + "(", StringComparison.Ordinal)))
                        undocumented.Add($"{type.FullName}.{m.Name}");
                }
            }
        }
        Assert.True(undocumented.Count == 0, "Public members without XML docs:\n" + string.Join("\n", undocumented.Distinct()));
    }

    [Fact]
    public void The_common_path_speaks_no_TorchSharp()
    {
        var torch = typeof(TorchSharp.torch).Assembly;
        var leaks = new List<string>();
        foreach (var type in Surface())
            foreach (var m in Members(type))
            {
                var types = m switch
                {
                    PropertyInfo p => [p.PropertyType],
                    FieldInfo f => [f.FieldType],
                    MethodInfo mi => mi.GetParameters().Select(p => p.ParameterType).Append(mi.ReturnType),
                    ConstructorInfo c => c.GetParameters().Select(p => p.ParameterType),
                    _ => Array.Empty<Type>(),
                };
                if (types.SelectMany(Flatten).Any(t => t.Assembly == torch)) leaks.Add($"{type.FullName}.{m.Name}");
            }
        Assert.True(leaks.Count == 0, "TorchSharp types in the common path:\n" + string.Join("\n", leaks));
        foreach (var assembly in new[] { Imaging, Inference, Serving })
            Assert.DoesNotContain(assembly.GetReferencedAssemblies(), a => a.Name!.StartsWith("TorchSharp", StringComparison.Ordinal));
    }

    static IEnumerable<Type> Flatten(Type t) =>
        t.HasElementType ? Flatten(t.GetElementType()!) : t.IsGenericType ? t.GetGenericArguments().SelectMany(Flatten).Prepend(t) : [t];

    static string Name(Type t) => t.FullName!.Replace('+', '.');

    static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Graft.slnx"))) return dir.FullName;
        throw new DirectoryNotFoundException("Graft.slnx not found above the test binaries.");
    }
}
