"""The cheat catalogue: submissions that try to get points their code does not earn.

Each cheat is built on a wrong or blank submission, its *twin* (the blank release, or the student
of one `catalogue.MISTAKES` entry of the same notebook), changed by `edits`: code inserted as new
cells, code appended to a solution cell, or a change to the graded test cells and their metadata.
A cheat must score no more than its twin, and grading it must leave the rest of the run (every
other student's grade, the course's files) as it would have been without it. The demo grades the
cheats together with the mistakes, in the same run, between two victims: the reference (graded
first) and `zz-victim-after` (a copy of the reference's notebook 1, graded last).

Cheat code says what it tried through `attempt(label, action)` (defined by `PRELUDE`): it prints
`CHEAT-BLOCKED <label>: <error type>` when the action raised and `CHEAT-WORKED <label>` when it did
not, and never a path or an error message (so that the feedback shows what the student's own code
printed, without the grader's paths). `attempt` is only used for actions the grader must stop: a
`CHEAT-WORKED` line in any graded notebook is a hole in the sandbox, whatever the points.

Processes a cheat leaves behind carry `LEFTOVER_MARKER` in their command line, so that a test can
check that none outlives the grading run.

To keep the run short, a cheat's notebook is "lean" by default: the ordinary code cells after the
first solution cell (training, episodes, plots: no grading metadata, never graded, and not what
any check uses) are left out, which leaves the twin's points as they are.
"""
from __future__ import annotations

import hashlib
import textwrap
from dataclasses import dataclass
from typing import Any

import nbformat
from nbformat.notebooknode import NotebookNode
from nbgrader.utils import is_grade, is_solution

from autograder.examples.build import grade_id
from autograder.examples.catalogue import NB1, NB2, NB3, NB4

LEFTOVER_MARKER = "mbrl-cheat-leftover"
WORKED, BLOCKED = "CHEAT-WORKED", "CHEAT-BLOCKED"

FAMILIES = {
    "helpers": "patched comparison or assertion helpers (torch, NumPy, math, pytest, unittest)",
    "forged objects": "returned objects that forge __eq__, __float__, item(), requires_grad",
    "reading answers": "importing the reference, reading fixtures, solutions or another student's files",
    "writing the course": "writing the gradebook, the grading folder or the course's own code",
    "patching the evaluation": "patching the environment, its wrappers, the agent or the runner's own helpers",
    "test cells": "deleting, rewriting, retyping or re-flagging test cells and their grading metadata",
    "hiding errors": "hiding or clearing errors, or changing what the kernel reports",
    "killing the kernel": "exiting, killing or exhausting the process that runs the notebook",
    "leftover processes": "processes left behind that outlive the grading or signal other processes",
    "forged prints": "printed fake results and printed test or grader source",
    "reading the checker": "reading the checker's values from the call stack or from memory",
    "planner swap": "another planner or controller (random shooting, an LQR controller, a table of actions) drives the return check's episode",
    "replay from feedback": "errors and returned objects that would carry the grader's inputs into the feedback, for a resubmission to replay",
    "decoder attacks": "forged messages (oversize arrays, deep nesting, huge numbers) written to the checker's channel from student code",
}


