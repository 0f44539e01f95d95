using System.Buffers.Binary;
using System.Text;

namespace Graft.Export;

/// <summary>
/// The Protocol Buffers wire format, as much as ONNX needs: varint integers, 32-bit floats and
/// length-delimited fields (strings, bytes, nested messages). A nested message is written into its own
/// writer and then embedded, because its length has to precede it. Hand-written so the exporter needs
/// no generated code and no protobuf package.
/// </summary>
sealed class ProtoWriter
{
    const int VarintType = 0, LengthDelimitedType = 2, Fixed32Type = 5;

    readonly MemoryStream _buffer = new();

    public ProtoWriter Int(int field, long value)
    {
        Tag(field, VarintType);
        Varint((ulong)value); // negative values take ten bytes, as protobuf's int64 does
        return this;
    }

    public ProtoWriter Float(int field, float value)
    {
        Tag(field, Fixed32Type);
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteSingleLittleEndian(bytes, value);
        _buffer.Write(bytes);
        return this;
    }

    public ProtoWriter Bytes(int field, ReadOnlySpan<byte> value)
    {
        Tag(field, LengthDelimitedType);
        Varint((ulong)value.Length);
        _buffer.Write(value);
        return this;
    }

    public ProtoWriter String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

    public ProtoWriter Message(int field, ProtoWriter message) => Bytes(field, message.Written);

    public byte[] ToArray() => _buffer.ToArray();

    ReadOnlySpan<byte> Written => _buffer.GetBuffer().AsSpan(0, (int)_buffer.Length);

    void Tag(int field, int wireType) => Varint((ulong)(field << 3 | wireType));

    void Varint(ulong value)
    {
        while (value >= 0x80)
        {
            _buffer.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }
        _buffer.WriteByte((byte)value);
    }
}
