"""The trusted side of grading: talk to a student's runner, decide each graded cell's verdict.

    with Runner(limits) as runner:                                 # autograder.protocol.limits.Limits
        runner.run_cell(source, timeout=300)                       # a cell of the notebook, its outputs
        got = runner.call("cem_plan", [Tensor(state)], timeout=30, callbacks={"model": toy})
        verdicts = run_checks(CHECKS, runner, context)             # autograder.checker.checks

This process never imports or runs student code: it sends requests, answers the callbacks of
toy models and rewards itself, and reads back plain data (`Returned`), validated before use. A
runner that hangs, dies, lies about its protocol or floods it is killed; the request fails with
`RunnerFailed`, the check that made it fails with a message that says so, and the next check
is answered by a fresh copy of the runner as it was after the notebook's cells (see `Runner`).
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import math
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from autograder.protocol.channel import Channel, ChannelClosed, ChannelTimeout, ProtocolError
from autograder.protocol.limits import Limits
from autograder.sandbox.bubblewrap import RunnerCopy, RunnerProcess


class RunnerFailed(Exception):
    """The runner did not answer in time, died, or broke the protocol: `kind` says which (one of
    KINDS), `clock` which limit a timeout ran into ("cpu" or "wall"); the message is for people."""

    TIMEOUT, DIED, PROTOCOL = "timeout", "died", "protocol"
    KINDS = (TIMEOUT, DIED, PROTOCOL)

    def __init__(self, reason: str, kind: str, clock: str | None = None):
        if kind not in self.KINDS or (clock is not None) != (kind == self.TIMEOUT) or clock not in (None, "cpu", "wall"):
            raise ValueError(f"RunnerFailed of kind {kind!r}, clock {clock!r}")
        super().__init__(reason)
        self.kind, self.clock = kind, clock


class BudgetUsedUp(RunnerFailed):
    """A check used up its CPU budget between two requests: the runner is idle, it need not restart."""

    def __init__(self, reason: str, clock: str = "cpu"):
        super().__init__(reason, RunnerFailed.TIMEOUT, clock)


class StuckBefore(BudgetUsedUp):
    """A check asked for a student function that ran out of time in an earlier check: not asked again."""

    def __init__(self, name: str):
        super().__init__(f"`{name}` did not finish in an earlier check (see there), so it was not called again: make it finish, and this check runs")


# Exception types whose names feedback may show: Python's own. Student code can raise a class of its
# own, whose name could carry anything (the hidden inputs it was called with, say).
SHOWN_TYPE_NAMES = frozenset(name for name, value in vars(builtins).items() if isinstance(value, type)) | {
    "Tensor",
    "ndarray",
    "Normal",
    "Parameter",
    "EpisodeResult",
    "ReplayBuffer",
}
BUILTIN_EXCEPTIONS = frozenset(name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException))
ERROR_MESSAGES_NOT_SHOWN = (
    "The grader shows no message of an error your code raised on its inputs (the message is your code's "
    "own text, and could replay the grader's inputs); run the notebook's check cell to see the error in full."
)


class StudentError(Exception):
    """The student's code raised. What feedback may show: `describe()`, the exception's type (when
    it is one of Python's own) and `where` (a location the Runner validated against its own copy of
    the cells), and `missing`, the name the checker asked for when the runner had nothing of that
    name. `evalue`, the message, is text the student's code chose, and may carry the hidden inputs it
    was called with: no hint shows it (str() of this error does not either)."""

    def __init__(self, ename: str, evalue: str, where: str = "", missing: str | None = None):
        self.ename, self.evalue = str(ename)[:200], str(evalue)[:4000]
        self.where, self.missing = where, missing
        super().__init__(self.describe())

    def describe(self) -> str:
        """'ValueError in `cem_plan`, line 12 of its cell', or as much of it as is known."""
        kind = self.ename if self.ename in BUILTIN_EXCEPTIONS else "an exception of its own class"
        return kind + self.where


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
        if kind in ("number", "bool", "none", "ndarray"):
            return {"number": "float", "bool": "bool", "none": "NoneType", "ndarray": "ndarray"}[kind]
        # The type's name as the runner reports it, shown only when it is a name of Python's own: the
        # student's code can return an object of a class whose name carries anything.
        name = self.raw.get("type")
        if isinstance(name, str) and name in SHOWN_TYPE_NAMES:
            return name
        return kind if kind in ("sequence", "mapping") else "object of a class of its own"

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

    def items(self) -> list[Returned] | None:
        if self.kind != "sequence" or not isinstance(self.raw.get("items"), list):
            return None
        return [Returned(item) for item in self.raw["items"]]

    args_after: list | None = None
    """after a call with echo_args=True: the positional arguments as the call left them (Returned each)"""

    grads: list | None = None
    """after a call with backward=True: the gradient of each parameter of the model's network, as
    the runner reported it (None: the loss could not be differentiated)"""

    def gradients(self) -> list[np.ndarray] | None:
        if not isinstance(self.grads, list) or not all(isinstance(g, np.ndarray) for g in self.grads):
            return None
        return [g.astype(np.float64) for g in self.grads]

    def mapping(self) -> dict[str, Returned] | None:
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


# A copy takes milliseconds (0.1 to 0.2 s at a load of 24 on 2 cores, benchmarks.restart_cost): a fork
# server that has not answered in FORK_TIMEOUT seconds is gone. The first such failure in a notebook
# starts the runner again from the top; after MAX_COPY_FAILURES, every later request fails at once.
FORK_TIMEOUT = 15.0
MAX_COPY_FAILURES = 2


class Runner:
    """One student's runner. Its cells run in one process; the first call after them turns that
    process into a fork server (`autograder.sandbox.runner.forkserver`), and from then on a *copy*
    of that moment answers: a failure, or `restart()`, costs a new copy (milliseconds), with nothing
    replayed but the cells run after the snapshot. Only a failure while the cells themselves run
    starts a new process, which runs the earlier cells again."""

    def __init__(self, limits: Limits = Limits(), *, log=None):
        self.limits, self.log = limits, log
        self.process: RunnerProcess | None = None
        self.channel: Channel | None = None
        self.cells: list[str] = []
        """cells that ran to the end since the last snapshot: replayed in a new process (before the
        snapshot) or in a new copy (after it)"""
        self.snapshot_cells: list[str] = []  # the cells the snapshot holds
        self.forking = False  # the runner is a fork server, `channel` talks to a copy
        self.copies = 0  # copies made, for the record
        self.isolated = False  # each copy has namespaces of its own (see forkserver)
        self._copy_fds: tuple[int, int] | None = None
        self.replay_timeout = 600.0
        self.output_bytes = 0  # of all cells' outputs so far (Limits.notebook_output_mb)
        self.setup_cpu = 0.0  # CPU seconds of the runner's own life, not counted against any budget (cpu_seconds)
        self.copy_failures = 0  # copies the fork server could not make: after MAX_COPY_FAILURES, no more tries
        self.incidents: list[str] = []  # the grader's own troubles it recovered from, for the grading log
        self.stuck: set[str] = set()  # student functions that ran out of time once (`_timed`)
        self._planner: str | None = None  # the planner of the agent `act` asks

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
        self._drop_copy()
        self.process = self.channel = None
        self.forking = False

    def _ensure(self) -> None:
        if self.copy_failures >= MAX_COPY_FAILURES:
            # Student code that ends the fork server (a daemon that kills what it sees) would otherwise
            # cost every later check a new sandbox, the cells again and the fork's whole wait.
            raise RunnerFailed(f"the process running your code could not be copied ({self.copy_failures} times); no check can run it", RunnerFailed.DIED)
        if self.process is not None and not self.process.alive():
            self.close()  # the sandbox itself ended: start again, cells replayed
        if self.process is None:
            self.cells = self.snapshot_cells + self.cells
            self.snapshot_cells = []
            self._start_process()
            self._setup(self._replay)
        elif self.forking and self.channel is None:
            self._setup(self._new_copy)

    def _start_process(self) -> None:
        """A new runner process, started: a copy of the warm sandbox where one is open, else a
        sandbox of its own; a copy that does not start (no student code has run in it: the
        grader's trouble, not the student's) is the last from that sandbox."""
        for own_sandbox in (False, True):
            made = RunnerProcess(self.limits, log=self.log) if own_sandbox else new_runner_process(self.limits, log=self.log)
            self.process, self.channel = made, Channel(made.read_fd, made.write_fd)
            self.setup_cpu = sandbox_cpu_seconds(made)  # a copy's sandbox has run before it: count from now
            try:
                # start-up (sandbox, torch, IPython) is no cell's or check's time
                self._setup(lambda: self._request(START_UP, self.replay_timeout, {}))
                return
            except RunnerFailed:
                if own_sandbox or not isinstance(made, RunnerCopy) or _warm is None:
                    raise
                _warm.give_up()

    def _replay(self) -> None:
        deadline = time.monotonic() + self.replay_timeout
        for source in self.cells:
            reply = self._request({"op": "run_cell", "source": source}, max(1.0, deadline - time.monotonic()), {})
            if reply.get("op") != "cell":
                self._fail("running the earlier cells again in a new runner failed", RunnerFailed.PROTOCOL)

    def snapshot(self) -> None:
        """Make the runner a fork server now (done by the first call after the cells): every later
        question is answered by a copy of this moment."""
        self._ensure()
        if self.forking:
            return
        reply = {}

        def become_server():
            reply.update(self._request({"op": "fork_server"}, self.replay_timeout, {}))

        try:
            self._setup(become_server)
        except RunnerFailed:
            self.copy_failures += 1  # (a snapshot that the cells' leftovers end: as a copy that does not come)
            raise
        if reply.get("op") != "result":
            self._fail("the process running your code could not be copied", RunnerFailed.PROTOCOL)
        self.isolated = reply.get("isolated") is True
        self.process.drain_control()
        self.forking, self.channel = True, None
        self.snapshot_cells, self.cells = self.snapshot_cells + self.cells, []
        self._setup(self._new_copy)

    def _new_copy(self) -> None:
        """A fresh copy of the snapshot (the copy before it ends), with the cells run since replayed.
        Where the fork server is gone, the runner starts again from the top, inside this request:
        a new process, the cells again, a new snapshot. Nothing tells a server the grader lost (a
        loaded machine) from one the student's code ended, so the first loss costs the student
        nothing but the wait; after MAX_COPY_FAILURES the request fails."""
        self._drop_copy()
        try:
            self._copy_fds = self.process.fork(secrets.token_hex(16), timeout=FORK_TIMEOUT)
        except OSError as error:
            self.copy_failures += 1
            self.close()
            if self.copy_failures >= MAX_COPY_FAILURES:
                raise RunnerFailed(f"the process running your code could not be copied ({error})", RunnerFailed.DIED) from None
            self.incidents.append(f"the fork server was gone ({error}); the runner started again from the top")
            self.snapshot()
            return
        self.copies += 1
        self.channel = Channel(*self._copy_fds)
        self._replay()

    def _drop_copy(self) -> None:
        if self._copy_fds is not None:
            for fd in self._copy_fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._copy_fds = None
        if self.forking:
            self.channel = None

    def _fail(self, reason: str, kind: str, clock: str | None = None):
        self.restart()
        raise RunnerFailed(reason, kind, clock)

    def restart(self) -> None:
        """The next request goes to a process that remembers nothing of the ones before: a new copy
        of the snapshot (made at once: the old copy ends now), or before the snapshot a new runner."""
        if self.forking and self.process is not None and self.process.alive():
            self._drop_copy()
            self.process.end_copy()  # a copy that loops stops using the CPU now, not at the next fork
            return
        if self.process is not None:
            self.process.kill()
        self._drop_copy()
        self.process = self.channel = None
        self.forking = False

    def cpu_seconds(self) -> float:
        """CPU seconds used so far by the runner's processes (0 when none runs), less what its
        start-up, snapshot and replays used (no check's time): the clock of budgets."""
        return max(0.0, sandbox_cpu_seconds(self.process) - self.setup_cpu) if self.process is not None else 0.0

    def _setup(self, step: Callable[[], None]) -> None:
        """Run a step of the runner's own life (start-up, replay, snapshot, a new copy); its CPU time
        is no check's."""
        before = self.cpu_seconds()
        try:
            step()
        finally:
            if self.process is not None:
                self.setup_cpu += max(0.0, self.cpu_seconds() - before)

    # -- requests -------------------------------------------------------------------------------
    def _request(self, message: dict, timeout: float, callbacks: dict[str, Callable]) -> dict:
        """Send `message`, answer callbacks, return the reply. `timeout` is CPU seconds of the
        runner's processes; code that waits instead of computing is stopped after WALL_BACKSTOP
        times as many seconds of wall time."""
        # The CPU clock is read once a poll, from the first poll on (most requests, an episode's
        # steps among them, answer sooner and never read it): the CPU used before the first read
        # counts as a whole poll's.
        cpu_limit: float | None = None
        next_read = time.monotonic() + CPU_POLL_SECONDS
        deadline = time.monotonic() + WALL_BACKSTOP * timeout
        failure: CheckFailed | None = None
        # Every answer must carry this request's random id: an answer written ahead of a question
        # (which the student's code could do from inside the runner) cannot know it.
        message = {**message, "id": secrets.token_hex(16)}
        try:
            self.channel.send(message)
            while True:
                if time.monotonic() >= next_read:
                    next_read = time.monotonic() + CPU_POLL_SECONDS
                    if cpu_limit is None:
                        cpu_limit = self.cpu_seconds() + max(0.0, timeout - CPU_POLL_SECONDS)
                    elif self.cpu_seconds() > cpu_limit:
                        self._fail(
                            f"it did not finish within {timeout:.0f} s of CPU time (an endless loop, or far too slow), and was stopped",
                            RunnerFailed.TIMEOUT,
                            "cpu",
                        )
                try:
                    reply = self.channel.receive(timeout=max(0.0, min(next_read, deadline) - time.monotonic()))
                except ChannelTimeout:
                    if time.monotonic() >= deadline:
                        self._fail(
                            f"it did not finish within {timeout:.0f} s of CPU time or {WALL_BACKSTOP * timeout:.0f} s of wall time (it waits or sleeps, or the machine is very busy), and was stopped",
                            RunnerFailed.TIMEOUT,
                            "wall",
                        )
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
            if self.process is not None and not self.forking:  # (a copy's exit status is its server's to know)
                # the pipe closes a moment before the process is gone: wait, so the message is always the same
                code = self.process.exit_status(timeout=5)
            self._fail(
                "the process running your code died" + (f" (exit status {code})" if code is not None else "") + ": it exited, crashed, or ran out of memory",
                RunnerFailed.DIED,
            )
        except ProtocolError as error:
            self._fail(f"the process running your code sent an invalid answer ({error})", RunnerFailed.PROTOCOL)

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
        room = self.output_room()
        reply = self._request({"op": "run_cell", "source": source, "output_limit": room}, timeout, {})
        if reply.get("op") != "cell" or not isinstance(reply.get("outputs"), list):
            self._fail("the process running your code sent an invalid answer", RunnerFailed.PROTOCOL)
        error = reply.get("error")
        self.cells.append(source)
        ename = evalue = None
        if isinstance(error, dict):
            ename, evalue = str(error.get("ename", "Error")), str(error.get("evalue", ""))
        # The cap holds here whatever the runner did; the runner cuts too, so that a flood never
        # travels, and says how much it cut (a number for the message only).
        outputs, used, cut = cap_outputs([o for o in reply["outputs"] if isinstance(o, dict)], room)
        said = reply.get("cut_bytes")
        cut += said if isinstance(said, int) and not isinstance(said, bool) and 0 <= said < 2**50 else 0
        self.output_bytes += used
        if cut:
            outputs.append({"output_type": "stream", "name": "stderr", "text": output_cut_line(cut, self.limits)})
        return CellResult(outputs, (ename, evalue) if ename else None)

    def output_room(self) -> int:
        """Bytes of output the next cell may send back: its own cap, or what is left of the notebook's."""
        cell, notebook = int(self.limits.cell_output_mb * 2**20), int(self.limits.notebook_output_mb * 2**20)
        return max(0, min(cell, notebook - self.output_bytes))

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
        echo_args: bool = False,
    ) -> Returned:
        """Call a student function (or `method` of a `model_spec`) in the runner; what it returned.

        With `backward`, the result is differentiated as training would (loss.backward()) and the
        gradients of the model network's parameters come back in `Returned.grads`.
        Raises StudentError when the student's code raised, RunnerFailed when the runner failed.
        `callbacks` answer the runner's callback requests: name -> f(*arrays, grad=bool) -> array;
        a CheckFailed raised there ends the check at once. With `echo_args`, `Returned.args_after`
        describes the positional arguments as the call left them.
        """
        self.snapshot()
        message = {
            "op": "call",
            "function": function,
            "model": model,
            "method": method,
            "args": args or [],
            "kwargs": kwargs or {},
            "seed": seed,
            "grad": grad,
            "backward": backward,
        }
        if echo_args:
            message["echo_args"] = True
        name = function if function is not None else f"{(model or {}).get('cls')}.{method or 'forward'}"
        reply = self._timed(name, lambda: self._request(message, timeout, callbacks or {}))
        returned = self._result(reply, function if function is not None else (model or {}).get("cls"))
        returned.grads = reply.get("grads")
        after = reply.get("args_after")
        returned.args_after = [Returned(item if isinstance(item, dict) else {}) for item in after] if isinstance(after, list) else None
        return returned

    def start_agent(self, planner: str, model: dict, *, seed: int, plan_kwargs: dict | None = None, timeout: float = 60.0) -> None:
        self.snapshot()
        self._planner = planner
        self._result(
            self._timed(
                planner,
                lambda: self._request({"op": "agent_start", "planner": planner, "model": model, "seed": seed, "plan_kwargs": plan_kwargs or {}}, timeout, {}),
            )
        )

    def act(self, state: np.ndarray, timeout: float) -> Returned:
        return self._result(self._timed(self._planner, lambda: self._request({"op": "act", "state": np.asarray(state, dtype=np.float64)}, timeout, {})))

    def _timed(self, name: str | None, request: Callable[[], dict]) -> dict:
        """`request()`, unless the student function `name` already ran out of time once: a function
        that never returns costs one check's budget, not one per check that calls it."""
        if name in self.stuck:
            raise StuckBefore(name)
        try:
            return request()
        except RunnerFailed as error:
            if error.kind == RunnerFailed.TIMEOUT and name is not None:
                self.stuck.add(name)
            raise

    def _result(self, reply: dict, asked: str | None = None) -> Returned:
        """The value of a "result" reply; an "error" reply raises StudentError (`asked`: the name
        the request looked up, reported as missing when the runner found nothing of that name)."""
        if reply.get("op") == "result":
            return Returned(reply.get("value") if isinstance(reply.get("value"), dict) else {})
        if reply.get("op") == "error":
            ename, where = str(reply.get("ename", "Error")), self._location(reply.get("where"))
            missing = asked if ename == "NameError" and not where else None
            raise StudentError(ename, str(reply.get("evalue", "")), where, missing)
        self._fail("the process running your code sent an invalid answer", RunnerFailed.PROTOCOL)

    def _location(self, where) -> str:
        """Where the student's code raised, as the runner claims it ([{cell, line, function}],
        innermost last), checked against the cells this runner was sent: " in `f`, line 12 of its
        cell" for the innermost frame that is a line of a cell defining `f`; "" when none holds.
        Nothing of the claim but a validated line number and a function the cell defines is shown."""
        if not isinstance(where, list):
            return ""
        cells = self.snapshot_cells + self.cells  # in the order the runner's process got them
        for frame in reversed(where[-16:]):
            if not isinstance(frame, dict):
                continue
            cell, line, function = frame.get("cell"), frame.get("line"), frame.get("function")
            if type(cell) is not int or type(line) is not int or not isinstance(function, str) or not function.isidentifier():
                continue
            if not 0 <= cell < len(cells) or not 1 <= line <= len(cells[cell].splitlines()):
                continue
            if re.search(rf"^[ \t]*(async[ \t]+)?def[ \t]+{re.escape(function)}[ \t]*\(", cells[cell], re.MULTILINE):
                return f" in `{function}`, line {line} of its cell"
        return ""


