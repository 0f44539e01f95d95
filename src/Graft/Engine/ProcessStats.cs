namespace Graft.Engine;

public static class ProcessStats
{
    /// <summary>Peak resident memory of this process in MB (VmHWM on Linux; the runtime's figure elsewhere).</summary>
    public static double PeakRssMb() => Status("VmHWM:") ?? System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024);

    /// <summary>Resident memory now, in MB.</summary>
    public static double CurrentRssMb() => Status("VmRSS:") ?? System.Diagnostics.Process.GetCurrentProcess().WorkingSet64 / (1024.0 * 1024);

    static double? Status(string key)
    {
        if (!OperatingSystem.IsLinux()) return null;
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith(key));
        return line is null ? null : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
    }
}
