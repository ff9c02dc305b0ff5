"""Repository-wide pytest settings: threads per kernel under xdist, and the chapters under nbval.

With pytest-xdist (`-n 2`, the README's test command) two chapters execute at once on a 2-core
machine; each worker's kernels then use one thread, since two threads per kernel would make the
book's tiny networks wait on each other (measured: 3 to 6 times slower under contention).

The chapters under nbval, executed once: from the book build's fresh execution when there is one.
``pytest --nbval-lax book`` makes one test of every code cell of a chapter and runs the cells in
order in one fresh kernel; with the book's notebooks (committed without outputs, no nbval markers)
a cell passes when it runs without an error, so the chapters' self-checks are the assertions.

The book build (``python -m visionbook.tools.bookbuild``) has just done exactly that: it executed
every chapter top to bottom in a fresh kernel with errors not allowed, and stored the executed
notebook in ``_build/.jupyter_cache``. For a chapter whose stored execution is fresh (made from this
notebook's current code, after the last change to the notebook and to ``src/visionbook``; see
``visionbook.tools.bookbuild.fresh_execution``), each cell's test checks that execution instead of
running the chapter a second time: the cell ran, in order, and left no error output. A chapter with
no fresh execution is executed by nbval as usual. ``VISIONBOOK_NBVAL_EXECUTE=1`` forces execution
for every chapter.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")


def _reuse_allowed() -> bool:
    return os.environ.get("VISIONBOOK_NBVAL_EXECUTE", "") in ("", "0")


def _executed_cells(notebook: Path):
    """The code cells of the fresh build execution of ``notebook``, or None."""
    from jupyter_cache import get_cache

    from visionbook.tools.bookbuild import CACHE, ROOT, fresh_execution

    record = fresh_execution(notebook)
    if record is None:
        return None
    nb = get_cache(str(ROOT / CACHE)).get_cache_bundle(record.pk).nb
    if "allow_errors" in nb.metadata.get("execution", {}):
        return None  # a notebook that overrides the build's error rule is executed by nbval
    return [c for c in nb.cells if c.cell_type == "code"], record.created


def _check_executed(item, executed, when) -> None:
    """The nbval test of one cell, answered from the build's execution of the chapter."""
    from nbval.plugin import NbCellError

    cells, _ = executed
    cell = cells[item.cell_num] if item.cell_num < len(cells) else None
    if cell is None or cell.source != item.cell.source:
        raise NbCellError(
            item.cell_num, "the build's execution does not match this cell", item.cell.source
        )
    if item.options["skip"]:
        pytest.skip()
    errors = [o for o in cell.outputs if o.output_type == "error"]
    if errors and not item.options["raises"]:
        raise NbCellError(
            item.cell_num,
            "Cell execution caused an exception",
            cell.source,
            "\n".join(errors[0].traceback),
        )
    if cell.execution_count is None:
        raise NbCellError(
            item.cell_num, f"the build's execution of {when} did not run this cell", cell.source
        )


def pytest_collection_modifyitems(session, config, items):
    if not config.getoption("nbval_lax", default=False) or not _reuse_allowed():
        return
    from nbval.plugin import IPyNbCell

    by_notebook: dict = {}
    for item in items:
        if isinstance(item, IPyNbCell):
            by_notebook.setdefault(item.parent, []).append(item)
    for parent, cells in by_notebook.items():
        executed = _executed_cells(Path(str(parent.fspath)))
        if executed is None:
            continue
        parent.setup = parent.teardown = lambda: None  # no kernel: nothing is executed again
        when = executed[1].strftime("%Y-%m-%d %H:%M UTC")
        for item in cells:
            item.runtest = lambda item=item, executed=executed, when=when: _check_executed(
                item, executed, when
            )
            item.user_properties.append(("checked from", f"the build's execution of {when}"))


def pytest_report_header(config):
    if not config.getoption("nbval_lax", default=False):
        return None
    if not _reuse_allowed():
        return "chapters: executed by nbval (VISIONBOOK_NBVAL_EXECUTE=1)"
    from visionbook.tools.bookbuild import chapters, fresh_execution

    fresh = [nb.stem for nb in chapters() if fresh_execution(nb) is not None]
    return (
        f"chapters: {len(fresh)} checked from the book build's fresh execution, the others "
        "executed by nbval"
    )
