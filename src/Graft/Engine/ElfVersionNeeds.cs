using System.Buffers.Binary;
using System.Text;

namespace Graft.Engine;

/// <summary>
/// Reads and edits the symbol-version requirements (<c>.gnu.version_r</c>) of a 64-bit little-endian ELF
/// shared library. Graft uses it for one thing: TorchSharp 0.107's native glue asks for
/// <c>GLIBCXX_3.4.32</c> only for a symbol it never calls, so on systems with an older libstdc++ (Debian 12)
/// marking that requirement weak lets the library load. It also lists the libraries the file needs
/// (<c>DT_NEEDED</c>), so that a patched copy kept elsewhere can have them loaded from the original's folder.
/// </summary>
internal sealed class ElfVersionNeeds
{
    const uint ShtGnuVerneed = 0x6ffffffe;
    const uint ShtDynamic = 6;
    const ulong DtNeeded = 1;
    const ushort VerFlagWeak = 0x2;

    /// <summary>One version requirement: the library it is asked of, the version name and where its flags are.</summary>
    public sealed record Requirement(string Library, string Version, bool Weak, long FlagsOffset);

    public IReadOnlyList<Requirement> Requirements { get; }

    /// <summary>The libraries the file names as needed (<c>DT_NEEDED</c>), in order.</summary>
    public IReadOnlyList<string> Needed { get; }

    readonly byte[] _image;

    ElfVersionNeeds(byte[] image, IReadOnlyList<Requirement> requirements, IReadOnlyList<string> needed)
    {
        _image = image;
        Requirements = requirements;
        Needed = needed;
    }

    public static ElfVersionNeeds Read(string path) => Parse(File.ReadAllBytes(path), path);

    public static ElfVersionNeeds Parse(byte[] image, string nameForErrors)
    {
        var span = image.AsSpan();
        if (image.Length < 64 || span[0] != 0x7f || span[1] != (byte)'E' || span[2] != (byte)'L' || span[3] != (byte)'F')
            throw new GraftException($"{nameForErrors} is not an ELF file.", "Reinstall the package that provides it.");
        if (span[4] != 2 || span[5] != 1)
            throw new GraftException($"{nameForErrors} is not a 64-bit little-endian ELF file.", "Use the linux-x64 native package.");

        long shoff = (long)U64(span, 0x28);
        int shentsize = U16(span, 0x3A), shnum = U16(span, 0x3C);
        var requirements = new List<Requirement>();
        var needed = new List<string>();
        for (int i = 0; i < shnum; i++)
        {
            var sh = span.Slice((int)(shoff + (long)i * shentsize), shentsize);
            if (U32(sh, 4) == ShtDynamic)
            {
                long dynstr = (long)U64(span.Slice((int)(shoff + (long)U32(sh, 0x28) * shentsize), shentsize), 0x18);
                for (long at = (long)U64(sh, 0x18), end = at + (long)U64(sh, 0x20); at + 16 <= end; at += 16)
                    if (U64(span, (int)at) == DtNeeded) needed.Add(CString(span, dynstr + (long)U64(span, (int)at + 8)));
                continue;
            }
            if (U32(sh, 4) != ShtGnuVerneed) continue;
            long offset = (long)U64(sh, 0x18);
            int count = (int)U32(sh, 0x2C);
            var strtabHeader = span.Slice((int)(shoff + (long)U32(sh, 0x28) * shentsize), shentsize);
            long strtab = (long)U64(strtabHeader, 0x18);

            long entry = offset;
            for (int n = 0; n < count; n++)
            {
                string file = CString(span, strtab + U32(span, (int)entry + 4));
                int auxCount = U16(span, (int)entry + 2);
                long aux = entry + U32(span, (int)entry + 8);
                for (int a = 0; a < auxCount; a++)
                {
                    ushort flags = U16(span, (int)aux + 4);
                    string version = CString(span, strtab + U32(span, (int)aux + 8));
                    requirements.Add(new Requirement(file, version, (flags & VerFlagWeak) != 0, aux + 4));
                    aux += U32(span, (int)aux + 12);
                }
                entry += U32(span, (int)entry + 12);
            }
        }
        return new ElfVersionNeeds(image, requirements, needed);
    }

    /// <summary>Returns the image with the named version requirements marked weak.</summary>
    public byte[] WithWeak(IEnumerable<string> versions)
    {
        var wanted = versions.ToHashSet();
        var copy = (byte[])_image.Clone();
        foreach (var r in Requirements.Where(r => wanted.Contains(r.Version)))
        {
            var flags = BinaryPrimitives.ReadUInt16LittleEndian(copy.AsSpan((int)r.FlagsOffset));
            BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan((int)r.FlagsOffset), (ushort)(flags | VerFlagWeak));
        }
        return copy;
    }

    static ushort U16(ReadOnlySpan<byte> s, int at) => BinaryPrimitives.ReadUInt16LittleEndian(s[at..]);
    static uint U32(ReadOnlySpan<byte> s, int at) => BinaryPrimitives.ReadUInt32LittleEndian(s[at..]);
    static ulong U64(ReadOnlySpan<byte> s, int at) => BinaryPrimitives.ReadUInt64LittleEndian(s[at..]);

    static string CString(ReadOnlySpan<byte> s, long at)
    {
        var rest = s[(int)at..];
        return Encoding.ASCII.GetString(rest[..rest.IndexOf((byte)0)]);
    }
}
