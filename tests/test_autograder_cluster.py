"""Grading on a real Dask cluster and into a real PostgreSQL gradebook.

The cluster is a `dask scheduler` and `dask worker` processes started here, as an instructor
starts them on several machines; the gradebook is a PostgreSQL server started by pgserver (an
embedded build of the real server). The examples of the course's own catalogue grade identically
on the cluster into PostgreSQL and on the local default into SQLite; a worker killed in the middle
of a student gives that student a retry, or a clear failure once the scheduler's allowed failures
are used up; two grading runs at once into one server gradebook lose nothing.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
import warnings
from pathlib import Path

import nbformat
import pytest
from autograder_fixtures.toy_course import ASSIGNMENT, CHECK_MODULES, EXPECTED, make_course, scenarios
from nbgrader.api import Gradebook

from autograder.nbgrader_glue.config import COURSE_ID
from autograder.nbgrader_glue.course import Course
from autograder.term.demo import demo
from autograder.term.engine import process_cluster
from autograder.term.grading import grade

CELL_TIMEOUT, NOTEBOOK_TIMEOUT = 30, 120
# A few of the catalogue's examples: every notebook, a blank one, mistakes and a cheat.
SUBSET = ("blank", "01-loss-summed", "02-samples-mu", "03-shared-minibatch", "01-cheat-exit-kernel")


# -- a PostgreSQL server and a Dask cluster, each real and each in processes of its own ------------------
@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    """A function that creates an empty database on a PostgreSQL server and returns its URL."""
    import pgserver

    with warnings.catch_warnings():  # platformdirs' note that XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        server = pgserver.get_server(tmp_path_factory.mktemp("postgres"), cleanup_mode="stop")

    def new_database() -> str:
        name = f"gradebook_{uuid.uuid4().hex[:8]}"
        server.psql(f"CREATE DATABASE {name};")
        return server.get_uri(name)

    yield new_database
    server.cleanup()


def dask_cluster(folder: Path, allowed_failures: int | None = None):
    """A scheduler and two worker processes (autograder.term.engine.process_cluster)."""
    config = {} if allowed_failures is None else {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": str(allowed_failures)}
    return process_cluster(folder, workers=2, scheduler_config=config)


SCORE = re.compile(r"Score: [^<]*")  # a feedback page's score lines: the notebook's, then each graded cell's


def verdicts(notebook: Path) -> list[tuple[str, str]]:
    """Each cell's source, with the outputs of the graded test cells: the checker's verdicts. The
    other cells' outputs are what the student's own code printed, which differs from run to run
    (timings, matplotlib's random element ids)."""
    parts = []
    for cell in json.loads(notebook.read_text())["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        graded = meta.get("grade") and not meta.get("solution") and cell["cell_type"] == "code"
        parts.append((cell["source"], json.dumps(cell["outputs"], sort_keys=True) if graded else ""))
    return parts


def auto_scores(db_url: str, student: str) -> dict[str, float]:
    with Gradebook(db_url, COURSE_ID) as gb:
        notebook = gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student)
        return {g.name: g.auto_score for g in notebook.grades if g.cell.cell_type == "code"}


def student_names(db_url: str) -> list[str]:
    with Gradebook(db_url, COURSE_ID) as gb:
        return sorted(s.id for s in gb.students)


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def export(db_url: str, folder: Path) -> list[dict]:
    """`nbgrader export` of a gradebook (one row per student and assignment)."""
    target = folder / f"export-{uuid.uuid4().hex[:6]}.csv"
    subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "nbgrader"), "export", f"--db={db_url}", f"--CourseDirectory.course_id={COURSE_ID}", f"--to={target}"],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    return read_rows(target)


