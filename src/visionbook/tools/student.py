"""Student copies of the chapters: solutions replaced by stubs, exercises and their
self-checks kept.

``visionbook-student book/ student/`` writes one notebook per chapter into ``student/`` with
every ``{solution}`` block removed from the markdown and all outputs cleared. Each coding
exercise (its code cells tagged ``solution``, followed by a cell tagged ``exercise-check``)
becomes a *stub* cell, generated from the solution: the names that the check reads and the
solution defines, assigned ``...`` (functions keep their signature and docstring and raise
``NotImplementedError``), under a one-line comment saying what to compute. The check cell is
wrapped in :func:`visionbook.checks.exercise`, so that an unattempted exercise prints "not
attempted yet", a wrong one says what was expected and what came, and the rest of the notebook
still runs. Solution code cells without a check after them are removed.

The hint comes from the solution: the first line of a solution cell may read
``# stub: <what to compute>``; otherwise a function's docstring, a trailing comment on the line
that assigns a name, or the exercise's title. ``--solved`` writes the same layout with the
solution code in place of each stub: a submission that must score full marks
(:mod:`visionbook.tools.grade`). Introduced in the page "For instructors".
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import re
import textwrap
import tokenize
from pathlib import Path

import nbformat

# A {solution} directive fenced with three or more backticks or colons, up to its closing fence.
_SOLUTION = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{solution\}.*?^(?P=fence)[ \t]*$\n?", re.MULTILINE | re.DOTALL
)
_EXERCISE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{exercise\}[ \t]*(?P<title>[^\n]*?)[ \t]*\n"
                       r"(?P<body>.*?)^(?P=fence)", re.MULTILINE | re.DOTALL)  # fmt: skip
_LABEL = re.compile(r"^:label:[ \t]*(\S+)", re.MULTILINE)
_PRAGMA = re.compile(r"^(fmt|noqa|type|pragma)\b")
# the tag of a generated stub cell (the check cell keeps "exercise-check")
STUB_TAG = "exercise-stub"


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _parse(source: str, what: str) -> ast.Module:
    """The syntax tree of a cell (IPython magics turned into Python first)."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError as err:
        raise ValueError(
            f"expected Python code in {what}, got a syntax error: {err.msg} (line {err.lineno})"
        ) from err


def _comments(source: str) -> dict[int, str]:
    """Line number -> the text of the comment that ends that line."""
    found = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                found[tok.start[0]] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, SyntaxError):
        pass
    return found


def _top_level_names(tree: ast.Module) -> dict[str, ast.AST]:
    """Names a cell binds at module level, in order, each with the node that binds it first."""
    bound: dict[str, ast.AST] = {}

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.setdefault(node.name, node)
            return  # the body binds local names
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                bound.setdefault((alias.asname or alias.name).split(".")[0], node)
            return
        if isinstance(
            node, ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp
        ):
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.setdefault(node.id, node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return bound


def _free_names(tree: ast.Module) -> list[str]:
    """Names a cell reads from the notebook, in order: not bound by the cell, a comprehension or a
    function."""
    top, reads = set(_top_level_names(tree)), []

    def visit(node: ast.AST, local: frozenset) -> None:
        if isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
            local = local | {
                n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)
            }
        elif isinstance(node, ast.Lambda | ast.FunctionDef | ast.AsyncFunctionDef):
            inner = ast.walk(node.args), ast.walk(node)
            local = local | {a.arg for a in inner[0] if isinstance(a, ast.arg)}
            local |= {
                n.id for n in inner[1] if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
            }
        elif (
            isinstance(node, ast.Name)
            and isinstance(node.ctx, ast.Load)
            and node.id not in local | top
        ):
            reads.append(node.id)
        for child in ast.iter_child_nodes(node):
            visit(child, local)

    visit(tree, frozenset())
    return list(dict.fromkeys(reads))


