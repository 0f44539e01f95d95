using Mono.Cecil;
using Mono.Cecil.Cil;

namespace Graft.Tests;

/// <summary>
/// The layers of docs/DESIGN.md, checked on the compiled assemblies: every reference from one namespace to another
/// of the same assembly (signatures, base types, and every type, method and field the code names) points down the table
/// below, so no cycle can form. Assemblies cannot reference each other in a circle at all (the compiler sees to that).
/// A namespace that is not in the table is an error: a new one must be given its place.
/// </summary>
public class ArchitectureTests
{
    /// <summary>Each assembly's namespaces (a namespace stands for its sub-namespaces), lowest layer first.</summary>
    static readonly Dictionary<string, string[][]> Layers = new()
    {
        ["Graft.Imaging"] = [["Graft"], ["Graft.Imaging"]],
        ["Graft.Inference"] = [["Graft.Inference"], ["Graft"]],
        ["Graft"] =
        [
            // Kernel: weight formats and where files live, native set-up and the device, layer primitives and
            // architectures, heads, datasets.
            ["Graft.Weights"], ["Graft.Engine"], ["Graft.Backbones", "Graft.Heads", "Graft.Data"],
            // Runtime: ONNX export and int8, trunk runners.
            ["Graft.Export"], ["Graft.Runtime"],
            // Training: the fit loop, the feature service and cache.
            ["Graft.Training"],
            // The trained classifier and its file.
            ["Graft.Models"],
            // Workflows: evaluation, audit, reports, and the facade (Learner, advisor, options).
            ["Graft.Evaluation"], ["Graft.Audit"], ["Graft.Reports"], ["Graft"],
        ],
        ["Graft.Bench"] = [["Graft.Bench"]],
        ["Graft.Serve"] = [["Graft.Serve"]],
        ["Graft.Cli"] = [["Graft.Cli"]],
    };

    public static IEnumerable<object[]> Assemblies() => Layers.Keys.Select(k => new object[] { k });

    [Theory]
    [MemberData(nameof(Assemblies))]
    public void Namespaces_depend_only_on_lower_layers(string assemblyName)
    {
        var layerOf = Layers[assemblyName].SelectMany((names, layer) => names.Select(n => (n, layer))).ToDictionary(p => p.n, p => p.layer);
        var edges = References(assemblyName);
        var problems = new List<string>();
        foreach (var ((from, to), example) in edges.OrderBy(e => e.Key.From).ThenBy(e => e.Key.To))
        {
            if (!layerOf.TryGetValue(from, out var a)) problems.Add($"{from} is not in the layer table ({example})");
            else if (!layerOf.TryGetValue(to, out var b)) problems.Add($"{to} is not in the layer table ({example})");
            else if (a < b || (a == b && from != to)) problems.Add($"{from} (layer {a}) -> {to} (layer {b}): {example}");
        }
        Assert.True(problems.Count == 0, $"{assemblyName}: references that point up or sideways:\n" + string.Join("\n", problems.Distinct()));
    }

    [Theory]
    [MemberData(nameof(Assemblies))]
    public void Namespaces_form_no_cycle(string assemblyName)
    {
        var graph = References(assemblyName).Keys.GroupBy(e => e.From).ToDictionary(g => g.Key, g => g.Select(e => e.To).ToHashSet());
        var cycles = StronglyConnected(graph).Where(c => c.Count > 1).Select(c => string.Join(" <-> ", c.Order())).ToList();
        Assert.True(cycles.Count == 0, $"{assemblyName}: namespace cycles: {string.Join("; ", cycles)}");
    }

    /// <summary>(from namespace, to namespace) → one example reference, for namespaces of this assembly's own types.</summary>
    static Dictionary<(string From, string To), string> References(string assemblyName)
    {
        var path = Path.Combine(AppContext.BaseDirectory, assemblyName + ".dll");
        using var module = ModuleDefinition.ReadModule(path);
        var edges = new Dictionary<(string, string), string>();
        foreach (var type in module.GetTypes())
        {
            var from = Unit(type, assemblyName);
            if (from is null) continue;
            foreach (var (referenced, where) in Referenced(type))
            {
                var to = Unit(referenced, assemblyName);
                if (to is not null && to != from) edges.TryAdd((from, to), $"{type.FullName} {where} {referenced.FullName}");
            }
        }
        return edges;
    }

