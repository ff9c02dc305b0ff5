"""Student copies of the chapters: solutions removed, exercises and their self-checks kept.

``visionbook-student book/ student/`` writes one notebook per chapter into ``student/`` with
every ``{solution}`` block removed from the markdown, every code cell tagged ``solution``
removed, the cells tagged ``exercise-check`` kept (so students get immediate feedback), and all
outputs cleared. Introduced in the page "For instructors".
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import nbformat

# A {solution} directive fenced with three or more backticks or colons, up to its closing fence.
_SOLUTION = re.compile(r"^(?P<fence>`{3,}|:{3,})\{solution\}.*?^(?P=fence)[ \t]*$\n?", re.MULTILINE | re.DOTALL)


def strip_solutions(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, int]:
    """Remove solutions from a notebook and clear its outputs (the input is not modified).

    Args:
        nb (NotebookNode): a version-4 notebook.

    Returns:
        tuple: the student notebook and the number of solutions removed.

    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["solution"]})])
    >>> strip_solutions(nb)[1]
    1

    Introduced in the page "For instructors".
    """
    if not isinstance(nb, nbformat.NotebookNode) or "cells" not in nb:
        raise TypeError(f"expected a notebook (nbformat.NotebookNode with cells), got {type(nb).__name__}")
    out = nbformat.from_dict(nb)
    cells, removed = [], 0
    for cell in out.cells:
        if "solution" in cell.get("metadata", {}).get("tags", []):
            removed += 1
            continue
        if cell.cell_type == "markdown":
            text, n = _SOLUTION.subn("", cell.source)
            removed += n
            if n and not text.strip():
                continue
            cell.source = text.rstrip() + "\n" if n else cell.source
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    out.cells = cells
    return out, removed


def write_student_copies(src: str | Path, dest: str | Path) -> dict[str, int]:
    """Write student copies of every notebook in ``src`` (a folder or one ``.ipynb``) to ``dest``.

    Args:
        src (str | Path): the chapters' folder or a single notebook.
        dest (str | Path): the output folder (created); it must differ from the source folder.

    Returns:
        dict: notebook name -> number of solutions removed.

    Introduced in the page "For instructors".
    """
    src, dest = Path(src), Path(dest)
    notebooks = sorted(src.glob("*.ipynb")) if src.is_dir() else [src]
    if not src.exists() or not notebooks or notebooks[0].suffix != ".ipynb":
        raise ValueError(f"expected a folder of .ipynb notebooks or one .ipynb file, got {src}")
    if dest.resolve() == (src if src.is_dir() else src.parent).resolve():
        raise ValueError(f"expected an output folder other than the source folder {src}, got {dest}")
    dest.mkdir(parents=True, exist_ok=True)
    report = {}
    for path in notebooks:
        student, removed = strip_solutions(nbformat.read(path, as_version=4))
        nbformat.write(student, dest / path.name)
        report[path.name] = removed
    return report


def main(argv: list[str] | None = None) -> None:
    """Command line: ``visionbook-student SRC DEST``."""
    parser = argparse.ArgumentParser(
        prog="visionbook-student", description="Write student copies of the chapters (solutions removed)."
    )
    parser.add_argument("src", help="folder of chapter notebooks (for example book/) or one notebook")
    parser.add_argument("dest", help="output folder for the student copies")
    args = parser.parse_args(argv)
    try:
        report = write_student_copies(args.src, args.dest)
    except ValueError as err:
        parser.error(str(err))
    for name, removed in report.items():
        print(f"{name}: {removed} solution(s) removed")
    print(f"wrote {len(report)} student notebook(s) to {args.dest}")


if __name__ == "__main__":
    main()