def make_stub(solutions: list[str], check: str, title: str) -> tuple[str, dict[str, str]]:
    """The stub cell of a coding exercise, generated from its solution cells and its check cell.

    A stub defines the names that the check reads and the solution defines: a variable as
    ``name = ...``, a function with its signature and docstring and a body that raises
    ``NotImplementedError``; imports the check needs are kept as they are.

    Args:
        solutions (list of str): the source of the exercise's solution code cells, in order.
        check (str): the source of its exercise-check cell.
        title (str): the exercise's title, the hint for names without one of their own.

    Returns:
        tuple: the stub cell's source and a dict name -> one-line hint, for
        :func:`visionbook.checks.exercise`.

    >>> stub, needs = make_stub(
    ...     ["w = pocket(run)  # the best weights"], "check_true(w[0] > 0, 'ok')", "Pocket"
    ... )
    >>> print(stub)
    # Exercise "Pocket": write the code that defines the names below (replace each `...`).
    w = ...  # the best weights
    >>> needs
    {'w': 'the best weights'}

    Introduced in the page "For instructors".
    """
    if (
        not isinstance(solutions, list | tuple)
        or not solutions
        or not all(isinstance(s, str) for s in solutions)
    ):
        raise TypeError(
            f"expected solutions as a non-empty list of source strings, got {solutions!r:.80}"
        )
    if not isinstance(check, str) or not isinstance(title, str):
        raise TypeError(
            f"expected check and title as strings, got {type(check).__name__} and "
            f"{type(title).__name__}"
        )
    firsts = [s.lstrip().splitlines()[0] for s in solutions if s.strip()]
    hint = next((f[len("# stub:") :].strip() for f in firsts if f.startswith("# stub:")), "")
    defined: dict[str, tuple[ast.AST, str]] = {}
    for i, source in enumerate(solutions):
        comments = _comments(source)
        for name, node in _top_level_names(_parse(source, f"solution cell {i}")).items():
            defined.setdefault(name, (node, comments.get(getattr(node, "lineno", 0), "")))
    read = _free_names(_parse(check, "the exercise-check cell"))
    names = [n for n in defined if n in read]
    if not [n for n in names if not isinstance(defined[n][0], ast.Import | ast.ImportFrom)]:
        raise ValueError(
            f"expected a check that reads a name its solution defines, got one reading only {read}"
        )
    header = f'# Exercise "{title}": ' + (
        hint or "write the code that defines the names below (replace each `...`)."
    )
    needs, imports, functions, variables = {}, [], [], []
    for name in names:
        node, comment = defined[name]
        own = "" if _PRAGMA.match(comment) else comment
        if isinstance(node, ast.Import | ast.ImportFrom):
            imports.append(ast.unparse(node))
            continue
        defines = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        doc = ast.get_docstring(node) if defines else None
        needs[name] = (
            (doc.splitlines()[0] if doc else own) or hint or f'as the exercise "{title}" asks'
        )
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            body = f'    """{doc.splitlines()[0]}"""\n' if doc else ""
            functions.append(
                f"def {name}({ast.unparse(node.args)}):\n"
                f'{body}    raise NotImplementedError("{name}")'
            )
        else:
            variables.append(f"{name} = ...{f'  # {own}' if own else ''}")
    text = "\n".join([header, *dict.fromkeys(imports)])
    if functions:
        text += "".join(f"\n\n\n{block}" for block in [*functions, "\n".join(variables)] if block)
    elif variables:
        text += "\n" + "\n".join(variables)
    return text, needs


def _quote(text: str) -> str:
    """A Python string literal for ``text``, in double quotes unless the text holds some."""
    return repr(text) if '"' in text and "'" not in text else json.dumps(text, ensure_ascii=False)


