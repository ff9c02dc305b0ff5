"""Grade a class's submissions of one chapter: every exercise's check, passed or not, in a CSV table.

``visionbook-grade book/perceptron.ipynb submissions/ --out grades/`` executes every notebook in
``submissions/`` (the student copies your students handed back; a student's name is the file's
name, or its folder's when the file is named after the chapter) in its own fresh kernel, offline
(``VISIONBOOK_OFFLINE=1``), with a time limit for the whole notebook, ``--jobs`` at a time. Before
that, every exercise-check cell gets the chapter's own check back (an edited check counts for
nothing), a check cell that was deleted is added at the end, and all outputs are cleared. Each
exercise's result is what its check reported (:func:`visionbook.checks.exercise`). Written:

- ``grades.csv``: one row per student and exercise: student, exercise, passed, message;
- ``summary.csv``: one row per exercise: exercise, passed, submissions, share;
- ``executed/<student>.ipynb``: each executed submission, to hand back as feedback.

A submission that hangs (the time limit), raises, has a syntax error, deletes cells or is not a
notebook at all is scored, never fatal to the run. The grader does not sandbox: a submission runs
with your permissions, as any notebook you open does. Why our own grader and not otter-grader or
nbgrader: CONTRIBUTING.md. Introduced in the page "For instructors".
"""  # noqa: E501 (the first line is the --help description of visionbook-grade)

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import nbformat

from visionbook._validate import _expect_int, _expect_path
from visionbook.checks import RESULT_MIME
from visionbook.tools.student import strip_solutions


class Grade(NamedTuple):
    """One row of the table: did this student's notebook pass this exercise's check, and
    why (not)."""

    student: str
    exercise: str
    passed: bool
    message: str


def _label(cell: nbformat.NotebookNode) -> str:
    return (
        cell.get("metadata", {}).get("visionbook", {}).get("exercise", "")
        if cell.cell_type == "code"
        else ""
    )


def _is_check(cell: nbformat.NotebookNode) -> bool:
    return bool(_label(cell)) and "exercise-check" in cell.get("metadata", {}).get("tags", [])


def exercise_checks(chapter: str | Path) -> dict[str, str]:
    """The exercise checks of a chapter, as its student copy has them.

    Args:
        chapter (str | Path): the book's notebook of the chapter, with its solutions.

    Returns:
        dict: exercise label -> the source of its check cell, in the chapter's order.

    >>> list(exercise_checks("book/perceptron.ipynb"))
    ['perceptron-ex-pocket', 'perceptron-ex-xor-feature']

    Introduced in the page "For instructors".
    """
    path = _expect_path(chapter, "chapter")
    if path.suffix != ".ipynb" or not path.is_file():
        raise ValueError(f"expected the chapter's .ipynb notebook, got {path}")
    student, _ = strip_solutions(nbformat.read(path, as_version=4))
    checks = {_label(c): c.source for c in student.cells if _is_check(c)}
    if not checks:
        raise ValueError(f"expected a chapter with exercise-check cells, got none in {path}")
    return checks


def prepare_submission(
    nb: nbformat.NotebookNode, checks: dict[str, str]
) -> tuple[nbformat.NotebookNode, list[str]]:
    """A submission made ready to grade: the chapter's checks restored, missing ones appended,
    no outputs.

    Args:
        nb (NotebookNode): the submitted notebook (not modified).
        checks (dict): label -> check source, from :func:`exercise_checks`.

    Returns:
        tuple: the notebook to execute and the labels whose check cell was missing (now at the end).

    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    >>> prepare_submission(nb, {"ex-x": "check_true(x == 1, 'x')"})[1]
    ['ex-x']

    Introduced in the page "For instructors".
    """
    if not isinstance(nb, nbformat.NotebookNode) or "cells" not in nb:
        raise TypeError(
            f"expected a notebook (nbformat.NotebookNode with cells), got {type(nb).__name__}"
        )
    if not isinstance(checks, dict) or not all(isinstance(v, str) for v in checks.values()):
        raise TypeError(f"expected checks as a dict label -> source, got {type(checks).__name__}")
    out = nbformat.from_dict(nb)
    for cell in out.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            if _is_check(cell) and _label(cell) in checks:
                cell.source = checks[_label(cell)]
    present = {_label(c) for c in out.cells if _is_check(c)}
    missing = [label for label in checks if label not in present]
    for label in missing:
        meta = {"tags": ["exercise-check"], "visionbook": {"exercise": label}}
        out.cells.append(nbformat.v4.new_code_cell(checks[label], metadata=meta))
    return out, missing