def code(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


# A student's helper, inserted after the setup cell of every cheat that uses it.
PRELUDE = code(
    '''
    # try something the grader must not allow, and say only whether it worked
    import os
    import sys

    import mbrl_helpers

    CODE = os.path.dirname(os.path.dirname(os.path.abspath(mbrl_helpers.__file__)))  # where the course's code lives
    COURSE = "{COURSE}"  # the course folder that grading uses: gradebook, submissions, solutions


    def attempt(label, action):
        try:
            action()
        except BaseException as error:  # whatever stopped it
            print(f"CHEAT-BLOCKED {label}: {type(error).__name__}")
            return False
        print(f"CHEAT-WORKED {label}")
        return True


    def must_find(paths):
        """The paths found, or FileNotFoundError (so that `attempt` reports a search that found nothing)."""
        found = [path for path in paths if os.path.exists(path)]
        if not found:
            raise FileNotFoundError("nothing found")
        return found
    '''
)


# ---------------------------------------------------------------------------------------------
# how a twin's notebook is changed


def stable_id(*parts) -> str:
    """A cell id from what the cell is (nbformat's own are random): the examples come out the same
    each time they are built."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Insert:
    """New code cells, after the cell with grade_id `after`, or at the end of the notebook ("end")."""

    cells: tuple[str, ...]
    after: str = "setup"

    def apply(self, nb: NotebookNode) -> None:
        new = [nbformat.v4.new_code_cell(source, id=stable_id(self.after, i, source)) for i, source in enumerate(self.cells)]
        if self.after == "end":
            nb.cells.extend(new)
            return
        index = _index(nb, self.after)
        nb.cells[index + 1 : index + 1] = new


@dataclass(frozen=True)
class Append:
    """Code appended to the solution cell `cell` (after the twin's own code)."""

    cell: str
    code: str

    def apply(self, nb: NotebookNode) -> None:
        cell = nb.cells[_index(nb, self.cell)]
        if not is_solution(cell):
            raise ValueError(f"{self.cell} is not a solution cell")
        cell.source = cell.source.rstrip("\n") + "\n\n\n" + self.code


@dataclass(frozen=True)
class TestCells:
    """A change to graded test cells (`cells`: their grade_ids, () for all):

    - "delete": the cells are removed;
    - "source": their source becomes `value`;
    - "retype": their cell type becomes `value` ("markdown" or "raw");
    - "metadata": their nbgrader metadata is updated with the dict `value`;
    - "duplicate": a copy of each, with its metadata updated with `value`, is added at the end;
    - "outputs": their outputs become `value` (nbformat outputs), as if they had run and passed.
    """

    action: str
    cells: tuple[str, ...] = ()
    value: Any = None

    def apply(self, nb: NotebookNode) -> None:
        targets = [cell for cell in nb.cells if cell.cell_type == "code" and is_grade(cell) and not is_solution(cell) and (not self.cells or grade_id(cell) in self.cells)]
        if self.cells and len(targets) != len(self.cells):
            raise ValueError(f"test cells {self.cells} not all found")
        if self.action == "delete":
            nb.cells = [cell for cell in nb.cells if not any(cell is target for target in targets)]
        elif self.action == "source":
            for cell in targets:
                cell.source = self.value
        elif self.action == "retype":
            for cell in targets:
                cell.cell_type = self.value
                for key in ("outputs", "execution_count"):
                    cell.pop(key, None)
        elif self.action == "metadata":
            for cell in targets:
                cell.metadata.nbgrader.update(self.value)
                for key in [k for k, v in self.value.items() if v is None]:
                    del cell.metadata.nbgrader[key]
        elif self.action == "duplicate":
            for cell in targets:
                copy = nbformat.from_dict(
                    nbformat.v4.new_code_cell(cell.source, metadata={"nbgrader": {**cell.metadata.nbgrader, **self.value}}, id=stable_id("copy", cell.id))
                )
                nb.cells.append(copy)
        elif self.action == "outputs":
            for count, cell in enumerate(targets, start=1):
                cell.outputs = [nbformat.from_dict(output) for output in self.value]
                cell.execution_count = count
        else:
            raise ValueError(f"unknown test cell change {self.action!r}")


@dataclass(frozen=True)
class NotebookMetadata:
    """The notebook's own metadata updated with `value` (its kernel, its nbgrader settings)."""

    value: dict

    def apply(self, nb: NotebookNode) -> None:
        nb.metadata.update(nbformat.from_dict(self.value))


def _index(nb: NotebookNode, cell_id: str) -> int:
    found = [i for i, cell in enumerate(nb.cells) if grade_id(cell) == cell_id]
    if len(found) != 1:
        raise ValueError(f"no cell {cell_id!r} in the notebook. Update autograder/examples/cheats.py.")
    return found[0]


@dataclass(frozen=True)
class Cheat:
    name: str
    notebook: str
    family: str
    what: str
    """the cheat, in a student's terms"""
    twin: str
    """the submission it is built on: "blank", or the name of a catalogue.MISTAKES entry of the same notebook"""
    edits: tuple = ()
    prelude: bool = True
    """insert PRELUDE (`attempt`, `CODE`, `COURSE`) after the setup cell"""
    lean: bool = True
    """leave out the ordinary code cells after the first solution cell (see the module's docstring)"""
    may_score_less: str = ""
    """why this cheat may score less than its twin (empty: it must score exactly the twin's points)"""

    def apply(self, nb: NotebookNode, course_root: str) -> NotebookNode:
        if self.lean:
            first = next(i for i, cell in enumerate(nb.cells) if is_solution(cell))
            nb.cells = [cell for i, cell in enumerate(nb.cells) if i <= first or cell.cell_type != "code" or "nbgrader" in cell.metadata]
        for edit in self.edits:
            edit.apply(nb)
        if self.prelude:
            Insert((PRELUDE,)).apply(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.source = cell.source.replace("{COURSE}", course_root).replace("{MARKER}", LEFTOVER_MARKER)
        return nb


# ---------------------------------------------------------------------------------------------
# the code of the cheats


PATCH_COMPARISONS = code(
    '''
    # Make every comparison a test could make say "equal".
    import math

    import numpy as np
    import torch

    always = lambda *args, **kwargs: True  # noqa: E731
    nothing = lambda *args, **kwargs: None  # noqa: E731
    torch.allclose = torch.equal = always
    torch.isclose = lambda a, b, *args, **kwargs: torch.ones_like(torch.as_tensor(a), dtype=torch.bool)
    torch.Tensor.allclose = torch.Tensor.equal = always
    torch.Tensor.__eq__ = lambda self, other: torch.ones_like(self, dtype=torch.bool)
    torch.testing.assert_close = nothing
    np.allclose = np.array_equal = np.array_equiv = always
    np.isclose = lambda a, b, *args, **kwargs: np.ones(np.shape(a), dtype=bool)
    np.testing.assert_allclose = np.testing.assert_array_equal = np.testing.assert_equal = np.testing.assert_almost_equal = nothing
    math.isclose = always
    math.isfinite = always
    print("every comparison says equal now")
    '''
)

PATCH_TEST_FRAMEWORKS = code(
    '''
    # Make assertions and test frameworks unable to fail.
    import builtins
    import types
    import unittest


    class Approx:
        def __init__(self, *args, **kwargs):
            pass

        def __eq__(self, other):
            return True


    pytest = types.ModuleType("pytest")
    pytest.approx = Approx
    pytest.raises = lambda *args, **kwargs: types.SimpleNamespace(__enter__=lambda: None, __exit__=lambda *a: True)
    pytest.fail = pytest.skip = lambda *args, **kwargs: None
    sys.modules["pytest"] = pytest
    for name in [n for n in dir(unittest.TestCase) if n.startswith("assert")]:
        setattr(unittest.TestCase, name, lambda *args, **kwargs: None)
    builtins.AssertionError = type("AssertionError", (Warning,), {})  # an "assert" that fails raises a harmless warning class
    builtins.NotImplementedError = type("NotImplementedError", (Warning,), {})
    sys.settrace(None)
    print("assertions and test frameworks neutralised")
    '''
)

LYING_TENSOR = code(
    '''
    class AlwaysRight(torch.Tensor):
        """A tensor that agrees with anything it is compared with, and reports a zero error."""

        def __eq__(self, other):
            return torch.ones(self.shape, dtype=torch.bool)

        def __ne__(self, other):
            return torch.zeros(self.shape, dtype=torch.bool)

        __hash__ = torch.Tensor.__hash__

        def __bool__(self):
            return True

        def allclose(self, *args, **kwargs):
            return True

        def equal(self, *args, **kwargs):
            return True

        def isclose(self, other, *args, **kwargs):
            return torch.ones(self.shape, dtype=torch.bool)

        def item(self):
            return 0.0

        def __float__(self):
            return 0.0

        def tolist(self):
            return torch.zeros(self.shape).tolist()


    _predict_next_state, _loss_of_next_state = DeterministicModel.predict_delta, DeterministicModel.loss
    DeterministicModel.predict_delta = lambda self, states, actions: _predict_next_state(self, states, actions).as_subclass(AlwaysRight)
    DeterministicModel.loss = lambda self, states, actions, next_states: _loss_of_next_state(self, states, actions, next_states).as_subclass(AlwaysRight)
    '''
)

FAKE_LOSS = code(
    '''
    class PerfectLoss:
        """Answers every question about a loss the way a perfect scalar loss would."""

        shape = torch.Size([])
        ndim = 0
        requires_grad = True
        grad_fn = "MseLossBackward0"
        dtype = torch.float32

        def dim(self):
            return 0

        def item(self):
            return 0.0

        def __float__(self):
            return 0.0

        def __eq__(self, other):
            return True

        __hash__ = object.__hash__

        def __lt__(self, other):
            return True

        __le__ = __lt__

        def backward(self, *args, **kwargs):
            pass

        def detach(self):
            return self

        def numpy(self):
            return np.zeros((), dtype=np.float32)

        def __array__(self, *args, **kwargs):
            return np.zeros((), dtype=np.float32)

        def tolist(self):
            return 0.0


    DeterministicModel.loss = lambda self, states, actions, next_states: PerfectLoss()
    '''
)

FORGED_REQUIRES_GRAD = code(
    '''
    # The loss carries no gradient (it was detached); make it claim one.
    _detached_loss = DeterministicModel.loss
    DeterministicModel.loss = lambda self, states, actions, next_states: _detached_loss(self, states, actions, next_states).requires_grad_()
    '''
)

IMPORT_REFERENCE_MODEL = code(
    '''
    sys.path[:0] = [CODE, COURSE]


    def take_the_reference_model():
        global DeterministicModel
        from mbrl_reference.models import DeterministicModel


    def load_the_reference_file():
        import importlib.util

        spec = importlib.util.spec_from_file_location("stolen_models", os.path.join(CODE, "mbrl_reference", "models.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        globals()["DeterministicModel"] = module.DeterministicModel


    attempt("import mbrl_reference", take_the_reference_model)
    attempt("load mbrl_reference/models.py by path", load_the_reference_file)
    attempt("import the checks", lambda: __import__("autograder.checker.checks.deterministic_cem"))
    '''
)

IMPORT_REFERENCE_PLANNER = code(
    '''
    def take_the_reference_planner():
        global cem_plan
        from mbrl_reference.planners import cem_plan


    def take_it_through_pip():
        import importlib.metadata

        files = importlib.metadata.files("mbrl-course") or []
        planners = [f for f in files if str(f).endswith("mbrl_reference/planners.py")]
        exec(planners[0].read_text(), globals())


    attempt("import mbrl_reference.planners", take_the_reference_planner)
    attempt("read the reference through the installed package's files", take_it_through_pip)
    '''
)

IMPORT_REFERENCE_ENSEMBLE = code(
    '''
    sys.path[:0] = [CODE, COURSE]


    def take_the_reference():
        global EnsembleModel, sample_member_batches, ensemble_cem_plan
        from mbrl_reference.models import EnsembleModel, sample_member_batches
        from mbrl_reference.planners import ensemble_cem_plan


    def exec_the_reference_files():
        for name in ("models.py", "planners.py"):
            exec(open(os.path.join(CODE, "mbrl_reference", name)).read(), globals())


    attempt("import mbrl_reference", take_the_reference)
    attempt("exec mbrl_reference's files", exec_the_reference_files)
    '''
)


def read_fixtures(notebook: str, checks_module: str) -> str:
    return code(
        f'''
        import glob

        import torch

        fixtures = os.path.join(CODE, "autograder", "fixtures")
        attempt("load the checker's fixture", lambda: torch.load(os.path.join(fixtures, "{notebook}.pt"), weights_only=False))
        attempt("list the fixtures", lambda: must_find(glob.glob(os.path.join(CODE, "autograder", "fixtures", "*.pt"))))
        attempt("read the checks' source", lambda: open(os.path.join(CODE, "autograder", "checks", "{checks_module}.py")).read())
        attempt("import the fixtures", lambda: __import__("autograder.checker.fixtures"))
        attempt("read the course secret", lambda: open(os.path.join(COURSE, "grading", "checker-secret")).read())
        attempt("read the source notebook's hidden tests", lambda: open(os.path.join(COURSE, "solutions", "{notebook}", "{notebook}.ipynb")).read())
        attempt("find any fixture on the machine", lambda: must_find(glob.glob("/tmp/**/*.pt", recursive=True) + glob.glob(os.path.join("/work", "*", "autograder", "fixtures", "*.pt"))))
        '''
    )


COPY_SOLUTIONS = code(
    '''
    # Look for a notebook with answers (the solutions, another student's submission) and run its answers here.
    import glob
    import json


    def answers(path):
        cells = json.load(open(path))["cells"]
        sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code" and c.get("metadata", {}).get("nbgrader", {}).get("solution")]
        if not sources or any("NotImplementedError" in source for source in sources):
            raise ValueError("no answers here")
        return sources


    def copy_answers():
        patterns = [
            CODE + "/solutions/*/*.ipynb",
            COURSE + "/solutions/*/*.ipynb",
            COURSE + "/submissions/*/*.ipynb",
            COURSE + "/grading/submitted/*/*/*.ipynb",
            COURSE + "/grading/autograded/*/*/*.ipynb",
            "/tmp/autograder-grade-*/workspaces/*/grading/submitted/*/*/*.ipynb",
            "/tmp/**/*.ipynb",
            "/root/**/*.ipynb",
            "/home/**/*.ipynb",
            "/work/*/*/*.ipynb",
            "/work/*/*/*/*.ipynb",
        ]
        for path in [p for pattern in patterns for p in glob.glob(pattern, recursive=True)]:
            if "01_deterministic_cem" not in path:
                continue
            try:
                sources = answers(path)
            except Exception:
                continue
            for source in sources:
                exec(source, globals())
            return
        raise FileNotFoundError("no notebook with answers")


    attempt("copy the answers of another notebook", copy_answers)
    '''
)

WRITE_GRADEBOOK = code(
    '''
    import glob
    import sqlite3


    def full_marks(path):
        db = sqlite3.connect(f"file:{path}?mode=rw", uri=True)
        db.execute("UPDATE grade SET auto_score = 1000, manual_score = 1000")
        db.commit()


    def full_marks_everywhere():
        paths = must_find([os.path.join(COURSE, "grading", "gradebook.db")] + glob.glob("/tmp/autograder-grade-*/workspaces/*/gradebook.db"))
        for path in paths:
            full_marks(path)


    def write(path, text, mode="w", inside="grading"):
        """Write `path` if the course's folder `inside` exists here (creating what is below it)."""
        if not os.path.isdir(os.path.join(COURSE, inside)):
            raise FileNotFoundError("no such course folder here")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, mode) as handle:
            handle.write(text)


    attempt("give everyone full marks in the gradebook", full_marks_everywhere)
    attempt("delete the gradebook", lambda: os.remove(os.path.join(COURSE, "grading", "gradebook.db")))
    attempt("append to grades.csv", lambda: write(os.path.join(COURSE, "grading", "grades.csv"), "01-cheat,01_deterministic_cem,18,18,18,graded\\n", "a"))
    attempt("replace the course secret", lambda: write(os.path.join(COURSE, "grading", "checker-secret"), "0" * 64 + "\\n"))
    attempt("plant feedback for the next student", lambda: write(os.path.join(COURSE, "grading", "feedback", "zz-victim-after", "01_deterministic_cem", "01_deterministic_cem.html"), "<h1>0 points</h1>"))
    attempt("plant an autograded notebook", lambda: write(os.path.join(COURSE, "grading", "autograded", "zz-victim-after", "01_deterministic_cem", "01_deterministic_cem.ipynb"), "{}"))
    attempt("replace the next student's submission", lambda: write(os.path.join(COURSE, "submissions", "zz-victim-after", "01_deterministic_cem.ipynb"), "{}", inside="submissions"))
    attempt("write a grading log", lambda: write(os.path.join(COURSE, "grading", "logs", "zz-victim-after.log"), "graded: 18/18"))
    '''
)

POISON_COURSE = code(
    '''
    import site


    def append(path, text, mode="a"):
        with open(path, mode) as handle:
            handle.write(text)


    helpers = os.path.join(CODE, "mbrl_helpers")
    packages = site.getsitepackages()[0]
    attempt("make the reward zero for everyone", lambda: append(os.path.join(helpers, "reward.py"), "\\ncompute_rewards = lambda states: states.new_zeros(states.shape[:-1])\\n"))
    attempt("change the helpers' package", lambda: append(os.path.join(helpers, "__init__.py"), "\\nACTION_HIGH = 0.0\\n"))
    attempt("add a module to the helpers", lambda: append(os.path.join(helpers, "evil.py"), "print('poisoned')\\n", "w"))
    attempt("plant bytecode", lambda: os.makedirs(os.path.join(helpers, "__pycache__", "evil")))
    attempt("corrupt the data", lambda: append(os.path.join(CODE, "data", "transitions.npz"), b"poisoned", "ab"))
    attempt("replace the data", lambda: os.replace(os.path.join(CODE, "data", "manifest.json"), os.path.join(CODE, "data", "manifest.old")))
    attempt("delete the reward", lambda: os.remove(os.path.join(helpers, "reward.py")))
    attempt("make the reward writable", lambda: os.chmod(os.path.join(helpers, "reward.py"), 0o777))
    attempt("change the checks", lambda: append(os.path.join(CODE, "autograder", "checks", "deterministic_cem.py"), "\\nchecks.checks.clear()\\n"))
    attempt("plant a sitecustomize", lambda: append(os.path.join(packages, "sitecustomize.py"), "import os\\n", "w"))
    attempt("plant a .pth file", lambda: append(os.path.join(packages, "zz-evil.pth"), "import os\\n", "w"))
    attempt("change torch", lambda: append(os.path.join(packages, "torch", "__init__.py"), "\\nallclose = lambda *a, **k: True\\n"))
    attempt("change the runner", lambda: append("/opt/mbrl-runner/runner/session.py", "\\nMAX_TEXT = 0\\n"))
    attempt("change Python itself", lambda: append(os.path.join(os.path.dirname(os.__file__), "os.py"), "\\n"))
    # in this process only: the next student's grading starts in a new one
    import mbrl_helpers.reward

    mbrl_helpers.compute_rewards = mbrl_helpers.reward.compute_rewards = lambda states: states.new_zeros(states.shape[:-1])
    print("the reward is zero here")
    '''
)

PATCH_ENVIRONMENT = code(
    '''
    # An environment in which the pole never falls, and episodes that always return 1000.
    import gymnasium

    import mbrl_helpers.env
    import mbrl_helpers.evaluation


    class PoleNeverFalls(gymnasium.Wrapper):
        def step(self, action):
            state, reward, terminated, truncated, info = self.env.step(action)
            return state, 1.0, False, truncated, info


    _make = gymnasium.make
    gymnasium.make = lambda *args, **kwargs: PoleNeverFalls(_make(*args, **kwargs))
    _make_env = mbrl_helpers.env.make_env
    mbrl_helpers.make_env = mbrl_helpers.env.make_env = mbrl_helpers.evaluation.make_env = lambda *args, **kwargs: PoleNeverFalls(_make_env(*args, **kwargs))


    def perfect_episode(planner, seed=0, max_steps=1000, progress=True, env=None):
        return mbrl_helpers.EpisodeResult(seed, float(max_steps), np.zeros((max_steps + 1, 4)), np.zeros((max_steps, 1)), np.full(max_steps, 1e-3), False)


    mbrl_helpers.run_episode = mbrl_helpers.evaluation.run_episode = run_episode = perfect_episode
    mbrl_helpers.evaluate = mbrl_helpers.evaluation.evaluate = lambda planner, seeds=(0, 1, 2), **kwargs: [perfect_episode(planner, s) for s in seeds]
    mbrl_helpers.MAX_EPISODE_STEPS = mbrl_helpers.env.MAX_EPISODE_STEPS = 1
    print("the pendulum cannot fall here")
    '''
)

PATCH_AGENT = code(
    '''
    # The agent ignores the planner and balances the pole with a hand-tuned linear controller.
    import mbrl_helpers.evaluation

    GAINS = np.array([0.5, 10.0, 0.5, 1.0])


    def balance(self, state):
        return np.clip(np.array([GAINS @ np.asarray(state, dtype=np.float64)]), -3.0, 3.0).astype(np.float32)


    mbrl_helpers.MPCAgent.plan = mbrl_helpers.evaluation.MPCAgent.plan = balance
    print("the agent balances the pole by itself")
    '''
)

PATCH_RUNNER = code(
    '''
    # The grader's own code in this process answers a question asked twice in a row with its first
    # answer: a planner that ignores torch's seed (it samples with NumPy) then looks reproducible.
    # A question is what it asks (function, model, seed, numbers), not how the message is written
    # (its id, the names of its callbacks).
    import pickle

    import runner.session

    _call, _last = runner.session.Session.call, {}


    def meaning(value):
        if isinstance(value, dict):
            if "callback" in value:
                return "a callback"
            return {k: meaning(v) for k, v in sorted(value.items()) if k != "id"}
        if isinstance(value, (list, tuple)):
            return [meaning(v) for v in value]
        return value


    def call_answered_alike_twice(self, request):
        key = pickle.dumps(meaning(request))
        if _last.get("key") == key:
            return _last["reply"]
        reply = _call(self, request)
        _last.update(key=key, reply=reply)
        return reply


    runner.session.Session.call = call_answered_alike_twice
    print("repeated questions get repeated answers")
    '''
)

HIDE_ERRORS = code(
    '''
    # Errors leave no trace: no traceback, no error in the cell's result, nothing on stderr.
    from IPython import get_ipython
    from IPython.core.interactiveshell import InteractiveShell

    shell = get_ipython()
    shell.showtraceback = shell._showtraceback = shell.showsyntaxerror = lambda *args, **kwargs: None
    shell.set_custom_exc((BaseException,), lambda shell, etype, evalue, tb, tb_offset=None: None)
    sys.excepthook = lambda *args: None
    _run_cell = InteractiveShell.run_cell


    def run_cell_without_errors(self, *args, **kwargs):
        result = _run_cell(self, *args, **kwargs)
        result.error_in_exec = result.error_before_exec = None
        return result


    InteractiveShell.run_cell = run_cell_without_errors
    sys.stderr = open(os.devnull, "w")
    print("errors are hidden")
    '''
)

HIDE_ERRORS_AFTERWARDS = (
    code(
        '''
        from IPython.display import clear_output

        raise AssertionError("this error should not show")
        '''
    ),
    code(
        '''
        clear_output()
        print("All tests passed.")
        '''
    ),
    code(
        '''
        # and answer the grader with garbage
        import gc

        import protocol.channel

        channel = next(o for o in gc.get_objects() if isinstance(o, protocol.channel.Channel))
        os.write(channel.write_fd, b"this is not a message\\n")
        '''
    ),
)

FORGE_PROTOCOL = code(
    '''
    # Answer the grader's next questions before it asks them: this cell finished, then three tensors
    # of the shapes predict_delta must return. The runner's own next four answers are dropped, so
    # that the grader's questions and answers stay in step afterwards.
    import gc

    import protocol.channel

    channel = next(o for o in gc.get_objects() if isinstance(o, protocol.channel.Channel))
    _send, dropped = channel.send, []


    def send_after_four(message):
        if len(dropped) < 4:
            dropped.append(message.get("op"))
            return
        _send(message)


    channel.send = send_after_four
    forged = [{"op": "cell", "outputs": [], "error": None}]
    forged += [{"op": "result", "value": {"kind": "tensor", "array": np.zeros((n, 4), dtype=np.float32), "requires_grad": False}} for n in (1, 7, 256)]
    os.write(channel.write_fd, b"".join(protocol.channel.encode(message) for message in forged))
    '''
)

EXIT_KERNEL = (
    "import sys\n\nsys.exit(0)",
    "exit()",
    "quit()",
    "import os\n\nos._exit(0)",
    "import os\nimport signal\n\nos.kill(os.getpid(), signal.SIGKILL)",
)

KILL_OTHERS = code(
    '''
    # Signal every process this code can see: the parent, process 1, everything (-1), anything graded.
    import signal


    def send(label, pid, sig):
        try:
            os.kill(pid, sig)
            print(f"{label}: sent")
        except OSError as error:
            print(f"{label}: {type(error).__name__}")


    send("stop everything", -1, signal.SIGSTOP)
    send("terminate everything", -1, signal.SIGTERM)
    send("kill everything", -1, signal.SIGKILL)
    send("kill the parent", os.getppid(), signal.SIGKILL)
    send("kill process 1", 1, signal.SIGKILL)
    seen = 0
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            seen += 1
            try:
                command = open(f"/proc/{name}/cmdline", "rb").read()
            except OSError:
                continue
            if any(word in command for word in (b"autograder", b"nbgrader", b"jupyter", b"pytest", b"python", b"bwrap")):
                send("kill a grader process", int(name), signal.SIGKILL)
    print(f"{seen} other processes visible")
    '''
)

EXHAUST = (
    code(
        '''
        import resource
        import threading

        import numpy as np

        unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
        attempt("raise the memory cap", lambda: resource.setrlimit(resource.RLIMIT_AS, unlimited))
        attempt("raise the CPU time cap", lambda: resource.setrlimit(resource.RLIMIT_CPU, unlimited))
        attempt("allocate 8 GB", lambda: bytearray(8 * 2**30))
        attempt("allocate 8 GB with NumPy", lambda: np.ones(2**30))
        written = 0
        try:
            with open("/tmp/fill", "wb") as handle:
                while written < 2**30:
                    handle.write(b"x" * 2**20)
                    written += 2**20
        except OSError as error:
            print(f"scratch space full after {written // 2**20} MB: {type(error).__name__}")
        os.remove("/tmp/fill")
        threads = 0
        try:
            for _ in range(500):
                threading.Thread(target=__import__("time").sleep, args=(3600,), daemon=True).start()
                threads += 1
        except RuntimeError as error:
            print(f"{threads} threads, then {type(error).__name__}")
        '''
    ),
    'print("x" * 20_000_000)  # 20 MB of output',
    'print("y" * 70_000_000)  # more than one message may hold',
)

FORK_BOMB = code(
    '''
    # As many processes as the machine allows, each in its own session, sleeping for an hour.
    born = 0
    for _ in range(400):
        try:
            pid = os.fork()
        except OSError as error:
            print(f"fork refused after {born} children: {type(error).__name__}")
            break
        if pid == 0:
            try:
                os.setsid()
                os.execv("/bin/sleep", ["{MARKER}-sleeper", "3600"])
            finally:
                os._exit(0)
        born += 1
    print(f"{born} sleepers left behind")
    '''
)

LEFTOVER_KILLER = code(
    '''
    # A daemon (double fork, new session) that kills every other process it can see and floods the
    # disk, for ten minutes: long after this notebook's grading.
    import signal

    KILLER = """
    import os, signal, sys, time
    spare = {os.getpid(), int(sys.argv[1])}
    targets = [sys.argv[2] + "/grading", sys.argv[3] + "/data", "/tmp"]
    deadline = time.time() + 600
    n = 0
    while time.time() < deadline:
        for name in os.listdir("/proc"):
            if name.isdigit() and int(name) not in spare:
                try:
                    os.kill(int(name), signal.SIGKILL)
                except OSError:
                    pass
        for folder in targets:
            try:
                with open(os.path.join(folder, "flood-%d" % (n % 200)), "w") as handle:
                    handle.write("x" * 4096)
            except OSError:
                pass
        n += 1
        time.sleep(0.05)
    """
    runner_pid = os.getpid()
    if os.fork() == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, [sys.executable, "-c", KILLER, str(runner_pid), COURSE, CODE, "{MARKER}-killer"])
        finally:
            os._exit(0)
    os.wait()
    print("a killer is loose")
    '''
)

FORGED_OUTPUTS = code(
    '''
    from IPython.display import HTML, Markdown, display

    print("predict_delta: shapes OK")
    print("predict_delta: returns the change")
    print("loss: OK")
    print("\\x1b[0;32mPASSED\\x1b[0m test-cem-return (3/3 points)")
    display(Markdown("**Grader's note.** Every check passed: 18/18 points."))
    display(HTML("<div class='alert alert-success'>Autograded score: 18 / 18</div>"))
    display({"application/json": {"score": 18, "max_score": 18}}, raw=True)
    display({"text/plain": "nbgrader: all graded cells passed"}, raw=True)
    '''
)

PRINT_SOURCES = code(
    '''
    # Print the source of everything that called this cell, and of every cell this process ran.
    import inspect

    for frame_info in inspect.stack():
        try:
            source = inspect.getsource(frame_info.frame)
        except (OSError, TypeError) as error:
            source = type(error).__name__
        print(f"--- {os.path.basename(frame_info.filename)}: {frame_info.function}\\n{source[:3000]}")
    print(get_ipython().user_ns.get("In"))
    '''
)

PRINT_SOURCES_IN_CALLS = code(
    '''
    import inspect


    def predict_delta_that_tells(self, states, actions):
        """Print who called, with their source and local variables, then fail as before."""
        for frame_info in inspect.stack()[1:]:
            print(frame_info.filename, frame_info.function, {k: type(v).__name__ for k, v in frame_info.frame.f_locals.items()})
            try:
                print(inspect.getsource(frame_info.frame)[:2000])
            except (OSError, TypeError):
                pass
        raise NotImplementedError()


    DeterministicModel.predict_delta = predict_delta_that_tells
    '''
)

STACK_AND_GC = code(
    '''
    import gc
    import inspect

    _own_predict_delta = DeterministicModel.predict_delta
    _searches = []


    def predict_delta_from_the_checker(self, states, actions):
        """Return the checker's expected values if they can be found on the stack or in memory."""
        for frame_info in inspect.stack()[1:]:
            for name, value in list(frame_info.frame.f_locals.items()):
                try:
                    shape = tuple(getattr(value, "shape", ()))
                except Exception:
                    continue
                if name in ("expected", "want", "reference", "target") and shape == tuple(states.shape):
                    print("CHEAT-WORKED expected values on the stack")
                    return torch.as_tensor(np.asarray(value), dtype=torch.float32)
        if len(_searches) < 3:  # the whole heap, a few times
            _searches.append(1)
            for obj in gc.get_objects():
                module = getattr(type(obj), "__module__", "")
                if isinstance(module, str) and module.startswith(("autograder", "mbrl_reference")):
                    print("CHEAT-WORKED a checker object in memory:", type(obj).__name__)
        return _own_predict_delta(self, states, actions)


    DeterministicModel.predict_delta = predict_delta_from_the_checker
    '''
)

READ_MEMORY = code(
    '''
    # Read the memory and environment of every other process this code can see, looking for the
    # hidden tests, the grader's code or its secret.
    # (written in pieces, so that this cell's own source, which feedback shows, does not hold them)
    NEEDLES = tuple(("BEGIN HIDDEN" + " TESTS", "plan_against" + "_reference", "def predict" + "_shape", "checker" + "-secret"))
    NEEDLES = tuple(needle.encode() for needle in NEEDLES)
    found, readable, pids = [], 0, [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
    for pid in pids + [os.getppid()]:
        try:
            environment = open(f"/proc/{pid}/environ", "rb").read()
            found += [needle for needle in NEEDLES if needle in environment]
            maps = open(f"/proc/{pid}/maps").read().splitlines()
            with open(f"/proc/{pid}/mem", "rb", buffering=0) as memory:
                for line in maps:
                    span, permissions = line.split()[:2]
                    start, end = (int(x, 16) for x in span.split("-"))
                    if "r" not in permissions or end - start > 2**26:
                        continue
                    try:
                        memory.seek(start)
                        chunk = memory.read(end - start)
                    except (OSError, ValueError, OverflowError):
                        continue
                    readable += len(chunk)
                    found += [needle for needle in NEEDLES if needle in chunk]
        except OSError as error:
            print(f"process {'parent' if pid == os.getppid() else 'other'}: {type(error).__name__}")
    print(f"{len(pids)} other processes, {readable // 2**10} kB of their memory read")
    if found:
        print("CHEAT-WORKED found in another process:", sorted(set(found)))
    for device in ("/dev/mem", "/proc/kcore", "/dev/kmem"):
        attempt(f"read {device}", lambda: open(device, "rb").read(4096))
    attempt("read the parent's working folder", lambda: os.listdir(f"/proc/{os.getppid()}/cwd/grading"))
    attempt("read the grader's command line", lambda: must_find([p for p in (f"/proc/{pid}/cmdline" for pid in pids) if any(word in open(p, "rb").read() for word in (b"autograder.term.worker", b"nbgrader"))]))
    '''
)


# ---------------------------------------------------------------------------------------------
# the catalogue

ALL_TESTS_PASSED = 'print("predict_delta: shapes OK")  # all good'
PASSED_OUTPUTS = (
    {"output_type": "stream", "name": "stdout", "text": "predict_delta: shapes OK\n"},
    {"output_type": "execute_result", "execution_count": 1, "data": {"text/plain": "True"}, "metadata": {}},
)

CHEATS = (
    # ---- patched comparison or assertion helpers -------------------------------------------------
    Cheat("patched-comparisons", NB1, "helpers", "torch.allclose, Tensor.__eq__, np.allclose, np.testing, math.isclose all say 'equal'", "blank", (Insert((PATCH_COMPARISONS,)),)),
    Cheat(
        "patched-test-frameworks",
        NB1,
        "helpers",
        "a pytest stub whose approx equals anything, unittest's assertions and builtins.AssertionError replaced",
        "blank",
        (Insert((PATCH_TEST_FRAMEWORKS,)),),
    ),
    # ---- objects that forge __eq__, __float__, item() -------------------------------------------
    Cheat(
        "lying-tensor",
        NB1,
        "forged objects",
        "predict_delta and loss return a torch.Tensor subclass whose __eq__, allclose, equal, item, __float__ and tolist lie",
        "predicts-next-state",
        (Append("deterministic-model", LYING_TENSOR),),
        prelude=False,
    ),
    Cheat(
        "perfect-loss-object",
        NB1,
        "forged objects",
        "loss returns an object that claims shape (), requires_grad, item() == 0.0 and equality with anything",
        "blank",
        (Append("deterministic-model", FAKE_LOSS),),
        prelude=False,
    ),
    Cheat(
        "forged-requires-grad",
        NB1,
        "forged objects",
        "the detached loss claims a gradient: loss.detach().requires_grad_() (training could still not move the weights)",
        "loss-detached",
        (Append("deterministic-model", FORGED_REQUIRES_GRAD),),
        prelude=False,
    ),
    # ---- importing the reference, reading fixtures, solutions or another student's files --------
    Cheat(
        "import-reference",
        NB1,
        "reading answers",
        "imports mbrl_reference's model and planner (by module, by file path, through the installed package's files)",
        "blank",
        (Append("deterministic-model", IMPORT_REFERENCE_MODEL), Append("cem-plan", IMPORT_REFERENCE_PLANNER)),
    ),
    Cheat(
        "read-fixtures",
        NB1,
        "reading answers",
        "reads the checker's fixture, the checks' source, the course secret and the source notebook",
        "blank",
        (Insert((read_fixtures(NB1, "deterministic_cem"),), after="end"),),
    ),
    Cheat(
        "copy-solutions",
        NB1,
        "reading answers",
        "searches the course, the submissions, other students' grading folders and /tmp for a notebook with answers and runs them",
        "blank",
        (Insert((COPY_SOLUTIONS,), after="cem-plan"),),
    ),
    Cheat("read-fixtures", NB2, "reading answers", "reads notebook 2's fixture and checks", "blank", (Insert((read_fixtures(NB2, "stochastic"),), after="end"),)),
    Cheat(
        "import-reference",
        NB3,
        "reading answers",
        "imports (or execs the files of) mbrl_reference's ensemble, minibatches and planner",
        "blank",
        (Append("ensemble-cem-plan", IMPORT_REFERENCE_ENSEMBLE),),
    ),
    # ---- writing the gradebook, the grading folder or the course's code -------------------------
    Cheat(
        "write-gradebook",
        NB1,
        "writing the course",
        "sets every score in the gradebook to 1000, deletes it, edits grades.csv and the secret, plants the next student's feedback",
        "blank",
        (Insert((WRITE_GRADEBOOK,), after="end"),),
    ),
    Cheat(
        "poison-course",
        NB1,
        "writing the course",
        "zeroes the reward in mbrl_helpers/reward.py, corrupts data/, edits the checks, torch, the runner, plants a sitecustomize",
        "blank",
        (Insert((POISON_COURSE,), after="end"),),
    ),
    # ---- patching the environment, its wrappers or the evaluation helpers ------------------------
    Cheat(
        "patched-environment",
        NB1,
        "patching the evaluation",
        "gymnasium.make, make_env, run_episode and evaluate patched so that the pole never falls",
        "elites-lowest-return",
        (Insert((PATCH_ENVIRONMENT,)),),
        prelude=False,
    ),
    Cheat(
        "patched-agent",
        NB1,
        "patching the evaluation",
        "MPCAgent.plan replaced by a hand-tuned linear controller that balances the pole without the planner",
        "elites-lowest-return",
        (Insert((PATCH_AGENT,)),),
        prelude=False,
    ),
    Cheat(
        "patched-runner",
        NB1,
        "patching the evaluation",
        "the runner's own Session.call patched to answer a request repeated at once with the first answer, so that a planner that ignores torch's seed looks reproducible",
        "numpy-sampling",
        (Insert((PATCH_RUNNER,)),),
        prelude=False,
    ),
    # ---- editing, deleting, retyping or re-flagging test cells and grading metadata -------------
    Cheat("test-cells-deleted", NB1, "test cells", "every test cell deleted", "concat-wrong-axis", (TestCells("delete"),), prelude=False),
    Cheat(
        "test-cells-rewritten",
        NB1,
        "test cells",
        "every test cell's source replaced by a print of a passing message, and handed in with passing outputs already in it",
        "blank",
        (TestCells("source", value=ALL_TESTS_PASSED), TestCells("outputs", value=PASSED_OUTPUTS)),
        prelude=False,
    ),
    Cheat(
        "test-cells-retyped",
        NB1,
        "test cells",
        "the test cells turned into markdown and raw cells",
        "blank",
        (TestCells("retype", ("test-det-predict-shape", "test-det-predict-delta", "test-det-loss", "test-cem-output", "test-cem-elites"), "markdown"), TestCells("retype", ("test-cem-first-action", "test-cem-std-floor", "test-cem-clamp", "test-cem-reference", "test-cem-return"), "raw")),
        prelude=False,
    ),
    Cheat(
        "grading-metadata-changed",
        NB1,
        "test cells",
        "failing test cells re-flagged as solution cells or emptied, passing ones worth 100 points, one renamed, one duplicated, a new 1000-point cell, a checksum removed, another kernel",
        "concat-wrong-axis",
        (
            TestCells("metadata", ("test-det-predict-shape", "test-det-predict-delta"), {"grade": False, "solution": True, "locked": False}),
            TestCells("metadata", ("test-det-loss", "test-cem-return"), {"locked": False, "points": 100}),
            TestCells("source", ("test-det-loss", "test-cem-return"), "pass"),
            TestCells("metadata", ("test-cem-output", "test-cem-elites", "test-cem-first-action", "test-cem-std-floor"), {"points": 100}),
            TestCells("duplicate", ("test-cem-output",), {"points": 100}),
            TestCells("metadata", ("test-cem-clamp",), {"grade_id": "test-cem-clamp-2", "points": 50}),
            TestCells("metadata", ("test-cem-reference",), {"checksum": None, "schema_version": 99}),
            TestCells("duplicate", ("test-cem-elites",), {"grade_id": "bonus-points", "points": 1000}),
            NotebookMetadata({"kernelspec": {"name": "bash", "display_name": "Bash", "language": "bash"}, "nbgrader": {"grade": True, "points": 1000}}),
        ),
        prelude=False,
    ),
    # ---- hiding or clearing errors, changing what the kernel reports -----------------------------
    Cheat(
        "hidden-errors",
        NB1,
        "hiding errors",
        "IPython's traceback display, custom exception handler, sys.excepthook and run_cell patched to swallow errors, output cleared, garbage sent to the grader",
        "blank",
        (Insert((HIDE_ERRORS,)), Insert(HIDE_ERRORS_AFTERWARDS, after="end")),
    ),
    Cheat(
        "forged-protocol",
        NB1,
        "hiding errors",
        "writes forged answers into the runner's channel to the grader, ahead of the grader's questions",
        "blank",
        (Insert((FORGE_PROTOCOL,), after="end"),),
    ),
    # ---- exiting, killing or exhausting the kernel ------------------------------------------------
    Cheat(
        "exit-kernel",
        NB1,
        "killing the kernel",
        "sys.exit, exit(), quit(), os._exit and SIGKILL to itself, after the answers",
        "concat-wrong-axis",
        (Insert(EXIT_KERNEL, after="end"),),
        prelude=False,
    ),
    Cheat("kill-others", NB1, "killing the kernel", "SIGSTOP, SIGTERM and SIGKILL to every process (-1), the parent, process 1 and anything that looks like the grader", "blank", (Insert((KILL_OTHERS,), after="end"),)),
    Cheat(
        "exhaust-resources",
        NB1,
        "killing the kernel",
        "raises its rlimits, allocates 8 GB, fills the scratch disk, starts 500 threads, prints 20 MB and then 70 MB",
        "blank",
        (Insert(EXHAUST, after="end"),),
    ),
    # ---- processes left behind ---------------------------------------------------------------------
    Cheat("fork-bomb", NB1, "leftover processes", "forks until refused; every child sleeps for an hour in its own session", "blank", (Insert((FORK_BOMB,), after="end"),)),
    Cheat(
        "leftover-killer",
        NB1,
        "leftover processes",
        "a double-forked daemon in its own session that kills every other process it sees and writes files for ten minutes",
        "blank",
        (Insert((LEFTOVER_KILLER,), after="end"),),
    ),
    # ---- forged printed results, printed hidden-test source --------------------------------------
    Cheat(
        "forged-outputs",
        NB1,
        "forged prints",
        "prints the checks' pass messages, a fake grader's note and fake scores",
        "blank",
        (Insert((FORGED_OUTPUTS,), after="end"),),
        prelude=False,
    ),
    Cheat(
        "printed-sources",
        NB1,
        "forged prints",
        "prints the source and locals of every calling frame, in a cell and inside predict_delta when the grader calls it",
        "blank",
        (Insert((PRINT_SOURCES,)), Append("deterministic-model", PRINT_SOURCES_IN_CALLS)),
    ),
    # ---- reading the checker's values from the call stack or from memory -------------------------
    Cheat(
        "stack-and-heap",
        NB1,
        "reading the checker",
        "predict_delta looks for the expected values in its callers' frames and for the checker's objects on the heap",
        "concat-wrong-axis",
        (Append("deterministic-model", STACK_AND_GC),),
        prelude=False,
    ),
    Cheat(
        "read-memory",
        NB1,
        "reading the checker",
        "reads /proc/<pid>/mem and environ of the parent and every visible process, /dev/mem and /proc/kcore",
        "blank",
        (Insert((READ_MEMORY,), after="end"),),
    ),
)


# Notebook 4: a loop that never runs the stand-ins it is given, and reports what a good loop would.
FORGED_LOOP = code(
    '''
    def closing_the_loop(dataset, train_agent, run_agent, n_iterations):
        # skip the training and the episodes: the offline data and perfect returns
        from mbrl_helpers import load_dataset

        return load_dataset(), [1000.0] * n_iterations
    '''
)
# Notebook 4: the reference loop, imported or read from the course's files.
READ_LOOP_REFERENCE = code(
    '''
    def _import_reference():
        global add_episode, closing_the_loop
        from mbrl_reference.closing_the_loop import add_episode, closing_the_loop

    def _exec_reference():
        namespace = {}
        exec(open(os.path.join(CODE, "mbrl_reference", "closing_the_loop.py")).read(), namespace)
        globals().update(add_episode=namespace["add_episode"], closing_the_loop=namespace["closing_the_loop"])

    attempt("import mbrl_reference.closing_the_loop", _import_reference)
    attempt("read mbrl_reference/closing_the_loop.py", _exec_reference)
    '''
)
CHEATS = CHEATS + (
    Cheat("forged-loop", NB4, "forged objects", "closing_the_loop returns the offline data and returns of 1000 without training or running anything", "blank", (Append("loop", FORGED_LOOP),)),
    Cheat("loop-from-reference", NB4, "reading answers", "imports the reference loop, or reads and runs its file", "blank", (Insert((READ_LOOP_REFERENCE,), after="end"),)),
)


# ---------------------------------------------------------------------------------------------
# planner swap: the pole kept up by a planner that is not the student's


# The course's own LQR controller: A and B fitted on the offline data near upright, P the course's
# cost matrix (mbrl_helpers.lqr), K = (R + B'PB)^-1 B'PA.
LQR_OF_THE_COURSE = code(
    '''
    import numpy as np
    import torch

    from mbrl_helpers import load_dataset
    from mbrl_helpers.lqr import fit_linear_dynamics, lqr_gain, near_upright
    from mbrl_helpers.reward import COST_MATRIX

    _data = load_dataset()
    _near = near_upright(_data)
    _A, _B = fit_linear_dynamics(_data["states"][_near], _data["actions"][_near], _data["next_states"][_near])
    _GAIN = lqr_gain(_A, _B, np.asarray(COST_MATRIX, dtype=np.float64))


    def lqr_action(state):
        return torch.as_tensor(np.clip(-_GAIN @ state.detach().double().numpy(), -3.0, 3.0), dtype=torch.float32).reshape(1)
    '''
)


def swap_planner(planner: str, action: str, setup: str = "") -> str:
    """`planner` kept for the toy checks (2 state numbers); on the pendulum (4) `action` acts instead."""
    return (setup + "\n\n\n" if setup else "") + code(
        f'''
        _own_{planner} = {planner}


        def {planner}(predict_delta, state, *args, **kwargs):
            if state.shape[-1] == 4:  # the pendulum: the return check's episode
                return {action}
            return _own_{planner}(predict_delta, state, *args, **kwargs)
        '''
    )


SWAP_RANDOM_SHOOTING = swap_planner("cem_plan", "random_shooting_plan(predict_delta, state)", "from mbrl_helpers.planning import random_shooting_plan")
SWAP_LQR = swap_planner("cem_plan", "lqr_action(state)", LQR_OF_THE_COURSE)
# LQR with noise about as wide as CEM's spread of first actions, so that it looks sampled.
SWAP_NOISY_LQR = swap_planner("cem_plan", "lqr_action(state) + 0.1 * torch.randn(1)", LQR_OF_THE_COURSE)
# A lookup table: the LQR's actions at 3,000 states of the offline data, nearest state wins.
SWAP_TABLE = swap_planner(
    "cem_plan",
    "_TABLE_ACTIONS[((_TABLE_STATES - state) ** 2).sum(dim=1).argmin()].clone()",
    LQR_OF_THE_COURSE
    + "\n\n"
    + code(
        '''
        _TABLE_STATES = torch.as_tensor(_data["states"][:3000], dtype=torch.float32)
        _TABLE_ACTIONS = torch.stack([lqr_action(s) for s in _TABLE_STATES])
        '''
    ),
)
SWAP_ENSEMBLE_LQR = swap_planner("ensemble_cem_plan", "lqr_action(state)", LQR_OF_THE_COURSE)
# Notebook 2 plans with the course's random shooting, looked up by its name: rebind the name.
SWAP_COURSE_PLANNER = LQR_OF_THE_COURSE + "\n\n\n" + code(
    '''
    def random_shooting_plan(predict_delta, state, *args, **kwargs):
        return lqr_action(state)
    '''
)


# ---------------------------------------------------------------------------------------------
# replay from feedback: the grader's inputs carried out in an error or a returned object's type

# Every number the function was given, in the exception's message, and in its class's name.
REPLAY_ADD_EPISODE = code(
    '''
    import numpy as np


    def _numbers(*values):
        return [round(float(x), 4) for value in values for x in np.ravel(np.asarray(value, dtype=np.float64))]


    def add_episode(dataset, episode):
        numbers = _numbers(*dataset.values(), episode.states, episode.actions)
        leak = type("REPLAY_LEAK_" + "_".join(str(int(abs(x) * 1000)) for x in numbers[:40]), (ValueError,), {})
        raise leak(f"REPLAY-LEAK {numbers}")


    def closing_the_loop(dataset, train_agent, run_agent, n_iterations):
        raise KeyError(f"REPLAY-LEAK n_iterations={n_iterations} {_numbers(*dataset.values())}")
    '''
)
# The toy and pendulum states cem_plan is given, as the name of the type of what it returns.
REPLAY_RETURNED_TYPE = code(
    '''
    def cem_plan(predict_delta, state, *args, **kwargs):
        digits = "_".join(str(int(abs(float(x)) * 10000)) for x in state.reshape(-1))
        return type("REPLAY_LEAK_" + digits, (), {})()
    '''
)


# ---------------------------------------------------------------------------------------------
# decoder attacks: forged answers written to the checker's channel from inside a call

FORGE_MESSAGE = code(
    '''
    import gc
    import json
    import os

    OVERSIZE = '{"op":"result","value":{"kind":"tensor","array":{"__array__":["float64",[4611686018427387904,4],""]},"requires_grad":true},"id":ID}'
    NAN_SHAPE = '{"op":"result","value":{"kind":"tensor","array":{"__array__":["float64",[NaN,4],""]}},"id":ID}'
    DEEP = '{"op":"result","value":' + "[" * 600 + "]" * 600 + ',"id":ID}'
    HUGE = '{"op":"result","value":{"kind":"tensor","array":{"__array__":["float64",[' + "9" * 5000 + '],""]}},"id":ID}'


    def forge(line):
        """Write `line` to the checker as the answer to the request being served now."""
        session = next(o for o in gc.get_objects() if type(o).__name__ == "Session" and hasattr(o, "channel"))
        os.write(session.channel.write_fd, line.replace("ID", json.dumps(session.request_id)).encode() + b"\\n")
    '''
)


def forged_answers(in_loss: str, in_predict: str) -> str:
    """DeterministicModel.loss forges `in_loss` (test-det-loss), and predict_delta on 7 rows
    `in_predict` (only test-det-predict-shape asks about 7 rows), instead of answering."""
    return FORGE_MESSAGE + "\n\n\n" + code(
        f'''
        _own_loss, _own_predict_delta = DeterministicModel.loss, DeterministicModel.predict_delta


        def _forging_loss(self, *args, **kwargs):
            forge({in_loss})
            return _own_loss(self, *args, **kwargs)


        def _forging_predict_delta(self, states, actions):
            if states.shape[0] == 7:
                forge({in_predict})
            return _own_predict_delta(self, states, actions)


        DeterministicModel.loss, DeterministicModel.predict_delta = _forging_loss, _forging_predict_delta
        '''
    )


FORGED_ANSWERS = "a forged answer fails the check that received it (test-det-loss, test-det-predict-shape); every other check keeps the twin's points"
CHEATS = CHEATS + (
    Cheat("swap-random-shooting", NB1, "planner swap", "a broken CEM that hands the pendulum to the course's random shooting planner", "elites-lowest-return", (Append("cem-plan", SWAP_RANDOM_SHOOTING),)),
    Cheat("swap-lqr", NB1, "planner swap", "a broken CEM that hands the pendulum to the LQR controller of the course's P", "elites-lowest-return", (Append("cem-plan", SWAP_LQR),)),
    Cheat("swap-noisy-lqr", NB1, "planner swap", "the same LQR controller with noise as wide as CEM's spread", "last-action", (Append("cem-plan", SWAP_NOISY_LQR),)),
    Cheat("swap-table", NB1, "planner swap", "a lookup table of actions at 3,000 states, nearest state wins", "elites-lowest-return", (Append("cem-plan", SWAP_TABLE),)),
    Cheat(
        "swap-ensemble-lqr",
        NB3,
        "planner swap",
        "an ensemble model that fails its checks, and the LQR controller for the pendulum",
        "shared-actions-not-expanded",
        (Append("ensemble-cem-plan", SWAP_ENSEMBLE_LQR),),
        may_score_less="the controller also plans from test-ens-cem-reference's pendulum states, where it is compared with the reference planner",
    ),
    Cheat("swap-course-planner", NB2, "planner swap", "a model that fails its checks, and random_shooting_plan rebound to an LQR controller", "halves-swapped", (Insert((SWAP_COURSE_PLANNER,), after="planner"),)),
    Cheat("replay-error-arguments", NB4, "replay from feedback", "add_episode and closing_the_loop raise errors whose message and class name carry every number they were given", "blank", (Append("loop", REPLAY_ADD_EPISODE),)),
    Cheat("replay-returned-type", NB1, "replay from feedback", "cem_plan returns an object whose class name carries the state it was given", "blank", (Append("cem-plan", REPLAY_RETURNED_TYPE),)),
    Cheat("decoder-oversize", NB1, "decoder attacks", "answers with an array of declared shape [2**62, 4] (an int64 size check wraps to 0) and one of NaN rows", "numpy-sampling", (Append("deterministic-model", forged_answers("OVERSIZE", "NAN_SHAPE")),), may_score_less=FORGED_ANSWERS),
    Cheat("decoder-deep", NB1, "decoder attacks", "answers nested 600 deep, and with an array dimension of 5,000 digits", "numpy-sampling", (Append("deterministic-model", forged_answers("DEEP", "HUGE")),), may_score_less=FORGED_ANSWERS),
)


def cheat_student(cheat: Cheat) -> str:
    return f"{cheat.notebook.split('_', 1)[0]}-cheat-{cheat.name}"
