using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;

namespace Berth.E2E.Tests.Fixtures;

/// <summary>
/// Hostile variants of a CRI request, one field at a time: every leaf of the message (nested messages, one element
/// of each repeated field, one entry of each map) set to each value of its type's hostile set, the rest as in the
/// baseline. Requests are sent by method descriptor, so every RPC of a service is covered without a table.
/// </summary>
public static class RequestFuzzer
{
    private const int MaxDepth = 4;

    /// <summary>A variant: which field, what value (for the failure message), and the request.</summary>
    public sealed record Variant(string Field, string Value, IMessage Request);

    public static IEnumerable<Variant> Variants(IMessage baseline, IReadOnlyList<string> hostileStrings)
    {
        foreach (var (path, value, label) in Leaves(baseline.Descriptor, [], 0, hostileStrings))
        {
            var copy = baseline.Clone();
            Set(copy, path, value);
            yield return new Variant(string.Join('.', path.Select(f => f.Name)), label, copy);
        }
    }

    private static IMessage Clone(this IMessage message) => message.Descriptor.Parser.ParseFrom(message.ToByteString());

    private static IEnumerable<(IReadOnlyList<FieldDescriptor> Path, object Value, string Label)> Leaves(
        MessageDescriptor descriptor, IReadOnlyList<FieldDescriptor> prefix, int depth, IReadOnlyList<string> hostileStrings)
    {
        foreach (var field in descriptor.Fields.InFieldNumberOrder())
        {
            IReadOnlyList<FieldDescriptor> path = [.. prefix, field];
            if (field.IsMap)
            {
                var value = field.MessageType.FindFieldByNumber(2);
                foreach (var key in hostileStrings)
                    yield return (path, new KeyValuePair<object, object>(key, Default(value)), $"key {Describe(key)}");
                if (value.FieldType == FieldType.String)
                {
                    foreach (var text in hostileStrings)
                        yield return (path, new KeyValuePair<object, object>("berth.fuzz/key", text), $"value {Describe(text)}");
                }
                continue;
            }
            if (field.FieldType == FieldType.Message)
            {
                if (depth >= MaxDepth || field.MessageType.FullName.StartsWith("google.protobuf.", StringComparison.Ordinal)) continue;
                foreach (var leaf in Leaves(field.MessageType, path, depth + 1, hostileStrings)) yield return leaf;
                continue;
            }
            foreach (var (value, label) in Hostile(field, hostileStrings)) yield return (path, value, label);
        }
    }

    private static IEnumerable<(object Value, string Label)> Hostile(FieldDescriptor field, IReadOnlyList<string> hostileStrings) => field.FieldType switch
    {
        FieldType.String => hostileStrings.Select(s => ((object)s, Describe(s))),
        FieldType.Bytes => [(ByteString.CopyFrom(new byte[256 * 1024]), "256 KiB of zeros")],
        FieldType.Bool => [(true, "true")],
        FieldType.Enum => [(99, "enum 99"), (-1, "enum -1")],
        FieldType.Int32 or FieldType.SInt32 or FieldType.SFixed32 => [(-1, "-1"), (int.MinValue, "int.MinValue"), (int.MaxValue, "int.MaxValue")],
        FieldType.Int64 or FieldType.SInt64 or FieldType.SFixed64 => [(-1L, "-1"), (long.MinValue, "long.MinValue"), (long.MaxValue, "long.MaxValue")],
        FieldType.UInt32 or FieldType.Fixed32 => [(uint.MaxValue, "uint.MaxValue")],
        FieldType.UInt64 or FieldType.Fixed64 => [(ulong.MaxValue, "ulong.MaxValue")],
        FieldType.Double => [(double.NaN, "NaN"), (double.MaxValue, "double.MaxValue")],
        FieldType.Float => [(float.NaN, "NaN")],
        _ => [],
    };

    private static object Default(FieldDescriptor field) => field.FieldType switch
    {
        FieldType.String => "",
        FieldType.Message => New(field.MessageType),
        FieldType.Bool => false,
        FieldType.Bytes => ByteString.Empty,
        FieldType.Enum => 0,
        FieldType.Int64 or FieldType.SInt64 or FieldType.SFixed64 => 0L,
        FieldType.UInt64 or FieldType.Fixed64 => 0UL,
        FieldType.UInt32 or FieldType.Fixed32 => 0U,
        _ => 0,
    };

    private static IMessage New(MessageDescriptor descriptor) => descriptor.Parser.ParseFrom(ByteString.Empty);

    private static string Describe(string text) => text switch
    {
        "" => "empty",
        _ when text.Length > 64 => $"{text.Length} chars",
        _ => $"'{text.Replace("\0", "\\0", StringComparison.Ordinal)}'",
    };

    /// <summary>Sets the leaf at <paramref name="path"/>, creating messages on the way and adding one element to a repeated field.</summary>
    private static void Set(IMessage message, IReadOnlyList<FieldDescriptor> path, object value)
    {
        var field = path[0];
        if (path.Count == 1)
        {
            if (field.IsMap)
            {
                var entry = (KeyValuePair<object, object>)value;
                var map = (System.Collections.IDictionary)field.Accessor.GetValue(message);
                map[entry.Key] = entry.Value;
            }
            else if (field.IsRepeated)
            {
                var list = (System.Collections.IList)field.Accessor.GetValue(message);
                list.Add(field.FieldType == FieldType.Enum ? Enum.ToObject(list.GetType().GetGenericArguments()[0], (int)value) : value);
            }
            else
            {
                field.Accessor.SetValue(message, field.FieldType == FieldType.Enum ? Enum.ToObject(EnumType(message, field), (int)value) : value);
            }
            return;
        }
        IMessage child;
        if (field.IsRepeated)
        {
            var list = (System.Collections.IList)field.Accessor.GetValue(message);
            child = New(field.MessageType);
            list.Add(child);
        }
        else
        {
            child = (IMessage?)field.Accessor.GetValue(message) ?? New(field.MessageType);
            field.Accessor.SetValue(message, child);
        }
        Set(child, path.Skip(1).ToList(), value);
    }

    /// <summary>The CLR enum of an enum field, from a value the generated property holds.</summary>
    private static Type EnumType(IMessage message, FieldDescriptor field) =>
        message.GetType().GetProperty(field.PropertyName)!.PropertyType;

    /// <summary>Calls a method of a CRI service by its descriptor; server streams are read to their end.</summary>
    public static async Task CallAsync(CallInvoker invoker, MethodDescriptor method, IMessage request, DateTime deadline)
    {
        var marshaller = Marshallers.Create<IMessage>(m => m.ToByteArray(), bytes => method.OutputType.Parser.ParseFrom(bytes));
        var requestMarshaller = Marshallers.Create<IMessage>(m => m.ToByteArray(), bytes => method.InputType.Parser.ParseFrom(bytes));
        var type = method.IsServerStreaming ? MethodType.ServerStreaming : MethodType.Unary;
        var call = new Method<IMessage, IMessage>(type, method.Service.FullName, method.Name, requestMarshaller, marshaller);
        var options = new CallOptions(deadline: deadline);
        if (method.IsServerStreaming)
        {
            using var stream = invoker.AsyncServerStreamingCall(call, null, options, request);
            while (await stream.ResponseStream.MoveNext(CancellationToken.None))
            {
            }
            return;
        }
        using var unary = invoker.AsyncUnaryCall(call, null, options, request);
        await unary.ResponseAsync;
    }
}