def _execute(path: str, limit: float) -> None:
    """Child process: execute one prepared notebook in place, all cells within ``limit`` seconds.

    Errors are allowed (they stay in the cells' outputs); a time limit or a dead kernel stops the
    run. Writes ``{"stopped": why or ""}`` to ``path + ".json"``.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    from visionbook.tools.runtimes import skip_output_widget_mimic

    skip_output_widget_mimic()
    nb = nbformat.read(path, as_version=4)
    where = {"metadata": {"path": str(Path(path).parent)}}
    options = dict(
        allow_errors=True, kernel_name="python3", record_timing=False, shutdown_kernel="immediate"
    )
    client = NotebookClient(nb, timeout=int(limit), resources=where, **options)
    stopped = ""
    with client.setup_kernel():
        deadline = time.monotonic() + limit
        client.timeout_func = lambda cell: max(1, int(deadline - time.monotonic()))
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            try:
                if time.monotonic() >= deadline:
                    raise CellTimeoutError("no time left")
                client.execute_cell(cell, index)
            except CellTimeoutError:
                stopped = f"the time limit of {limit:g} s was reached"
            except DeadKernelError:
                stopped = "the kernel died (out of memory, or the code ended it)"
            if stopped:
                break
    nbformat.write(nb, path)
    Path(path + ".json").write_text(json.dumps({"stopped": stopped}))


def _results(
    nb: nbformat.NotebookNode, labels: list[str], stopped: str
) -> dict[str, tuple[bool, str]]:
    """Label -> (passed, message), read from the executed check cells' outputs."""
    found = {}
    for label in labels:
        cells = [c for c in nb.cells if _is_check(c) and _label(c) == label]
        records = [
            o.data[RESULT_MIME]
            for c in cells
            for o in c.outputs
            if RESULT_MIME in o.get("data", {})
        ]
        errors = [o for c in cells for o in c.outputs if o.output_type == "error"]
        if records:
            found[label] = (records[-1].get("passed") is True, str(records[-1].get("message", "")))
        elif errors:
            found[label] = (False, f"the check raised {errors[-1].ename}: {errors[-1].evalue}")
        else:
            found[label] = (False, f"the check did not run: {stopped or 'it reported nothing'}")
    return found


BUILD_PART = "build-part"  # metadata["visionbook"] key of the cells with_student_run adds


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def with_student_run(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, list[str]]:
    """The chapter with its student copy's exercises run inside it, for the book build.

    The student copy's generated cells (each exercise's stub and its wrapped check, from
    :func:`visionbook.tools.student.strip_solutions`) go right before the chapter's first
    solution cell, where a student's kernel would run them; the wrapped checks go once more at
    the end, after the solutions. One execution of the result then shows what the grader would
    score for the stubs and for the solutions (:func:`split_student_run`); the chapter's own
    cells are unchanged and in their order. A chapter without exercises comes back as it is.

    Args:
        nb (NotebookNode): the chapter, a version-4 notebook (not modified).

    Returns:
        tuple: the notebook to execute, and the exercises' labels in the chapter's order.

    >>> nb = nbformat.read("book/perceptron.ipynb", as_version=4)
    >>> run, labels = with_student_run(nb)
    >>> len(run.cells) - len(nb.cells), labels
    (6, ['perceptron-ex-pocket', 'perceptron-ex-xor-feature'])

    Introduced in the page "For instructors".
    """
    if not isinstance(nb, nbformat.NotebookNode) or "cells" not in nb:
        raise TypeError(
            f"expected a notebook (nbformat.NotebookNode with cells), got {type(nb).__name__}"
        )
    out = nbformat.from_dict(nb)
    solutions = [
        i for i, c in enumerate(out.cells) if c.cell_type == "code" and "solution" in _tags(c)
    ]
    student, _ = strip_solutions(nb)
    generated = [c for c in student.cells if _label(c)]
    labels = [_label(c) for c in generated if _is_check(c)]
    if not solutions or not labels:
        return out, []

    def copies(cells: list, part: str) -> list:
        made = []
        for i, cell in enumerate(cells):
            copy = nbformat.from_dict(cell)
            copy.id = f"{part}-{i}-{cell.id}"[:64]
            copy.metadata.setdefault("visionbook", {})[BUILD_PART] = part
            made.append(copy)
        return made

    checks = [c for c in generated if _is_check(c)]
    first = solutions[0]
    out.cells = (
        out.cells[:first]
        + copies(generated, "stubs")
        + out.cells[first:]
        + copies(checks, "solutions")
    )
    return out, labels