# ---------------------------------------------------------------------------------------------
# one warm sandbox per grading process

# What every notebook's setup cell imports: imported once per grading process, before any student code.
PRELOADED_MODULES = ("numpy", "torch", "torch.nn.functional", "torch.distributions", "matplotlib.pyplot", "IPython.display", "mbrl_helpers")


START_UP = {"op": "run_cell", "source": ""}  # a new runner's first request: IPython and inline matplotlib start


class WarmSandbox:
    """A sandbox whose first runner starts (torch, IPython, inline matplotlib), imports
    PRELOADED_MODULES, runs no student code and becomes a fork server: each notebook's runner is then
    a copy of it (`RunnerCopy`: namespaces and a scratch layer of its own, made in milliseconds)
    instead of a new sandbox that imports it all again (3 to 4 s of CPU). One notebook's runner at a
    time: before the server makes a copy it ends the one before and every process of it, and waits
    until they are gone (runner.forkserver), so that a copy, whoever's it is, meets nothing of the
    copies before it. Where the first runner cannot start, or its copies could not be isolated,
    each notebook gets a new sandbox, as without one. It is started on the first notebook, with
    that notebook's limits; a notebook with other limits starts it again."""

    def __init__(self):
        self.limits: Limits | None = None
        self.server: RunnerProcess | None = None
        self.unusable = False

    def runner_process(self, limits: Limits, log=None) -> RunnerProcess:
        """A new runner for one notebook: a copy of the first runner, or a new sandbox."""
        if limits != self.limits:
            self.close()
            self.limits, self.unusable = limits, False
        if self.server is None and not self.unusable:
            self._start()
        if self.server is not None and self.server.alive():
            try:
                read_fd, write_fd = self.server.fork(secrets.token_hex(16), timeout=FORK_TIMEOUT)
                return RunnerCopy(self.server, read_fd, write_fd)
            except OSError:
                self.give_up()
        return RunnerProcess(self.limits, log=log)

    def _start(self) -> None:
        first = Runner(self.limits)
        first.process = RunnerProcess(self.limits)
        first.channel = Channel(first.process.read_fd, first.process.write_fd)
        reply: dict = {}
        try:
            # the start-up cell (IPython, inline matplotlib), the imports, then the fork server
            for request in (START_UP, {"op": "preload", "modules": list(PRELOADED_MODULES)}, {"op": "fork_server"}):
                reply = first._request(request, first.replay_timeout, {})
                if reply.get("op") not in ("cell", "result") or reply.get("error"):
                    break
        except RunnerFailed:
            reply = {}
        if reply.get("op") != "result" or reply.get("isolated") is not True:
            first.close()
            self.give_up()
            return
        first.process.drain_control()
        self.server = first.process

    def give_up(self) -> None:
        """No more copies: each later notebook gets a sandbox of its own."""
        self.close()
        self.unusable = True

    def close(self) -> None:
        if self.server is not None:
            self.server.kill()
            self.server = None


