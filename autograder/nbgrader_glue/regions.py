"""nbgrader's marked regions of a cell, found in one place.

    SOLUTION       ### BEGIN SOLUTION ... ### END SOLUTION        the answer: the release keeps none of it
    HIDDEN_TESTS   ### BEGIN HIDDEN TESTS ... ### END HIDDEN TESTS  the release keeps none of it
    MARK_SCHEME    === BEGIN MARK SCHEME === ... === END ...       the graders' rubric inside a model answer

A marker counts wherever it stands on its line, as nbgrader reads them; a region with no end runs to
the end of the cell. Every part of the course that looks inside a region (releasing, restoring cells,
the rubric beside a written answer, feedback, building the examples, the leak detector) uses this.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Region:
    begin: str
    end: str


SOLUTION = Region("BEGIN SOLUTION", "END SOLUTION")
HIDDEN_TESTS = Region("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
MARK_SCHEME = Region("=== BEGIN MARK SCHEME ===", "=== END MARK SCHEME ===")


@dataclass
class Run:
    """Consecutive lines, all inside one region or all outside; marker lines belong to no run."""

    inside: bool
    lines: list[str]
    rows: list[int]
    """the lines' rows in the cell, from 1"""
    end_marker: str = ""
    """the line that closed the region ("" outside, or when the cell ended first)"""


def runs(source: str, region: Region) -> list[Run]:
    out: list[Run] = []
    current = Run(False, [], [])
    for row, line in enumerate(source.split("\n"), 1):
        if region.begin in line:
            out.append(current)
            current = Run(True, [], [])
        elif region.end in line and current.inside:
            current.end_marker = line
            out.append(current)
            current = Run(False, [], [])
        else:
            current.lines.append(line)
            current.rows.append(row)
    out.append(current)
    return [run for run in out if run.lines or run.inside]


def has(source: str, region: Region) -> bool:
    return region.begin in source


def outside(source: str, region: Region) -> str:
    """The cell's text without its regions, marker lines included: a locked cell as the release has it."""
    return "\n".join(line for run in runs(source, region) if not run.inside for line in run.lines)


def inside(source: str, region: Region) -> str:
    """The text inside the cell's regions, markers left out."""
    return "\n".join(line for run in runs(source, region) if run.inside for line in run.lines)


def inside_rows(source: str, region: Region) -> set[int]:
    """The rows (from 1) inside the cell's regions."""
    return {row for run in runs(source, region) if run.inside for row in run.rows}
