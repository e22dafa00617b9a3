"""Finding every student's notebooks in a folder of submissions (autograder.term.collect): every
layout, LMS names, archives that escape, two copies, and what a submission may not do to the
intake: merge two students, forge its hand-in time, or stall it with a huge notebook."""

from __future__ import annotations

import json
import zipfile

import nbformat
from autograder_fixtures.toy_course import ASSIGNMENT, source_notebook

from autograder.term.collect import collect_submissions, read_notebook


def _notebook_text() -> str:
    return nbformat.writes(source_notebook())


def test_students_are_found_in_every_layout(toy_source, tmp_path):
    subs = tmp_path / "subs"
    (subs / "ada").mkdir(parents=True)
    (subs / "ada" / "toy.ipynb").write_text(_notebook_text())
    (subs / "bob" / "toy").mkdir(parents=True)  # nbgrader's submitted/<student>/<assignment>/
    (subs / "bob" / "toy" / "toy.ipynb").write_text(_notebook_text())
    (subs / "bob" / "toy" / "timestamp.txt").write_text("2030-01-01 10:00:00 UTC")
    (subs / "bob" / "toy" / ".ipynb_checkpoints").mkdir()
    (subs / "bob" / "toy" / ".ipynb_checkpoints" / "toy-checkpoint.ipynb").write_text("{")
    with zipfile.ZipFile(subs / "cyd.zip", "w") as zf:  # an LMS archive
        zf.writestr("Cyd Jones_123_assignsubmission_file_/renamed (2).ipynb", _notebook_text())
        zf.writestr("__MACOSX/._renamed (2).ipynb", "junk")
    (subs / "dee_4567_toy.ipynb").write_text(_notebook_text())  # a loose file
    (subs / "eve").mkdir()
    (subs / "eve" / "toy.ipynb").write_text('{"cells": [')  # cut short
    (subs / "eve" / "notes.ipynb").write_text(json.dumps(nbformat.v4.new_notebook(), indent=1))  # not a course notebook
    students = {s.student: s for s in collect_submissions(subs, course=toy_source, workdir=tmp_path / "work")}
    assert sorted(students) == ["ada", "bob", "cyd", "dee", "eve"]
    for name in ("ada", "bob", "cyd", "dee"):
        assert list(students[name].notebooks) == [(ASSIGNMENT, ASSIGNMENT)] and students[name].notebooks[(ASSIGNMENT, ASSIGNMENT)].error is None, name
    assert students["bob"].timestamps == {ASSIGNMENT: "2030-01-01 10:00:00 UTC"}
    assert "not valid JSON" in students["eve"].notebooks[(ASSIGNMENT, ASSIGNMENT)].error
    assert any("notes.ipynb" in p for p in students["eve"].problems)


def test_a_student_pattern_picks_the_id_out_of_lms_names(toy_source, tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "jones_4567_890_toy.ipynb").write_text(_notebook_text())
    with zipfile.ZipFile(subs / "Smith, Ann_9876_assignsubmission_file_.zip", "w") as zf:
        zf.writestr("toy.ipynb", _notebook_text())
    students = collect_submissions(subs, course=toy_source, student_pattern=r"_(?P<student>\d{4})_", workdir=tmp_path / "work")
    assert [s.student for s in students] == ["4567", "9876"]


