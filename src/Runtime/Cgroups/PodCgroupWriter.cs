using Berth.Runtime.Containers;
using Berth.Runtime.Spec;

namespace Berth.Runtime.Cgroups;

/// <summary>
/// A pod's cgroup (kubelet's cgroup_parent, which holds the pod's containers' cgroups), set by
/// UpdatePodSandboxResources. Values of zero are left as they are, as in UpdateContainerResources; the node's
/// per-container pids limit is not a pod's and is not written.
/// </summary>
public sealed class PodCgroupWriter(NodeSettings node)
{
    public void Update(string cgroupParent, ContainerResources resources)
    {
        OciResources oci;
        try
        {
            oci = OciSpecBuilder.UpdatedResources(resources, node) with { Pids = null };
        }
        catch (ContainerSpecException e)
        {
            throw new ContainerRequestException(e.Message);
        }
        try
        {
            new CgroupWriter(node.CgroupV2).Apply(CgroupPaths.Resolve(cgroupParent), oci);
        }
        catch (DirectoryNotFoundException)
        {
            throw new ContainerStateException($"the pod's cgroup {cgroupParent} does not exist (yet): it is made with the pod's first container");
        }
        catch (CgroupWriteException e)
        {
            throw new ContainerStateException($"the pod's cgroup {cgroupParent} was not fully updated: {e.Message}");
        }
    }
}
