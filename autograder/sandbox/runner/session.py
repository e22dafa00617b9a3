"""One student's notebook code, run in an IPython shell, and the calls the checker makes into it.

`Session.serve` reads requests until "quit" or the end of its input. Cells run in one IPython
`InteractiveShell` (magics, display and inline matplotlib behave as in JupyterLab); their outputs
are collected as nbformat outputs, in order. Calls build the arguments the checker describes
(tensors, toy models answered by the checker, replay buffers, a model of the student's class with
a network the checker gives), call the named student function or method, and describe what it
returned as plain data.
"""

from __future__ import annotations

import math
import os
import re
import traceback

import numpy as np
from protocol.channel import Channel

MAX_SEQUENCE = 16  # items of a returned tuple or list that are described
MAX_TEXT = 4000  # characters of an error message sent back
MAX_FRAMES = 8  # frames of the student's cells in an error's location, innermost last
# The file name IPython gives the code of a cell: <ipython-input-{execution number}-{hash}>.
CELL_FILE = re.compile(r"<ipython-input-(\d+)-[0-9a-f]+>\Z")


class CheckAborted(BaseException):
    """Raised into student code when the checker has its verdict and wants the call to end."""


class Session:
    def __init__(self, channel: Channel):
        self.channel = channel
        self.shell = None
        self.outputs: list[dict] = []
        self.output_room = 0  # bytes of output the current cell may still send back (the checker's cap)
        self.cut_bytes = 0  # bytes of output the current cell made beyond it
        self.agent = None
        # IPython's execution number of each cell the checker sent -> the cell's index among them (as
        # the checker counts them: every run_cell but the empty start-up one), for error locations
        self.cell_numbers: dict[int, int] = {}
        self.request_id = None  # echoed in every answer (see autograder.checker.Runner._request)
        import torch

        # taken before any student code runs, so that patching torch.is_grad_enabled changes nothing
        self.grad_enabled = torch._C.is_grad_enabled

    # -- the loop -------------------------------------------------------------------------------
    def serve(self) -> int:
        while True:
            try:
                request = self.channel.receive()
            except Exception:  # the checker went away: nothing left to do
                return 0
            op = request.get("op")
            self.request_id = request.get("id")
            if op == "quit":
                return 0
            if op == "fork_server":  # from now on every answer comes from a copy of this moment
                from . import forkserver

                forkserver.become_server(self.channel.read_fd, self.channel.write_fd, self.request_id, os.getcwd(), os.environ.get("MBRL_SANDBOX") == "1")
                self.channel = Channel(*forkserver.copy_pipes)  # in a copy
                continue
            handler = {"run_cell": self.run_cell, "call": self.call, "agent_start": self.agent_start, "act": self.act, "preload": self.preload}.get(op)
            if handler is None:
                self.channel.send({"op": "error", "ename": "ProtocolError", "evalue": f"unknown request {op!r}", "id": self.request_id})
                continue
            try:
                reply = handler(request)
            except CheckAborted:
                reply = {"op": "error", "ename": "CheckAborted", "evalue": "stopped by the checker"}
            except BaseException as error:  # student code raised: report it, keep serving
                reply = error_reply(error, self.cell_numbers)
            self.channel.send({**reply, "id": self.request_id})

    # -- cells ----------------------------------------------------------------------------------
    def run_cell(self, request: dict) -> dict:
        shell = self._shell()
        self.outputs = []
        limit = request.get("output_limit")
        self.output_room = limit if isinstance(limit, int) and limit >= 0 else 2**62
        self.cut_bytes = 0
        source = str(request.get("source", ""))
        if source:
            self.cell_numbers[shell.execution_count] = len(self.cell_numbers)
        import sys

        streams = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Stream(self, "stdout"), _Stream(self, "stderr")
        try:
            result = shell.run_cell(source, store_history=True)
        finally:
            sys.stdout, sys.stderr = streams
        error = result.error_before_exec or result.error_in_exec
        return {
            "op": "cell",
            "outputs": self.outputs,
            "cut_bytes": self.cut_bytes,
            "error": None if error is None else {"ename": type(error).__name__, "evalue": _text(error)},
        }

    def _shell(self):
        if self.shell is not None:
            return self.shell
        from IPython.core.display_trap import DisplayTrap
        from IPython.core.displayhook import DisplayHook
        from IPython.core.displaypub import DisplayPublisher
        from IPython.core.interactiveshell import InteractiveShell

        session = self

        class Publisher(DisplayPublisher):
            def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
                session.add_output({"output_type": "display_data", "data": _plain(data), "metadata": _plain(metadata or {})})

            def clear_output(self, wait=False):
                session.outputs.clear()

        class Hook(DisplayHook):
            def start_displayhook(self):
                pass

            def write_output_prompt(self):
                pass

            def write_format_data(self, format_dict, md_dict=None):
                session.add_output(
                    {"output_type": "execute_result", "data": _plain(format_dict), "metadata": _plain(md_dict or {}), "execution_count": self.prompt_count}
                )

            def finish_displayhook(self):
                pass

        from traitlets.config import Config

        config = Config()
        config.HistoryManager.hist_file = ":memory:"  # no database file held open (a copy closes inherited files)
        shell = InteractiveShell.instance(config=config)
        shell.display_pub = Publisher(shell=shell)
        hook = Hook(shell=shell, cache_size=shell.cache_size)
        shell.displayhook = hook
        shell.display_trap = DisplayTrap(hook=hook)

        def show_traceback(etype, evalue, stb):
            session.outputs.append({"output_type": "error", "ename": etype.__name__, "evalue": _text(evalue), "traceback": [str(line) for line in stb]})

        shell._showtraceback = show_traceback
        shell.enable_gui = lambda gui=None: None  # no event loop here: figures are shown inline
        shell.enable_matplotlib("inline")
        self.shell = shell
        return shell

    def preload(self, request: dict) -> dict:
        """Import `modules` before any student code runs (in the runner that every notebook's
        runner is a copy of): what each notebook's setup cell would import, imported once."""
        import importlib

        self._shell()
        for name in request.get("modules") or []:
            importlib.import_module(str(name))
        return {"op": "result", "value": {"kind": "none"}}

    def add_output(self, output: dict) -> None:
        """An output of the current cell, kept while the cell's cap has room (counted, not kept, after)."""
        size = _size(output)
        if size > self.output_room:
            self.cut_bytes += size
            return
        self.output_room -= size
        self.outputs.append(output)

    @property
    def namespace(self) -> dict:
        return self._shell().user_ns

    # -- calls ----------------------------------------------------------------------------------
    def call(self, request: dict) -> dict:
        import torch

        model = None
        if request.get("model") is not None:
            model = self.build_model(request["model"])
            target = getattr(model, str(request["method"]))
        else:
            target = self.lookup(str(request["function"]))
        args = [self.argument(spec) for spec in request.get("args", [])]
        kwargs = {str(k): self.argument(v) for k, v in (request.get("kwargs") or {}).items()}
        if request.get("seed") is not None:
            seed_torch(int(request["seed"]))
        with torch.set_grad_enabled(bool(request.get("grad", False))):
            value = target(*args, **kwargs)
        reply = {"op": "result", "value": describe(value)}
        if request.get("echo_args"):
            # The arguments as the call left them: the checker asks whether the student's code changed
            # what it was given (add_episode must not change the caller's dataset).
            reply["args_after"] = [describe(arg) for arg in args]
        if request.get("backward") and model is not None:
            # What training does with a loss: backward(), then the network's gradients. The
            # checker compares them with the gradient of the correct loss.
            grads = None
            if isinstance(value, torch.Tensor) and value.requires_grad:
                value.backward()
                grads = [None if p.grad is None else as_array(p.grad) for p in model.net.parameters()]
            reply["grads"] = grads
        return reply

    def lookup(self, name: str):
        if name not in self.namespace:
            raise NameError(f"name '{name}' is not defined")
        return self.namespace[name]

    def build_model(self, spec: dict):
        cls = self.lookup(str(spec["cls"]))
        if spec.get("seed") is not None:
            seed_torch(int(spec["seed"]))
        model = cls(**{str(k): v for k, v in (spec.get("kwargs") or {}).items()})
        if spec.get("net") is not None:
            model.net = build_net(spec["net"])
        if spec.get("eval"):
            model.eval()
        return model

    def argument(self, spec):
        import torch

        if not isinstance(spec, dict):
            return spec
        if "tensor" in spec:
            return torch.as_tensor(np.asarray(spec["tensor"])).clone()
        if "callback" in spec:
            return self.callback(str(spec["callback"]))
        if "buffer" in spec:
            from mbrl_helpers import ReplayBuffer

            b = spec["buffer"]
            tensors = [torch.as_tensor(np.asarray(b[k])) for k in ("states", "actions", "next_states")]
            return ReplayBuffer(*tensors, device="cpu", seed=int(b.get("seed", 0)))
        if "network" in spec:
            return network_function(build_net(spec["network"]), int(spec.get("members") or 0))
        if "method_of" in spec:
            return getattr(self.build_model(spec["method_of"]), str(spec["method"]))
        if "dataset" in spec:
            # As load_dataset() gives it: a dict of NumPy arrays.
            return {str(k): np.asarray(v).copy() for k, v in spec["dataset"].items()}
        if "episode" in spec:
            return episode_result(spec["episode"])
        if "probe" in spec:
            return self.probe(str(spec["probe"]))
        if "value" in spec:
            return spec["value"]
        raise ValueError(f"unknown argument {sorted(spec)}")

    def callback(self, name: str):
        """A function the student's code calls like a model or a reward; the checker answers it."""
        import torch

        channel, grad_enabled, session = self.channel, self.grad_enabled, self

        def answered_by_checker(*args):
            arrays = [as_array(a) for a in args]
            channel.send({"op": "callback", "name": name, "args": arrays, "grad": grad_enabled(), "id": session.request_id})
            reply = channel.receive()
            if reply.get("op") != "callback_result":
                raise CheckAborted()
            device = args[0].device if args and isinstance(args[0], torch.Tensor) else "cpu"
            return torch.as_tensor(np.asarray(reply["value"]), device=device)

        answered_by_checker.__name__ = name
        return answered_by_checker

    def ask_checker(self, name: str, arrays: list) -> np.ndarray:
        """Send `arrays` to the checker as the callback `name`; its answer, as an array."""
        self.channel.send({"op": "callback", "name": name, "args": [as_array(a) for a in arrays], "grad": False, "id": self.request_id})
        reply = self.channel.receive()
        if reply.get("op") != "callback_result":
            raise CheckAborted()
        return np.asarray(reply["value"])

    def probe(self, name: str):
        """The stand-ins a loop is checked with (notebook 4): `train_agent(dataset)` and
        `run_agent(agent)`. Each asks the checker, which records what the student's loop passed and
        answers with an agent token or with an episode it made up."""
        session = self

        def train_agent(dataset, *args, **kwargs):
            try:
                arrays = [dataset[key] for key in ("states", "actions", "next_states")]
            except (TypeError, KeyError, IndexError):
                raise TypeError(f"train_agent expects the dataset, a dict with 'states', 'actions' and 'next_states'; got a {type(dataset).__name__}") from None
            token = session.ask_checker("train_agent", arrays)
            return ProbeAgent(int(np.asarray(token).reshape(-1)[0]))

        def run_agent(agent, *args, **kwargs):
            if not isinstance(agent, ProbeAgent):
                raise TypeError(f"run_agent expects the agent that train_agent returned; got a {type(agent).__name__}")
            flat = session.ask_checker("run_agent", [np.asarray([agent.token], dtype=np.float64)]).astype(np.float64)
            steps = int(flat[0])
            states = flat[3 : 3 + 4 * (steps + 1)].reshape(steps + 1, 4)
            actions = flat[3 + 4 * (steps + 1) : 3 + 4 * (steps + 1) + steps].reshape(steps, 1)
            return episode_result({"states": states, "actions": actions, "episode_return": flat[2], "terminated": bool(flat[1])})

        probes = {"train_agent": train_agent, "run_agent": run_agent}
        if name not in probes:
            raise ValueError(f"unknown probe {name!r}")
        probes[name].__name__ = name
        return probes[name]

    # -- episodes -------------------------------------------------------------------------------
    def agent_start(self, request: dict) -> dict:
        import random

        model = self.build_model(request["model"])
        planner_name = str(request["planner"])
        self.lookup(planner_name)
        self.agent = (model, planner_name, dict(request.get("plan_kwargs") or {}))
        seed = int(request.get("seed", 0))
        random.seed(seed)
        np.random.seed(seed)
        seed_torch(seed)
        return {"op": "result", "value": describe(None)}

    def act(self, request: dict) -> dict:
        """One decision: the student's planner, looked up by name, with the student's model. No
        course helper stands between them, so patching one changes nothing."""
        import torch

        if self.agent is None:
            raise RuntimeError("no agent was started")
        model, planner_name, plan_kwargs = self.agent
        state = torch.as_tensor(np.asarray(request["state"]), dtype=torch.float32)
        return {"op": "result", "value": describe(self.lookup(planner_name)(model.predict_delta, state, **plan_kwargs))}


