"""The example submissions, graded once for the session by the README's main job (`demo`), with
two jobs, against the course's real notebooks, in ONE grading run:

- the reference gets full marks, the blank release zero;
- every mistake of the catalogue loses the points of exactly its checks, the first of which shows
  the mistake's hint in the student's feedback, and keeps full points everywhere else;
- every correct alternative gets full marks;
- every cheat of `autograder.examples.cheats` is graded, and scores no more than its twin (the
  blank release or the mistake it is built on), cell by cell;
- the victims, the reference (graded first) and `zz-victim-after` (the same notebook 1, graded
  last), pass every graded cell with the reference's messages, with the right rows in the
  gradebook and in grades.csv; the course's own files are byte-identical after the run, and no
  process a cheat started outlives it;
- feedback never shows the checker's source or where its files are.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import re
import site
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from autograder.examples import VICTIM_AFTER
from autograder.examples.catalogue import ALTERNATIVES, MISTAKES
from autograder.examples.cheats import BLOCKED, CHEATS, FAMILIES, WORKED, cheat_student
from autograder.nbgrader_glue.course import Course
from autograder.term.demo import cell_points, demo, leftover_processes

COURSE = Course()
ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not COURSE.assignments, reason="no source notebooks in solutions/")
NB1 = "01_deterministic_cem"
# The course's own files: a cheat that changed one would poison every student graded after it.
PROTECTED = ("mbrl_helpers", "data", "autograder", "solutions", "mbrl_reference", "notebooks")
# Text of the checker that feedback must never show (its code, not its messages).
CHECKER_SOURCE = ("def predict_shape", "plan_against_reference", "context.hidden", "reference_module(", "trained_net(", "checker_episode(", "CheckRegistry")


def course_files() -> dict[str, str]:
    """sha256 of every file of the course's own folders (bytecode caches aside), and the names in
    the environment's site-packages (where a planted sitecustomize or .pth file would go)."""
    hashes = {}
    for folder in PROTECTED:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                hashes[str(path.relative_to(ROOT))] = hashlib.sha256(path.read_bytes()).hexdigest()
    for packages in map(Path, site.getsitepackages()):
        if packages.is_dir():
            hashes[f"site-packages {packages}"] = " ".join(sorted(p.name for p in packages.iterdir()))
    return hashes


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    before = course_files()
    out = io.StringIO()
    run, mismatches = demo(workdir=tmp_path_factory.mktemp("demo"), jobs=2, progress=False, stream=out)
    leftovers = leftover_processes()
    after = course_files()
    with open(run.csv_path) as handle:
        rows = list(csv.DictReader(handle))
    return SimpleNamespace(
        run=run,
        mismatches=mismatches,
        table=out.getvalue(),
        course=Course(root=run.csv_path.parent.parent),
        before=before,
        after=after,
        leftovers=leftovers,
        csv={(row["student"], notebook): notebook_entry(row, notebook) for row in rows for notebook in COURSE.assignments},
        csv_rows=rows,
    )


def notebook_entry(row: dict[str, str], notebook: str) -> dict[str, str]:
    """One notebook of a student's row of grades.csv: its points ("" where it could not be graded)
    and its status, read from the row's status ("graded", or "<notebook>: <what happened>; ...")."""
    if row["status"] in ("graded", "graded without sandbox"):
        status = row["status"]
    else:
        status = dict(part.split(": ", 1) for part in row["status"].split("; ")).get(notebook, "graded")
    return {"points": row[notebook], "status": status}


def autograded_cells(course: Course, student: str, assignment: str) -> dict[str, dict]:
    """grade_id -> the autograded code grade cell (outputs included)."""
    path = course.autograded / student / assignment / f"{assignment}.ipynb"
    cells = json.loads(path.read_text())["cells"]
    return {c["metadata"]["nbgrader"]["grade_id"]: c for c in cells if c["metadata"].get("nbgrader", {}).get("grade") and c["cell_type"] == "code"}


