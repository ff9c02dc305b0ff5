"""The grader end to end: every chapter's stubs score 0 and its solutions full marks; bad
submissions are scored.

``grade_stubs_then_solutions`` (the test of one chapter, run for half the chapters by
``test_grader_book_a.py`` and for the other half by ``test_grader_book_b.py``, so that the two
workers of ``--dist loadfile`` share them) grades, for every chapter with exercises, one
submission in one kernel: the student copy exactly as ``visionbook-student``
writes it (the stubs), followed by every exercise's solution cells and check once more, in the
chapter's order (the cells of the ``--solved`` copy). The grader's own scoring
(``grade._results``) of the first part must give 0, every check saying "not attempted yet", and
of the whole must give full marks, since a label's last check is the one that counts. It proves
the issue's promises for the whole book: each student copy runs top to bottom without an
exception, every stub check says "not attempted yet", every solution passes its check under the
grader. The solutions run after the stubs in the same kernel; a stub only binds the names its
solution binds again (to ``...`` or a function that raises), so the stubs cannot help a solution
pass. One execution per chapter, not two: the book build has already executed the chapter with its
solutions, and CI's budget is spent once per chapter here. The kernels use the cache that the book
build filled (``VISIONBOOK_HOME`` as the build had it, when set), so zoo models are not
trained again.

Where the book build has a fresh execution of the chapter, not even that: the build runs each
chapter with its student copy's exercises inside it (the stubs and their checks where a student's
kernel would run them, before the first solution; the checks once more after the solutions; see
``grade.with_student_run``) and stores the grader's scores of both parts with the execution. The
test then reads those scores, as the nbval tests read the build's cells (``conftest.py``), and a
chapter is executed once in all of CI. ``VISIONBOOK_NBVAL_EXECUTE=1`` forces the execution here.

The other tests grade a tiny synthetic chapter in seconds, with separate submissions: stubs,
right answers, and a submission that loops forever (the time limit), one with a syntax error, one
that raises, a wrong answer, a deleted check cell, an edited check and a file that is not a
notebook, all scored in one run of the command line.

Every test here starts Jupyter kernels, so the module is marked ``slow`` like the repository's
other kernel tests: ``pytest -m "not slow"`` deselects it locally; CI runs it.
"""

from __future__ import annotations

import csv
import json
import os

import nbformat
import pytest

from visionbook.tools.bookbuild import _longest_first, chapters, fresh_execution
from visionbook.tools.grade import _results, exercise_checks, grade, main, prepare_submission
from visionbook.tools.student import strip_solutions

pytestmark = pytest.mark.slow
BUILD_HOME = os.environ.get("VISIONBOOK_HOME")  # read before the tests' own fixture replaces it


def _has_exercises(path) -> bool:
    return any(
        "exercise-check" in c.get("metadata", {}).get("tags", [])
        for c in json.loads(path.read_text())["cells"]
    )


CHAPTERS = [nb for nb in chapters() if _has_exercises(nb)]


def half(which: int) -> list:
    """Every other chapter, slowest first as the build orders them: halves of about equal cost."""
    return _longest_first(CHAPTERS)[which::2]


