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
from pathlib import Path
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


CHEAT_CODE = Path(__file__).resolve().parent / "cheat_code"


def cheat_code(name: str) -> str:
    """The body of a cheat, from its own file in cheat_code/ (real Python that the linter reads)."""
    return (CHEAT_CODE / f"{name}.py").read_text().strip("\n")


# A student's helper, inserted after the setup cell of every cheat that uses it.
PRELUDE = cheat_code("prelude")


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
        targets = [
            cell
            for cell in nb.cells
            if cell.cell_type == "code" and is_grade(cell) and not is_solution(cell) and (not self.cells or grade_id(cell) in self.cells)
        ]
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


PATCH_COMPARISONS = cheat_code("patch_comparisons")

PATCH_TEST_FRAMEWORKS = cheat_code("patch_test_frameworks")

LYING_TENSOR = cheat_code("lying_tensor")

FAKE_LOSS = cheat_code("fake_loss")

FORGED_REQUIRES_GRAD = cheat_code("forged_requires_grad")

IMPORT_REFERENCE_MODEL = cheat_code("import_reference_model")

IMPORT_REFERENCE_PLANNER = cheat_code("import_reference_planner")

IMPORT_REFERENCE_ENSEMBLE = cheat_code("import_reference_ensemble")


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


COPY_SOLUTIONS = cheat_code("copy_solutions")

WRITE_GRADEBOOK = cheat_code("write_gradebook")

POISON_COURSE = cheat_code("poison_course")

PATCH_ENVIRONMENT = cheat_code("patch_environment")

PATCH_AGENT = cheat_code("patch_agent")

PATCH_RUNNER = cheat_code("patch_runner")

HIDE_ERRORS = cheat_code("hide_errors")

HIDE_ERRORS_AFTERWARDS = (
    code(
        """
        from IPython.display import clear_output

        raise AssertionError("this error should not show")
        """
    ),
    code(
        """
        clear_output()
        print("All tests passed.")
        """
    ),
    code(
        """
        # and answer the grader with garbage
        import gc

        import protocol.channel

        channel = next(o for o in gc.get_objects() if isinstance(o, protocol.channel.Channel))
        os.write(channel.write_fd, b"this is not a message\\n")
        """
    ),
)

FORGE_PROTOCOL = cheat_code("forge_protocol")

EXIT_KERNEL = (
    "import sys\n\nsys.exit(0)",
    "exit()",
    "quit()",
    "import os\n\nos._exit(0)",
    "import os\nimport signal\n\nos.kill(os.getpid(), signal.SIGKILL)",
)

KILL_OTHERS = cheat_code("kill_others")

EXHAUST = (
    code(
        """
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
        """
    ),
    'print("x" * 20_000_000)  # 20 MB of output',
    'print("y" * 70_000_000)  # more than one message may hold',
)

FORK_BOMB = cheat_code("fork_bomb")

LEFTOVER_KILLER = cheat_code("leftover_killer")

FORGED_OUTPUTS = cheat_code("forged_outputs")

PRINT_SOURCES = cheat_code("print_sources")

PRINT_SOURCES_IN_CALLS = cheat_code("print_sources_in_calls")

STACK_AND_GC = cheat_code("stack_and_gc")

READ_MEMORY = cheat_code("read_memory")


# ---------------------------------------------------------------------------------------------
# the catalogue

ALL_TESTS_PASSED = 'print("predict_delta: shapes OK")  # all good'
PASSED_OUTPUTS = (
    {"output_type": "stream", "name": "stdout", "text": "predict_delta: shapes OK\n"},
    {"output_type": "execute_result", "execution_count": 1, "data": {"text/plain": "True"}, "metadata": {}},
)