_warm: WarmSandbox | None = None  # the open warm_sandbox block's (None: no block open)


@contextlib.contextmanager
def warm_sandbox():
    """Within this block, the notebooks graded in this process, one after another, run in copies of
    one WarmSandbox, ended with the block. Open it around a grading process's jobs, never where two
    notebooks are graded at once."""
    global _warm
    before, _warm = _warm, WarmSandbox()
    try:
        yield _warm
    finally:
        _warm.close()
        _warm = before


def new_runner_process(limits: Limits, log=None) -> RunnerProcess:
    """A runner for one notebook: a copy of the open warm sandbox's first runner (inside a
    warm_sandbox block, with the sandbox on), else a sandbox of its own."""
    if _warm is None or not limits.sandbox:
        return RunnerProcess(limits, log=log)
    return _warm.runner_process(limits, log)


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
    submission: str = ""
    """a hash of the submitted code (`submission_hash`), part of every hidden seed"""
    budget: float = math.inf
    """CPU seconds of the runner this check may still use, from `start`"""
    cpu_clock: Callable[[], float] = field(default=lambda: 0.0, repr=False)
    """the runner's CPU seconds (Runner.cpu_seconds)"""
    wall_deadline: float = math.inf
    _cpu_used: float = 0.0
    _cpu_last: float = 0.0
    _cpu_read_at: float = -math.inf

    def start(self, budget: float, cpu_clock: Callable[[], float]) -> None:
        """Begin a check: `budget` CPU seconds of the runner, WALL_BACKSTOP times as many of wall time."""
        self.budget, self.cpu_clock = budget, cpu_clock
        self.wall_deadline = time.monotonic() + WALL_BACKSTOP * budget
        self._cpu_used, self._cpu_last, self._cpu_read_at = 0.0, cpu_clock(), time.monotonic()

    def cpu_used(self) -> float:
        """The runner's CPU seconds since `start`; a runner started meanwhile counts from zero. Read
        at most once a poll (CPU_POLL_SECONDS): a check's thousand quick requests read it a few times."""
        if time.monotonic() - self._cpu_read_at < CPU_POLL_SECONDS:
            return self._cpu_used
        now = self.cpu_clock()
        self._cpu_used += now - self._cpu_last if now >= self._cpu_last else now
        self._cpu_last, self._cpu_read_at = now, time.monotonic()
        return self._cpu_used

    def seed(self, name: str) -> int:
        """A seed for this student, submission and check that the runner cannot know in advance.
        With the submission's hash in it, the hidden inputs change whenever the code does (whatever
        one submission's feedback told cannot be replayed by the next), and a regrade of the same
        submission draws the same ones."""
        digest = hashlib.sha256(f"{self.secret}\0{self.student}\0{self.notebook}\0{self.submission}\0{name}".encode()).digest()
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
            raise BudgetUsedUp("its budget was used up", "cpu" if cpu_left <= 0 else "wall")
        return min(3600.0, max(floor, min(cpu_left, wall_left)))


