namespace Graft.Training;

public enum LrSchedule { Constant, Step, Cosine, OneCycle }

/// <summary>Learning-rate multipliers over training, as a function of progress (step of total).</summary>
internal static class Schedules
{
    /// <summary>
    /// constant: 1; step: x0.1 at each third of training; cosine: half a cosine from 1 to 0;
    /// one-cycle: linear warm-up from 0.04 to 1 over the first 30%, then cosine down to ~0. With
    /// <paramref name="warmupSteps"/>, the first steps rise linearly to 1 and the schedule spans the steps after them.
    /// </summary>
    public static double Multiplier(LrSchedule schedule, long step, long totalSteps, long warmupSteps = 0)
    {
        if (warmupSteps > 0 && step < warmupSteps) return (step + 1.0) / (warmupSteps + 1.0);
        (step, totalSteps) = (step - warmupSteps, totalSteps - warmupSteps);
        double t = totalSteps <= 1 ? 0 : Math.Clamp((double)step / (totalSteps - 1), 0, 1);
        return schedule switch
        {
            LrSchedule.Step => Math.Pow(0.1, Math.Min(2, (int)(t * 3))),
            LrSchedule.Cosine => 0.5 * (1 + Math.Cos(Math.PI * t)),
            LrSchedule.OneCycle => t < 0.3
                ? 0.04 + (1 - 0.04) * t / 0.3
                : 0.5 * (1 + Math.Cos(Math.PI * (t - 0.3) / 0.7)) * (1 - 1e-4) + 1e-4,
            _ => 1,
        };
    }
}
