"""The progress display of `grade` (autograder.term.progress): a line that fits the terminal, the
seconds of the step each job is at, an estimate from measured notebook times, and plain lines when
the output is a file."""

from __future__ import annotations

import io
import re
import time

from autograder.nbgrader_glue.autograde import STATUS_SEPARATOR, write_status
from autograder.term.progress import PRIOR_NOTEBOOK_SECONDS, Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_each_step_counts_its_own_seconds_and_the_line_fits_80_and_100_columns(tmp_path):
    status = tmp_path / "status"
    status.mkdir()
    names = ["a-student-with-a-very-long-name-indeed", "bob", "chen-8d1f2a3b"]
    progress = Progress({name: 4 for name in names}, status, jobs=3, stream=Terminal())
    try:
        write_status(str(status / names[0]), "01_deterministic_cem", "check test-cem-return")
        written, _, since = (status / names[0]).read_text().strip().partition(STATUS_SEPARATOR)
        (status / names[0]).write_text(f"{written}{STATUS_SEPARATOR}{float(since) - 42:.1f}\n")  # 42 s ago
        write_status(str(status / names[1]), "03_ensemble", "cell 21/40")
        (status / names[2]).write_text("")  # its process has not said anything yet
        for width in (80, 100):
            line = progress.line(width)
            assert len(line) <= width and line.count(" | ") == 3, line
        wide = progress.line(400)
        assert re.search(r"check test-cem-return 4[23]s", wide) and "bob 03 cell 21/40 0s" in wide and "chen-8d1f2a3b starting" in wide
    finally:
        progress.stop()


def test_the_estimate_comes_from_measured_seconds_per_notebook(tmp_path):
    progress = Progress({"ada": 4, "bob": 4, "cy": 2}, tmp_path, jobs=2, enabled=False)
    assert progress.seconds_left() == 10 * PRIOR_NOTEBOOK_SECONDS / 2
    progress.finished("ada", 4, 40.0)  # 10 s a notebook
    progress.finished("bob", 4, 80.0)  # 20 s a notebook
    assert progress.seconds_left() == 2 * 15.0 / 2  # cy's 2 notebooks at the median, over 2 jobs


def test_a_file_gets_one_line_per_student_and_no_redrawing(tmp_path):
    log = io.StringIO()
    progress = Progress({"ada": 1, "bob": 1}, tmp_path, jobs=1, stream=log, every=0.01)
    time.sleep(0.05)
    progress.finished("ada", 1, 5.0)
    progress.finished("bob", 1, 7.0)
    progress.stop()
    assert "\r" not in log.getvalue()
    assert log.getvalue().splitlines() == ["graded ada: 1 notebook in 5 s (1/2, about 00:05 left)", "graded bob: 1 notebook in 7 s (2/2, about 00:00 left)"]
