"""The two CPU clocks the grading benchmarks report.

`tree_cpu_seconds` counts this process and the children it has waited for (getrusage). A sandboxed
runner that is killed rather than left to end is not waited for by its parents inside the sandbox,
so part of its CPU time can be missing there. `machine_cpu_seconds` counts every core's busy time
(/proc/stat): nothing is missing, but whatever else runs on the machine is in it too, so read it
beside the load average, on a quiet machine.
"""

from __future__ import annotations

import os
import resource


def tree_cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of every child it has waited for."""
    return sum(usage.ru_utime + usage.ru_stime for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)))


def machine_cpu_seconds() -> float:
    """Busy seconds of all cores together since boot (/proc/stat: every state but idle and iowait);
    0.0 where /proc/stat is missing."""
    try:
        with open("/proc/stat") as handle:
            fields = handle.readline().split()[1:]
    except OSError:
        return 0.0
    ticks = [int(value) for value in fields]
    busy = sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)
    return busy / os.sysconf("SC_CLK_TCK")