    /// <summary>The layer-table namespace of a type of <paramref name="assemblyName"/> (null for other assemblies' and compiler types).</summary>
    static string? Unit(TypeReference type, string assemblyName)
    {
        while (type is TypeSpecification spec) type = spec.ElementType;
        if (type is GenericParameter) return null;
        var scope = type.Scope switch { ModuleDefinition m => m.Assembly.Name.Name, AssemblyNameReference r => r.Name, _ => type.Module?.Assembly.Name.Name };
        if (scope != assemblyName) return null;
        while (type.DeclaringType is not null) type = type.DeclaringType;
        if (type.Namespace != "Graft" && !type.Namespace.StartsWith("Graft.", StringComparison.Ordinal)) return null; // <Module>, generated code
        var known = Layers[assemblyName].SelectMany(n => n).Where(n => type.Namespace == n || type.Namespace.StartsWith(n + ".", StringComparison.Ordinal))
            .OrderByDescending(n => n.Length).FirstOrDefault();
        return known ?? type.Namespace;
    }

    /// <summary>Every type a type names: in its signatures, base type and interfaces, attributes, and in its methods' code.</summary>
    static IEnumerable<(TypeReference Type, string Where)> Referenced(TypeDefinition type)
    {
        if (type.BaseType is { } b) foreach (var t in Expand(b)) yield return (t, "derives from");
        foreach (var i in type.Interfaces) foreach (var t in Expand(i.InterfaceType)) yield return (t, "implements");
        foreach (var f in type.Fields) foreach (var t in Expand(f.FieldType)) yield return (t, $"field {f.Name} is");
        foreach (var p in type.Properties) foreach (var t in Expand(p.PropertyType)) yield return (t, $"property {p.Name} is");
        foreach (var m in type.Methods)
        {
            foreach (var t in Expand(m.ReturnType)) yield return (t, $"{m.Name} returns");
            foreach (var p in m.Parameters) foreach (var t in Expand(p.ParameterType)) yield return (t, $"{m.Name} takes");
            if (!m.HasBody) continue;
            foreach (var v in m.Body.Variables) foreach (var t in Expand(v.VariableType)) yield return (t, $"{m.Name} holds");
            foreach (var instruction in m.Body.Instructions)
            {
                var named = instruction.Operand switch
                {
                    TypeReference t => Expand(t),
                    MethodReference r => Expand(r.DeclaringType).Concat(Expand(r.ReturnType)).Concat(r.Parameters.SelectMany(p => Expand(p.ParameterType)))
                        .Concat(r is GenericInstanceMethod g ? g.GenericArguments.SelectMany(Expand) : []),
                    FieldReference f => Expand(f.DeclaringType).Concat(Expand(f.FieldType)),
                    _ => [],
                };
                foreach (var t in named) yield return (t, $"{m.Name} uses");
            }
        }
    }

    /// <summary>A type and the types it is built from (array elements, generic arguments).</summary>
    static IEnumerable<TypeReference> Expand(TypeReference type)
    {
        yield return type;
        if (type is GenericInstanceType g) foreach (var a in g.GenericArguments) foreach (var t in Expand(a)) yield return t;
        else if (type is TypeSpecification spec) foreach (var t in Expand(spec.ElementType)) yield return t;
    }

    /// <summary>Tarjan's strongly connected components.</summary>
    static List<List<string>> StronglyConnected(Dictionary<string, HashSet<string>> graph)
    {
        var index = new Dictionary<string, int>();
        var low = new Dictionary<string, int>();
        var stack = new Stack<string>();
        var result = new List<List<string>>();
        void Visit(string v)
        {
            index[v] = low[v] = index.Count;
            stack.Push(v);
            foreach (var w in graph.GetValueOrDefault(v) ?? [])
            {
                if (!index.ContainsKey(w)) { Visit(w); low[v] = Math.Min(low[v], low[w]); }
                else if (stack.Contains(w)) low[v] = Math.Min(low[v], index[w]);
            }
            if (low[v] != index[v]) return;
            var component = new List<string>();
            string x;
            do { x = stack.Pop(); component.Add(x); } while (x != v);
            result.Add(component);
        }
        foreach (var v in graph.Keys.Concat(graph.Values.SelectMany(s => s)).Distinct().Order()) if (!index.ContainsKey(v)) Visit(v);
        return result;
    }
}