def split_student_run(
    executed: nbformat.NotebookNode, labels: list[str]
) -> tuple[nbformat.NotebookNode, dict]:
    """The chapter's own cells of an executed :func:`with_student_run` notebook, and the scores.

    Args:
        executed (NotebookNode): the executed notebook.
        labels (list of str): the exercises' labels, as :func:`with_student_run` returned them.

    Returns:
        tuple: the chapter as executed (the added cells removed, execution counts renumbered
        1, 2, ... in order), and ``{"stubs": {label: [passed, message]}, "solutions": {...}}``:
        what the grader scores for the stubs alone, and for the stubs followed by the solutions
        (a label's last check counts).

    Introduced in the page "For instructors".
    """
    if not isinstance(executed, nbformat.NotebookNode) or "cells" not in executed:
        raise TypeError(
            f"expected a notebook (nbformat.NotebookNode with cells), got {type(executed).__name__}"
        )
    if not isinstance(labels, list | tuple) or not all(isinstance(x, str) for x in labels):
        raise TypeError(f"expected labels as a list of strings, got {labels!r:.80}")

    def part(cell: nbformat.NotebookNode) -> str:
        return cell.get("metadata", {}).get("visionbook", {}).get(BUILD_PART, "")

    def scores(cells: list) -> dict:
        found = _results(nbformat.from_dict({**executed, "cells": cells}), list(labels), "")
        return {label: [passed, message] for label, (passed, message) in found.items()}

    stubs = [c for c in executed.cells if part(c) == "stubs"]
    solutions = [c for c in executed.cells if part(c) == "solutions"]
    chapter = nbformat.from_dict({**executed, "cells": [c for c in executed.cells if not part(c)]})
    count = 0
    for cell in chapter.cells:
        if cell.cell_type == "code" and cell.get("execution_count") is not None:
            count += 1
            cell.execution_count = count
            for output in cell.outputs:
                if "execution_count" in output:
                    output.execution_count = count
    return chapter, {"stubs": scores(stubs), "solutions": scores(stubs + solutions)}


_KERNEL_NEVER_STARTED = "Kernel died before replying to kernel_info"


def _grade_one(
    student: str, path: Path, checks: dict[str, str], out: Path, limit: float, env: dict
) -> list[Grade]:
    """Prepare, execute (in a child process) and score one submission."""
    try:
        nb, missing = prepare_submission(nbformat.read(path, as_version=4), checks)
    except Exception as err:  # not JSON, not a notebook: scored, not fatal
        return [Grade(student, label, False, f"not a readable notebook: {err}") for label in checks]
    with tempfile.TemporaryDirectory(prefix="visionbook-grade-") as work:
        prepared = Path(work) / path.name
        nbformat.write(nb, prepared)
        command = [
            sys.executable,
            "-m",
            "visionbook.tools.grade",
            "--one",
            str(prepared),
            "--timeout",
            str(limit),
        ]
        try:
            for _ in range(2):
                done = subprocess.run(
                    command, env=env, cwd=work, capture_output=True, text=True, timeout=limit + 120
                )
                # a kernel that died before it answered ran none of the student's code (on a busy
                # machine two new kernels can race for a port): start it once more
                if done.returncode == 0 or _KERNEL_NEVER_STARTED not in done.stderr:
                    break
            note = (
                json.loads((Path(work) / (path.name + ".json")).read_text())
                if done.returncode == 0
                else {}
            )
            stopped = note.get(
                "stopped", f"the grader's child process failed: {done.stderr.strip()[-300:]}"
            )
        except subprocess.TimeoutExpired:
            stopped = f"the time limit of {limit:g} s was reached (the run was killed)"
        executed = nbformat.read(prepared, as_version=4) if prepared.exists() else nb
    (out / "executed").mkdir(parents=True, exist_ok=True)
    nbformat.write(executed, out / "executed" / f"{student.replace('/', '__')}.ipynb")
    results = _results(executed, list(checks), stopped)
    note = " (its check cell was missing from the submission and was run at the end)"
    return [
        Grade(student, label, ok, text + note * (label in missing))
        for label, (ok, text) in results.items()
    ]


