"""The grading kernel: an ordinary ipykernel, started under a memory limit with one CPU thread.

`GradingKernelManager` is the kernel manager nbgrader's execution step uses (see
`autograder.preprocessors.GradingExecute`). It launches the kernelspec's command through this
module's launcher,

    python -m autograder.kernel --memory-mb 4096 -- python -m ipykernel_launcher -f CONNECTION_FILE

which sets RLIMIT_AS and then exec()s the kernel, so the kernel keeps the launcher's process id
and receives nbgrader's interrupts directly. A student cell that allocates past the limit gets a
MemoryError (numpy) or "can't allocate memory" (torch) in that cell; the kernel lives on.

The kernel's environment pins every math library to one thread: with two grading processes on
two cores, torch's OpenMP threads otherwise spin against each other and run several times slower.
It also hides CUDA, so grading computes exactly what the hidden tests' expected values were made
with, on any machine.
"""
from __future__ import annotations

import argparse
import os
import sys

from jupyter_client.manager import AsyncKernelManager
from traitlets import Integer

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def with_package_on_path(env: dict[str, str]) -> dict[str, str]:
    """`env` with this course's folder on PYTHONPATH, so that `autograder` (its fixtures included)
    imports in the worker and the kernel whatever their working folder."""
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if PACKAGE_ROOT not in paths:
        env = {**env, "PYTHONPATH": os.pathsep.join([PACKAGE_ROOT] + paths)}
    return env


def kernel_environment(threads: int = 1) -> dict[str, str]:
    """Environment variables set in every grading kernel (on top of the grader's own)."""
    env = {name: str(threads) for name in THREAD_VARIABLES}
    env.update(
        MALLOC_ARENA_MAX="2",  # glibc reserves 64 MB of address space per arena and thread
        PYTHONHASHSEED="0",
        CUDA_VISIBLE_DEVICES="",
    )
    return env


class GradingKernelManager(AsyncKernelManager):
    """jupyter_client's kernel manager, launching the kernel with a memory limit and one thread."""

    memory_limit_mb = Integer(4096, help="RLIMIT_AS of the kernel process in MiB (0: no limit)").tag(config=True)
    threads = Integer(1, help="Threads torch, OpenMP and BLAS may use in the kernel").tag(config=True)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw) -> None:
        env = dict(kw.get("env") or os.environ)
        env.update(kernel_environment(self.threads))
        kw["env"] = with_package_on_path(env)
        launcher = [sys.executable, "-m", "autograder.kernel", "--memory-mb", str(self.memory_limit_mb), "--"]
        await super()._async_launch_kernel(launcher + list(kernel_cmd), **kw)


def limit_memory(megabytes: int) -> None:
    """Cap this process's address space (RLIMIT_AS) at `megabytes` MiB; 0 leaves it as it is."""
    import resource

    if megabytes > 0:
        limit = megabytes * 2**20
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m autograder.kernel",
        description="Run a command (a Jupyter kernel) with a memory limit.",
        epilog="example: python -m autograder.kernel --memory-mb 4096 -- python -m ipykernel_launcher -f kernel.json",
    )
    parser.add_argument("--memory-mb", type=int, default=4096, help="address-space limit in MiB (0: none)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    limit_memory(args.memory_mb)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
