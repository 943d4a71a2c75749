using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Berth.ImageStore.Native;

internal static unsafe class Stat
{
    public static bool TryLstat(string path, out ulong device, out ulong inode, out ulong blocks)
    {
        var bytes = Sys.Utf8z(path);
        stat st;
        fixed (byte* p = bytes)
        {
            if (lstat(p, &st) != 0)
            {
                device = inode = blocks = 0;
                return false;
            }
        }
        device = st.st_dev;
        inode = st.st_ino;
        blocks = (ulong)(long)st.st_blocks;
        return true;
    }
}