def test_archives_that_escape_their_folder_are_refused(toy_source, tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    with zipfile.ZipFile(subs / "mallory.zip", "w") as zf:
        zf.writestr("../../outside.ipynb", _notebook_text())
    [mallory] = collect_submissions(subs, course=toy_source, workdir=tmp_path / "work")
    assert not mallory.notebooks and "outside the archive" in mallory.problems[0]
    assert not (tmp_path / "outside.ipynb").exists()


def test_of_two_copies_the_readable_one_with_the_right_name_is_graded(toy_source, tmp_path):
    subs = tmp_path / "subs"
    (subs / "fay").mkdir(parents=True)
    (subs / "fay" / "toy.ipynb").write_text(_notebook_text())
    (subs / "fay" / "toy-Copy1.ipynb").write_text(_notebook_text())
    [fay] = collect_submissions(subs, course=toy_source, workdir=tmp_path / "work")
    assert fay.notebooks[(ASSIGNMENT, ASSIGNMENT)].path.name == "toy.ipynb" and "second copy" in fay.problems[0]


def test_names_that_clean_alike_stay_two_students(toy_source, tmp_path):
    subs = tmp_path / "subs"
    for name in ("ann lee", "ann_lee", "李雷", "韩梅"):
        (subs / name).mkdir(parents=True)
        (subs / name / "toy.ipynb").write_text(_notebook_text())
    students = collect_submissions(subs, course=toy_source, workdir=tmp_path / "work")
    assert len(students) == 4 and len({s.student for s in students}) == 4
    assert all(list(s.notebooks) == [(ASSIGNMENT, ASSIGNMENT)] and not s.problems for s in students)
    assert "ann_lee" in {s.student for s in students}  # a name that is already an id stays as it is


def test_the_hand_in_time_is_never_read_from_the_students_own_files(toy_source, tmp_path):
    subs = tmp_path / "subs"
    with zipfile.ZipFile(subs.mkdir() or subs / "zed.zip", "w") as zf:  # a forged record inside the archive
        zf.writestr("toy/toy.ipynb", _notebook_text())
        zf.writestr("toy/timestamp.txt", "2000-01-01 00:00:00 UTC")
    (subs / "gus" / "deeper" / "toy").mkdir(parents=True)  # not where nbgrader writes its record
    (subs / "gus" / "deeper" / "toy" / "toy.ipynb").write_text(_notebook_text())
    (subs / "gus" / "deeper" / "toy" / "timestamp.txt").write_text("2000-01-01 00:00:00 UTC")
    (subs / "hal" / "toy").mkdir(parents=True)  # nbgrader's record, but not a date: a warning, not a failure
    (subs / "hal" / "toy" / "toy.ipynb").write_text(_notebook_text())
    (subs / "hal" / "toy" / "timestamp.txt").write_text("yesterday, honest")
    students = {s.student: s for s in collect_submissions(subs, course=toy_source, workdir=tmp_path / "work")}
    assert students["zed"].timestamps == {} and students["gus"].timestamps == {}
    assert students["hal"].timestamps == {} and "not a date" in students["hal"].problems[0]
    assert all(s.notebooks[(ASSIGNMENT, ASSIGNMENT)].error is None for s in students.values())


def test_folders_and_loose_files_have_the_archives_limits(toy_source, tmp_path, monkeypatch):
    from autograder.term import collect

    subs = tmp_path / "subs"
    (subs / "ivy").mkdir(parents=True)
    many = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1") for _ in range(collect.MAX_CELLS + 1)])
    (subs / "ivy" / "toy.ipynb").write_text(nbformat.writes(many))
    (subs / "jo_toy.ipynb").write_text(_notebook_text())
    monkeypatch.setattr(collect, "MAX_NOTEBOOK_BYTES", len(_notebook_text()) - 1)  # so that a course notebook is over it
    students = {s.student: s for s in collect_submissions(subs, course=toy_source, workdir=tmp_path / "work")}
    assert "MiB" in students["jo"].notebooks[(ASSIGNMENT, ASSIGNMENT)].error
    monkeypatch.setattr(collect, "MAX_NOTEBOOK_BYTES", 40 * 2**20)
    _, error = read_notebook(subs / "ivy" / "toy.ipynb")
    assert f"{collect.MAX_CELLS + 1} cells" in error


def test_schema_invalid_notebooks_are_reported(tmp_path):
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps({"cells": "nope", "nbformat": 4, "nbformat_minor": 5, "metadata": {}}))
    _, error = read_notebook(path)
    assert "not a valid Jupyter notebook" in error
