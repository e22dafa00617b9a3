"""An instructor's term in a fresh clone, through the real tools: JupyterLab started from the
course root (the environment not activated), plain `nbgrader autograde` before anything else has
run, formgrader's own HTTP API and its manual-grading page, then `nbgrader generate_feedback`.

The clone is the working tree as git would hand it out (tracked and new files, nothing ignored):
no grading/ folder, no gradebook. One student hands in the blank release of notebook 1, which
grades in seconds; the written answers are what formgrader is for.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from autograder.nbgrader_glue.course import ROOT
from autograder.sandbox.bubblewrap import sandbox_status

ASSIGNMENT = "01_deterministic_cem"
TOKEN = "formgrader-test"
BIN = Path(sys.executable).parent
# A shell whose PATH lacks the course's environment, as for an instructor who did not activate it.
PLAIN_PATH = os.pathsep.join(p for p in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep) if Path(p).resolve() != BIN.resolve())

pytestmark = pytest.mark.skipif(not sandbox_status()[0], reason=f"no sandbox here: {sandbox_status()[1]}")


def fresh_clone(target: Path) -> Path:
    """The files a `git clone` of the working tree would have (uncommitted edits included)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(base: str, path: str) -> tuple[int, str]:
    separator = "&" if "?" in path else "?"
    try:
        with urllib.request.urlopen(f"{base}{path}{separator}token={TOKEN}", timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def run_plain(course: Path, *command: str) -> subprocess.CompletedProcess:
    """`.venv/bin/nbgrader ...` typed in the course root of a shell without the environment."""
    env = {**os.environ, "PATH": PLAIN_PATH}
    env.pop("PYTHONPATH", None)
    return subprocess.run([str(BIN / command[0]), *command[1:]], cwd=course, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def term(tmp_path_factory):
    course = fresh_clone(tmp_path_factory.mktemp("clone"))
    assert not (course / "grading").exists()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PATH": PLAIN_PATH}
    env.pop("PYTHONPATH", None)
    server = subprocess.Popen(
        [str(BIN / "jupyter"), "lab", "--no-browser", f"--port={port}", f"--IdentityProvider.token={TOKEN}", "--ServerApp.allow_root=True"],
        cwd=course,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(course.parent / "server.log", "w"),
    )
    try:
        deadline = time.monotonic() + 120
        while get_or_none(base, "/api/status") is None:
            assert server.poll() is None and time.monotonic() < deadline, (course.parent / "server.log").read_text()[-3000:]
            time.sleep(0.5)
        yield course, base
    finally:
        server.terminate()
        server.wait(30)


def get_or_none(base: str, path: str):
    try:
        return get(base, path)
    except OSError:
        return None


def test_formgrader_from_a_fresh_clone_lists_the_assignments(term):
    course, base = term
    status, body = get(base, "/formgrader/api/assignments")
    assert status == 200, body[-2000:]
    assert [a["name"] for a in json.loads(body)] == ["01_deterministic_cem", "02_stochastic", "03_ensemble", "04_closing_the_loop"]


def test_jupyterlab_shows_no_exchange_panels(term):
    _, base = term
    status, page = get(base, "/lab")
    assert status == 200
    page_config = json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page, re.S).group(1))
    disabled = page_config["disabledExtensions"]  # the plugins JupyterLab will not start
    assert {"@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:course-list"} <= set(disabled), disabled
    assert "@jupyterlab/apputils-extension:announcements" in disabled  # no "Jupyter news?" prompt, which needs the internet
    assert "@jupyter/nbgrader:formgrader" not in disabled


@pytest.fixture(scope="module")
def graded(term):
    """Plain `nbgrader autograde` before any release, then the manual-grading page of the student."""
    course, base = term
    submitted = course / "grading" / "submitted" / "ada" / ASSIGNMENT
    submitted.mkdir(parents=True)
    shutil.copy(course / "notebooks" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", submitted)
    done = run_plain(course, "nbgrader", "autograde", ASSIGNMENT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "SAWarning" not in done.stderr and "CRITICAL" not in done.stderr, done.stderr[-3000:]
    status, body = get(base, f"/formgrader/api/submitted_notebooks/{ASSIGNMENT}/{ASSIGNMENT}")
    assert status == 200, body[-2000:]
    submissions = json.loads(body)
    assert [s["student"] for s in submissions] == ["ada"]
    status, page = get(base, f"/formgrader/submissions/{submissions[0]['id']}/?index=0")
    assert status == 200, page[-2000:]
    return course, page


def source_rubrics(course: Path) -> dict[str, str]:
    """grade_id -> the first line of each written answer's rubric, read from the source notebook."""
    import nbformat

    rubrics = {}
    for cell in nbformat.read(course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "markdown" and meta.get("grade") and meta.get("solution"):
            rubrics[meta["grade_id"]] = next(line for line in cell.source.split("\n") if "Rubric (" in line).strip("* ")
    return rubrics


def test_each_written_answer_has_its_rubric_below_it_on_the_grading_page(graded):
    course, page = graded
    rubrics = source_rubrics(course)
    assert len(rubrics) == 3
    ids = list(rubrics)
    for grade_id, next_id in zip(ids, ids[1:] + [None]):
        answer = page.index(f'id="{grade_id}"')
        rubric = page.index(rubrics[grade_id].rstrip("."), answer)
        assert next_id is None or rubric < page.index(f'id="{next_id}"'), f"the rubric of {grade_id} is not between its answer and the next one"
    assert "MARK SCHEME" not in page


@pytest.fixture(scope="module")
def feedback(graded):
    """`nbgrader generate_feedback`, plain, in the course root: the student's page."""
    course, _ = graded
    done = run_plain(course, "nbgrader", "generate_feedback", ASSIGNMENT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "WARNING" not in done.stderr, done.stderr[-3000:]  # quiet logs: nothing an instructor must act on
    return course, (course / "grading" / "feedback" / "ada" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()


def test_the_student_never_sees_a_rubric(feedback):
    course, feedback = feedback
    release = (course / "notebooks" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    for rubric in source_rubrics(course).values():
        assert rubric.rstrip(".") not in feedback and rubric.rstrip(".") not in release
    assert "model answer and rubric" not in feedback and "YOUR ANSWER HERE" in feedback


def test_the_feedback_page_needs_no_network_and_wraps_its_hints(feedback):
    _, page = feedback
    assert not re.findall(r"""(?:src|href)=["']?(?:https?:)?//""", page)  # no script, style or font from elsewhere
    assert "MathJax.Hub" not in page and "mathjax/" not in page.lower()  # no MathJax loaded or configured
    assert page.count("<math") >= 20  # notebook 1's formulas, drawn by the browser
    assert "white-space: pre-wrap" in page
    assert "NotImplementedError" in page  # the blank release's checks say what is missing
