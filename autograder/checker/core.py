"""The trusted side of grading: talk to a student's runner, decide each graded cell's verdict.

    with Runner(limits, sandbox=True) as runner:
        runner.run_cell(source, timeout=300)                       # a cell of the notebook, its outputs
        got = runner.call("cem_plan", [Tensor(state)], timeout=30, callbacks={"model": toy})
        verdicts = run_checks(CHECKS, runner, context)             # autograder.checker.checks

This process never imports or runs student code: it sends requests, answers the callbacks of
toy models and rewards itself, and reads back plain data (`Returned`), validated before use. A
runner that hangs, dies, lies about its protocol or floods it is killed; the request fails with
`RunnerFailed`, the check that made it fails with a message that says so, and the next check
starts a fresh runner (the notebook's cells are run again first).
"""
from __future__ import annotations

import hashlib
import math
import os
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from autograder.protocol.channel import Channel, ChannelClosed, ChannelTimeout, ProtocolError
from autograder.sandbox.bubblewrap import RunnerLimits, RunnerProcess


class RunnerFailed(Exception):
    """The runner did not answer in time, died, or broke the protocol; `reason` says which."""


class BudgetUsedUp(RunnerFailed):
    """A check used up its budget between two requests: the runner is idle, it need not restart."""


class StudentError(Exception):
    """The student's code raised: `ename`, `evalue` as it reported them (untrusted text)."""

    def __init__(self, ename: str, evalue: str):
        super().__init__(f"{ename}: {evalue}")
        self.ename, self.evalue = str(ename)[:200], str(evalue)[:4000]


class CheckFailed(AssertionError):
    """A check's verdict: failed, with the hint the student sees."""


# ---------------------------------------------------------------------------------------------
# what came back


@dataclass
class Returned:
    """A value a student function returned, as the runner described it; every accessor validates."""

    raw: dict

    @property
    def kind(self) -> str:
        return str(self.raw.get("kind", "other")) if isinstance(self.raw, dict) else "other"

    @property
    def type_name(self) -> str:
        kind = self.kind
        if kind == "tensor":
            return "Tensor"
        if kind in ("sequence", "mapping"):
            return str(self.raw.get("type", kind))[:80]
        if kind in ("number", "bool", "none", "ndarray"):
            return {"number": "float", "bool": "bool", "none": "NoneType", "ndarray": "ndarray"}[kind]
        return str(self.raw.get("type", "object"))[:80]

    def is_tensor(self) -> bool:
        return self.kind == "tensor" and isinstance(self.raw.get("array"), np.ndarray)

    @property
    def requires_grad(self) -> bool:
        return self.is_tensor() and self.raw.get("requires_grad") is True

    @property
    def shape(self) -> tuple | None:
        if self.kind in ("tensor", "ndarray") and isinstance(self.raw.get("array"), np.ndarray):
            return tuple(self.raw["array"].shape)
        if self.kind in ("number", "bool"):
            return ()
        return None

    def array(self) -> np.ndarray:
        """As a float64 array; a non-numeric value raises CheckFailed."""
        if self.kind in ("tensor", "ndarray") and isinstance(self.raw.get("array"), np.ndarray):
            return self.raw["array"].astype(np.float64)
        if self.kind in ("number", "bool") and isinstance(self.raw.get("value"), (int, float, str)):
            try:
                return np.asarray(float(self.raw["value"]))
            except ValueError:
                pass
        raise CheckFailed(f"expected numbers (a tensor), got a {self.type_name}")

    def items(self) -> list["Returned"] | None:
        if self.kind != "sequence" or not isinstance(self.raw.get("items"), list):
            return None
        return [Returned(item) for item in self.raw["items"]]

    grads: list | None = None
    """after a call with backward=True: the gradient of each parameter of the model's network, as
    the runner reported it (None: the loss could not be differentiated)"""

    def gradients(self) -> list[np.ndarray] | None:
        if not isinstance(self.grads, list) or not all(isinstance(g, np.ndarray) for g in self.grads):
            return None
        return [g.astype(np.float64) for g in self.grads]

    def mapping(self) -> dict[str, "Returned"] | None:
        """A returned dict, its string keys to their values; None for anything else."""
        if self.kind != "mapping" or not isinstance(self.raw.get("items"), dict):
            return None
        return {str(key): Returned(item) for key, item in self.raw["items"].items() if isinstance(item, dict)}

    @property
    def length(self) -> int | None:
        return int(self.raw["length"]) if self.kind == "sequence" and isinstance(self.raw.get("length"), int) else None