def wrap_check(check: str, label: str, needs: dict[str, str]) -> str:
    """An exercise-check cell's source inside ``with exercise(label, **needs):``, for a
    student copy.

    Args:
        check (str): the check cell's source.
        label (str): the exercise's label (``perceptron-ex-pocket``).
        needs (dict): name -> hint, as :func:`make_stub` returns it.

    Returns:
        str: the wrapped source, which imports :func:`visionbook.checks.exercise` itself.

    >>> print(wrap_check("check_true(w > 0, 'positive')", "ex-w", {"w": "a weight"}))
    from visionbook.checks import exercise
    <BLANKLINE>
    with exercise("ex-w", w="a weight"):
        check_true(w > 0, 'positive')

    Introduced in the page "For instructors".
    """
    if not isinstance(check, str) or not isinstance(label, str) or not isinstance(needs, dict):
        got = f"{type(check).__name__}, {type(label).__name__}, {type(needs).__name__}"
        raise TypeError(f"expected check and label as strings and needs as a dict, got {got}")
    args = [_quote(label), *(f"{name}={_quote(hint)}" for name, hint in needs.items())]
    call = f"with exercise({', '.join(args)}):"
    if len(call) > 100:
        call = "with exercise(\n" + "".join(f"    {a},\n" for a in args) + "):"
    body = textwrap.indent(check.strip("\n"), "    ", lambda line: True)
    return f"from visionbook.checks import exercise\n\n{call}\n{body}"


def _exercise_before(cells: list, index: int) -> tuple[str, str]:
    """Title and label of the last {exercise} directive in the markdown above cell ``index``."""
    for cell in reversed(cells[:index]):
        found = list(_EXERCISE.finditer(cell.source)) if cell.cell_type == "markdown" else []
        if found:
            label = _LABEL.search(found[-1].group("body"))
            return found[-1].group("title") or "untitled", label.group(
                1
            ) if label else f"exercise-{index}"
    raise ValueError(
        f"expected an {{exercise}} directive above the exercise-check cell {index}, got none"
    )


def _plan(cells: list) -> dict[int, dict]:
    """For each exercise-check cell: its solution cells, label, stub and wrapped check."""
    plan, labels = {}, set()
    for i, cell in enumerate(cells):
        if cell.cell_type != "code" or "exercise-check" not in _tags(cell):
            continue
        start = i
        while (
            start > 0
            and cells[start - 1].cell_type == "code"
            and "solution" in _tags(cells[start - 1])
        ):
            start -= 1
        if start == i:
            raise ValueError(
                f"expected solution code cells right before the exercise-check cell {i}, got none"
            )
        title, label = _exercise_before(cells, start)
        label = label if label not in labels else f"{label}-{i}"
        labels.add(label)
        stub, needs = make_stub([c.source for c in cells[start:i]], cell.source, title)
        check = wrap_check(cell.source, label, needs)
        plan[i] = {"solutions": range(start, i), "label": label, "stub": stub, "check": check}
    return plan


