"""The runner as a fork server: after the notebook's cells ran, every question is answered by a
fresh copy of that moment, made in milliseconds, with nothing replayed.

    {"op": "fork_server"}  (on the control socket, once)   -> {"op": "result", "value": {...}} on the reply pipe
    {"op": "fork"}         (on the control socket, any time) -> a copy, its two pipe ends passed to the checker
                                                                or {"op": "fork_failed", "errno": N}, serving on
    {"op": "end"}          (on the control socket)           -> the current copy ends
    (from the waiter, when the server has ended)             -> {"op": "server_ended", "status": wait status}

On "fork_server" the runner splits in two. Its own process, which may still carry threads the
student's code started, replaces itself with a small waiter (execve ends every thread) that keeps
the sandbox alive. A single-threaded copy made just before, the *snapshot*, ends every other process
in the sandbox and from then on only forks. Each copy then serves the checker as the runner did,
on two pipes of its own, until the checker asks for the next copy (after a failure, or for a
question that must be asked of a process that remembers nothing: the reproducibility checks).

A copy cannot hand anything to a later copy (the snapshot itself runs no student code after it was
taken, and is not readable through /proc: it is not dumpable). Each copy gets, before the student's
code runs in it again:
- its own user, mount, PID, network and IPC namespaces: its processes die with it (it is the init of
  its PID namespace), and no socket, message queue or shared-memory segment outlives it;
- the scratch folder (/tmp, and /dev/shm inside it) as an overlay on the snapshot's: it reads what
  the cells wrote and writes to a layer of its own, thrown away with it; the overlay is locked in
  place (a second user namespace), so the layer underneath cannot be reached by unmounting it;
- no inherited pipe or socket (a file the cells opened in the scratch folder is opened again
  through the copy's overlay), and private copies of every shared memory mapping the cells made;
- Python's and NumPy's global random generators seeded afresh, as a new process would be.
Where namespaces cannot be made (outside the sandbox, on some kernels) the copy is a plain fork:
memory is still its own, files are not; the copy says so on stderr.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import signal
import socket
import sys
import time

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWIPC = 0x00020000, 0x10000000, 0x20000000, 0x40000000, 0x08000000
MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x4000, 0x40000
PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4
PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS = 0x1, 0x2, 0x02, 0x10, 0x20
# How long a fork server waits at most for the copy before's processes to be gone (usually milliseconds;
# a student's 60 forked sleepers on a loaded machine take longer): below the checker's FORK_TIMEOUT.
END_WAIT_SECONDS = 10.0
UPPER = ".fork-layer"  # under the scratch folder: where each copy's own layer is mounted

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]

# The waiter reaps what ends (the processes the cells started are its children too) and ends when the
# snapshot does: the sandbox then ends, and the checker's pipe closes at once. (Had it waited forever,
# a snapshot killed by a daemon the cells left behind, before it could answer, would have left the
# checker waiting for an answer until its wall-clock limit, 30 minutes.) It holds the control socket
# (fd 4) only to say there how the snapshot ended, so that a lost fork server is named in the log.
WAITER = (
    "import ctypes, os, sys\n"
    "ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)\n"  # not dumpable: a copy cannot reach the snapshot's files through /proc/<this>/root
    "snapshot = int(sys.argv[1])\n"
    "os.write(3, b'.'); os.close(3)\n"
    "while True:\n"
    "    try:\n"
    "        pid, status = os.wait()\n"
    "    except ChildProcessError:\n"
    "        os._exit(0)\n"
    "    if pid == snapshot:\n"
    "        try:\n"
    '            os.write(4, b\'{"op": "server_ended", "status": %d}\\n\' % status)\n'
    "        except OSError:\n"  # the checker has closed its end: it asks no more
    "            pass\n"
    "        os._exit(0)\n"
)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def become_server(control_fd: int, reply_fd: int, request_id, scratch: str, in_sandbox: bool) -> None:
    """Turn this runner into the fork server; returns only in a copy, which then serves the checker
    on the pipes in `copy_pipes` (see `serve_copies`)."""
    ready_read, ready_write = os.pipe()
    snapshot = os.fork()
    if snapshot != 0:  # this process, threads and all, becomes the waiter
        # fds 3 and 4 of the waiter, through numbers clear of both (either may be 3 or 4 now)
        ready, control = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (ready_write, control_fd))
        os.dup2(ready, 3)
        os.dup2(control, 4)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1):
            os.dup2(devnull, fd)
        os.closerange(5, 1 << 16)
        os.execv(sys.executable, [sys.executable, "-S", "-I", "-c", WAITER, str(snapshot)])
    os.close(ready_write)
    os.read(ready_read, 1)  # the waiter is no longer dumpable
    os.close(ready_read)
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    _end_other_processes(in_sandbox, wait=END_WAIT_SECONDS)
    os.makedirs(os.path.join(scratch, UPPER), exist_ok=True)
    isolated = _can_isolate()
    os.write(reply_fd, (json.dumps({"op": "result", "value": {"kind": "none"}, "isolated": isolated, "id": request_id}) + "\n").encode())
    os.close(reply_fd)
    serve_copies(control_fd, scratch, isolated, in_sandbox)


def _end_other_processes(in_sandbox: bool, wait: float = 0.0) -> None:
    """Every process the cells or a copy started ends: none can carry a copy's answer to the next
    one. With `wait`, for up to that many seconds until none is left (not even a zombie).

    In the sandbox that is every process of this PID namespace (and of those below it) but its init,
    the waiter and this one. /proc is the sandbox's, whose PID namespace may lie above this one (a
    notebook's runner that is itself a copy of a warm sandbox's first runner: see
    autograder.checker.core.WarmSandbox): each process is named by its number in this namespace,
    the entry of its NSpid line at this namespace's depth. A number that names no process here, or a
    process of another namespace, names no process or one of this namespace's: never one above it."""
    me, waiter = os.getpid(), os.getppid()
    session = os.getsid(0)
    depth = max(len(_namespace_pids("self")) - 1, 0) if in_sandbox else 0
    deadline = time.monotonic() + wait
    while True:
        left = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pids = _namespace_pids(entry) if in_sandbox else [int(entry)]
            if len(pids) <= depth or pids[depth] in (1, me, waiter):
                continue
            pid = pids[depth]
            try:
                # in the sandbox every process but its init is the runner's; outside, only its session's
                if in_sandbox or os.getsid(pid) == session:
                    os.kill(pid, signal.SIGKILL)
                    left += 1
            except OSError:
                pass
        if not left or time.monotonic() >= deadline:
            return
        time.sleep(0.002)