def lost_cells(course: Course, student: str, assignment: str) -> set[str]:
    from nbformat import from_dict
    from nbgrader.utils import determine_grade

    lost = set()
    for grade_id, cell in autograded_cells(course, student, assignment).items():
        cell = from_dict(cell)
        cell.source = "".join(cell.source) if isinstance(cell.source, list) else cell.source
        score, max_score = determine_grade(cell)
        if score < max_score:
            lost.add(grade_id)
    return lost


def feedback_text(course: Course, student: str, assignment: str) -> str:
    page = (course.feedback / student / assignment / f"{assignment}.html").read_text()
    return html.unescape(re.sub(r"<[^>]+>", "", page[page.find("<body") :]))


def _text(output: dict) -> str:
    text = output.get("text") or output.get("data", {}).get("text/plain") or output.get("evalue") or ""
    return "".join(text) if isinstance(text, list) else text


def _outputs(cell: dict) -> list[str]:
    """A cell's text outputs, without lines that report timings."""
    texts = []
    for output in cell.get("outputs", []):
        texts += [line for line in _text(output).splitlines() if not re.search(r"\bms\b|seconds|it/s|s/it", line)]
    return texts


def _message(cell: dict) -> str:
    """A graded cell's verdict message, numbers masked (hidden inputs are drawn per student)."""
    return re.sub(r"[-+]?\d+(\.\d+)?(e[-+]?\d+)?", "#", "\n".join(_text(output) for output in cell.get("outputs", [])))


# ---------------------------------------------------------------------------------------------
# the expected points of every example


def test_every_example_gets_the_points_it_should(graded):
    assert graded.mismatches == [], graded.table


def test_the_reference_gets_full_marks_and_the_blank_release_zero(graded):
    reference, blank = graded.run.student("reference"), graded.run.student("blank")
    assignments = len(Course().assignments)
    assert [s.status for s in reference.scores] == ["graded"] * assignments
    assert all(s.auto_points == s.auto_max_points > 0 for s in reference.scores)
    assert all(s.auto_points == 0 for s in blank.scores)
    assert [s.status for s in blank.scores] == ["graded"] * assignments  # zero because it was graded, not because grading failed


@pytest.mark.parametrize("mistake", MISTAKES, ids=lambda m: f"{m.notebook[:2]}-{m.name}")
def test_a_mistake_loses_exactly_the_points_of_its_checks_with_its_hint(graded, mistake):
    student = f"{mistake.notebook[:2]}-{mistake.name}"
    assert lost_cells(graded.course, student, mistake.notebook) == set(mistake.checks), mistake.what
    first_check = autograded_cells(graded.course, student, mistake.notebook)[mistake.checks[0]]
    messages = " ".join(o.get("evalue", "") for o in first_check["outputs"] if o["output_type"] == "error")
    assert mistake.hint in messages
    assert mistake.hint in feedback_text(graded.course, student, mistake.notebook)
    expected = sum(p for cell, p in cell_points(graded.course, mistake.notebook, mistake.notebook).items() if cell not in mistake.checks)
    assert graded.run.student(student).score(mistake.notebook).auto_points == expected


@pytest.mark.parametrize("alternative", ALTERNATIVES, ids=lambda a: f"{a.notebook[:2]}-alt-{a.name}")
def test_a_correct_solution_written_differently_gets_full_marks(graded, alternative):
    student = f"{alternative.notebook[:2]}-alt-{alternative.name}"
    assert lost_cells(graded.course, student, alternative.notebook) == set(), alternative.what
    score = graded.run.student(student).score(alternative.notebook)
    assert score.auto_points == score.auto_max_points


@pytest.mark.parametrize("mistake", MISTAKES, ids=lambda m: f"{m.notebook[:2]}-{m.name}")
def test_grading_is_deterministic_across_processes(graded, mistake):
    """Up to the changed cell, a mistake's notebook is the reference's: seeded, one thread, no GPU,
    its cells must print exactly what the reference's printed in another process (training losses
    included)."""
    import nbformat

    student = f"{mistake.notebook[:2]}-{mistake.name}"
    path = lambda who: graded.course.autograded / who / mistake.notebook / f"{mistake.notebook}.ipynb"  # noqa: E731
    mine, reference = (nbformat.read(str(path(who)), as_version=4).cells for who in (student, "reference"))
    changed = next(i for i, (a, b) in enumerate(zip(mine, reference)) if a.source != b.source)
    compared = [i for i in range(changed) if mine[i].cell_type == "code" and mine[i].get("outputs")]
    assert compared, "no executed cell before the changed one"
    for i in compared:
        assert _outputs(mine[i]) == _outputs(reference[i]), f"cell {i} of {student}"