# -- the catalogue's examples: identical on the cluster into PostgreSQL and locally into SQLite -----------
def test_examples_grade_identically_on_a_cluster_into_postgresql_and_locally_into_sqlite(tmp_path, postgres):
    # Five of the catalogue's students are graded twice here, on purpose: the comparison needs a
    # local run and a cluster run with one secret in this test (taking the local side from
    # tests/test_autograder_catalogue.py's session would make this module grade the whole catalogue
    # when it runs alone). It costs 8 notebooks' grading twice, a cluster and a PostgreSQL server: 179 s of
    # a fresh-clone suite run on 2 cores.
    secret = tmp_path / "checker-secret"  # one secret for both runs: the same hidden inputs
    secret.write_text("cluster-test-secret")
    local_run, local_mismatches = demo(course=Course(secret_file=secret), workdir=tmp_path / "local", students=SUBSET, jobs=2, progress=False)
    db_url = postgres()
    with dask_cluster(tmp_path / "cluster") as scheduler_file:
        cluster_run, cluster_mismatches = demo(
            course=Course(secret_file=secret, gradebook_url=db_url), workdir=tmp_path / "remote", students=SUBSET, scheduler=str(scheduler_file), progress=False
        )
    assert local_mismatches == [] and cluster_mismatches == []
    assert sorted(r.student for r in cluster_run.students) == sorted(SUBSET)
    assert {r.student: r.auto_total for r in cluster_run.students} == {r.student: r.auto_total for r in local_run.students}
    assert read_rows(tmp_path / "remote" / "grading" / "grades.csv") == read_rows(tmp_path / "local" / "grading" / "grades.csv")
    assert not (tmp_path / "remote" / "grading" / "gradebook.db").exists()  # the gradebook is the server's
    local_feedback = sorted((tmp_path / "local" / "grading" / "feedback").rglob("*.html"))
    assert len(local_feedback) == sum(len(r.statuses) for r in local_run.students)
    for page in local_feedback:
        relative = page.relative_to(tmp_path / "local")
        assert SCORE.findall((tmp_path / "remote" / relative).read_text()) == SCORE.findall(page.read_text()), relative
        autograded = Path(str(relative).replace("feedback", "autograded", 1)).with_suffix(".ipynb")
        assert verdicts(tmp_path / "remote" / autograded) == verdicts(tmp_path / "local" / autograded), autograded
    local_export = export("sqlite:///" + str(tmp_path / "local" / "grading" / "gradebook.db"), tmp_path)
    cluster_export = export(db_url, tmp_path)
    assert len(local_export) == len(SUBSET) * len(Course().assignments)  # nbgrader export: a row per student and assignment
    # the same rows; their order is the database's
    assert sorted(cluster_export, key=lambda row: (row["assignment"], row["student_id"])) == sorted(
        local_export, key=lambda row: (row["assignment"], row["student_id"])
    )


# -- a worker lost in the middle of a student --------------------------------------------------------------
def slow_reference(course: Course, seconds: int) -> str:
    """The toy reference answer, with a last cell that sleeps: grading it takes `seconds` longer."""
    nb = nbformat.reads(scenarios(course)["reference"], as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(f"import time\ntime.sleep({seconds})"))
    return nbformat.writes(nb)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_course(tmp_path_factory.mktemp("toy-course"), cell_timeout=CELL_TIMEOUT, notebook_timeout=NOTEBOOK_TIMEOUT)


@pytest.mark.parametrize("allowed_failures", [3, 0], ids=["retried", "given-up"])
def test_a_worker_killed_in_the_middle_of_a_student(toy, tmp_path, allowed_failures):
    """Killed with SIGKILL while it grades: with failures allowed, the scheduler gives the student
    to the other worker and the grades are whole; with none allowed, the student is reported as
    failed and the gradebook has nothing of them. Either way the grading process it had started
    ends with it."""
    import psutil
    from distributed import Client

    course = Course(root=toy.root, limits=toy.limits, check_modules=CHECK_MODULES, db_path=tmp_path / "gradebook.db")
    (tmp_path / "subs" / "slow").mkdir(parents=True)
    (tmp_path / "subs" / "slow" / f"{ASSIGNMENT}.ipynb").write_text(slow_reference(course, 20))
    with dask_cluster(tmp_path / "cluster", allowed_failures=allowed_failures) as scheduler_file:
        outcome = {}
        grading = threading.Thread(
            target=lambda: outcome.update(
                run=grade(tmp_path / "subs", course=course, scheduler=str(scheduler_file), csv_path=tmp_path / "grades.csv", progress=False)
            )
        )
        grading.start()
        with Client(scheduler_file=str(scheduler_file)) as client:
            deadline = time.monotonic() + 120
            while not any(client.processing().values()):
                assert time.monotonic() < deadline and grading.is_alive(), "the student never started"
                time.sleep(0.2)
            [address] = [worker for worker, keys in client.processing().items() if keys]
            pid = client.run(os.getpid, workers=[address])[address]
            time.sleep(5)  # in the middle of the student: its grading process is at work
            children = psutil.Process(pid).children(recursive=True)
            assert any("autograder.term.worker" in " ".join(child.cmdline()) for child in children)
            os.kill(pid, signal.SIGKILL)
            gone, alive = psutil.wait_procs(children, timeout=30)
            assert alive == [], f"left running after their worker was killed: {[p.cmdline() for p in alive]}"
        grading.join(timeout=600)
    assert not grading.is_alive()
    report = outcome["run"].student("slow")
    rows = read_rows(tmp_path / "grades.csv")
    if allowed_failures:
        assert report.statuses == {ASSIGNMENT: "graded"}, report.problems
        assert auto_scores(course.db_url, "slow") == EXPECTED["reference"][0]
        assert rows[0]["status"] == "graded"
    else:
        assert report.statuses == {ASSIGNMENT: "failed"}
        assert "KilledWorker" in " ".join(report.problems), report.problems
        assert student_names(course.db_url) == []  # nothing half-written
        assert rows[0]["status"].startswith(f"{ASSIGNMENT}: failed: could not be graded") and rows[0][ASSIGNMENT] == ""