CHEATS = (
    # ---- patched comparison or assertion helpers -------------------------------------------------
    Cheat(
        "patched-comparisons",
        NB1,
        "helpers",
        "torch.allclose, Tensor.__eq__, np.allclose, np.testing, math.isclose all say 'equal'",
        "blank",
        (Insert((PATCH_COMPARISONS,)),),
    ),
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
        may_score_less="its tensors also flow through cem_plan in the return check's episode, where the actions they give are not distributed as CEM's",
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
    Cheat(
        "read-fixtures", NB2, "reading answers", "reads notebook 2's fixture and checks", "blank", (Insert((read_fixtures(NB2, "stochastic"),), after="end"),)
    ),
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
        (
            TestCells("retype", ("test-det-predict-shape", "test-det-predict-delta", "test-det-loss", "test-cem-output", "test-cem-elites"), "markdown"),
            TestCells("retype", ("test-cem-first-action", "test-cem-std-floor", "test-cem-clamp", "test-cem-reference", "test-cem-return"), "raw"),
        ),
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
    Cheat(
        "kill-others",
        NB1,
        "killing the kernel",
        "SIGSTOP, SIGTERM and SIGKILL to every process (-1), the parent, process 1 and anything that looks like the grader",
        "blank",
        (Insert((KILL_OTHERS,), after="end"),),
    ),
    Cheat(
        "exhaust-resources",
        NB1,
        "killing the kernel",
        "raises its rlimits, allocates 8 GB, fills the scratch disk, starts 500 threads, prints 20 MB and then 70 MB",
        "blank",
        (Insert(EXHAUST, after="end"),),
    ),
    # ---- processes left behind ---------------------------------------------------------------------
    Cheat(
        "fork-bomb",
        NB1,
        "leftover processes",
        "forks until refused; every child sleeps for an hour in its own session",
        "blank",
        (Insert((FORK_BOMB,), after="end"),),
    ),
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
FORGED_LOOP = cheat_code("forged_loop")
# Notebook 4: the reference loop, imported or read from the course's files.
READ_LOOP_REFERENCE = cheat_code("read_loop_reference")
CHEATS = CHEATS + (
    Cheat(
        "forged-loop",
        NB4,
        "forged objects",
        "closing_the_loop returns the offline data and returns of 1000 without training or running anything",
        "blank",
        (Append("loop", FORGED_LOOP),),
    ),
    Cheat(
        "loop-from-reference",
        NB4,
        "reading answers",
        "imports the reference loop, or reads and runs its file",
        "blank",
        (Insert((READ_LOOP_REFERENCE,), after="end"),),
    ),
)


# ---------------------------------------------------------------------------------------------
# planner swap: the pole kept up by a planner that is not the student's


# The course's own LQR controller: A and B fitted on the offline data near upright, P the course's
# cost matrix (mbrl_helpers.lqr), K = (R + B'PB)^-1 B'PA.
LQR_OF_THE_COURSE = cheat_code("lqr_of_the_course")


def swap_planner(planner: str, action: str, setup: str = "") -> str:
    """`planner` kept for the toy checks (2 state numbers); on the pendulum (4) `action` acts instead."""
    return (setup + "\n\n\n" if setup else "") + code(
        f"""
        _own_{planner} = {planner}


        def {planner}(predict_delta, state, *args, **kwargs):
            if state.shape[-1] == 4:  # the pendulum: the return check's episode
                return {action}
            return _own_{planner}(predict_delta, state, *args, **kwargs)
        """
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
        """
        _TABLE_STATES = torch.as_tensor(_data["states"][:3000], dtype=torch.float32)
        _TABLE_ACTIONS = torch.stack([lqr_action(s) for s in _TABLE_STATES])
        """
    ),
)
SWAP_ENSEMBLE_LQR = swap_planner("ensemble_cem_plan", "lqr_action(state)", LQR_OF_THE_COURSE)
# Notebook 2 plans with the course's random shooting, looked up by its name: rebind the name.
SWAP_COURSE_PLANNER = (
    LQR_OF_THE_COURSE
    + "\n\n\n"
    + code(
        """
    def random_shooting_plan(predict_delta, state, *args, **kwargs):
        return lqr_action(state)
    """
    )
)


# ---------------------------------------------------------------------------------------------
# replay from feedback: the grader's inputs carried out in an error or a returned object's type

# Every number the function was given, in the exception's message, and in its class's name.
REPLAY_ADD_EPISODE = cheat_code("replay_add_episode")
# The toy and pendulum states cem_plan is given, as the name of the type of what it returns.
REPLAY_RETURNED_TYPE = cheat_code("replay_returned_type")


# ---------------------------------------------------------------------------------------------
# decoder attacks: forged answers written to the checker's channel from inside a call