def test_the_catalogue_covers_every_notebook_and_enough_mistakes(graded):
    assert len(MISTAKES) >= 12 and len(ALTERNATIVES) >= 3
    assert {m.notebook for m in MISTAKES} == set(COURSE.assignments)


# ---------------------------------------------------------------------------------------------
# cheats


def test_the_cheat_catalogue_covers_every_family_with_several_variants():
    assert len(CHEATS) >= 20
    assert len({cheat_student(c) for c in CHEATS}) == len(CHEATS)
    for family in FAMILIES:
        assert sum(c.family == family for c in CHEATS) >= 2, family
    assert {c.family for c in CHEATS} == set(FAMILIES)
    names = {(m.notebook, m.name) for m in MISTAKES}
    assert all(c.twin == "blank" or (c.notebook, c.twin) in names for c in CHEATS)


@pytest.mark.parametrize("cheat", CHEATS, ids=cheat_student)
def test_a_cheat_scores_no_more_than_its_twin(graded, cheat):
    """Graded (a notebook that could not be graded says so in grades.csv), and no graded cell that
    its twin loses is won by the cheat."""
    student = cheat_student(cheat)
    row = graded.csv[(student, cheat.notebook)]
    score = graded.run.student(student).score(cheat.notebook)
    assert row["status"] == score.status or row["status"].startswith(score.status), (row, score)
    if score.status == "failed":
        # A cheat that breaks its own notebook beyond repair (every test cell deleted) is not graded:
        # grades.csv says so, and no points are recorded for it.
        assert row["status"].startswith("failed: could not be graded") and row["points"] == ""
        return
    assert score.status == "graded", f"{student} was not graded; grades.csv says {row['status']!r}"
    points = cell_points(graded.course, cheat.notebook, cheat.notebook)
    twin_lost = set(points) if cheat.twin == "blank" else set(next(m.checks for m in MISTAKES if (m.notebook, m.name) == (cheat.notebook, cheat.twin)))
    lost = lost_cells(graded.course, student, cheat.notebook)
    won = twin_lost - lost
    assert not won, f"{student} ({cheat.what}) won cells that its twin {cheat.twin} loses: {sorted(won)}"
    twin_points = sum(p for cell, p in points.items() if cell not in twin_lost)
    assert score.auto_points <= twin_points
    if not cheat.may_score_less:
        assert lost == twin_lost, f"{student} lost more than its twin {cheat.twin}: {sorted(lost - twin_lost)}"
        assert score.auto_points == twin_points


@pytest.mark.parametrize("cheat", [c for c in CHEATS if c.family == "replay from feedback"], ids=cheat_student)
def test_no_graded_cell_shows_what_student_code_raised_or_returned_on_the_grader_inputs(graded, cheat):
    """The replay cheats raise errors whose message and class name carry every number they were
    given, and return objects whose class name carries them: no graded cell's output shows any of
    it (a resubmission could replay it), only the error's type and where it was raised."""
    cells = autograded_cells(graded.course, cheat_student(cheat), cheat.notebook)
    shown = "\n".join(_text(output) for cell in cells.values() for output in cell.get("outputs", []))
    assert cells and "REPLAY" not in shown, shown[:2000]  # the cheats mark what they carry REPLAY-LEAK, REPLAY_LEAK_


@pytest.mark.parametrize("cheat", [c for c in CHEATS if c.family == "decoder attacks"], ids=cheat_student)
def test_a_forged_message_fails_only_the_check_that_received_it(graded, cheat):
    """Oversize, deep or malformed answers written to the channel: the notebook is graded, the
    checks that got them fail saying the answer was invalid, every other check is the twin's."""
    student = cheat_student(cheat)
    assert graded.run.student(student).score(cheat.notebook).status == "graded"
    twin = next(m for m in MISTAKES if (m.notebook, m.name) == (cheat.notebook, cheat.twin))
    forged = {"test-det-loss", "test-det-predict-shape"}
    assert lost_cells(graded.course, student, cheat.notebook) == set(twin.checks) | forged
    cells = autograded_cells(graded.course, student, cheat.notebook)
    for grade_id in forged:
        assert "sent an invalid answer" in "\n".join(_outputs(cells[grade_id])), grade_id


