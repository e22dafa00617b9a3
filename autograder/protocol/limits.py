"""Every limit on grading one notebook, with its default, in one value that travels whole.

    limits = Limits(memory_mb=2048)                # the command line's flags make one
    Limits.from_dict(limits.to_dict()) == limits   # as plain data across process and Dask boundaries

The command line (`autograder.cli`), the course (`Course.limits`), nbgrader's `CheckedExecute`
traits, the grading workers and the sandbox (`autograder.sandbox.bubblewrap`) all read this one
value; no other module writes a default. Standard library only: the runner's side may import it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class Limits:
    """What one student's notebook may use while it is graded."""

    cell_timeout: int = 300
    """CPU seconds the runner may use on one cell before it is stopped (and, for code that waits
    instead of computing, three times as many seconds of wall time): a real 1000-step episode with
    the course's CEM planner takes about 10 s on one thread, so a slower but correct solution has room"""
    notebook_timeout: int = 1200
    """seconds all cells and checks of one notebook may take together; a complete reference notebook
    needs well under a tenth of it"""
    memory_mb: int = 4096
    """MiB of memory all processes of the student's sandbox may hold together (a memory cgroup with
    swap off where the grader may make one), and the address space of each (RLIMIT_AS); 0: no limit"""
    scratch_mb: int = 256
    """MiB the sandbox may write, everywhere together: its /tmp (also HOME) and /dev/shm, which lies
    inside it; every other folder it sees is read-only"""
    max_processes: int = 64
    """processes and threads of one sandbox together (a pids cgroup, else RLIMIT_NPROC)"""
    threads: int = 1
    """threads torch, OpenMP and BLAS may use in the sandbox"""
    cpus: float = 1.0
    """cores one sandbox may use at once (a cgroup CPU quota where the grader may make one)"""
    cell_output_mb: float = 2.0
    """MiB of output (text and images) one cell may send back; the rest is cut, and the cell says so"""
    notebook_output_mb: float = 10.0
    """MiB of output all cells of one notebook may send back together"""
    max_restarts: int = 3
    """failures of the student's runner per notebook after which the remaining cells are given up"""
    sandbox: bool = True
    """run student code in the bubblewrap sandbox (False: --no-sandbox, said on every report)"""

    def __post_init__(self):
        for field in fields(self):
            value = getattr(self, field.name)
            kind = bool if field.type == "bool" else (float, int) if field.type == "float" else int
            if not isinstance(value, kind) or (field.type != "bool" and isinstance(value, bool)):
                raise ValueError(f"limit {field.name} must be a {field.type}, got {value!r}")
            if field.type != "bool" and value < 0:
                raise ValueError(f"limit {field.name} must not be negative, got {value!r}")

    @property
    def cpu_seconds(self) -> int:
        """CPU time of each process of the sandbox (RLIMIT_CPU): a backstop far behind the budgets."""
        return max(60, 2 * self.notebook_timeout)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Limits:
        """A Limits from plain data; an unknown name is an error that names it."""
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown limits {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data)

    @classmethod
    def describe(cls, name: str) -> str:
        """A limit's documentation (its docstring's first sentence), for command-line help."""
        import inspect
        import re

        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError):  # no source shipped: the name must do
            return name.replace("_", " ")
        match = re.search(rf"\n    {name}: [^\n]*\n    \"\"\"(.*?)\"\"\"", source, re.DOTALL)
        return " ".join(match.group(1).split()) if match else name