def submission_hash(sources: list[str]) -> str:
    """The hash of a submission's code: its code cells' sources, in order."""
    digest = hashlib.sha256()
    for source in sources:
        digest.update(hashlib.sha256(source.encode("utf-8", "surrogatepass")).digest())
    return digest.hexdigest()


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
    for group in dict.fromkeys(getattr(cap, "groups", {}).values()):
        try:  # the kernel's own count, where the sandbox has a cpu(acct) group: cgroup v2, then v1
            usage = (group / "cpu.stat").read_text().split("usage_usec ", 1)[1].split()[0] if (group / "cpu.stat").exists() else None
            if usage is not None:
                return int(usage) / 1e6
            if (group / "cpuacct.usage").exists():
                return int((group / "cpuacct.usage").read_text()) / 1e9
        except (OSError, ValueError, IndexError):
            pass
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
        timed_out = error.kind == RunnerFailed.TIMEOUT
        if timed_out and not isinstance(error, StuckBefore):
            if error.clock == "cpu":
                reason = f"it did not finish within its budget of {check.budget:.0f} s of CPU time (an endless loop, or far too slow), and was stopped"
            else:
                reason = f"it did not finish within its budget of {check.budget:.0f} s of CPU time or {WALL_BACKSTOP * check.budget:.0f} s of wall time (it waits or sleeps, or the machine is very busy), and was stopped"
        return Verdict(check.grade_id, False, f"This check could not finish: {reason}.", time.monotonic() - started, timed_out=timed_out)
    return Verdict(check.grade_id, True, message or "OK", time.monotonic() - started)


