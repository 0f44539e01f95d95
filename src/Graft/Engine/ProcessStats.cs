namespace Graft.Engine;

public static class ProcessStats
{
    /// <summary>Peak resident memory of this process in MB (VmHWM on Linux; the runtime's figure elsewhere).</summary>
    public static double PeakRssMb()
    {
        if (OperatingSystem.IsLinux())
        {
            var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:"));
            if (line is not null) return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
        }
        return System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024);
    }
}