def Tensor(array) -> dict:  # noqa: N802 - reads like the value it stands for
    """An argument: this array, as a torch tensor in the runner (float32 unless it is integer)."""
    array = np.asarray(array)
    if array.dtype.kind == "f":
        array = array.astype(np.float32)
    return {"tensor": array}


def Callback(name: str) -> dict:  # noqa: N802
    """An argument: a function the student code calls and this process answers (see `Runner.call`)."""
    return {"callback": name}


def Value(value) -> dict:  # noqa: N802
    return {"value": value}


def constant_net(output) -> dict:
    """A network spec: outputs `output` for every input ((out,), or (K, 1, out) per member)."""
    return {"constant": np.asarray(output, dtype=np.float32)}


def linear_net(weight) -> dict:
    """A network spec: inputs @ weight.T for any leading dimensions; weight (out, in)."""
    return {"linear": np.asarray(weight, dtype=np.float32)}


def mlp_net(weights: dict, *, in_dim: int, out_dim: int, hidden: int, layers: int, members: int = 0) -> dict:
    """A network spec: the course's MLP (or batched ensemble) with these weights."""
    plain = {key.removeprefix("net."): np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value) for key, value in weights.items()}
    return {"mlp": {"weights": plain, "in": in_dim, "out": out_dim, "hidden": hidden, "layers": layers, "members": members}}


def model_spec(cls: str, *, seed: int | None = None, net: dict | None = None, kwargs: dict | None = None, eval: bool = False) -> dict:
    """A student model: `cls(**kwargs)` after torch.manual_seed(seed), with `model.net = net`."""
    return {"cls": cls, "seed": seed, "net": net, "kwargs": kwargs or {}, "eval": eval}


# ---------------------------------------------------------------------------------------------
# the runner, seen from here


@dataclass
class CellResult:
    outputs: list[dict]
    error: tuple[str, str] | None