# -- plain data ---------------------------------------------------------------------------------
class ProbeAgent:
    """What the probe `train_agent` returns: a token the checker gave, nothing else."""

    def __init__(self, token: int):
        self.token = token

    def __repr__(self) -> str:
        return f"agent #{self.token}"


def episode_result(spec: dict):
    """An mbrl_helpers EpisodeResult from plain arrays (states (T+1, 4), actions (T, 1))."""
    from mbrl_helpers.evaluation import EpisodeResult

    states = np.asarray(spec["states"], dtype=np.float64).reshape(-1, 4)
    actions = np.asarray(spec["actions"], dtype=np.float32).reshape(-1, 1)
    return EpisodeResult(
        seed=int(spec.get("seed", 0)),
        episode_return=float(spec["episode_return"]),
        states=states,
        actions=actions,
        decision_seconds=np.zeros(len(actions)),
        terminated=bool(spec["terminated"]),
    )


def seed_torch(seed: int) -> None:
    """What torch.manual_seed(seed) does on this machine, in 4 us instead of 300: torch.manual_seed
    also queues the seed for every accelerator torch knows, with a formatted stack trace each time,
    and the checks ask for a seeded call about a thousand times a submission."""
    import torch

    torch.default_generator.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def build_net(spec: dict):
    import torch
    from torch import nn

    if "constant" in spec:
        return ConstantNet(torch.as_tensor(np.asarray(spec["constant"]), dtype=torch.float32))
    if "linear" in spec:
        weight = torch.as_tensor(np.asarray(spec["linear"]), dtype=torch.float32)
        return LinearNet(weight, torch.zeros(weight.shape[0]))
    mlp = spec["mlp"]
    from mbrl_helpers import build_ensemble_mlp, build_mlp

    members = int(mlp.get("members") or 0)
    sizes = (int(mlp["in"]), int(mlp["out"]), int(mlp["hidden"]), int(mlp["layers"]))
    net: nn.Module = build_ensemble_mlp(members, *sizes) if members else build_mlp(*sizes)
    net.load_state_dict({str(k): torch.as_tensor(np.asarray(v)) for k, v in mlp["weights"].items()})
    return net


