"""What a reader sees on the pages: no local paths, no warnings, no walls of log lines, no answers.

Reads the book build's fresh execution of every chapter (the outputs the HTML shows). Without a
fresh build the tests are skipped, unless VISIONBOOK_REQUIRE_HTML=1 (CI sets it).
"""

import os
import re

import pytest

from visionbook.tools.bookbuild import CACHE, ROOT, chapters, fresh_execution

LOCAL_PATH = re.compile(
    r"(/work/|/root/|/home/|/tmp/|site-packages|\.visionbook-home|\.cache/visionbook|[A-Z]:\\\\)"
)
HIDDEN = {"remove-output", "remove-cell", "hide-output", "hide-cell"}
MAX_LOG_LINES = 15


def _executions():
    from jupyter_cache import get_cache

    records = {nb.stem: fresh_execution(nb) for nb in chapters()}
    if not all(records.values()):
        if os.environ.get("VISIONBOOK_REQUIRE_HTML") == "1":
            pytest.fail("the book build has no fresh execution of every chapter")
        pytest.skip("no fresh build of every chapter (python -m visionbook.tools.bookbuild)")
    cache = get_cache(str(ROOT / CACHE))
    return {stem: cache.get_cache_bundle(r.pk).nb.cells for stem, r in records.items()}


@pytest.fixture(scope="module")
def pages():
    return _executions()


def _shown(cell) -> bool:
    return not HIDDEN & set(cell.metadata.get("tags", []))


def _texts(cell):
    """Each visible text output of a cell: streams (consecutive pieces of one stream joined, as the
    page shows them) and plain-text results."""
    stream, pieces = None, []
    for out in cell.outputs:
        name = out.get("name", "stdout") if out.output_type == "stream" else None
        if name != stream and pieces:
            yield stream, "".join(pieces)
            pieces = []
        stream = name
        if name is not None:
            pieces.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            yield "result", out.get("data", {}).get("text/plain", "")
    if pieces:
        yield stream, "".join(pieces)


def _offenders(pages, test):
    found = []
    for stem, cells in pages.items():
        for i, cell in enumerate(c for c in cells if c.cell_type == "code"):
            if _shown(cell):
                found += [f"{stem} cell {i}: {what}" for what in test(cell)]
    return found


def test_no_page_shows_a_local_path(pages):
    def paths(cell):
        return [m.group(0) for _, text in _texts(cell) for m in [LOCAL_PATH.search(text)] if m]

    assert not _offenders(pages, paths)


def test_no_page_shows_a_python_warning(pages):
    def warnings(cell):
        return [
            text.strip()[:120]
            for name, text in _texts(cell)
            if name == "stderr" and "Warning" in text
        ]

    assert not _offenders(pages, warnings)


def test_no_page_shows_a_wall_of_log_lines(pages):
    def walls(cell):
        return [f"{len(text.splitlines())} lines" for name, text in _texts(cell)
                if name in ("stdout", "stderr")
                and len(text.splitlines()) > MAX_LOG_LINES]  # fmt: skip

    assert not _offenders(pages, walls)


def test_solution_outputs_are_hidden_with_their_code(pages):
    leaks = []
    for stem, cells in pages.items():
        for i, cell in enumerate(c for c in cells if c.cell_type == "code"):
            tags = set(cell.metadata.get("tags", []))
            if "solution" in tags and cell.outputs and not tags & HIDDEN:
                leaks.append(f"{stem} cell {i}")
    assert not leaks, f"solution cells whose output shows on the page (tag them hide-cell): {leaks}"
