using Berth.Nri.Api;

namespace Berth.Nri.Adaptation;

/// <summary>A plugin's subscription: bit (event - 1) set for each event it wants (pkg/api event.go).</summary>
public readonly record struct EventMask(int Bits)
{
    /// <summary>Every event up to <see cref="Event.Last"/>; a plugin that names none gets these.</summary>
    public static readonly EventMask Valid = new((1 << ((int)Event.Last - 1)) - 1);

    public bool IsSet(Event e) => (Bits & (1 << ((int)e - 1))) != 0;

    public IReadOnlyList<string> Names()
    {
        var mask = this;
        return [.. Enum.GetValues<Event>().Where(e => e is > Event.Unknown and < Event.Last && mask.IsSet(e)).Select(PrettyName)];
    }

    public static string PrettyName(Event e) => e switch
    {
        Event.RunPodSandbox => "RunPodSandbox",
        Event.UpdatePodSandbox => "UpdatePodSandbox",
        Event.PostUpdatePodSandbox => "PostUpdatePodSandbox",
        Event.StopPodSandbox => "StopPodSandbox",
        Event.RemovePodSandbox => "RemovePodSandbox",
        Event.CreateContainer => "CreateContainer",
        Event.PostCreateContainer => "PostCreateContainer",
        Event.StartContainer => "StartContainer",
        Event.PostStartContainer => "PostStartContainer",
        Event.UpdateContainer => "UpdateContainer",
        Event.PostUpdateContainer => "PostUpdateContainer",
        Event.StopContainer => "StopContainer",
        Event.RemoveContainer => "RemoveContainer",
        Event.ValidateContainerAdjustment => "ValidateContainerAdjustment",
        _ => $"unknown({(int)e})",
    };
}
