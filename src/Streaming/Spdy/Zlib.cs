using System.Buffers;
using System.Runtime.InteropServices;

namespace Berth.Streaming.Spdy;

/// <summary>
/// The system zlib, bound directly: SPDY/3 header blocks need a preset dictionary, which System.IO.Compression
/// does not offer. Each side of a session keeps one deflate and one inflate context for its whole life.
/// </summary>
internal static unsafe partial class Zlib
{
    private const string Library = "libz.so.1";
    public const int Ok = 0;
    public const int StreamEnd = 1;
    public const int NeedDict = 2;
    public const int BufError = -5;
    public const int SyncFlush = 2;
    public const int DefaultCompression = -1;

    /// <summary>z_stream on LP64: next_in, avail_in, total_in, next_out, avail_out, total_out, msg, state,
    /// zalloc, zfree, opaque, data_type, adler, reserved.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct ZStream
    {
        public byte* NextIn;
        public uint AvailIn;
        public nuint TotalIn;
        public byte* NextOut;
        public uint AvailOut;
        public nuint TotalOut;
        public sbyte* Msg;
        public nint State;
        public nint ZAlloc;
        public nint ZFree;
        public nint Opaque;
        public int DataType;
        public nuint Adler;
        public nuint Reserved;
    }

    [LibraryImport(Library, EntryPoint = "zlibVersion")]
    public static partial nint Version();

    [LibraryImport(Library, EntryPoint = "deflateInit_")]
    public static partial int DeflateInit(ZStream* stream, int level, nint version, int streamSize);

    [LibraryImport(Library, EntryPoint = "deflateSetDictionary")]
    public static partial int DeflateSetDictionary(ZStream* stream, byte* dictionary, uint length);

    [LibraryImport(Library, EntryPoint = "deflate")]
    public static partial int Deflate(ZStream* stream, int flush);

    [LibraryImport(Library, EntryPoint = "deflateEnd")]
    public static partial int DeflateEnd(ZStream* stream);

    [LibraryImport(Library, EntryPoint = "inflateInit_")]
    public static partial int InflateInit(ZStream* stream, nint version, int streamSize);

    [LibraryImport(Library, EntryPoint = "inflateSetDictionary")]
    public static partial int InflateSetDictionary(ZStream* stream, byte* dictionary, uint length);

    [LibraryImport(Library, EntryPoint = "inflate")]
    public static partial int Inflate(ZStream* stream, int flush);

    [LibraryImport(Library, EntryPoint = "inflateEnd")]
    public static partial int InflateEnd(ZStream* stream);
}

/// <summary>
/// One direction's header compression context. zlib keeps a pointer to its z_stream, so the struct lives in native
/// memory, never on the moving managed heap. Not thread-safe: the owner serialises use (the session's write lock
/// for deflate, its single reader for inflate).
/// </summary>
internal sealed unsafe class SpdyHeaderCompression : IDisposable
{
    private readonly Zlib.ZStream* _stream;
    private readonly bool _deflate;
    private bool _disposed;

    private SpdyHeaderCompression(bool deflate)
    {
        _deflate = deflate;
        _stream = (Zlib.ZStream*)NativeMemory.AllocZeroed((nuint)sizeof(Zlib.ZStream));
        var result = deflate
            ? Zlib.DeflateInit(_stream, Zlib.DefaultCompression, Zlib.Version(), sizeof(Zlib.ZStream))
            : Zlib.InflateInit(_stream, Zlib.Version(), sizeof(Zlib.ZStream));
        if (result != Zlib.Ok)
        {
            NativeMemory.Free(_stream);
            throw new InvalidOperationException($"zlib {(deflate ? "deflateInit" : "inflateInit")} failed: {result}");
        }
        if (deflate)
        {
            fixed (byte* dictionary = SpdyDictionary.Bytes)
                Check(Zlib.DeflateSetDictionary(_stream, dictionary, (uint)SpdyDictionary.Bytes.Length), "deflateSetDictionary");
        }
    }

    public static SpdyHeaderCompression CreateDeflater() => new(deflate: true);

    public static SpdyHeaderCompression CreateInflater() => new(deflate: false);

    /// <summary>Compresses one header block and sync-flushes it, so the peer can decode it on its own.</summary>
    public void Compress(ReadOnlySpan<byte> input, IBufferWriter<byte> output)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        fixed (byte* source = input)
        {
            _stream->NextIn = source;
            _stream->AvailIn = (uint)input.Length;
            while (true)
            {
                var span = output.GetSpan(Math.Max(256, input.Length / 2 + 64));
                fixed (byte* target = span)
                {
                    _stream->NextOut = target;
                    _stream->AvailOut = (uint)span.Length;
                    var result = Zlib.Deflate(_stream, Zlib.SyncFlush);
                    if (result != Zlib.Ok && result != Zlib.BufError) Check(result, "deflate");
                    var written = span.Length - (int)_stream->AvailOut;
                    output.Advance(written);
                    // A sync flush is complete once deflate leaves room in the output with no input left.
                    if (_stream->AvailIn == 0 && _stream->AvailOut != 0) break;
                }
            }
            _stream->NextIn = null;
            _stream->NextOut = null;
        }
    }

    /// <summary>Decompresses one header block, at most <paramref name="limit"/> bytes of it.</summary>
    public byte[] Decompress(ReadOnlySpan<byte> input, int limit)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var output = new ArrayBufferWriter<byte>(Math.Min(limit, Math.Max(256, input.Length * 4)));
        fixed (byte* source = input)
        {
            _stream->NextIn = source;
            _stream->AvailIn = (uint)input.Length;
            while (true)
            {
                if (output.WrittenCount >= limit) throw new SpdyProtocolException($"a header block inflates to more than {limit} bytes");
                var span = output.GetSpan(Math.Min(4096, limit - output.WrittenCount + 1));
                fixed (byte* target = span)
                {
                    _stream->NextOut = target;
                    _stream->AvailOut = (uint)span.Length;
                    var result = Zlib.Inflate(_stream, Zlib.SyncFlush);
                    output.Advance(span.Length - (int)_stream->AvailOut);
                    if (result == Zlib.NeedDict)
                    {
                        fixed (byte* dictionary = SpdyDictionary.Bytes)
                            Check(Zlib.InflateSetDictionary(_stream, dictionary, (uint)SpdyDictionary.Bytes.Length), "inflateSetDictionary");
                        continue;
                    }
                    if (result == Zlib.BufError) break; // no progress possible: all input consumed
                    if (result != Zlib.Ok && result != Zlib.StreamEnd) throw new SpdyProtocolException($"header block does not inflate (zlib {result})");
                    if (_stream->AvailIn == 0 && _stream->AvailOut != 0) break;
                }
            }
            _stream->NextIn = null;
            _stream->NextOut = null;
        }
        if (output.WrittenCount > limit) throw new SpdyProtocolException($"a header block inflates to more than {limit} bytes");
        return output.WrittenSpan.ToArray();
    }

    private static void Check(int result, string call)
    {
        if (result != Zlib.Ok) throw new SpdyProtocolException($"zlib {call} failed: {result}");
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _ = _deflate ? Zlib.DeflateEnd(_stream) : Zlib.InflateEnd(_stream);
        NativeMemory.Free(_stream);
    }
}