def _errors(path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return [
        f"cell {i}: {o.ename}: {o.evalue}"
        for i, c in enumerate(nb.cells)
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]


def _stubs_then_solutions(chapter) -> nbformat.NotebookNode:
    """The student copy, then each exercise's solution cells and check from the solved copy."""
    book = nbformat.read(chapter, as_version=4)
    submission, _ = strip_solutions(book)
    solved, _ = strip_solutions(book, solved=True)
    answers = [
        c
        for c in solved.cells
        if c.cell_type == "code" and c.metadata.get("visionbook", {}).get("exercise")
    ]
    for cell in answers:
        cell.id = f"{cell.id}-solved"[-64:]  # the stubs part holds the check cells with these ids
    submission.cells += answers
    return submission


def _from_the_build(chapter) -> dict | None:
    """The grader's scores of the stubs and of the solutions, from the book build's fresh
    execution of the chapter (see ``bookbuild._execute``), or None."""
    if os.environ.get("VISIONBOOK_NBVAL_EXECUTE", "") not in ("", "0"):
        return None
    record = fresh_execution(chapter)
    return None if record is None else (record.data or {}).get("exercises")


def _by_executing(chapter, tmp_path, monkeypatch) -> dict:
    """The same scores from one execution here: the student copy, then the solutions."""
    if BUILD_HOME:
        monkeypatch.setenv("VISIONBOOK_HOME", BUILD_HOME)
    submission = _stubs_then_solutions(chapter)
    n_stubs = len(strip_solutions(nbformat.read(chapter, as_version=4))[0].cells)
    (tmp_path / "submissions").mkdir()
    nbformat.write(submission, tmp_path / "submissions" / "student.ipynb")
    labels = list(exercise_checks(chapter))
    rows = grade(chapter, tmp_path / "submissions", tmp_path / "out", timeout=600, jobs=1)
    executed = nbformat.read(tmp_path / "out" / "executed" / "student.ipynb", as_version=4)
    assert not _errors(tmp_path / "out" / "executed" / "student.ipynb"), (
        f"{chapter.stem}: a cell raised"
    )
    stubs_part = nbformat.from_dict({**executed, "cells": executed.cells[:n_stubs]})
    stubs = _results(stubs_part, labels, "")
    return {
        "stubs": {label: list(result) for label, result in stubs.items()},
        "solutions": {r.exercise: [r.passed, r.message] for r in rows},
    }


def grade_stubs_then_solutions(chapter, tmp_path, monkeypatch) -> None:
    """The test of one chapter (run by test_grader_book_a.py and test_grader_book_b.py)."""
    scores = _from_the_build(chapter) or _by_executing(chapter, tmp_path, monkeypatch)
    labels = list(exercise_checks(chapter))
    assert list(scores["stubs"]) == labels and list(scores["solutions"]) == labels
    for label, (passed, message) in scores["stubs"].items():
        assert not passed and message.startswith("not attempted yet: define `"), (label, message)
    for label, (passed, message) in scores["solutions"].items():
        assert passed and message == "all checks pass", (label, message)


# --- a tiny chapter and every kind of bad submission ---------------------------------------------

EXERCISE = "```{exercise} Double it\n:label: ex-double\n\nWrite `double(x)`.\n```"
SOLUTION = 'def double(x):\n    """Twice x."""\n    return 2 * x'
CHECK = 'check_equal(double(21), 42, "double(21)")'


def _chapter() -> nbformat.NotebookNode:
    v4 = nbformat.v4
    cells = [
        v4.new_markdown_cell("# Tiny"),
        v4.new_code_cell("from visionbook.checks import check_equal"),
        v4.new_markdown_cell(EXERCISE),
        v4.new_code_cell(SOLUTION, metadata={"tags": ["solution", "hide-cell"]}),
        v4.new_code_cell(CHECK, metadata={"tags": ["exercise-check"]}),
        v4.new_markdown_cell("```{exercise} Name it\n:label: ex-name\n\nName her.\n```"),
        v4.new_code_cell('name = "Ada"', metadata={"tags": ["solution", "hide-cell"]}),
        v4.new_code_cell('check_equal(name, "Ada", "name")', metadata={"tags": ["exercise-check"]}),
    ]
    return v4.new_notebook(cells=cells)


def _role(cell) -> tuple[str, str]:
    """("exercise-stub" or "exercise-check", label) for a generated cell, else ("", "")."""
    label = cell.get("metadata", {}).get("visionbook", {}).get("exercise", "")
    tags = [t for t in cell.get("metadata", {}).get("tags", []) if t.startswith("exercise-")]
    return (tags[0], label) if label and tags else ("", "")


def _answer(nb: nbformat.NotebookNode, label: str, source: str) -> nbformat.NotebookNode:
    """The student's answer to one exercise, typed into its stub cell."""
    (stub,) = [c for c in nb.cells if _role(c) == ("exercise-stub", label)]
    stub.source = source
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """One run of the command line over eight submissions of the tiny chapter."""
    root = tmp_path_factory.mktemp("grader")
    nbformat.write(_chapter(), root / "tiny.ipynb")
    subs = root / "submissions"
    (subs / "gina").mkdir(parents=True)
    stub = lambda: strip_solutions(_chapter())[0]
    right = lambda: _answer(_answer(stub(), "ex-double", SOLUTION), "ex-name", 'name = "Ada"')
    deleted, edited, raising = right(), right(), right()
    deleted.cells = [c for c in deleted.cells if _role(c) != ("exercise-check", "ex-name")]
    (check,) = [c for c in edited.cells if _role(c) == ("exercise-check", "ex-name")]
    # an edited check counts for nothing: the chapter's check is put back
    check.source = "print('all checks pass')"
    raising.cells.insert(2, nbformat.v4.new_code_cell("raise RuntimeError('an error early on')"))
    submissions = {
        "stubs": stub(),
        "right": right(),
        "wrong": _answer(stub(), "ex-double", "def double(x):\n    return x + 2"),
        "syntax": _answer(right(), "ex-double", "def double(x)\n    return 2 * x"),
        "hangs": _answer(right(), "ex-name", "while True:\n    pass"),
        "deleted": deleted,
        "edited": _answer(edited, "ex-name", 'name = "Grace"'),
        "raising": raising,
    }
    for name, nb in submissions.items():
        nbformat.write(nb, subs / f"{name}.ipynb")
    # a folder per student, the file named after the chapter
    nbformat.write(right(), subs / "gina" / "tiny.ipynb")
    (subs / "broken.ipynb").write_text("{ this is not JSON")
    main(
        [
            str(root / "tiny.ipynb"),
            str(subs),
            "--out",
            str(root / "out"),
            "--timeout",
            "20",
            "--jobs",
            "2",
        ]
    )
    with open(root / "out" / "grades.csv", newline="") as f:
        rows = {(r["student"], r["exercise"]): r for r in csv.DictReader(f)}
    return rows, root / "out"


def _row(graded, student, exercise):
    row = graded[0][student, exercise]
    return row["passed"] == "True", row["message"]


def test_stubs_score_zero_and_right_answers_full_marks(graded):
    assert _row(graded, "stubs", "ex-double") == (
        False,
        "not attempted yet: define `double`, Twice x.",
    )
    todo = 'not attempted yet: define `name`, as the exercise "Name it" asks'
    assert _row(graded, "stubs", "ex-name") == (False, todo)
    assert (
        _row(graded, "right", "ex-double")
        == _row(graded, "right", "ex-name")
        == (True, "all checks pass")
    )
    assert _row(graded, "gina", "ex-name") == (True, "all checks pass")


def test_wrong_answers_say_what_was_expected_and_what_came(graded):
    assert _row(graded, "wrong", "ex-double") == (False, "double(21): got 23, expected 42")
    assert _row(graded, "edited", "ex-name") == (False, "name: got 'Grace', expected 'Ada'")


def test_a_syntax_error_is_scored_and_the_rest_still_runs(graded):
    passed, message = _row(graded, "syntax", "ex-double")
    assert not passed and message.startswith("`double` not defined: run the cell that defines it")
    assert _row(graded, "syntax", "ex-name") == (True, "all checks pass")


def test_a_submission_that_hangs_is_stopped_at_the_time_limit(graded):
    assert _row(graded, "hangs", "ex-double") == (True, "all checks pass")
    assert _row(graded, "hangs", "ex-name") == (
        False,
        "the check did not run: the time limit of 20 s was reached",
    )


def test_errors_and_deleted_cells_are_scored_not_fatal(graded):
    assert _row(graded, "raising", "ex-name") == (True, "all checks pass")
    note = " (its check cell was missing from the submission and was run at the end)"
    assert _row(graded, "deleted", "ex-name") == (True, "all checks pass" + note)
    passed, message = _row(graded, "broken", "ex-double")
    assert not passed and message.startswith("not a readable notebook: ")


def test_the_summary_and_the_executed_notebooks_are_written(graded):
    rows, out = graded
    assert len(rows) == 10 * 2
    with open(out / "summary.csv", newline="") as f:
        summary = {r["exercise"]: r for r in csv.DictReader(f)}
    assert summary["ex-double"] == {
        "exercise": "ex-double",
        "passed": "6",
        "submissions": "10",
        "share": "0.60",
    }
    assert summary["ex-name"]["passed"] == "5"
    assert (out / "executed" / "gina.ipynb").exists() and not _errors(
        out / "executed" / "right.ipynb"
    )


def test_bad_input_is_refused(tmp_path):
    nbformat.write(_chapter(), tmp_path / "tiny.ipynb")
    with pytest.raises(ValueError, match="expected a folder of submitted .ipynb notebooks"):
        grade(tmp_path / "tiny.ipynb", tmp_path / "none", tmp_path / "out")
    with pytest.raises(ValueError, match="expected the chapter's .ipynb notebook"):
        exercise_checks(tmp_path / "missing.ipynb")
    with pytest.raises(TypeError, match="expected a notebook"):
        prepare_submission({"cells": []}, {})