class Runner:
    """One student's runner: started on first use, restarted (cells replayed) after a failure."""

    def __init__(self, limits: RunnerLimits = RunnerLimits(), *, sandbox: bool = True, log=None):
        self.limits, self.sandbox, self.log = limits, sandbox, log
        self.process: RunnerProcess | None = None
        self.channel: Channel | None = None
        self.cells: list[str] = []  # cells that ran to the end, replayed in a new runner
        self.replay_timeout = 600.0

    # -- life -----------------------------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self.process is not None:
            try:
                self.channel.send({"op": "quit"})
            except Exception:
                pass
            self.process.kill()
        self.process = self.channel = None

    def _ensure(self) -> None:
        if self.process is not None and self.process.alive():
            return
        if self.process is not None:
            self.process.kill()
        self.process = RunnerProcess(self.limits, sandbox=self.sandbox, log=self.log)
        self.channel = Channel(self.process.read_fd, self.process.write_fd)
        self._request({"op": "run_cell", "source": ""}, self.replay_timeout, {})  # start-up (sandbox, torch, IPython) is no cell's or check's time
        deadline = time.monotonic() + self.replay_timeout
        for source in self.cells:
            reply = self._request({"op": "run_cell", "source": source}, max(1.0, deadline - time.monotonic()), {})
            if reply.get("op") != "cell":
                self._fail("running the earlier cells again in a new runner failed")

    def _fail(self, reason: str):
        if self.process is not None:
            self.process.kill()
        self.process = self.channel = None
        raise RunnerFailed(reason)

    def restart(self) -> None:
        if self.process is not None:
            self.process.kill()
        self.process = self.channel = None

    def cpu_seconds(self) -> float:
        """CPU seconds used so far by the runner's processes (0 when none runs): the clock of budgets."""
        return sandbox_cpu_seconds(self.process) if self.process is not None else 0.0

    # -- requests -------------------------------------------------------------------------------
    def _request(self, message: dict, timeout: float, callbacks: dict[str, Callable]) -> dict:
        """Send `message`, answer callbacks, return the reply. `timeout` is CPU seconds of the
        runner's processes; code that waits instead of computing is stopped after WALL_BACKSTOP
        times as many seconds of wall time."""
        cpu_limit = self.cpu_seconds() + timeout
        deadline = time.monotonic() + WALL_BACKSTOP * timeout
        failure: CheckFailed | None = None
        # Every answer must carry this request's random id: an answer written ahead of a question
        # (which the student's code could do from inside the runner) cannot know it.
        message = {**message, "id": secrets.token_hex(16)}
        try:
            self.channel.send(message)
            while True:
                try:
                    reply = self.channel.receive(timeout=min(CPU_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
                except ChannelTimeout:
                    if time.monotonic() >= deadline:
                        self._fail(f"it did not finish within {WALL_BACKSTOP * timeout:.0f} s of wall time (it waits or sleeps), and was stopped")
                    if self.cpu_seconds() > cpu_limit:
                        self._fail(f"it did not finish within {timeout:.0f} s of CPU time (an endless loop, or far too slow), and was stopped")
                    continue
                if reply.get("id") != message["id"]:
                    raise ProtocolError("an answer that does not belong to the question asked")
                if reply["op"] != "callback":
                    if failure is not None:
                        raise failure
                    return reply
                if failure is None:
                    try:
                        self.channel.send({**self._answer(reply, callbacks), "id": message["id"]})
                        continue
                    except CheckFailed as error:  # the verdict is in; let the call end, then report it
                        failure = error
                self.channel.send({"op": "abort", "id": message["id"]})
        except ChannelClosed:
            code = None
            if self.process is not None:
                try:  # the pipe closes a moment before the process is gone: wait, so the message is always the same
                    code = self.process.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            self._fail("the process running your code died" + (f" (exit status {code})" if code is not None else "") + ": it exited, crashed, or ran out of memory")
        except ProtocolError as error:
            self._fail(f"the process running your code sent an invalid answer ({error})")

    @staticmethod
    def _answer(request: dict, callbacks: dict[str, Callable]) -> dict:
        name, args = request.get("name"), request.get("args")
        handler = callbacks.get(name) if isinstance(name, str) else None
        if handler is None or not isinstance(args, list) or not all(isinstance(a, np.ndarray) for a in args):
            return {"op": "abort"}
        try:
            value = handler(*args, grad=request.get("grad") is True)
        except CheckFailed:
            raise
        except Exception:
            return {"op": "abort"}
        return {"op": "callback_result", "value": np.asarray(value, dtype=np.float32)}

    def run_cell(self, source: str, timeout: float) -> CellResult:
        """Run one notebook cell; its outputs. A cell that hangs or kills the runner: RunnerFailed."""
        self._ensure()
        reply = self._request({"op": "run_cell", "source": source}, timeout, {})
        if reply.get("op") != "cell" or not isinstance(reply.get("outputs"), list):
            self._fail("the process running your code sent an invalid answer")
        error = reply.get("error")
        self.cells.append(source)
        ename = evalue = None
        if isinstance(error, dict):
            ename, evalue = str(error.get("ename", "Error")), str(error.get("evalue", ""))
        return CellResult([o for o in reply["outputs"] if isinstance(o, dict)], (ename, evalue) if ename else None)

    def call(
        self,
        function: str | None = None,
        args: list | None = None,
        kwargs: dict | None = None,
        *,
        model: dict | None = None,
        method: str | None = None,
        seed: int | None = None,
        grad: bool = False,
        backward: bool = False,
        timeout: float = 60.0,
        callbacks: dict[str, Callable] | None = None,
    ) -> Returned:
        """Call a student function (or `method` of a `model_spec`) in the runner; what it returned.

        With `backward`, the result is differentiated as training would (loss.backward()) and the
        gradients of the model network's parameters come back in `Returned.grads`.
        Raises StudentError when the student's code raised, RunnerFailed when the runner failed.
        `callbacks` answer the runner's callback requests: name -> f(*arrays, grad=bool) -> array;
        a CheckFailed raised there ends the check at once.
        """
        self._ensure()
        message = {"op": "call", "function": function, "model": model, "method": method, "args": args or [], "kwargs": kwargs or {}, "seed": seed, "grad": grad, "backward": backward}
        reply = self._request(message, timeout, callbacks or {})
        returned = self._result(reply)
        returned.grads = reply.get("grads")
        return returned

    def start_agent(self, planner: str, model: dict, *, seed: int, plan_kwargs: dict | None = None, timeout: float = 60.0) -> None:
        self._ensure()
        self._result(self._request({"op": "agent_start", "planner": planner, "model": model, "seed": seed, "plan_kwargs": plan_kwargs or {}}, timeout, {}))

    def act(self, state: np.ndarray, timeout: float) -> Returned:
        return self._result(self._request({"op": "act", "state": np.asarray(state, dtype=np.float64)}, timeout, {}))

    def _result(self, reply: dict) -> Returned:
        if reply.get("op") == "result":
            return Returned(reply.get("value") if isinstance(reply.get("value"), dict) else {})
        if reply.get("op") == "error":
            raise StudentError(str(reply.get("ename", "Error")), str(reply.get("evalue", "")))
        self._fail("the process running your code sent an invalid answer")


# ---------------------------------------------------------------------------------------------
# checks and verdicts


@dataclass
class Check:
    grade_id: str
    function: Callable
    budget: float
    """CPU seconds the student's code may use in the whole check (WALL_BACKSTOP times as many of wall time)"""
    description: str = ""
    after: tuple[str, ...] = ()
    """earlier checks of the parts this one uses: when one of them failed, a failure here says so;
    when one of them ran out of time, this one is not run (it would call the same code)"""


@dataclass
class Context:
    """What a check knows besides the runner: who is graded, and whether hidden parts run."""

    student: str = "student"
    notebook: str = ""
    secret: str = ""
    hidden: bool = True
    """False for `python -m autograder check`: only the visible parts run"""
    budget: float = math.inf
    """CPU seconds of the runner this check may still use, from `start`"""
    cpu_clock: Callable[[], float] = field(default=lambda: 0.0, repr=False)
    """the runner's CPU seconds (Runner.cpu_seconds)"""
    wall_deadline: float = math.inf
    _cpu_used: float = 0.0
    _cpu_last: float = 0.0

    def start(self, budget: float, cpu_clock: Callable[[], float]) -> None:
        """Begin a check: `budget` CPU seconds of the runner, WALL_BACKSTOP times as many of wall time."""
        self.budget, self.cpu_clock = budget, cpu_clock
        self.wall_deadline = time.monotonic() + WALL_BACKSTOP * budget
        self._cpu_used, self._cpu_last = 0.0, cpu_clock()

    def cpu_used(self) -> float:
        """The runner's CPU seconds since `start`; a runner started meanwhile counts from zero."""
        now = self.cpu_clock()
        self._cpu_used += now - self._cpu_last if now >= self._cpu_last else now
        self._cpu_last = now
        return self._cpu_used

    def seed(self, name: str) -> int:
        """A seed for this student and check that the runner cannot know in advance."""
        digest = hashlib.sha256(f"{self.secret}\0{self.student}\0{self.notebook}\0{name}".encode()).digest()
        return int.from_bytes(digest[:4], "little")

    def rng(self, name: str) -> np.random.Generator:
        return np.random.default_rng(self.seed(name))

    def remaining(self, floor: float = 1.0) -> float:
        """The timeout of the next runner request: the CPU seconds left of the budget, and no more
        than keeps the request's wall-clock backstop within the check's. A used-up budget ends the
        check (RunnerFailed)."""
        cpu_left = self.budget - self.cpu_used()
        wall_left = (self.wall_deadline - time.monotonic()) / WALL_BACKSTOP
        if min(cpu_left, wall_left) <= 0:
            raise BudgetUsedUp(f"it did not finish within {self.budget:.0f} s of CPU time (an endless loop, or far too slow), and was stopped")
        return min(3600.0, max(floor, min(cpu_left, wall_left)))


@dataclass
class Verdict:
    grade_id: str
    passed: bool
    message: str
    seconds: float = 0.0
    timed_out: bool = False
    """the check ran past its budget: the checks that come `after` it are not run"""


# A check may use BUDGET_FACTOR times the reference's CPU time, and never less than BUDGET_FLOOR
# CPU seconds of the runner: a correct solution written less efficiently passes, and an endless
# loop is stopped after BUDGET_FLOOR CPU seconds. CPU time does not grow with the machine's load,
# so budgets need no allowance for a busy machine; code that waits (sleeps, blocks) uses no CPU and
# is stopped by the wall clock after WALL_BACKSTOP times its budget.
BUDGET_FACTOR = 10.0
BUDGET_FLOOR = 30.0
WALL_BACKSTOP = 3.0
CPU_POLL_SECONDS = 0.25  # how often a request waiting for its answer reads the runner's CPU time
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def sandbox_cpu_seconds(process: RunnerProcess) -> float:
    """CPU seconds (user + system) of every process of this runner, the ones that ended included:
    the members of its `pids` cgroup where it has one (a process that left the runner's process
    tree still counts), else the runner and its descendants; each with its reaped children."""
    pids: set[int] = set()
    cap = getattr(process, "cap", None)
    if cap is not None and getattr(cap, "path", None) is not None:
        try:
            pids = {int(pid) for pid in (cap.path / "cgroup.procs").read_text().split()}
        except (OSError, ValueError):
            pids = set()
    stats = {}
    for entry in os.listdir("/proc") if not pids else pids:
        try:
            pid = int(entry)
            with open(f"/proc/{pid}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except (ValueError, OSError, IndexError):
            continue
        # after the name: state ppid ... utime(12) stime(13) cutime(14) cstime(15), from field 3 on
        stats[pid] = (int(fields[1]), sum(int(value) for value in fields[11:15]))
    root = process.process.pid
    if not pids:  # the runner's tree: every process whose parents lead to the runner
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in stats.items():
            children.setdefault(ppid, []).append(pid)
        tree, todo = set(), [root]
        while todo:
            pid = todo.pop()
            if pid in stats and pid not in tree:
                tree.add(pid)
                todo.extend(children.get(pid, ()))
        pids = tree
    return sum(stats[pid][1] for pid in pids if pid in stats) / CLOCK_TICKS


class CheckRegistry:
    """The checks of one notebook, in the notebook's order: `@checks.add("test-id", budget=30)`."""

    def __init__(self, notebook: str):
        self.notebook = notebook
        self.checks: dict[str, Check] = {}

    def add(self, grade_id: str, *, reference_seconds: float, after: tuple[str, ...] = ()):
        """Register a check; its budget is BUDGET_FACTOR times the CPU seconds the reference solution
        needed here (`reference_seconds`, measured on a 2-core laptop CPU), at least BUDGET_FLOOR."""

        def register(function):
            budget = max(BUDGET_FLOOR, BUDGET_FACTOR * reference_seconds)
            self.checks[grade_id] = Check(grade_id, function, budget, (function.__doc__ or "").strip().split("\n")[0], tuple(after))
            return function

        return register


def run_check(check: Check, runner: Runner, context: Context) -> Verdict:
    """One check's verdict. It fails with the check's hint, with what the student's code raised,
    or with why the runner failed; the runner is restarted for the next check after a failure.
    The student's code may use `check.budget` CPU seconds of the runner (Context.remaining)."""
    started = time.monotonic()
    context.start(check.budget, runner.cpu_seconds)
    try:
        message = check.function(runner, context)
    except CheckFailed as failed:
        return Verdict(check.grade_id, False, str(failed), time.monotonic() - started)
    except StudentError as error:
        return Verdict(check.grade_id, False, student_error_hint(error), time.monotonic() - started)
    except RunnerFailed as error:
        if not isinstance(error, BudgetUsedUp):
            runner.restart()
        reason = str(error)
        timed_out = reason.startswith("it did not finish")
        if timed_out:
            clock = "CPU time" if "CPU time" in reason else "wall time (it waits or sleeps)"
            limit = check.budget if clock == "CPU time" else WALL_BACKSTOP * check.budget
            reason = f"it did not finish within its budget of {limit:.0f} s of {clock} (an endless loop, or far too slow), and was stopped"
        return Verdict(check.grade_id, False, f"This check could not finish: {reason}.", time.monotonic() - started, timed_out=timed_out)
    return Verdict(check.grade_id, True, message or "OK", time.monotonic() - started)


def student_error_hint(error: StudentError) -> str:
    if error.ename == "NotImplementedError":
        return "Not implemented yet: this check calls code that still raises NotImplementedError. Write the missing cell (delete the `raise NotImplementedError()` line)."
    if error.ename == "NameError":
        return f"{error.evalue}: the cell that defines it did not run (an error earlier in the notebook?) or was renamed."
    evalue = error.evalue if len(error.evalue) <= 600 else error.evalue[:600] + " [...]"
    return f"Your code raised {error.ename}: {evalue}"