def _namespace_pids(entry: str) -> list[int]:
    """A process's number in each PID namespace from /proc's down to its own (its NSpid line); [] if gone."""
    try:
        with open(f"/proc/{entry}/status") as handle:
            for line in handle:
                if line.startswith("NSpid:"):
                    return [int(value) for value in line.split()[1:]]
    except (OSError, ValueError):
        return []
    return [os.getpid()] if entry == "self" else [int(entry)]


def _can_isolate() -> bool:
    """Whether a copy can have namespaces of its own here (tried once, in a throwaway child)."""
    pid = os.fork()
    if pid == 0:
        try:
            _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare")
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def serve_copies(control_fd: int, scratch: str, isolated: bool, in_sandbox: bool) -> None:
    """The snapshot's loop: on each "fork", end the copy before, and everything else in the sandbox
    (waiting until it is gone), then make a new one."""
    control = socket.socket(fileno=control_fd)
    buffer = b""
    copy = None
    while True:
        while b"\n" not in buffer:
            chunk = control.recv(1 << 16)
            if not chunk:
                os._exit(0)
            buffer += chunk
            if len(buffer) > 1 << 20:
                os._exit(1)
        line, buffer = buffer.split(b"\n", 1)
        try:
            request = json.loads(line)
        except ValueError:
            continue
        if copy is not None:
            try:
                os.kill(copy, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(copy, 0)
            copy = None
            # A copy's processes end with it, but not at once: the next copy (another notebook,
            # perhaps another student's) is made only when the last of them is gone.
            _end_other_processes(in_sandbox, wait=END_WAIT_SECONDS)
        if request.get("op") == "end":
            continue
        if request.get("op") != "fork":
            os._exit(0)
        # Questions reach the copy on a socket, not a pipe, so that the copy can become a fork
        # server in turn (it receives "fork" there and sends its own copies' ends back).
        made: list[int] = []
        try:
            copy_end, checker_end = socket.socketpair()
            made += [copy_end.detach(), checker_end.detach()]
            made += os.pipe()
            to_copy_read, to_copy_write, from_copy_read, from_copy_write = made
            copy = os.fork()
        except OSError as error:  # (a process cap reached for a moment): say so, and serve on
            for fd in made:
                os.close(fd)
            control.sendall((json.dumps({"op": "fork_failed", "errno": error.errno or 0, "id": request.get("id")}) + "\n").encode())
            continue
        if copy == 0:
            try:
                control.close()
                os.close(to_copy_write)
                os.close(from_copy_read)
                _become_copy(to_copy_read, from_copy_write, scratch, isolated)
            except BaseException as error:  # a copy that is not isolated as it should be never serves
                os.write(2, f"runner: a copy could not be made: {error}\n".encode())
                os._exit(70)
            return  # serve, in the copy
        os.close(to_copy_read)
        os.close(from_copy_write)
        message = (json.dumps({"op": "forked", "id": request.get("id")}) + "\n").encode()
        socket.send_fds(control, [message], [to_copy_write, from_copy_read])
        os.close(to_copy_write)
        os.close(from_copy_read)


# -- in a copy ------------------------------------------------------------------------------------
copy_pipes: tuple[int, int] | None = None  # (read, write) of the copy that returned from become_server


def _become_copy(read_fd: int, write_fd: int, scratch: str, isolated: bool) -> None:
    global copy_pipes
    if isolated:
        _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # so that it may write its own uid_map
        uid, gid = os.getuid(), os.getgid()
        _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC), "unshare")
        _map_ids(0, uid, 0, gid)
        _check(_libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
        # The copy's layer holds at most what the scratch folder had free: the snapshot's files and
        # the copy's writes together stay within the one scratch cap.
        free = os.statvfs(scratch)
        size = max(free.f_frsize, free.f_bavail * free.f_frsize)
        upper = os.path.join(scratch, UPPER).encode()
        _check(_libc.mount(b"tmpfs", upper, b"tmpfs", MS_NOSUID | MS_NODEV, f"mode=0700,size={size}".encode()), "mount the copy's layer")
        os.makedirs(os.path.join(scratch, UPPER, "upper"), exist_ok=True)
        os.makedirs(os.path.join(scratch, UPPER, "work"), exist_ok=True)
        options = f"lowerdir={scratch},upperdir={scratch}/{UPPER}/upper,workdir={scratch}/{UPPER}/work".encode()
        _check(_libc.mount(b"overlay", scratch.encode(), b"overlay", MS_NOSUID | MS_NODEV, options), "mount the scratch overlay")
        # A second user namespace: the mounts above become locked, so the copy's code cannot
        # unmount the overlay and write to the snapshot's scratch underneath.
        _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare (lock)")
        _map_ids(uid, 0, gid, 0)
        child = os.fork()  # the init of the new PID namespace: when it ends, all it started ends
        if child != 0:
            os.close(read_fd)
            os.close(write_fd)
            os.waitpid(child, 0)
            os._exit(0)
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The copy itself is the init's child, not the init: a PID namespace's init ignores the
        # signals of its own namespace, so code that kills its own process (os.kill(os.getpid(), 9))
        # would live on. The init reaps what is left to it and ends, with everything, when the copy does.
        served = os.fork()
        if served != 0:
            os.close(read_fd)
            os.close(write_fd)
            _reap_until(served)
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        os.chdir(os.getcwd())  # the overlay, not the folder underneath it
    else:
        os.write(2, b"runner: no namespaces here; each copy shares the scratch folder with the snapshot\n")
    _private_shared_mappings()
    for fd in _open_fds():
        if fd not in (0, 1, 2, read_fd, write_fd):
            _own_file_or_none(fd, scratch if isolated else None)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    if devnull not in (0, 1, 2, read_fd, write_fd):
        os.close(devnull)
    _fresh_global_generators()
    copy_pipes = (read_fd, write_fd)


def _reap_until(pid: int) -> None:
    """A copy's init: reap every child (orphans come to it) until `pid` has ended, then end."""
    while True:
        try:
            ended, _ = os.wait()
        except ChildProcessError:
            os._exit(0)
        except InterruptedError:
            continue
        if ended == pid:
            os._exit(0)


def _fresh_global_generators() -> None:
    """Python's and NumPy's global generators drawn afresh from the OS, as in a new process: two
    copies of one snapshot must not repeat each other's NumPy draws (a planner that samples with
    NumPy is not reproducible under torch.manual_seed, and the reproducibility checks must see it).
    torch's generator stays: every call the checker makes seeds it."""
    import random

    try:
        random._inst.seed()
    except Exception:
        pass
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        try:
            numpy.random.mtrand._rand.seed()
        except Exception:
            pass


def _map_ids(inside_uid: int, outside_uid: int, inside_gid: int, outside_gid: int) -> None:
    with open("/proc/self/setgroups", "w") as handle:
        handle.write("deny")
    with open("/proc/self/uid_map", "w") as handle:
        handle.write(f"{inside_uid} {outside_uid} 1")
    with open("/proc/self/gid_map", "w") as handle:
        handle.write(f"{inside_gid} {outside_gid} 1")


def _own_file_or_none(fd: int, scratch: str | None) -> None:
    """Keep a file the cells opened, as this copy's own: a file in the scratch folder is opened
    again through the copy's overlay (same position), so that writing to it changes only the copy's
    layer; a file of a read-only folder stays; pipes, sockets and the like are closed."""
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
        is_file = os.path.isfile(f"/proc/self/fd/{fd}")
    except OSError:
        target, is_file = "", False
    if is_file and target.startswith("/") and not target.endswith(" (deleted)"):
        if scratch is None or not (target + "/").startswith(scratch.rstrip("/") + "/"):
            return
        try:
            flags = int(_fdinfo(fd)["flags"], 8) & ~(os.O_CREAT | os.O_TRUNC | os.O_EXCL)
            position = os.lseek(fd, 0, os.SEEK_CUR)
            again = os.open(target, flags)
            os.lseek(again, position, os.SEEK_SET)
            os.dup2(again, fd, inheritable=os.get_inheritable(fd))
            os.close(again)
            return
        except (OSError, KeyError, ValueError):
            pass
    try:
        os.close(fd)
    except OSError:
        pass


def _fdinfo(fd: int) -> dict[str, str]:
    with open(f"/proc/self/fdinfo/{fd}") as handle:
        return dict(line.split(":\t", 1) for line in handle.read().splitlines() if ":\t" in line)


def _open_fds() -> list[int]:
    return [int(name) for name in os.listdir("/proc/self/fd") if name.isdigit()]


def _private_shared_mappings() -> None:
    """Every shared memory mapping (mmap of a file or of shared memory) becomes a private copy."""
    with open("/proc/self/maps") as handle:
        lines = handle.read().splitlines()
    for line in lines:
        fields = line.split()
        if len(fields) < 2 or fields[1][3] != "s":
            continue
        start, end = (int(value, 16) for value in fields[0].split("-"))
        readable = fields[1][0] == "r"
        content = ctypes.string_at(start, end - start) if readable else None
        address = _libc.mmap(start, end - start, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
        if address != start:
            os._exit(1)  # cannot happen with MAP_FIXED; a copy that shares memory must not serve
        if content is not None:
            ctypes.memmove(start, content, len(content))
