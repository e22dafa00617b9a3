"""Example submissions, built from the course's notebooks: what the demo grades and the tests check.

    examples = build_examples(course)         # reference, blank release, mistakes, alternatives
    write_examples(examples, folder)          # folder/<student>/<notebook>.ipynb

- `reference`: every notebook with the reference answers (full marks on everything graded
  automatically);
- `blank`: the release as students get it (zero);
- one student per mistake of `catalogue.MISTAKES`, named `<nn>-<mistake>`, who handed in only
  that notebook: the reference with one function changed;
- one student per `catalogue.ALTERNATIVES`, named `<nn>-alt-<name>`, also one notebook, correct
  but written differently (full marks);
- one student per `cheats.CHEATS`, named `<nn>-cheat-<name>`: a cheat built on its twin (the blank
  release or one mistake's notebook), expected to score exactly what the twin scores;
- `zz-victim-after`: the reference's notebook 1 again, graded last (students are graded in the
  order of their names, after those with more notebooks), so that a cheat that poisoned what comes
  after it shows there.
- the intake cases (`INTAKE`), which attack the collection of submissions rather than the checks:
  a zip that carries its own `timestamp.txt` (a forged hand-in time), and two submitter names that
  clean to the same id, a blank notebook beside a victim with the reference answers (before, one of
  the two was dropped as "a second copy").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nbformat.notebooknode import NotebookNode

from autograder.examples.build import read, reference_submission, replace_cell, write
from autograder.examples.catalogue import ALTERNATIVES, MISTAKES, Alternative, Mistake
from autograder.examples.cheats import CHEATS, Cheat, cheat_student
from autograder.nbgrader_glue.course import Course, safe_student_id

VICTIM_AFTER = "zz-victim-after"


@dataclass
class Example:
    student: str
    """the id the grader gives the student (see autograder.term.collect.safe_student_id)"""
    kind: str
    """reference, blank, mistake, alternative, cheat or victim"""
    notebooks: dict[tuple[str, str], NotebookNode] = field(repr=False)
    """(assignment, notebook) -> the notebook handed in"""
    lost: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """notebook -> the graded cells expected to lose their points ("*": all of them)"""
    hint: tuple[str, str, str] | None = None
    """(notebook, cell, text the cell's feedback must contain)"""
    source: Mistake | Alternative | Cheat | None = None
    handed_in_as: str = ""
    """the name on disk when it is not `student`: a folder, or an archive when it ends in .zip"""
    extra_files: dict[str, str] = field(default_factory=dict)
    """files handed in beside the notebooks (path inside the folder or archive -> text)"""


FORGED_TIME = "2000-01-01 00:00:00 UTC"
INTAKE_NAME = "01-intake-name_alike"  # the victim's id; the blank twin hands in as "01-intake-name alike"


def intake_examples(key: tuple[str, str], blank: NotebookNode, reference: NotebookNode) -> list[Example]:
    """The intake cases of notebook `key` (see the module's docstring)."""
    alike = "01-intake-name alike"
    return [
        Example(
            "01-intake-forged-time",
            "intake",
            {key: _copy(blank)},
            lost={key[1]: ("*",)},
            handed_in_as="01-intake-forged-time.zip",
            extra_files={f"{key[0]}/timestamp.txt": FORGED_TIME + "\n"},
        ),
        Example(safe_student_id(alike), "intake", {key: _copy(blank)}, lost={key[1]: ("*",)}, handed_in_as=alike),
        Example(INTAKE_NAME, "victim", {key: _copy(reference)}),
    ]


def build_examples(
    course: Course | None = None, *, mistakes=MISTAKES, alternatives=ALTERNATIVES, cheats=CHEATS, victim: bool = True, intake: bool | None = None
) -> list[Example]:
    """All example submissions for the notebooks the course has (skipping examples of absent ones).

    Cheats and the victims are left out with `cheats=()` and `victim=False`; the intake cases go
    with the cheats unless `intake` says otherwise."""
    course = course or Course()
    keys = [(a, nb) for a in course.assignments for nb in course.notebooks(a)]
    references = {key: reference_submission(read(course.source_notebook(*key)), read(course.release_notebook(*key))) for key in keys}
    examples = [
        Example("reference", "reference", references),
        Example("blank", "blank", {key: read(course.release_notebook(*key)) for key in keys}, lost={key[1]: ("*",) for key in keys}),
    ]
    by_notebook = {nb: key for key in keys for nb in [key[1]]}
    for mistake in mistakes:
        if mistake.notebook not in by_notebook:
            continue
        key = by_notebook[mistake.notebook]
        nb = mistake.substitution.apply(_copy(references[key]), f"mistake {mistake.name}")
        examples.append(
            Example(
                f"{_prefix(mistake.notebook)}-{mistake.name}",
                "mistake",
                {key: nb},
                lost={mistake.notebook: mistake.checks},
                hint=(mistake.notebook, mistake.checks[0], mistake.hint),
                source=mistake,
            )
        )
    for alternative in alternatives:
        if alternative.notebook not in by_notebook:
            continue
        key = by_notebook[alternative.notebook]
        nb = _copy(references[key])
        for cell_id, text in alternative.cells.items():
            replace_cell(nb, cell_id, text, f"alternative {alternative.name}")
        for substitution in alternative.substitutions:
            substitution.apply(nb, f"alternative {alternative.name}")
        examples.append(Example(f"{_prefix(alternative.notebook)}-alt-{alternative.name}", "alternative", {key: nb}, source=alternative))
    mistakes_by_name = {(m.notebook, m.name): m for m in mistakes}
    for cheat in cheats:
        if cheat.notebook not in by_notebook:
            continue
        key = by_notebook[cheat.notebook]
        if cheat.twin == "blank":
            twin, lost = read(course.release_notebook(*key)), ("*",)
        else:
            mistake = mistakes_by_name.get((cheat.notebook, cheat.twin)) or _unknown_twin(cheat)
            twin, lost = mistake.substitution.apply(_copy(references[key]), f"cheat {cheat.name}"), mistake.checks
        nb = cheat.apply(twin, str(course.root))
        examples.append(Example(cheat_student(cheat), "cheat", {key: nb}, lost={cheat.notebook: lost}, source=cheat))
    first = keys[0] if keys else None
    if (bool(cheats) if intake is None else intake) and first is not None:
        examples += intake_examples(first, read(course.release_notebook(*first)), references[first])
    if victim and first is not None:
        examples.append(Example(VICTIM_AFTER, "victim", {first: _copy(references[first])}))
    return examples


def _unknown_twin(cheat: Cheat):
    raise ValueError(f"cheat {cheat.name}: its twin {cheat.twin!r} is not a mistake of {cheat.notebook} in catalogue.MISTAKES")


def write_examples(examples: list[Example], folder: Path) -> Path:
    """One folder per student holding the notebooks they hand in (an archive where the example is
    handed in as one), under `handed_in_as` or the student's id."""
    import zipfile

    import nbformat

    folder = Path(folder)
    for example in examples:
        name = example.handed_in_as or example.student
        files = {
            f"{assignment}/{notebook}.ipynb" if name.endswith(".zip") else f"{notebook}.ipynb": nbformat.writes(nb)
            for (assignment, notebook), nb in example.notebooks.items()
        }
        files.update(example.extra_files)
        if name.endswith(".zip"):
            folder.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(folder / name, "w") as archive:
                for path, text in files.items():
                    archive.writestr(path, text)
            continue
        for path, text in files.items():
            (folder / name / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / name / path).write_text(text)
    return folder


def _prefix(notebook: str) -> str:
    return notebook.split("_", 1)[0]


def _copy(nb: NotebookNode) -> NotebookNode:
    import nbformat

    return nbformat.reads(nbformat.writes(nb), as_version=4)
