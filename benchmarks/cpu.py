"""The CPU clocks the grading benchmarks report.

`TreeClock` counts the CPU seconds of this process and of every process it starts, the killed
ones and the ones in a sandbox's own namespaces included: it makes a cpuacct cgroup for this
process where the machine lets it (a cgroup's members' children stay in it, whoever reaps them).
Where it cannot, it falls back to getrusage of this process and of the children it has waited
for, which misses a sandboxed runner that is killed rather than waited for inside the sandbox.
`machine_cpu_seconds` counts every core's busy time (/proc/stat): nothing is missing, but whatever
else runs on the machine is in it too, so read it beside the load average, on a quiet machine.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import resource
import uuid
from pathlib import Path

CPUACCT = Path("/sys/fs/cgroup/cpuacct")


def tree_cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of every child it has waited for."""
    return sum(usage.ru_utime + usage.ru_stime for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)))


class TreeClock:
    """CPU seconds of this process and of everything it starts from now on, dead or alive.

    clock = TreeClock(); before = clock.seconds(); ...; used = clock.seconds() - before
    """

    def __init__(self):
        self.group: Path | None = None
        if (CPUACCT / "cgroup.procs").exists() and os.access(CPUACCT, os.W_OK):
            group = CPUACCT / f"benchmark-{uuid.uuid4().hex[:8]}"
            try:
                group.mkdir()
                (group / "cgroup.procs").write_text(str(os.getpid()))
                self.group = group
                atexit.register(self._remove)
            except OSError:
                pass

    def _remove(self) -> None:
        """Leave the cgroup and remove it (the kernel refuses while a process it started still lives)."""
        with contextlib.suppress(OSError):
            (CPUACCT / "cgroup.procs").write_text(str(os.getpid()))
            self.group.rmdir()

    def seconds(self) -> float:
        if self.group is not None:
            return int((self.group / "cpuacct.usage").read_text()) / 1e9
        return tree_cpu_seconds()

    @property
    def source(self) -> str:
        return "cpuacct cgroup" if self.group is not None else "getrusage (this process and its reaped children)"


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


def host_probe_seconds(decisions: int = 100) -> float:
    """CPU seconds of a fixed piece of the grader's own kind of work, on one thread: `decisions`
    decisions of the course's CEM (mbrl_reference.planners.cem_plan) with a fixed random network of
    the course's shape. The same work varies by a quarter or more from one minute to the next on a
    shared machine (other tenants share its caches and cores), so a benchmark reports this beside
    its own CPU figures: read them against the probe taken with them."""
    import time

    import torch

    from mbrl_helpers import ACTION_DIM, HIDDEN_SIZE, N_HIDDEN, STATE_DIM, build_mlp
    from mbrl_reference.planners import cem_plan

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            net = build_mlp(STATE_DIM + ACTION_DIM, STATE_DIM, HIDDEN_SIZE, N_HIDDEN)

            def predict_delta(states, actions):
                return 0.01 * net(torch.cat([states, actions], dim=-1))

            state = torch.tensor([0.0, 0.05, 0.0, 0.0])
            started = time.process_time()
            for _ in range(decisions):
                cem_plan(predict_delta, state)
            return time.process_time() - started
    finally:
        torch.set_num_threads(threads)
