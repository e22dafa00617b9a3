"""nbgrader's generate_feedback step, as this course adds to it (see autograder/nbgrader_glue/config.py).

- `DropGraderOnlyCells`: takes out the rubric cells that `ShowRubrics` put in for formgrader.
- `HideHiddenTests`: replaces each hidden-test region of a test cell with a one-line comment and drops the
  traceback lines that quote the test cell, keeping the error's type and message (the hint). The student
  sees which check failed and why, never its source.
- `OfflineFeedback`: wrapped hints and images that fit, so that a page reads the same on any screen.
- `FeedbackExporter`: nbconvert's HTMLExporter, less a second pass over each page, and with what every
  page repeats (the compiled templates, the highlighted course code) kept for the next page.
- `math_as_mathml`: formulas as MathML, so that a page needs no network (used as markdown is rendered).
- `check_description`: the score list's label of a check.
"""

from __future__ import annotations

import functools
import re

from jinja2 import BytecodeCache
from nbconvert.exporters import HTMLExporter, TemplateExporter
from nbconvert.exporters.html import Highlight2HTML
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import List

from autograder.nbgrader_glue import regions
from autograder.nbgrader_glue.autograde import RUBRIC_MARKER, strip_ansi


class FeedbackPreprocessor(NbGraderPreprocessor):
    """A preprocessor of generate_feedback, which hands every one of them the exporter's
    display_data_priority: declared with nbgrader's own default, as its GetGrades declares it, so
    that the logs do not warn about an unknown setting."""

    display_data_priority = List(["text/html", "application/pdf", "text/latex", "image/svg+xml", "image/png", "image/jpeg", "text/plain"]).tag(config=True)


class DropGraderOnlyCells(FeedbackPreprocessor):
    """generate_feedback: remove the rubric cells ShowRubrics put into the autograded copy."""

    def preprocess(self, nb, resources):
        nb.cells = [cell for cell in nb.cells if RUBRIC_MARKER not in cell.metadata]
        return nb, resources


# feedback: never show hidden tests


class HideHiddenTests(FeedbackPreprocessor):
    """Hide the hidden tests of test cells from the feedback, keep which check failed and why.

    Each `### BEGIN HIDDEN TESTS` ... `### END HIDDEN TESTS` region becomes one comment line: the
    region's first comment if it starts with one (the check's description), else "hidden tests".
    Mark schemes (graders' rubrics) are removed from markdown cells too.
    In the error outputs of such a cell, the traceback frames of the cell itself (which IPython
    prints with the surrounding source lines) are replaced by a line that names the cell, so the
    error's type and message, the hint, remain.
    """

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "markdown" and regions.has(cell.source, regions.MARK_SCHEME):
            # a task cell put back by nbgrader comes from the gradebook with its rubric
            cell.source = regions.outside(cell.source, regions.MARK_SCHEME)
            return cell, resources
        if cell.cell_type != "code" or not utils.is_grade(cell) or utils.is_solution(cell):
            return cell, resources
        if not regions.has(cell.source, regions.HIDDEN_TESTS):
            return cell, resources
        cell.source = self.hide_source(cell.source)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                output.traceback = self.hide_traceback(output.get("traceback", []), cell.get("execution_count"), output)
        return cell, resources

    def hide_source(self, source: str) -> str:
        lines = []
        for run in regions.runs(source, regions.HIDDEN_TESTS):
            lines += [_region_summary(run.end_marker, run.lines)] if run.inside else run.lines
        return "\n".join(lines)

    @staticmethod
    def hide_traceback(traceback: list[str], execution_count, output) -> list[str]:
        own_cell = re.compile(r"^\s*(Cell In ?\[(\d+)\]|Input In ?\[(\d+)\]|File <ipython-input-(\d+)-)")
        kept = []
        for frame in traceback:
            match = own_cell.match(strip_ansi(frame))
            if match is None:
                kept.append(frame)
                continue
            number = next(int(group) for group in match.groups()[1:] if group is not None)
            if execution_count is None or number == execution_count:
                if not kept or kept[-1] != "(hidden test: source not shown)":
                    kept.append("(hidden test: source not shown)")
            else:
                kept.append(frame)
        last = f"\x1b[0;31m{output.get('ename', 'Error')}\x1b[0m: {output.get('evalue', '')}"
        if not kept or strip_ansi(kept[-1]).strip() != strip_ansi(last).strip():
            kept.append(last)
        return kept