def test_no_cheat_got_through_the_sandbox(graded):
    """What the cheats tried and the grader must stop (reading answers, writing the course) printed
    CHEAT-BLOCKED in their notebooks, never CHEAT-WORKED (at the start of a line: a cheat that
    prints its own source shows the word elsewhere)."""
    worked, blocked = [], 0
    for folder in sorted(graded.course.autograded.glob("*/*")):
        for path in folder.glob("*.ipynb"):
            for cell in json.loads(path.read_text())["cells"]:
                for output in cell.get("outputs", []):
                    text = _text(output)
                    worked += [f"{folder.parent.name}: {line}" for line in text.splitlines() if line.startswith(WORKED)]
                    blocked += text.count(BLOCKED)
    assert not worked
    assert blocked >= 30  # the cheats did run


def test_no_process_outlives_the_grading_run(graded):
    assert graded.leftovers == [] == leftover_processes()


def test_the_course_files_are_unchanged_by_the_run(graded):
    changed = sorted(name for name in set(graded.before) | set(graded.after) if graded.before.get(name) != graded.after.get(name))
    assert not changed


def test_the_victims_pass_every_graded_cell_with_the_reference_messages(graded):
    """The reference is graded first, zz-victim-after (the same notebook) last: every cheat in
    between must leave both exactly as grading alone would, cell by cell."""
    reference = autograded_cells(graded.course, "reference", NB1)
    victim = autograded_cells(graded.course, VICTIM_AFTER, NB1)
    assert set(victim) == set(reference) == set(cell_points(graded.course, NB1, NB1))
    assert lost_cells(graded.course, "reference", NB1) == set() == lost_cells(graded.course, VICTIM_AFTER, NB1)
    for grade_id in reference:
        assert [o["output_type"] for o in victim[grade_id]["outputs"]] == ["stream"], grade_id
        assert _message(victim[grade_id]) == _message(reference[grade_id]), grade_id


def test_the_victim_after_the_cheats_runs_as_the_reference_did(graded):
    """Its ordinary cells (data, training, the episode) print what the reference's printed: no cheat
    changed the data, the helpers or the environment for the students after it."""
    import nbformat

    path = lambda who: graded.course.autograded / who / NB1 / f"{NB1}.ipynb"  # noqa: E731
    mine, reference = (nbformat.read(str(path(who)), as_version=4).cells for who in (VICTIM_AFTER, "reference"))
    assert [c.source for c in mine] == [c.source for c in reference]
    compared = [i for i, cell in enumerate(reference) if cell.cell_type == "code" and "nbgrader" not in cell.metadata and cell.get("outputs")]
    assert len(compared) >= 3
    for i in compared:
        assert _outputs(mine[i]) == _outputs(reference[i]), f"cell {i}"
        assert not any(o.output_type == "error" for o in mine[i].outputs), f"cell {i}"


def test_the_victims_rows_in_the_gradebook_and_grades_csv(graded):
    from nbgrader.api import Gradebook

    from autograder.nbgrader_glue.config import COURSE_ID

    with Gradebook(graded.course.db_url, COURSE_ID) as gb:
        for student in ("reference", VICTIM_AFTER):
            notebook = gb.find_submission_notebook(NB1, NB1, student)
            code = [g for g in notebook.grades if g.cell.cell_type == "code"]
            assert code and all(g.auto_score == g.max_score and g.manual_score is None for g in code), student
            assert all(g.manual_score is None for g in notebook.grades), student
        # every student the gradebook knows was in this run (one whose grading failed is not merged)
        assert {"reference", VICTIM_AFTER} <= {s.id for s in gb.students} <= {r.student for r in graded.run.students}
    reference, victim = graded.csv[("reference", NB1)], graded.csv[(VICTIM_AFTER, NB1)]
    assert victim["status"] == reference["status"] == "graded"
    assert victim["points"] == reference["points"]
    assert float(victim["points"]) == sum(cell_points(graded.course, NB1, NB1).values())
    others = [graded.csv[(VICTIM_AFTER, nb)] for nb in COURSE.assignments if nb != NB1]
    assert all(row["status"].startswith("missing") for row in others)


