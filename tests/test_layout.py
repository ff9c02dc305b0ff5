"""The package's layout: each teaching module belongs to the chapter that introduces it, and imports
only what a reader has met by then; the book's tooling stays apart.

Every module of ``src/visionbook`` says in its docstrings where each public name is introduced
("Introduced in the chapter ..."); the earliest such chapter, in ``_toc.yml`` reading order, is the
module's chapter. Checked here, statically (nothing is imported):

- no teaching module imports the tooling subpackage ``visionbook.tools`` (build, runtimes, student
  copies, grader, syllabus, seed spread), anywhere in the file;
- a module's top-level imports name only modules of the same or an earlier chapter, with the few
  exceptions below, each with its reason;
- CONTRIBUTING.md's module map lists every teaching module with its chapter, and nothing else.
"""

from __future__ import annotations

import ast
import json
import re
from functools import cache
from pathlib import Path

import pytest

from visionbook.tools.bookbuild import chapters

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "visionbook"
INTRODUCED = re.compile(r'Introduced in the (?:chapter|page) "([^"]+)"|Introduced in the (preface)')

# (importing module, imported module): why the import runs ahead of the reading order.
EXCEPTIONS = {
    ("imagenet", "blocks"): (
        "EfficientNet-Lite0 is built from the MBConv blocks; the CNN chapter uses the real "
        "network as a whole, and Modern architectures opens it up"
    ),
    ("diagrams", "blocks"): (
        "the diagram of a residual or dense block reads the block's classes; it is drawn in "
        "the chapter that introduces them"
    ),
}


def _title(notebook: Path) -> str:
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        found = (
            re.search(r"^# (.+)$", "".join(cell["source"]), re.M)
            if cell["cell_type"] == "markdown"
            else None
        )
        if found:
            return found.group(1).strip()
    return notebook.stem


@cache
def _reading_order() -> tuple[str, ...]:
    return tuple(_title(nb) for nb in chapters(ROOT))


def _chapter_index(name: str) -> int:
    """Index in reading order of the chapter a docstring names (a title, or its start)."""
    name = " ".join(name.split())
    if name == "preface":
        return 0
    found = [
        i
        for i, title in enumerate(_reading_order())
        if title == name or title.startswith(name + ":")
    ]
    if len(found) != 1:
        raise AssertionError(f"a docstring names a chapter that is not in _toc.yml: {name!r}")
    return found[0]


def _teaching_modules() -> dict[str, Path]:
    # not _validate
    return {p.stem: p for p in sorted(PACKAGE.glob("*.py")) if not p.stem.startswith("_")}


@cache
def module_chapters() -> dict[str, int]:
    """Teaching module -> index of its chapter in reading order."""
    found = {}
    for name, path in _teaching_modules().items():
        places = [a or b for a, b in INTRODUCED.findall(path.read_text(encoding="utf-8"))]
        if places:
            found[name] = min(_chapter_index(p) for p in places)
    return found


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """The visionbook modules ``path`` imports (``tools`` for the subpackage)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names = set()
    for node in nodes:
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.split(".")[0] == "visionbook"
        ):
            parts = node.module.split(".")
            names |= {parts[1]} if len(parts) > 1 else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name.split(".")[1] for a in node.names if a.name.startswith("visionbook.")}
    return names


def test_every_teaching_module_names_its_chapter():
    assert not sorted(set(_teaching_modules()) - set(module_chapters()))


@pytest.mark.parametrize("module", sorted(_teaching_modules()))
def test_no_teaching_module_imports_the_book_tooling(module):
    assert "tools" not in _imports(_teaching_modules()[module], top_level_only=False)


@pytest.mark.parametrize("module", sorted(_teaching_modules()))
def test_a_module_imports_only_what_its_chapter_has_met(module):
    chapters_of = module_chapters()
    later = {
        imported: _reading_order()[chapters_of[imported]]
        for imported in _imports(_teaching_modules()[module], top_level_only=True)
        if imported in chapters_of
        and chapters_of[imported] > chapters_of[module]
        and (module, imported) not in EXCEPTIONS
    }
    assert not later, (
        f"{module} ({_reading_order()[chapters_of[module]]}) imports modules of later "
        f"chapters: {later}"
    )


def test_the_exceptions_are_still_needed():
    for module, imported in EXCEPTIONS:
        assert imported in _imports(_teaching_modules()[module], top_level_only=True), (
            module,
            imported,
        )
        assert module_chapters()[imported] > module_chapters()[module], (module, imported)


def test_contributing_has_the_module_map():
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `visionbook\.([a-z_]+)` \| ([^|]+?) \|", text, re.M))
    expected = {m: _reading_order()[i] for m, i in module_chapters().items()}
    assert rows == expected
