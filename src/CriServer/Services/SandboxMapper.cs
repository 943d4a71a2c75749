using System.Buffers;
using System.Text;
using System.Text.Json;
using Berth.Cri.V1;
using Berth.Sandbox;

namespace Berth.CriServer.Services;

/// <summary>Sandbox records to CRI messages.</summary>
internal static class SandboxMapper
{
    public static PodSandboxState StateOf(SandboxRecord record) =>
        record.State == SandboxState.Ready ? PodSandboxState.SandboxReady : PodSandboxState.SandboxNotready;

    private static PodSandboxMetadata Metadata(SandboxRecord record) => new()
    {
        Name = record.Name,
        Namespace = record.Namespace,
        Uid = record.Uid,
        Attempt = record.Attempt,
    };

    // Made once per record, as ContainerMapper's list items are: a record never changes.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<SandboxRecord, PodSandbox> ListItems = new();

    /// <summary>The record as a ListPodSandbox item; shared between calls, so never to be changed.</summary>
    public static PodSandbox ToListItem(SandboxRecord record) => ListItems.GetValue(record, NewListItem);

    private static PodSandbox NewListItem(SandboxRecord record)
    {
        var item = new PodSandbox
        {
            Id = record.Id,
            Metadata = Metadata(record),
            State = StateOf(record),
            CreatedAt = record.CreatedAtUnixNanos,
            RuntimeHandler = record.RuntimeHandler,
        };
        item.Labels.Add(record.Labels);
        item.Annotations.Add(record.Annotations);
        return item;
    }

    public static PodSandboxStatus ToStatus(SandboxRecord record)
    {
        var status = new PodSandboxStatus
        {
            Id = record.Id,
            Metadata = Metadata(record),
            State = StateOf(record),
            CreatedAt = record.CreatedAtUnixNanos,
            Network = new PodSandboxNetworkStatus { Ip = record.Ips.FirstOrDefault() ?? "" },
            Linux = new LinuxPodSandboxStatus
            {
                Namespaces = new Namespace
                {
                    Options = new NamespaceOption
                    {
                        Network = record.HostNetwork ? NamespaceMode.Node : NamespaceMode.Pod,
                        Ipc = record.HostIpc ? NamespaceMode.Node : NamespaceMode.Pod,
                        Pid = record.Pid switch { PidMode.Node => NamespaceMode.Node, PidMode.Pod => NamespaceMode.Pod, _ => NamespaceMode.Container },
                        UsernsOptions = UserNamespaceOf(record.UserNamespace),
                    },
                },
            },
            RuntimeHandler = record.RuntimeHandler,
        };
        status.Network.AdditionalIps.AddRange(record.Ips.Skip(1).Select(ip => new PodIP { Ip = ip }));
        status.Labels.Add(record.Labels);
        status.Annotations.Add(record.Annotations);
        return status;
    }

    /// <summary>The pod's user namespace as CRI states it: NODE, or POD with its one UID and one GID range.</summary>
    public static UserNamespace UserNamespaceOf(UserNamespaceMapping? mapping)
    {
        if (mapping is null) return new UserNamespace { Mode = NamespaceMode.Node };
        var options = new UserNamespace { Mode = NamespaceMode.Pod };
        options.Uids.Add(new IDMapping { ContainerId = mapping.Uids.ContainerId, HostId = mapping.Uids.HostId, Length = mapping.Uids.Length });
        options.Gids.Add(new IDMapping { ContainerId = mapping.Gids.ContainerId, HostId = mapping.Gids.HostId, Length = mapping.Gids.Length });
        return options;
    }

    public static string VerboseInfo(SandboxRecord record)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer, StatusInfo.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("hostname", record.Hostname);
            writer.WriteString("directory", record.Directory);
            if (record.ShmPath is { } shm) writer.WriteString("shm", shm);
            writer.WriteString("cgroupParent", record.CgroupParent ?? "");
            // The infra process of a shared PID namespace, as containerd reports its pause container's pid.
            if (record.Infra is { } infra) writer.WriteNumber("pid", infra.Pid);
            writer.WriteStartObject("namespacePaths");
            foreach (var (kind, path) in record.NamespacePaths) writer.WriteString(kind, path);
            writer.WriteEndObject();
            writer.WriteStartArray("portMappings");
            foreach (var port in record.PortMappings)
            {
                writer.WriteStartObject();
                writer.WriteString("protocol", port.Protocol);
                writer.WriteNumber("containerPort", port.ContainerPort);
                writer.WriteNumber("hostPort", port.HostPort);
                writer.WriteString("hostIP", port.HostIp);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