def _region_summary(end_line: str, region: list[str]) -> str:
    indent = re.match(r"\s*", end_line).group(0) if end_line else ""
    first = next((line.strip() for line in region if line.strip()), "")
    if first.startswith("#"):
        return f"{indent}# hidden test: {first.lstrip('#').strip()}"
    return f"{indent}# hidden tests (not shown)"


# ---------------------------------------------------------------------------------------------
# feedback a student can read offline, on any screen
FEEDBACK_CSS = """
/* The checker's hints are single long lines: wrap them at spaces instead of scrolling sideways.
   break-word (not anywhere) breaks inside a word only when the word alone is wider than the line:
   "anywhere" also shrinks the box's narrowest width, and the hints came out as "which i s". */
div.output_area pre, div.output_subarea pre, div.output_text pre {
    white-space: pre-wrap;
    overflow-wrap: break-word;
    word-break: normal;
}
div.output_subarea { max-width: 100%; min-width: 0; overflow-wrap: break-word; overflow-x: auto; }
div.rendered_html { overflow-wrap: break-word; }
/* The test cells' own messages sit in their source: wrap it too, rather than cut it at the edge. */
div.input_area pre { white-space: pre-wrap; overflow-wrap: break-word; }
/* Plots and filmstrips fit the page. */
div.output_subarea img, div.rendered_html img { max-width: 100%; height: auto; }
math[display="block"] { margin: 0.5em 0; }
"""
# $$...$$ (display) or $...$ (inline), not preceded by a backslash; code is left alone (see below).
MATH = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$|(?<![\\$])\$(?!\s)((?:[^$\n]|\n(?!\s*\n))+?)(?<![\s\\])\$(?!\d)", re.S)
CODE = re.compile(r"(```.*?```|~~~.*?~~~|`[^`\n]*`)", re.S)


def math_as_mathml(markdown: str) -> str:
    """The markdown with each `$...$` and `$$...$$` formula replaced by MathML, which browsers draw
    themselves: a feedback page then shows its formulas with no MathJax and no network. Formulas
    inside code spans or fences stay as written; one latex2mathml cannot read stays as TeX."""
    from latex2mathml.converter import convert

    def replace(match: re.Match) -> str:
        display, inline = match.group(1), match.group(2)
        try:
            mathml = convert(display if display is not None else inline, display="block" if display is not None else "inline")
        except Exception:  # noqa: BLE001 - an unreadable formula is shown as its TeX
            return match.group(0)
        return mathml.replace("\n", "")

    parts = CODE.split(markdown)  # odd indices are code
    return "".join(part if index % 2 else MATH.sub(replace, part) for index, part in enumerate(parts))


def check_description(cell) -> str:
    """What a test cell checks, for the feedback page's score list: its opening "# Checks: ..."
    comment (with the comment lines that continue it), else the cell's grade id."""
    lines = cell.get("source", "").split("\n")
    if not lines or not lines[0].startswith("# Checks:"):
        return f"Check {cell.metadata.nbgrader.get('grade_id', '')}".strip()
    words = [lines[0][len("# Checks:") :].strip()]
    for line in lines[1:]:
        if not line.startswith("# ") or line.startswith("# hidden test"):
            break
        words.append(line[2:].strip())
    return " ".join(words)


