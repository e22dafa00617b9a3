"""The autograder's command line and its parts that need no notebook grading: argument parsing,
configuration, refusing to grade without the sandbox unless asked, finding students in every
layout, hiding hidden tests, the student runner's environment and memory limit, and the example
catalogue staying in step with the notebooks."""

from __future__ import annotations

import json
import os
import re
import shlex
from collections import Counter
from pathlib import Path

import nbformat
import pytest
from autograder_fixtures.toy_course import ASSIGNMENT
from traitlets.config.loader import PyFileConfigLoader

from autograder import cli
from autograder.examples import build_examples
from autograder.examples.build import Substitution, reference_submission, solution_text
from autograder.examples.catalogue import ALTERNATIVES, MISTAKES
from autograder.nbgrader_glue import config, regions
from autograder.nbgrader_glue.autograde import CheckedExecute, RestoreCells, SandboxError
from autograder.nbgrader_glue.course import ROOT, Course, with_package_on_path
from autograder.nbgrader_glue.feedback import HideHiddenTests
from autograder.protocol.limits import Limits
from autograder.sandbox.bubblewrap import THREAD_VARIABLES, RunnerProcess, runner_environment, sandbox_status


# -- command line ----------------------------------------------------------------------------------
def test_main_module_is_two_lines():
    lines = (ROOT / "autograder" / "__main__.py").read_text().strip().splitlines()
    assert len([line for line in lines if line.strip()]) == 2


