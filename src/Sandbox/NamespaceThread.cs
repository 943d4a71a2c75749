using System.Runtime.ExceptionServices;

namespace Berth.Sandbox;

/// <summary>
/// Runs work that changes the calling thread's namespaces on a fresh thread of its own, which ends with the work:
/// namespaces are per thread, and no pooled thread may ever carry a pod's namespaces into other work.
/// </summary>
internal static class NamespaceThread
{
    public static void Run(string name, Action work) => Run(name, () =>
    {
        work();
        return true;
    });

    public static T Run<T>(string name, Func<T> work)
    {
        T result = default!;
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = work();
            }
            catch (Exception e)
            {
                failure = ExceptionDispatchInfo.Capture(e);
            }
        }, 256 * 1024)
        { IsBackground = true, Name = name };
        thread.Start();
        thread.Join();
        failure?.Throw();
        return result;
    }
}