def strip_solutions(
    nb: nbformat.NotebookNode, solved: bool = False
) -> tuple[nbformat.NotebookNode, int]:
    """Make a student copy: solutions removed (or kept, ``solved=True``), stubs added,
    outputs cleared.

    The input is not modified. Stub cells are tagged ``exercise-stub``; stub and check cells carry
    ``metadata["visionbook"]["exercise"]``, the exercise's label, which the grader reads.

    Args:
        nb (NotebookNode): a version-4 notebook.
        solved (bool): keep each exercise's solution code in place of its stub (a submission
            that must score full marks). Default False.

    Returns:
        tuple: the student notebook and the number of solutions removed (markdown blocks and code
        cells, not counting the code cells kept with ``solved=True``).

    >>> nb = nbformat.v4.new_notebook(
    ...     cells=[nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["solution"]})]
    ... )
    >>> strip_solutions(nb)[1]
    1

    Introduced in the page "For instructors".
    """
    if not isinstance(nb, nbformat.NotebookNode) or "cells" not in nb:
        raise TypeError(
            f"expected a notebook (nbformat.NotebookNode with cells), got {type(nb).__name__}"
        )
    if not isinstance(solved, bool):
        raise TypeError(f"expected solved as a bool, got {solved!r}")
    out = nbformat.from_dict(nb)
    plan = _plan(out.cells)
    # solution cell -> its check cell
    kept = {j: i for i, p in plan.items() for j in p["solutions"]}
    cells, removed = [], 0
    for i, cell in enumerate(out.cells):
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if "solution" in _tags(cell):
            if i not in kept or not solved:
                removed += 1
            if i in kept and solved:
                cell.metadata["visionbook"] = {"exercise": plan[kept[i]]["label"]}
                cells.append(cell)
            elif i in kept and i == plan[kept[i]]["solutions"][0]:
                meta = {"tags": [STUB_TAG], "visionbook": {"exercise": plan[kept[i]]["label"]}}
                cells.append(nbformat.v4.new_code_cell(plan[kept[i]]["stub"], metadata=meta))
            continue
        if i in plan:
            cell.source = plan[i]["check"]
            cell.metadata["visionbook"] = {"exercise": plan[i]["label"]}
        if cell.cell_type == "markdown":
            text, n = _SOLUTION.subn("", cell.source)
            removed += n
            if n and not text.strip():
                continue
            cell.source = text.rstrip() + "\n" if n else cell.source
        cells.append(cell)
    out.cells = cells
    return out, removed


def write_student_copies(src: str | Path, dest: str | Path, solved: bool = False) -> dict[str, int]:
    """Write student copies of every notebook in ``src`` (a folder or one ``.ipynb``) to ``dest``.

    Args:
        src (str | Path): the chapters' folder or a single notebook.
        dest (str | Path): the output folder (created); it must differ from the source folder.
        solved (bool): write the solution code in place of the stubs (see :func:`strip_solutions`).
            Default False.

    Returns:
        dict: notebook name -> number of solutions removed.

    Introduced in the page "For instructors".
    """
    from visionbook._validate import _expect_path

    src, dest = _expect_path(src, "src"), _expect_path(dest, "dest")
    notebooks = sorted(src.glob("*.ipynb")) if src.is_dir() else [src]
    if not src.exists() or not notebooks or notebooks[0].suffix != ".ipynb":
        raise ValueError(f"expected a folder of .ipynb notebooks or one .ipynb file, got {src}")
    if dest.resolve() == (src if src.is_dir() else src.parent).resolve():
        raise ValueError(
            f"expected an output folder other than the source folder {src}, got {dest}"
        )
    dest.mkdir(parents=True, exist_ok=True)
    report = {}
    for path in notebooks:
        try:
            student, removed = strip_solutions(nbformat.read(path, as_version=4), solved=solved)
        except ValueError as err:
            raise ValueError(f"{path.name}: {err}") from err
        nbformat.write(student, dest / path.name)
        report[path.name] = removed
    return report


def main(argv: list[str] | None = None) -> None:
    """Command line: ``visionbook-student SRC DEST [--solved]``."""
    parser = argparse.ArgumentParser(
        prog="visionbook-student",
        description="Write student copies of the chapters (solutions replaced by stubs).",
    )
    parser.add_argument(
        "src", help="folder of chapter notebooks (for example book/) or one notebook"
    )
    parser.add_argument("dest", help="output folder for the student copies")
    parser.add_argument(
        "--solved", action="store_true", help="keep the solution code in place of the stubs"
    )
    args = parser.parse_args(argv)
    try:
        report = write_student_copies(args.src, args.dest, solved=args.solved)
    except ValueError as err:
        parser.error(str(err))
    for name, removed in report.items():
        cells = nbformat.read(Path(args.dest) / name, as_version=4).cells
        stubs = sum(STUB_TAG in _tags(c) for c in cells)
        print(f"{name}: {removed} solution(s) removed, {stubs} exercise stub(s)")
    print(
        f"wrote {len(report)} {'solved' if args.solved else 'student'} notebook(s) to {args.dest}"
    )


if __name__ == "__main__":
    main()