# -- two grading runs at once into one PostgreSQL gradebook -------------------------------------------------
def test_two_grading_runs_at_once_into_one_postgresql_gradebook_lose_nothing(toy, tmp_path, postgres):
    db_url = postgres()
    texts = scenarios(toy)
    batches = {"a": ("reference", "blank", "hidden-check-fails"), "b": ("chatty", "edited-test-cell", "deleted-test-cell")}
    for batch, names in batches.items():
        for name in names:
            (tmp_path / batch / name).mkdir(parents=True)
            (tmp_path / batch / name / f"{ASSIGNMENT}.ipynb").write_text(texts[name])
    cli = [sys.executable, "-m", "autograder"]
    course_options = ["--course-dir", str(toy.root), "--db-url", db_url]
    subprocess.run(cli + ["release", *course_options], check=True, capture_output=True)  # the assignments, into the server gradebook
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")])}
    runs = [
        subprocess.Popen(
            cli
            + [
                "grade",
                str(tmp_path / batch),
                *course_options,
                "--csv",
                str(tmp_path / f"{batch}.csv"),
                "--no-progress",
                f"--cell-timeout={CELL_TIMEOUT}",
                f"--notebook-timeout={NOTEBOOK_TIMEOUT}",
                "--check-module",
                f"{ASSIGNMENT}={CHECK_MODULES[0][1]}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for batch in batches
    ]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    every = sorted(name for names in batches.values() for name in names)
    assert student_names(db_url) == every
    for name in every:
        assert auto_scores(db_url, name) == EXPECTED[name][0], name
    # the run that ended last lists every student of the gradebook
    last = max(batches, key=lambda batch: (tmp_path / f"{batch}.csv").stat().st_mtime)
    assert sorted(row["student"] for row in read_rows(tmp_path / f"{last}.csv")) == every


def test_a_worker_without_the_course_says_so_and_grades_nothing(tmp_path):
    import zlib

    from autograder.term.engine import grade_task

    task = {"student": "ada", "course_root": str(tmp_path / "elsewhere"), "source_directory": "solutions", "limits": {"sandbox": False}}
    outcome = grade_task(task, zlib.compress(b""))
    assert outcome["returncode"] != 0 and outcome["gradebook"] == {} and outcome["files"] == {}
    assert f"{tmp_path / 'elsewhere' / 'solutions'} does not exist on grading machine" in outcome["reason"]


def _diagnostics(dask_worker=None, dask_scheduler=None):
    server = dask_worker or dask_scheduler
    return {name: callback.callback_time for name, callback in server.periodic_callbacks.items()}


def test_the_local_engine_runs_without_dasks_profiler_and_with_slow_monitors():
    """Dask's profiler (a stack walk of every worker thread each 10 ms) and its 20 ms loop ticks cost
    a local cluster a second of CPU per student graded; the engine turns them off or down
    (QUIET_DASK), and the change ends with the engine."""
    import dask

    from autograder.term.engine import open_engine

    with open_engine(jobs=1) as client:
        (worker,) = client.run(_diagnostics).values()
        scheduler = client.run_on_scheduler(_diagnostics)
    assert "profile" not in worker and worker["tick"] == 1000 and worker["monitor"] == 5000
    assert scheduler["tick"] == 1000 and scheduler["monitor"] == 5000
    assert dask.config.get("distributed.worker.profile.enabled") is True  # as it was, outside the engine
