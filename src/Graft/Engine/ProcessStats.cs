namespace Graft.Engine;

internal static class ProcessStats
{
    /// <summary>Peak resident memory of this process in MB (VmHWM on Linux; the runtime's figure elsewhere).</summary>
    public static double PeakRssMb() => Status("VmHWM:") ?? System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024);

    /// <summary>Resident memory now, in MB.</summary>
    public static double CurrentRssMb() => Status("VmRSS:") ?? System.Diagnostics.Process.GetCurrentProcess().WorkingSet64 / (1024.0 * 1024);

    static double? Status(string key)
    {
        if (!OperatingSystem.IsLinux()) return null;
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith(key));
        return line is null ? null : StatusKb(line) / 1024.0;
    }

    /// <summary>
    /// The kB figure of a /proc/self/status line: "VmHWM:\t  123456 kB", or with 8 digits and more "VmHWM:\t11565640 kB"
    /// (no space after the tab: split on any white space).
    /// </summary>
    internal static long StatusKb(string line) => long.Parse(line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[1]);
}