def _students(folder: Path, chapter: str) -> dict[str, Path]:
    """Student name -> submitted notebook, for every .ipynb under ``folder``."""
    found = {}
    for path in sorted(folder.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        rel = path.relative_to(folder).with_suffix("")
        found[str(rel.parent) if rel.name == chapter and len(rel.parts) > 1 else str(rel)] = path
    return found


def grade(
    chapter: str | Path, submissions: str | Path, out: str | Path, timeout: int = 300, jobs: int = 2
) -> list:
    """Grade every submission of one chapter and write ``grades.csv``, ``summary.csv`` and
    ``executed/``.

    Args:
        chapter (str | Path): the book's notebook of the chapter (with its solutions).
        submissions (str | Path): a folder of submitted notebooks, one per student (also in
            subfolders).
        out (str | Path): the output folder (created).
        timeout (int): seconds allowed for one whole notebook. Default 300.
        jobs (int): notebooks executed at once; each kernel gets ``cpu_count // jobs``
            threads. Default 2.

    Returns:
        list of Grade: one per student and exercise, sorted by student.

    >>> grade("book/perceptron.ipynb", "submissions/", "grades/")  # doctest: +SKIP
    [Grade(student='alice', exercise='perceptron-ex-pocket', passed=True,
           message='all checks pass'), ...]

    Introduced in the page "For instructors".
    """
    chapter, out = _expect_path(chapter, "chapter"), _expect_path(out, "out")
    folder = _expect_path(submissions, "submissions")
    _expect_int(timeout, "timeout")
    _expect_int(jobs, "jobs")
    checks = exercise_checks(chapter)
    students = _students(folder, chapter.stem) if folder.is_dir() else {}
    if not students:
        raise ValueError(f"expected a folder of submitted .ipynb notebooks, got {folder}")
    env = {**os.environ, "VISIONBOOK_OFFLINE": "1", "VISIONBOOK_PROGRESS": "0"}
    env.pop("VISIONBOOK_FULL", None)
    if jobs > 1:
        threads = str(max(1, (os.cpu_count() or 1) // jobs))
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    out.mkdir(parents=True, exist_ok=True)

    def one(item: tuple[str, Path]) -> list[Grade]:
        start = time.perf_counter()
        rows = _grade_one(*item, checks, out, timeout, env)
        seconds, passed = time.perf_counter() - start, sum(r.passed for r in rows)
        print(f"[grade] {item[0]}: {passed}/{len(rows)} passed ({seconds:.0f} s)", flush=True)
        return rows

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        rows = [row for result in pool.map(one, students.items()) for row in result]
    _write(out, rows, list(checks), len(students))
    return rows


def _write(out: Path, rows: list[Grade], labels: list[str], n: int) -> None:
    """``grades.csv`` and ``summary.csv``, and the summary printed."""
    with open(out / "grades.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(Grade._fields)
        writer.writerows(rows)
    summary = [(label, sum(r.passed for r in rows if r.exercise == label)) for label in labels]
    with open(out / "summary.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["exercise", "passed", "submissions", "share"])
        writer.writerows((label, k, n, f"{k / n:.2f}") for label, k in summary)
    width = max(len(label) for label in labels)
    print("\n".join(f"{label:<{width}}  {k:>3}/{n} passed" for label, k in summary))


def main(argv: list[str] | None = None) -> None:
    """Command line:
    ``visionbook-grade CHAPTER SUBMISSIONS [--out DIR] [--timeout S] [--jobs N]``."""
    parser = argparse.ArgumentParser(prog="visionbook-grade", description=__doc__.splitlines()[0])
    parser.add_argument(
        "chapter", nargs="?", help="the book's notebook of the chapter (book/perceptron.ipynb)"
    )
    parser.add_argument(
        "submissions", nargs="?", help="folder of submitted notebooks, one per student"
    )
    parser.add_argument("--out", default="grades", help="output folder (default: grades)")
    parser.add_argument(
        "--timeout", type=int, default=300, help="seconds allowed per notebook (default 300)"
    )
    parser.add_argument(
        "--jobs", type=int, default=2, help="notebooks executed at once (default 2)"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        return _execute(args.one, args.timeout)
    if args.chapter is None or args.submissions is None:
        got = "neither" if not args.chapter else "no folder"
        parser.error(f"expected a chapter notebook and a folder of submissions, got {got}")
    start = time.perf_counter()
    try:
        rows = grade(args.chapter, args.submissions, args.out, timeout=args.timeout, jobs=args.jobs)
    except (TypeError, ValueError) as err:
        parser.error(str(err))
    students = len({r.student for r in rows})
    seconds = time.perf_counter() - start
    print(
        f"graded {students} submission(s) in {seconds:.0f} s; table: "
        f"{Path(args.out) / 'grades.csv'}"
    )


if __name__ == "__main__":
    main()