def network_function(net, members: int):
    """predict_delta(states, actions) of a bare network: the planner checks' fixed model, run here
    because the planner calls it thousands of times per check."""
    import torch

    def predict_delta(states, actions):
        if members and actions.dim() == states.dim() - 1:
            actions = actions.expand(members, *actions.shape)
        return net(torch.cat([states, actions], dim=-1))

    return predict_delta


def _constant_net_class():
    from torch import nn

    class ConstantNet(nn.Module):
        """A network that outputs its `bias` for every input: (out,) for rows, (K, 1, out) for members."""

        def __init__(self, bias):
            super().__init__()
            self.bias = nn.Parameter(bias.clone())

        def forward(self, inputs):
            if self.bias.dim() == 1:
                return self.bias.expand(*inputs.shape[:-1], self.bias.shape[-1])
            return self.bias.expand(inputs.shape[0], inputs.shape[1], self.bias.shape[-1])

    return ConstantNet


def ConstantNet(bias):
    return _constant_net_class()(bias)


def LinearNet(weight, bias):
    """A network computing inputs @ weight.T + bias over the last dimension, for any leading ones."""
    import torch.nn.functional as F
    from torch import nn

    class Linear(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight, self.bias = nn.Parameter(weight.clone()), nn.Parameter(bias.clone())

        def forward(self, inputs):
            return F.linear(inputs, self.weight, self.bias)

    return Linear()


def as_array(value) -> np.ndarray:
    import torch

    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.dtype in (torch.float16, torch.bfloat16):
            value = value.float()
        return value.numpy()
    return np.asarray(value, dtype=np.float64)


def describe(value, depth: int = 0) -> dict:
    """What a student function returned, as plain data: the checker never sees the object itself."""
    import torch

    if isinstance(value, torch.Tensor):
        try:
            array = as_array(value)
        except Exception:
            return {"kind": "other", "type": type(value).__name__}
        return {"kind": "tensor", "array": array, "requires_grad": bool(value.requires_grad)}
    if isinstance(value, np.ndarray):
        return {"kind": "ndarray", "array": np.asarray(value, dtype=np.float64) if value.dtype.kind in "fiub" else np.zeros(0)}
    if isinstance(value, bool):
        return {"kind": "bool", "value": value}
    if isinstance(value, (int, float)):
        number = float(value)
        return {"kind": "number", "value": number if math.isfinite(number) else str(number)}
    if isinstance(value, (tuple, list)) and depth < 3:
        return {"kind": "sequence", "type": type(value).__name__, "length": len(value), "items": [describe(v, depth + 1) for v in list(value)[:MAX_SEQUENCE]]}
    if value is None:
        return {"kind": "none"}
    if isinstance(value, dict) and depth < 3 and all(isinstance(k, str) for k in value):
        return {"kind": "mapping", "type": type(value).__name__, "items": {k: describe(v, depth + 1) for k, v in list(value.items())[:MAX_SEQUENCE]}}
    return {"kind": "other", "type": type(value).__name__}


def error_reply(error: BaseException, cell_numbers: dict[int, int]) -> dict:
    """What the student's code raised: its type's name, and `where` in the student's cells it was
    raised (cell index, line, function; the checker validates them against its own copy of the
    cells and shows nothing else). The message and traceback are for the instructor's log only: the
    student's code chose them, and they may carry the hidden inputs it was called with."""
    where = []
    for frame in traceback.extract_tb(error.__traceback__):
        match = CELL_FILE.match(frame.filename or "")
        if match and int(match.group(1)) in cell_numbers:
            where.append({"cell": cell_numbers[int(match.group(1))], "line": frame.lineno, "function": frame.name})
    frames = traceback.format_exception(type(error), error, error.__traceback__)
    return {"op": "error", "ename": type(error).__name__, "evalue": _text(error), "where": where[-MAX_FRAMES:], "traceback": "".join(frames)[-MAX_TEXT:]}


def _text(error) -> str:
    try:
        return str(error)[:MAX_TEXT]
    except Exception:
        return f"<{type(error).__name__}>"


def _size(output: dict) -> int:
    import json

    try:
        return len(json.dumps(output, default=str))
    except (TypeError, ValueError, RecursionError):
        return 2**40


def _plain(data):
    """Display data as JSON-able strings (images are base64 text already)."""
    out = {}
    for key, value in dict(data).items():
        if isinstance(value, bytes):
            import base64

            value = base64.b64encode(value).decode("ascii")
        elif not isinstance(value, (str, int, float, bool, list, dict)) and value is not None:
            value = str(value)
        out[str(key)] = value
    return out


class _Stream:
    """sys.stdout / sys.stderr of a cell: text lands in the cell's outputs, in order."""

    encoding = "utf-8"

    def __init__(self, session: Session, name: str):
        self.session, self.name = session, name

    def write(self, text) -> int:
        text = str(text)
        session = self.session
        size = len(text.encode("utf-8", "replace"))
        if size > session.output_room:  # what fits is kept, the rest counted
            kept = text[: session.output_room]
            session.cut_bytes += size - len(kept.encode("utf-8", "replace"))
            size, written, text = len(kept.encode("utf-8", "replace")), len(text), kept
            if not text:
                return written
        else:
            written = len(text)
        session.output_room = max(0, session.output_room - size)
        outputs = session.outputs
        if outputs and outputs[-1].get("output_type") == "stream" and outputs[-1].get("name") == self.name:
            outputs[-1]["text"] += text
        else:
            outputs.append({"output_type": "stream", "name": self.name, "text": text})
        return written

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return 1 if self.name == "stdout" else 2