class OfflineFeedback(FeedbackPreprocessor):
    """generate_feedback: a page that reads the same offline as online and on any screen: long
    output lines, the checker's hints among them, wrap, and images fit the page. (Formulas become
    MathML as markdown is rendered: autograder.nbgrader_glue.sanitise.SanitisedMarkdown.)"""

    def preprocess(self, nb, resources):
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                # nbconvert warns, once per page, of each plot without a text alternative: nothing an
                # instructor can act on. Say what the image is, for screen readers too.
                for mime in ("image/png", "image/jpeg"):
                    if mime in output.get("data", {}):
                        output.setdefault("metadata", {}).setdefault(mime, {}).setdefault("alt", "Figure drawn by the code of the cell above")
        resources.setdefault("inlining", {}).setdefault("css", []).append(FEEDBACK_CSS)
        return nb, resources


IMAGE_WITHOUT_ALT = re.compile(r"<img(?![^>]*\balt=)", re.I)
NO_ALT_TEXT = "No description has been provided for this image"  # nbconvert's words


class TemplatesInMemory(BytecodeCache):
    """Jinja's compiled templates, kept by this process: a grading worker writes the feedback of
    student after student, and nbgrader builds a new exporter (a new Jinja environment) each time,
    which compiled the course's templates again (0.4 s of CPU a student). Jinja keys a template by
    its name and a checksum of its source, so an edited template is compiled again."""

    def __init__(self):
        self.compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket):
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket):
        self.compiled[bucket.key] = bucket.bytecode_to_string()


TEMPLATES_IN_MEMORY = TemplatesInMemory()


# What a page's rendering keeps for the next page (RememberedHighlight, sanitise.SanitisedMarkdown):
# cells up to REMEMBERED_CHARS long, at most REMEMBERED_CELLS of them (a few MB), so that a
# submission's long cells cost memory only on its own page.
REMEMBERED_CHARS = 20_000
REMEMBERED_CELLS = 2_000


@functools.lru_cache(maxsize=REMEMBERED_CELLS)
def _highlighted(source: str, language: str | None, pygments_lexer: str) -> str:
    return Highlight2HTML(pygments_lexer=pygments_lexer)(source, language)


class RememberedHighlight(Highlight2HTML):
    """Highlight2HTML that remembers what it highlighted: most code cells of a page are the course's
    own, the same for every student (pygments took 0.5 s of CPU a student). A cell whose metadata
    names a magics language, an exporter with formatter options or a cell longer than
    REMEMBERED_CHARS is highlighted as it comes."""

    def __call__(self, source, language=None, metadata=None):
        if self.extra_formatter_options or (metadata and "magics_language" in metadata) or len(source) > REMEMBERED_CHARS:
            return super().__call__(source, language, metadata)
        return _highlighted(str(source), language, self.pygments_lexer)


class FeedbackExporter(HTMLExporter):
    """generate_feedback's exporter: nbconvert's HTMLExporter without the pass that parses each
    rendered page again (BeautifulSoup, 40 % of a feedback page's time) to put a placeholder alt text
    on images and tabindex on the lab template's cells. The course's template is the classic one
    (no such cells); plots get their alt text from OfflineFeedback, and any other image (one in the
    student's markdown) gets nbconvert's placeholder here, from a regular expression. (What
    follows is HTMLExporter.from_notebook_node of nbconvert 7 up to that pass.)"""

    def from_notebook_node(self, nb, resources=None, **kw):
        langinfo = nb.metadata.get("language_info", {})
        lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
        highlight_code = self.filters.get("highlight_code", RememberedHighlight(pygments_lexer=lexer, parent=self))
        resources = self._init_resources(resources)
        self.register_filter("highlight_code", highlight_code)
        self.register_filter("filter_data_type", WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata, parent=self, resources=resources))
        html, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
        return IMAGE_WITHOUT_ALT.sub(f'<img alt="{NO_ALT_TEXT}"', html), resources

    def _create_environment(self):
        environment = super()._create_environment()
        environment.bytecode_cache = TEMPLATES_IN_MEMORY
        return environment