@pytest.mark.parametrize("command", sorted(cli.EXAMPLES))
def test_every_help_shows_an_example_that_parses(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert "example:" in help_text and f"python -m autograder {command}" in help_text
    for example in cli.EXAMPLES[command].split("\n"):
        words = shlex.split(example.strip())
        assert words[:3] == ["python", "-m", "autograder"]
        cli.build_parser().parse_args(words[3:])


def test_top_level_help_shows_the_main_job(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "python -m autograder demo" in capsys.readouterr().out


def test_grade_arguments_reach_the_course_and_the_grading_function(tmp_path):
    args = cli.build_parser().parse_args(["grade", str(tmp_path), "--jobs", "3", "--cell-timeout", "7", "--memory-mb", "512", "--course-dir", str(tmp_path)])
    assert args.jobs == 3 and args.submissions == tmp_path and args.csv is None
    course = cli.course_from(args)
    assert course.root == tmp_path.resolve() and course.limits == Limits(cell_timeout=7, memory_mb=512)
    assert not cli.course_from(cli.build_parser().parse_args(["grade", str(tmp_path), "--no-sandbox"])).limits.sandbox


def test_one_limits_value_travels_whole_from_the_flags_to_the_checker_and_the_sandbox(tmp_path):
    args = cli.build_parser().parse_args(["grade", str(tmp_path), "--scratch-mb", "64", "--cpus", "0.5", "--notebook-output-mb", "3", "--max-restarts", "1"])
    limits = cli.course_from(args).limits
    assert limits == Limits(scratch_mb=64, cpus=0.5, notebook_output_mb=3.0, max_restarts=1)
    # as data to a worker (Dask, JSON) and back, whole
    assert Limits.from_dict(json.loads(json.dumps(limits.to_dict()))) == limits
    with pytest.raises(ValueError, match="unknown limits memory_limit_mb"):
        Limits.from_dict({"memory_limit_mb": 512})
    # into nbgrader's configuration and out of CheckedExecute's traits, whole
    course = Course(root=tmp_path, limits=limits)
    assert CheckedExecute(config=course.nbgrader_config()).limits() == limits
    # every default is written once, in Limits: the flags, the traits and the course read it
    defaults = cli.course_from(cli.build_parser().parse_args(["grade", str(tmp_path)])).limits
    assert defaults == Limits() == CheckedExecute().limits() == Course().limits
    names = [limit for limit in Limits.to_dict(Limits()) if limit != "sandbox"]
    help_text = cli.build_parser()._subparsers._group_actions[0].choices["grade"].format_help()
    assert all("--" + name.replace("_", "-") in help_text for name in names)
    # the sandbox's command line takes its scratch size from the same value
    if sandbox_status()[0]:
        from autograder.sandbox.bubblewrap import bwrap_command

        command = bwrap_command(limits)
        assert command[command.index("/tmp") - 3 : command.index("/tmp")] == ["--size", str(64 * 2**20), "--tmpfs"]


def test_defaults():
    parser = cli.build_parser()
    assert parser.parse_args(["demo"]).jobs == 2
    assert parser.parse_args(["grade", "x"]).jobs == 1
    assert cli.course_from(parser.parse_args(["release"])).root == ROOT
    with pytest.raises(SystemExit):
        parser.parse_args([])


# -- nbgrader configuration ------------------------------------------------------------------------
def test_plain_nbgrader_reads_the_course_configuration():
    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    assert cfg.CourseDirectory.source_directory == "solutions" and cfg.CourseDirectory.release_directory == "notebooks"
    assert cfg.CourseDirectory.db_url == "sqlite:///" + str(ROOT / "grading" / "gradebook.db")
    assert cfg.CourseDirectory.submitted_directory == str(Path("grading") / "submitted")
    assert CheckedExecute in cfg.Autograde.autograde_preprocessors and RestoreCells in cfg.Autograde.sanitize_preprocessors
    assert not any(p.__name__ == "Execute" for p in cfg.Autograde.autograde_preprocessors)  # nbgrader's own never runs test cells
    assert HideHiddenTests in cfg.GenerateFeedback.preprocessors
    assert cfg.CheckedExecute.cell_timeout == Limits().cell_timeout and cfg.CheckedExecute.notebook_timeout == Limits().notebook_timeout
    assert cfg.CheckedExecute.sandbox is True and cfg.CheckedExecute.hidden is True and cfg.CheckedExecute.check_modules == {}
    assert cfg.CheckedExecute.secret_file == str(ROOT / "grading" / config.SECRET_NAME) and cfg.IgnorePattern.enabled


def test_warnings_on_stderr_do_not_zero_a_test_cell():
    for text in (
        "/x/torch/nn/modules/module.py:1: UserWarning: something is deprecated\n  warnings.warn(",
        "/x/gymnasium/core.py:3: UserWarning: \x1b[33mWARN: env.reset seed\x1b[0m",
        "training: 100%|##########| 3000/3000 [00:03<00:00, 950.2it/s]",
    ):
        assert re.search(config.IGNORED_STDERR_PATTERN, text), text
    assert not re.search(config.IGNORED_STDERR_PATTERN, "Traceback (most recent call last):\nValueError: bad")


def test_the_runner_gets_one_thread_and_nothing_of_the_graders_environment():
    env = runner_environment()
    assert all(env[name] == "1" for name in THREAD_VARIABLES) and env["CUDA_VISIBLE_DEVICES"] == ""
    assert "PYTHONPATH" not in env and env["HOME"] == "/tmp" and env["PATH"] == "/usr/bin:/bin"
    # the grading processes (not the runner) import the course's packages from anywhere
    assert str(ROOT) in with_package_on_path({"PYTHONPATH": "/elsewhere"})["PYTHONPATH"].split(":")


MEMORY_MB = 2048  # room for torch and IPython; a cell's 8 GB array is not


@pytest.mark.parametrize("sandbox", [False, pytest.param(True, marks=pytest.mark.skipif(not sandbox_status()[0], reason="no sandbox here"))])
def test_a_cell_past_the_memory_limit_gets_a_memory_error_and_the_runner_cannot_lift_the_limit(sandbox, monkeypatch):
    from autograder.checker.core import Runner

    monkeypatch.setenv("GRADERS_OWN_SECRET", "not for students")
    with Runner(Limits(memory_mb=MEMORY_MB, sandbox=sandbox)) as runner:
        big = runner.run_cell("import numpy\nx = numpy.ones(10**9)  # 8 GB", timeout=60)
        assert big.error is not None and "MemoryError" in big.error[0], big
        lift = runner.run_cell("import resource\nresource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)", timeout=60)
        assert lift.error is not None and lift.error[0] == "ValueError", lift  # a hard limit, set before the runner started
        probe = runner.run_cell(
            "import os, torch\n"
            "print(resource.getrlimit(resource.RLIMIT_AS), torch.get_num_threads(), os.environ.get('GRADERS_OWN_SECRET'), "
            f"os.path.exists({str(ROOT / 'solutions')!r}), numpy.ones(10**6).sum())",
            timeout=60,
        )
        assert probe.error is None, probe
        limit, threads, secret, sees_course, total = probe.outputs[0]["text"].rsplit(" ", 4)
        assert limit == f"({MEMORY_MB * 2**20}, {MEMORY_MB * 2**20})" and threads == "1" and secret == "None" and float(total) == 1e6
        assert sees_course == ("False" if sandbox else "True")  # the sandbox does not show the course's folder


def test_a_memory_limit_of_zero_is_no_limit():
    runner = RunnerProcess(Limits(memory_mb=0, sandbox=False))
    try:
        limits = open(f"/proc/{runner.process.pid}/limits").read()
    finally:
        runner.kill()
    assert re.search(r"Max address space +unlimited +unlimited", limits), limits


# -- refusing to grade without the sandbox ---------------------------------------------------------------
def test_without_a_sandbox_grading_refuses_and_says_why_and_what_to_do(tmp_path, monkeypatch, capsys):
    from autograder.term.grading import grade

    monkeypatch.setattr("autograder.sandbox.bubblewrap.sandbox_status", lambda: (False, "no user namespaces"))
    course = Course(root=tmp_path / "course")
    (tmp_path / "subs" / "ada").mkdir(parents=True)
    with pytest.raises(SandboxError, match=r"no user namespaces.*--no-sandbox"):
        grade(tmp_path / "subs", course=course, progress=False)
    assert cli.main(["grade", str(tmp_path / "subs"), "--course-dir", str(course.root), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no user namespaces" in err and "--no-sandbox" in err
    assert not course.grading.exists()  # nothing was graded, nothing written
    # plain `nbgrader autograde` refuses too: its execute step is CheckedExecute
    nb = nbformat.v4.new_notebook()
    with pytest.raises(SandboxError, match="no user namespaces"):
        CheckedExecute(sandbox=True).preprocess(nb, {"nbgrader": {"notebook": ASSIGNMENT, "student": "ada"}})


# -- hidden tests in feedback ------------------------------------------------------------------------
def test_hidden_test_regions_become_one_line():
    source = "# visible check\nassert f(1) == 1, 'hint'\n### BEGIN HIDDEN TESTS\n# f works on big inputs\nassert f(10**6) == 10**6\n### END HIDDEN TESTS\nprint('ok')"
    hidden = HideHiddenTests().hide_source(source)
    assert hidden == "# visible check\nassert f(1) == 1, 'hint'\n# hidden test: f works on big inputs\nprint('ok')"
    assert regions.outside(source, regions.HIDDEN_TESTS) == "# visible check\nassert f(1) == 1, 'hint'\nprint('ok')"


def test_tracebacks_lose_the_test_cells_lines_and_keep_the_message():
    traceback = [
        "\x1b[0;31m-------------\x1b[0m",
        "\x1b[0;31mAssertionError\x1b[0m    Traceback (most recent call last)",
        "Cell \x1b[0;32mIn[12], line 5\x1b[0m\n      3 x = 1\n----> 5 assert f(10**6) == SECRET, 'f must scale'",
        "Cell \x1b[0;32mIn[3], line 2\x1b[0m, in \x1b[0;36mf\x1b[0m\n----> 2 return student_code()",
        "\x1b[0;31mAssertionError\x1b[0m: f must scale",
    ]
    kept = HideHiddenTests.hide_traceback(traceback, 12, {"ename": "AssertionError", "evalue": "f must scale"})
    joined = "\n".join(kept)
    assert "SECRET" not in joined and "f must scale" in joined and "student_code()" in joined


# -- the example catalogue stays in step with the notebooks ---------------------------------------------
def test_a_substitution_that_no_longer_matches_fails_loudly():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1", metadata={"nbgrader": {"solution": True, "grade_id": "a"}})])
    with pytest.raises(ValueError, match="catalogue"):
        Substitution("y = 2", "y = 3").apply(nb, "example")


def test_solution_markers_are_removed_like_a_student_would():
    assert solution_text("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION") == "def f():\n    return 1"


@pytest.mark.skipif(not Course().assignments or not all(Course().release_notebook(a, a).is_file() for a in Course().assignments), reason="no release")
def test_every_example_builds_from_the_current_notebooks_and_changes_one_notebook():
    course = Course()
    examples = {e.student: e for e in build_examples(course)}
    kinds = Counter(example.kind for example in examples.values())
    assert kinds["reference"] == kinds["blank"] == 1 and kinds["mistake"] == len(MISTAKES) and kinds["alternative"] == len(ALTERNATIVES)
    references = examples["reference"].notebooks
    for example in examples.values():
        if example.kind in ("mistake", "alternative"):
            [(key, nb)] = example.notebooks.items()
            assert nbformat.writes(nb) != nbformat.writes(references[key]), example.student
    for (assignment, notebook), nb in references.items():
        release = nbformat.read(str(course.release_notebook(assignment, notebook)), as_version=4)
        assert len(nb.cells) == len(release.cells)
        assert reference_submission(nbformat.read(str(course.source_notebook(assignment, notebook)), as_version=4), release).cells == nb.cells


# -- worker processes ----------------------------------------------------------------------------------
def test_a_worker_that_hangs_is_killed_and_one_that_fails_a_job_serves_the_next(tmp_path):
    import signal
    import time

    from autograder.term.engine import Worker

    worker = Worker(tmp_path / "worker.log")
    hanging = tmp_path / "hanging-job.json"
    os.mkfifo(hanging)  # reading it blocks forever: a stand-in for a grading that never ends
    started = time.monotonic()
    code, _ = worker.grade(hanging, timeout=5)
    assert code == -signal.SIGKILL and not worker.alive()
    assert time.monotonic() - started < 30
    worker = Worker(tmp_path / "worker.log")
    broken = tmp_path / "broken-job.json"
    broken.write_text("{}")
    code, log = worker.grade(broken, timeout=60)
    assert code == 1 and "KeyError" in log  # the job failed, its error comes back, the worker lives on
    assert worker.alive()
    worker.close()
    assert not worker.alive()


def test_grading_a_fresh_clone_records_the_assignments_without_touching_the_release(toy_source):
    from nbgrader.api import Gradebook

    from autograder.nbgrader_glue.course import ensure_gradebook

    ensure_gradebook(toy_source)
    with Gradebook(toy_source.db_url, config.COURSE_ID) as gb:
        assert [nb.name for nb in gb.find_assignment(ASSIGNMENT).notebooks] == [ASSIGNMENT]
    assert not toy_source.release.exists()


def test_feedback_drops_rubrics_of_task_cells_put_back_by_nbgrader():
    cell = nbformat.v4.new_markdown_cell("Explain.\n=== BEGIN MARK SCHEME ===\n2 points for the sign\n=== END MARK SCHEME ===")
    cell, _ = HideHiddenTests().preprocess_cell(cell, {}, 0)
    assert cell.source == "Explain."


# -- the local Dask cluster ------------------------------------------------------------------------------
def _listening_addresses() -> list[str]:
    """Addresses this process's TCP sockets listen on (IPv4 and IPv6), from /proc/net."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                address = bytes.fromhex(fields[1].split(":")[0])
                if len(address) == 4:
                    found.append(".".join(str(b) for b in address[::-1]))
                else:
                    found.append(":".join(address[i : i + 4][::-1].hex() for i in range(0, 16, 4)))
    return found


def test_the_local_dask_cluster_listens_on_this_machine_only():
    from autograder.term.engine import open_engine

    with open_engine(jobs=2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        listening = _listening_addresses()
    assert listening, "the workers' and the scheduler's HTTP servers should be listening"
    assert set(listening) == {"127.0.0.1"}, listening
