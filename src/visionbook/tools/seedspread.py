"""How far each threshold self-check lies from its measured value, over several seeds.

A reader on Colab's GPU, another CPU or another torch version gets different rounding, so every
training run sees, in effect, a different seed.
``python -m visionbook.tools.seedspread book/*.ipynb`` executes each chapter cold and offline once
per seed offset (``VISIONBOOK_SEED_OFFSET`` = 0, 1, ..., see :func:`visionbook.config.seed_offset`),
reads every ``check_at_least``/``check_at_most`` line its cells print (or the error a failing one
raises), and prints a Markdown table: for each check its threshold, the mean of the measured value,
the standard deviation of its distance to the threshold (checks that compare two measured numbers
have a threshold that moves too), and the margin: the mean distance in standard deviations. A margin
under 3 means the threshold is too tight for some readers. Not part of the book build (five
executions of the whole book take about half an hour on two cores). Introduced in CONTRIBUTING.md.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# marks an error that is not a missed threshold (a failed check_true, a crash) in a run's rows
RAISED = "raised"
# "✓ name: 0.9812 ≥ 0.97" as printed by visionbook.checks,
# and "✗ name: 0.95 is below the required 0.97"
_PASSED = re.compile(
    r"^✓ (?P<name>.+): (?P<value>-?[0-9.e+-]+|nan|inf) (?P<op>[≥≤]) (?P<bound>-?[0-9.e+-]+)$"
)
_FAILED = re.compile(
    r"✗ (?P<name>.+): (?P<value>-?[0-9.e+-]+|nan|inf) is (?P<op>below|above) the \w+ "
    r"(?P<bound>-?[0-9.e+-]+)"
)


def _outputs(nb) -> Iterator[tuple[int, dict]]:
    """``(index among the code cells, output)`` for every output of an executed notebook."""
    import nbformat

    if not isinstance(nb, nbformat.NotebookNode) or "cells" not in nb:
        raise TypeError(
            f"expected nb as a notebook read with nbformat.read, got {type(nb).__name__}"
        )
    code = [c for c in nb.cells if c.cell_type == "code"]
    for i, cell in enumerate(code):
        for out in cell.get("outputs", []):
            yield i, out


def parse_checks(nb) -> list[tuple[int, str, str, float, float]]:
    """The threshold checks an executed notebook printed: ``(cell, name, op, value, bound)``.

    ``op`` is ``"≥"`` or ``"≤"``; a failed check (its error output) is read as well.

    >>> import nbformat
    >>> cell = nbformat.v4.new_code_cell(
    ...     outputs=[nbformat.v4.new_output("stream", text="✓ acc: 0.98 ≥ 0.97\\n")]
    ... )
    >>> parse_checks(nbformat.v4.new_notebook(cells=[cell]))
    [(0, 'acc', '≥', 0.98, 0.97)]

    Introduced in CONTRIBUTING.md.
    """
    found = []
    for i, out in _outputs(nb):
        if out.output_type == "stream":
            for line in out.text.splitlines():
                m = _PASSED.match(line.strip())
                if m:
                    found.append((i, m["name"], m["op"], float(m["value"]), float(m["bound"])))
        elif out.output_type == "error":
            m = _FAILED.search(out.get("evalue", ""))
            if m:
                op = "≥" if m["op"] == "below" else "≤"
                found.append((i, m["name"], op, float(m["value"]), float(m["bound"])))
    return found


def parse_errors(nb) -> list[tuple[int, str]]:
    """Every other error an executed notebook shows: ``(cell, "ename: first line of evalue")``.

    A failed ``check_true``, ``check_equal`` or ``check_close``, or a crash, is not a threshold
    and has no spread to measure, but a seed that makes it fail must not go unnoticed.

    >>> import nbformat
    >>> err = nbformat.v4.new_output("error", ename="AssertionError",
    ...                              evalue="✗ every method beats scratch", traceback=[])
    >>> parse_errors(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[err])]))
    [(0, 'AssertionError: ✗ every method beats scratch')]

    Introduced in CONTRIBUTING.md.
    """
    found = []
    for i, out in _outputs(nb):
        evalue = out.get("evalue") or ""
        if out.output_type == "error" and not _FAILED.search(evalue):
            first = (evalue.strip().splitlines() or [""])[0]
            found.append((i, f"{out.get('ename', 'Error')}: {first}"))
    return found


def _run(notebook: Path, offset: int, timeout: int) -> list[tuple[int, str, str, float, float]]:
    """Execute one chapter cold and offline with a seed offset, errors allowed; return
    its checks."""
    import nbformat
    from nbclient import NotebookClient

    from visionbook.tools.runtimes import skip_output_widget_mimic

    skip_output_widget_mimic()
    nb = nbformat.read(notebook, as_version=4)
    with tempfile.TemporaryDirectory() as home:
        env = {"VISIONBOOK_HOME": home, "VISIONBOOK_OFFLINE": "1", "VISIONBOOK_PROGRESS": "0",
               "VISIONBOOK_SEED_OFFSET": str(offset), "OMP_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1",
               # every check's line, also inside check_group
               "VISIONBOOK_CHECK_DETAILS": "1"}  # fmt: skip
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)  # the kernel inherits the environment of this process
        try:
            client = NotebookClient(
                nb,
                timeout=timeout,
                allow_errors=True,
                resources={"metadata": {"path": str(notebook.parent)}},
            )
            client.execute()
        finally:
            for k, v in saved.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    # other errors travel with the checks, marked "raised", and fail the run (see main)
    return parse_checks(nb) + [(c, m, RAISED, 0.0, 0.0) for c, m in parse_errors(nb)]


def spread_table(results: dict[str, list[list[tuple]]]) -> tuple[str, list[str]]:
    """Markdown table of every threshold check, and the checks with a margin under 3 std.

    Args:
        results (dict): chapter -> one list of :func:`parse_checks` tuples per seed.

    Returns:
        tuple: the table, and ``"chapter: check"`` for each too-tight check.

    >>> runs = [[(3, "acc", "≥", v, 0.9)] for v in (0.95, 0.96, 0.97)]
    >>> spread_table({"cnn": runs})[1]
    []

    Introduced in CONTRIBUTING.md.
    """
    if not isinstance(results, dict):
        raise TypeError(
            f"expected results as a dict of chapter -> runs, got {type(results).__name__}"
        )
    for chapter, runs in results.items():
        if not isinstance(runs, list | tuple) or not all(
            isinstance(run, list | tuple) for run in runs
        ):
            raise TypeError(
                f"expected results[{chapter!r}] as a list of runs, each a list of parse_checks "
                f"tuples, got {runs!r:.80}"
            )
    rows = [
        "| Chapter | Check | Threshold | Mean | Std | Seeds | Margin (std) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    tight = []
    for chapter, runs in results.items():
        runs = [[row for row in run if row[2] != RAISED] for run in runs]
        for cell, name, op in sorted({(c, n, o) for run in runs for c, n, o, _, _ in run}):
            pairs = [
                (v, b) for run in runs for c, n, o, v, b in run if (c, n, o) == (cell, name, op)
            ]
            gaps = [v - b if op == "≥" else b - v for v, b in pairs]  # positive: the check passes
            std = statistics.stdev(gaps) if len(gaps) > 1 else 0.0
            mean_gap = statistics.fmean(gaps)
            margin = (
                mean_gap / std if std > 0 else (float("inf") if mean_gap >= 0 else float("-inf"))
            )
            if margin < 3 or min(gaps) < 0 or len(pairs) < len(runs):
                tight.append(f"{chapter}: {name}")
            bounds = {b for _, b in pairs}
            bound = f"{bounds.pop():.4g}" if len(bounds) == 1 else "varies"
            mean = statistics.fmean(v for v, _ in pairs)
            shown = "∞" if margin == float("inf") else f"{margin:.1f}"
            rows.append(
                f"| {chapter} | {name} ({op}) | {bound} | {mean:.4g} | {std:.2g} | "
                f"{len(pairs)} | {shown} |"
            )
    return "\n".join(rows), tight


def main(argv: list[str] | None = None) -> int:
    """Command line: execute the chapters once per seed and print the spread of their checks."""
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument(
        "--seeds", type=int, default=5, help="seed offsets 0 .. seeds-1 (default 5)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="executions at once (default 2)")
    parser.add_argument("--timeout", type=int, default=600)
    parser.add_argument(
        "--record",
        type=Path,
        help="JSON file that keeps every finished execution; a run with the same file "
        "executes only what is missing from it",
    )
    args = parser.parse_args(argv)
    if args.seeds < 2 or args.jobs < 1:
        parser.error(f"expected --seeds >= 2 and --jobs >= 1, got {args.seeds} and {args.jobs}")
    record = json.loads(args.record.read_text()) if args.record and args.record.exists() else {}
    lock = threading.Lock()
    jobs = [(nb, k) for nb in args.notebooks for k in range(args.seeds)]

    def run(job: tuple[Path, int]) -> None:
        key = f"{job[0].stem}/{job[1]}"
        if key in record:
            return
        try:
            checks = _child(*job, args.timeout)
        except RuntimeError as err:  # one failed execution is reported, the others go on
            print(f"[seedspread] {key}: FAILED {str(err)[-300:]}", file=sys.stderr, flush=True)
            return
        with lock:
            record[key] = checks
            if args.record:
                args.record.write_text(json.dumps(record))

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(run, jobs))
    results: dict[str, list[list[tuple]]] = {}
    missing = [f"{nb.stem}/{k}" for nb, k in jobs if f"{nb.stem}/{k}" not in record]
    for nb, k in jobs:
        if f"{nb.stem}/{k}" in record:
            results.setdefault(nb.stem, []).append([tuple(c) for c in record[f"{nb.stem}/{k}"]])
    table, tight = spread_table(results)
    print(table)
    print(
        f"\n{len(tight)} checks with a margin under 3 standard deviations"
        + (": " + "; ".join(tight) if tight else "")
    )
    if missing:
        print(f"{len(missing)} executions failed: {', '.join(missing)}")
    raised = [
        f"{nb.stem}/{k} cell {row[0]}: {row[1]}"
        for nb, k in jobs
        for row in record.get(f"{nb.stem}/{k}", [])
        if row[2] == RAISED
    ]
    print(f"{len(raised)} other errors" + "".join(f"\n  {line}" for line in raised))
    return 1 if tight or missing or raised else 0


def _child(notebook: Path, offset: int, timeout: int) -> list[tuple]:
    """One execution in a child process (one kernel environment each), its checks read back."""
    import json

    code = ("import json, sys; from pathlib import Path; "
            "from visionbook.tools.seedspread import _run; "
            f"print(json.dumps(_run(Path({str(notebook)!r}), {offset}, {timeout})))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{notebook.name}, seed offset {offset}: {done.stderr[-2000:]}")
    print(f"[seedspread] {notebook.stem}, seed offset {offset}: done", file=sys.stderr, flush=True)
    return [tuple(c) for c in json.loads(done.stdout.strip().splitlines()[-1])]


if __name__ == "__main__":
    sys.exit(main())