def test_the_victim_after_is_graded_after_every_cheat(graded):
    """Students are queued by number of notebooks, then by name: the victim comes last. Its log,
    written when its grading ended, is the newest."""
    cheats = [cheat_student(c) for c in CHEATS]
    assert all(VICTIM_AFTER > name for name in cheats)
    logs = graded.course.grading / "logs"
    victim_end = (logs / f"{VICTIM_AFTER}.log").stat().st_mtime
    assert all((logs / f"{name}.log").stat().st_mtime <= victim_end for name in cheats)


def test_every_notebook_not_graded_says_so_in_grades_csv(graded):
    for report in graded.run.students:
        for score in report.scores:
            row = graded.csv[(report.student, score.notebook)]
            if score.status == "graded":
                assert row["status"] == "graded"
            else:
                assert row["status"].split(":")[0] == score.status.split(":")[0] and row["status"] != "graded", row


# ---------------------------------------------------------------------------------------------
# feedback, grades.csv, the table


def test_feedback_never_shows_the_checker_source_or_its_files(graded):
    pages = 0
    forbidden = CHECKER_SOURCE + (str(ROOT / "autograder"), str(graded.course.root / "solutions"), "autograder/checker/fixtures", "autograder/checker/checks")
    for page in sorted(graded.course.feedback.glob("*/*/*.html")):
        student = page.parent.parent.name
        text = feedback_text(graded.course, student, page.parent.name)
        # a needle the student's own notebook holds (a cheat searching for it) is no leak
        own = "".join(path.read_text() for path in (graded.course.submitted / student).glob("*/*.ipynb"))
        leaked = [needle for needle in forbidden if needle in text and needle not in own]
        assert not leaked, f"{page}: {leaked}"
        pages += 1
    assert pages >= len(MISTAKES) + len(ALTERNATIVES) + len(CHEATS) + 6


def test_grades_csv_has_one_row_per_student_with_a_column_per_notebook(graded):
    rows = graded.csv_rows
    assert list(rows[0]) == ["student", *COURSE.assignments, "total", "max_total", "hand_grading", "status"]
    assert [row["student"] for row in rows] == sorted(report.student for report in graded.run.students)
    reference = next(row for row in rows if row["student"] == "reference")
    assert sum(float(reference[notebook]) for notebook in COURSE.assignments) == float(reference["total"]) > 0
    assert reference["hand_grading"] == "pending"  # its written answers await a grader


def test_the_table_lists_every_student(graded):
    for report in graded.run.students:
        assert report.student in graded.table
    assert "MISMATCH" not in graded.table
    assert f"{len(CHEATS)} cheats graded between the victims: none scored more than its twin." in graded.table


def test_the_intake_keeps_alike_names_apart_and_never_records_a_forged_time(graded):
    """Intake cases: a blank notebook handed in as "01-intake-name alike" beside a victim
    "01-intake-name_alike" (the same id once cleaned, before), and a zip carrying its own
    timestamp.txt."""
    from autograder.examples import FORGED_TIME, INTAKE_NAME
    from autograder.nbgrader_glue.course import safe_student_id

    alike = safe_student_id("01-intake-name alike")
    assert alike != INTAKE_NAME
    assert graded.csv[(INTAKE_NAME, NB1)]["points"] == graded.csv[("reference", NB1)]["points"]  # the victim keeps every point
    assert float(graded.csv[(alike, NB1)]["points"]) == 0.0  # its blank twin is graded apart, for nothing
    from nbgrader.api import Gradebook

    from autograder.nbgrader_glue.config import COURSE_ID

    with Gradebook(graded.course.db_url, COURSE_ID) as gb:
        forged = gb.find_submission(NB1, "01-intake-forged-time")
        assert forged.timestamp is None or not str(forged.timestamp).startswith(FORGED_TIME[:10])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
