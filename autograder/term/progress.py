"""What `grade` shows while it grades: where each job is, and an estimate of the time left.

On a terminal, one line that fits its width (80 columns and up, any number of jobs):

    grading 12/70  ETA 14:05 | ada 01 check test-cem-return 8s | bob 03 cell 21/40 2s

Anywhere else (a log file, CI), one line per student as each is done, and no redrawing:

    graded ada: 4 notebooks in 61 s (12/70, about 14 min left)

A student's grading process writes where it is (nbgrader_glue.autograde.write_status) to a file of
the status folder named after the student ("01_deterministic_cem: check test-cem-return<TAB>1733412000.5", the time that step
began), so each step's seconds count from its own start. The estimate is the number of notebooks
still to grade times the median seconds per notebook measured so far in this run, divided among
the jobs; before the first student is done it is PRIOR_NOTEBOOK_SECONDS per notebook.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from autograder.nbgrader_glue.autograde import STATUS_SEPARATOR

# Seconds per notebook before this run has measured one: the median of a reference submission
# graded alone on the course's 2-core reference machine (benchmarks.grading), rounded up.
PRIOR_NOTEBOOK_SECONDS = 10.0


def short_notebook(notebook: str) -> str:
    """ "01_deterministic_cem" -> "01": the number is enough on one line."""
    return notebook.split("_", 1)[0] if notebook[:2].isdigit() else notebook


def duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60:02d}:{seconds % 60:02d}"


class Progress:
    """The progress display of one grading run; `finished(student, notebooks, seconds)` after each student."""

    def __init__(self, students: dict[str, int], status_dir: Path, *, jobs: int, enabled: bool = True, stream: TextIO | None = None, every: float = 1.0):
        """`students`: student -> how many notebooks they handed in."""
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.terminal = enabled and self.stream.isatty()
        self.left = dict(students)
        self.total, self.done_count, self.jobs = len(students), 0, max(1, jobs)
        self.per_notebook: list[float] = []
        self.status_dir = Path(status_dir)
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._redraw, args=(every,), daemon=True)
        if self.terminal:
            self.thread.start()

    # -- the estimate --------------------------------------------------------------------------
    def seconds_left(self) -> float:
        per_notebook = statistics.median(self.per_notebook) if self.per_notebook else PRIOR_NOTEBOOK_SECONDS
        return sum(self.left.values()) * per_notebook / self.jobs

    # -- what each job is doing ----------------------------------------------------------------
    def jobs_text(self) -> list[str]:
        parts, now = [], time.time()
        for path in sorted(self.status_dir.iterdir()) if self.status_dir.is_dir() else []:
            try:
                line = path.read_text().strip()
            except OSError:  # the student was done meanwhile
                continue
            where, _, since = line.partition(STATUS_SEPARATOR)
            notebook, _, step = where.partition(": ")
            try:
                seconds = f" {max(0.0, now - float(since)):.0f}s"  # the file rounds to 0.1 s
            except ValueError:
                seconds = ""
            parts.append(f"{path.name} {short_notebook(notebook)} {step}{seconds}" if step else f"{path.name} starting")
        return parts

    def line(self, width: int) -> str:
        with self.lock:
            head = f"grading {self.done_count}/{self.total}  ETA {duration(self.seconds_left())}"
        parts = self.jobs_text()
        if not parts:
            return head[:width]
        room = max(10, (width - len(head)) // len(parts) - 3)
        return (head + "".join(" | " + (part if len(part) <= room else part[: room - 1] + "…") for part in parts))[:width]

    def _redraw(self, every: float) -> None:
        while not self.stopped.wait(every):
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write("\r" + self.line(width).ljust(width))
            self.stream.flush()

    # -- events --------------------------------------------------------------------------------
    def finished(self, student: str, notebooks: int, seconds: float) -> None:
        with self.lock:
            self.done_count += 1
            self.left.pop(student, None)
            if notebooks and seconds > 0:
                self.per_notebook.append(seconds / notebooks)
            left = self.seconds_left()
        if not self.enabled:
            return
        text = (
            f"graded {student}: {notebooks} notebook{'s' * (notebooks != 1)} in {seconds:.0f} s ({self.done_count}/{self.total}, about {duration(left)} left)"
        )
        if self.terminal:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write("\r" + text[:width].ljust(width) + "\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join(timeout=2)
            self.stream.write("\r" + " " * (shutil.get_terminal_size((100, 20)).columns - 1) + "\r")
            self.stream.flush()