FORGE_MESSAGE = cheat_code("forge_message")


def forged_answers(in_loss: str, in_predict: str) -> str:
    """DeterministicModel.loss forges `in_loss` (test-det-loss), and predict_delta on 7 rows
    `in_predict` (only test-det-predict-shape asks about 7 rows), instead of answering."""
    return (
        FORGE_MESSAGE
        + "\n\n\n"
        + code(
            f"""
        _own_loss, _own_predict_delta = DeterministicModel.loss, DeterministicModel.predict_delta


        def _forging_loss(self, *args, **kwargs):
            forge({in_loss})
            return _own_loss(self, *args, **kwargs)


        def _forging_predict_delta(self, states, actions):
            if states.shape[0] == 7:
                forge({in_predict})
            return _own_predict_delta(self, states, actions)


        DeterministicModel.loss, DeterministicModel.predict_delta = _forging_loss, _forging_predict_delta
        """
        )
    )


FORGED_ANSWERS = "a forged answer fails the check that received it (test-det-loss, test-det-predict-shape); every other check keeps the twin's points"
CHEATS = CHEATS + (
    Cheat(
        "swap-random-shooting",
        NB1,
        "planner swap",
        "a broken CEM that hands the pendulum to the course's random shooting planner",
        "elites-lowest-return",
        (Append("cem-plan", SWAP_RANDOM_SHOOTING),),
    ),
    Cheat(
        "swap-lqr",
        NB1,
        "planner swap",
        "a broken CEM that hands the pendulum to the LQR controller of the course's P",
        "elites-lowest-return",
        (Append("cem-plan", SWAP_LQR),),
    ),
    Cheat(
        "swap-noisy-lqr",
        NB1,
        "planner swap",
        "the same LQR controller with noise as wide as CEM's spread",
        "last-action",
        (Append("cem-plan", SWAP_NOISY_LQR),),
    ),
    Cheat(
        "swap-table",
        NB1,
        "planner swap",
        "a lookup table of actions at 3,000 states, nearest state wins",
        "elites-lowest-return",
        (Append("cem-plan", SWAP_TABLE),),
    ),
    Cheat(
        "swap-ensemble-lqr",
        NB3,
        "planner swap",
        "an ensemble model that fails its checks, and the LQR controller for the pendulum",
        "shared-actions-not-expanded",
        (Append("ensemble-cem-plan", SWAP_ENSEMBLE_LQR),),
        may_score_less="the controller also plans from test-ens-cem-reference's pendulum states, where it is compared with the reference planner",
    ),
    Cheat(
        "swap-course-planner",
        NB2,
        "planner swap",
        "a model that fails its checks, and random_shooting_plan rebound to an LQR controller",
        "halves-swapped",
        (Insert((SWAP_COURSE_PLANNER,), after="planner"),),
    ),
    Cheat(
        "replay-error-arguments",
        NB4,
        "replay from feedback",
        "add_episode and closing_the_loop raise errors whose message and class name carry every number they were given",
        "blank",
        (Append("loop", REPLAY_ADD_EPISODE),),
    ),
    Cheat(
        "replay-returned-type",
        NB1,
        "replay from feedback",
        "cem_plan returns an object whose class name carries the state it was given",
        "blank",
        (Append("cem-plan", REPLAY_RETURNED_TYPE),),
    ),
    Cheat(
        "decoder-oversize",
        NB1,
        "decoder attacks",
        "answers with an array of declared shape [2**62, 4] (an int64 size check wraps to 0) and one of NaN rows",
        "numpy-sampling",
        (Append("deterministic-model", forged_answers("OVERSIZE", "NAN_SHAPE")),),
        may_score_less=FORGED_ANSWERS,
    ),
    Cheat(
        "decoder-deep",
        NB1,
        "decoder attacks",
        "answers nested 600 deep, and with an array dimension of 5,000 digits",
        "numpy-sampling",
        (Append("deterministic-model", forged_answers("DEEP", "HUGE")),),
        may_score_less=FORGED_ANSWERS,
    ),
)


def cheat_student(cheat: Cheat) -> str:
    return f"{cheat.notebook.split('_', 1)[0]}-cheat-{cheat.name}"