def student_error_hint(error: StudentError) -> str:
    """The hint for an error the student's code raised: its type and place, never its message."""
    if error.ename == "NotImplementedError":
        return "Not implemented yet: this check calls code that still raises NotImplementedError. Write the missing cell (delete the `raise NotImplementedError()` line)."
    if error.missing:
        return f"`{error.missing}` is not defined: the cell that defines it did not run (an error earlier in the notebook?) or was renamed."
    if error.ename == "NameError":
        return f"Your code raised NameError{error.where}: it uses a name that is not defined (a cell that defines it did not run, or a typo?). {ERROR_MESSAGES_NOT_SHOWN}"
    return f"Your code raised {error.describe()}. {ERROR_MESSAGES_NOT_SHOWN}"


def output_size(output: dict) -> int:
    """Bytes an nbformat output takes in the notebook (its JSON)."""
    try:
        return len(json.dumps(output, default=str))
    except (TypeError, ValueError, RecursionError):
        return 2**40


def cap_outputs(outputs: list[dict], room: int) -> tuple[list[dict], int, int]:
    """The outputs that fit in `room` bytes, in order (a stream output is cut inside its text);
    (kept, bytes kept, bytes cut)."""
    kept, used, cut = [], 0, 0
    for output in outputs:
        size = output_size(output)
        if used + size <= room:
            kept.append(output)
            used += size
            continue
        text = output.get("text")
        if output.get("output_type") == "stream" and isinstance(text, str) and room - used > 200:
            part = text[: room - used - 200]
            kept.append({**output, "text": part})
            used += output_size(kept[-1])
            cut += size - output_size(kept[-1])
        else:
            cut += size
    return kept, used, cut


def output_cut_line(cut_bytes: int, limits: Limits) -> str:
    amount = f"{cut_bytes / 2**20:.1f} MB" if cut_bytes >= 2**20 // 10 else f"{cut_bytes} bytes"
    return (
        f"\n[output cut: {amount} over the cap: a cell may show {limits.cell_output_mb:g} MB of output, "
        f"a notebook {limits.notebook_output_mb:g} MB; print less, e.g. a summary instead of every step]\n"
    )
