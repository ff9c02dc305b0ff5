"""Student copies: solutions removed, exercises and their checks kept, outputs cleared."""

import subprocess
import sys

import nbformat
import pytest

from visionbook.tools.student import (
    STUB_TAG,
    make_stub,
    strip_solutions,
    wrap_check,
    write_student_copies,
)

EXERCISE = """```{exercise} Count the parameters
:label: ex-params

How many parameters has a 3x3 convolution from 8 to 16 channels?
```"""
SOLUTION = """````{solution} ex-params
:class: dropdown

$3 \\cdot 3 \\cdot 8 \\cdot 16 + 16 = 1168$.

```python
print(1168)
```
````"""


def _chapter() -> nbformat.NotebookNode:
    v4 = nbformat.v4
    cells = [
        v4.new_markdown_cell("# A chapter"),
        v4.new_code_cell(
            "x = 1", outputs=[v4.new_output("stream", text="hi\n")], execution_count=3
        ),
        v4.new_markdown_cell(EXERCISE + "\n\nSome text after.\n\n" + SOLUTION),
        v4.new_markdown_cell(":::{solution} ex-other\nColon-fenced answer.\n:::"),
        v4.new_code_cell("answer = 1168", metadata={"tags": ["solution", "hide-input"]}),
        v4.new_code_cell("check_equal(answer, 1168)", metadata={"tags": ["exercise-check"]}),
    ]
    return v4.new_notebook(cells=cells)


def test_strip_solutions_removes_solutions_and_keeps_exercises_and_checks():
    student, removed = strip_solutions(_chapter())
    text = "\n".join(c.source for c in student.cells)
    assert removed == 3  # two markdown solutions and one tagged code cell
    assert "{exercise} Count the parameters" in text and "Some text after." in text
    assert "{solution}" not in text and "1168$" not in text and "answer = 1168" not in text
    # the check kept, the answer a stub
    assert "check_equal(answer, 1168)" in text and "answer = ..." in text
    # the colon-fenced solution's cell became empty and went away; a stub came
    assert len(student.cells) == 5


def test_strip_solutions_clears_outputs_and_leaves_the_input_alone():
    chapter = _chapter()
    student, _ = strip_solutions(chapter)
    code = [c for c in student.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert chapter.cells[1].outputs and len(chapter.cells) == 6


def test_command_line_writes_copies(tmp_path):
    src, dest = tmp_path / "book", tmp_path / "student"
    src.mkdir()
    nbformat.write(_chapter(), src / "chapter.ipynb")
    done = subprocess.run(
        [sys.executable, "-m", "visionbook.tools.student", str(src), str(dest)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "chapter.ipynb: 3 solution(s) removed, 1 exercise stub(s)" in done.stdout
    copy = nbformat.read(dest / "chapter.ipynb", as_version=4)
    nbformat.validate(copy)
    assert not any("solution" in c.metadata.get("tags", []) for c in copy.cells)


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(ValueError, match="expected a folder of .ipynb notebooks"):
        write_student_copies(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "book").mkdir()
    nbformat.write(_chapter(), tmp_path / "book" / "c.ipynb")
    with pytest.raises(ValueError, match="other than the source folder"):
        write_student_copies(tmp_path / "book", tmp_path / "book")
    with pytest.raises(TypeError, match="expected a notebook"):
        strip_solutions({"cells": []})


# --- stubs generated from the solutions, checks that report --------------------------------------

EXERCISES = [
    "```{exercise} Double it\n:label: ex-double\n\nWrite `double(x)` and apply it to 2.\n```",
    "```{solution} ex-double\n:class: dropdown\n\nMultiply by two.\n```",
]
DOUBLE = 'def double(x, times=2):\n    """Twice x."""\n    return times * x\n\n\n'
DOUBLE += "four = double(2)  # double(2)\nunused = 0"
NAME = (
    "# stub: the name of the first programmer\nimport math\nfrom math import pi as PI\n"
    'name = "Ada"  # fmt: skip'
)


def _exercises() -> nbformat.NotebookNode:
    v4, solution, check = (
        nbformat.v4,
        {"tags": ["solution", "hide-cell"]},
        {"tags": ["exercise-check"]},
    )
    cells = [
        v4.new_markdown_cell("# Tiny"),
        v4.new_code_cell("from visionbook.checks import check_equal, check_true"),
        v4.new_markdown_cell("\n\n".join(EXERCISES)),
        v4.new_code_cell(DOUBLE, metadata=solution),
        v4.new_code_cell(
            'check_equal(double(21), 42, "double(21)")\ncheck_equal(four, 4, "four")',
            metadata=check,
        ),
        v4.new_markdown_cell("```{exercise} Name it\n:label: ex-name\n\nName her.\n```"),
        v4.new_code_cell("x = 1", metadata=solution),
        v4.new_code_cell(NAME, metadata=solution),
        v4.new_code_cell(
            'check_true(name == "Ada" and round(math.pi) == 3, "Ada")', metadata=check
        ),
    ]
    return v4.new_notebook(cells=cells)


def _run_all(nb: nbformat.NotebookNode) -> None:
    """Execute a notebook's code cells in order, in one namespace, as a kernel would (no
    kernel here)."""
    namespace: dict = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            exec(compile(cell.source, "<cell>", "exec"), namespace)


def test_make_stub_keeps_signatures_docstrings_and_hints_but_no_answer():
    stub, needs = make_stub(
        [DOUBLE], 'check_equal(double(21), 42, "x")\ncheck_equal(four, 4, "four")', "Double it"
    )
    assert stub == (
        '# Exercise "Double it": write the code that defines the names below '
        "(replace each `...`).\n\n\n"
        'def double(x, times=2):\n    """Twice x."""\n    raise NotImplementedError("double")\n\n\n'
        "four = ...  # double(2)"
    )
    assert needs == {"double": "Twice x.", "four": "double(2)"}
    stub, needs = make_stub(
        ["x = 1", NAME], 'check_true([math.pi for name in "a"], "no")\ncheck_true(name, "n")', "T"
    )
    # a pragma is no hint
    assert stub == '# Exercise "T": the name of the first programmer\nimport math\nname = ...'
    assert needs == {"name": "the name of the first programmer"}


def test_make_stub_refuses_a_check_that_cannot_fail_on_a_stub_and_bad_code():
    with pytest.raises(
        ValueError, match="expected a check that reads a name its solution defines, got one"
    ):
        make_stub(["x = 1"], "y = 2\ncheck_true(y == 2, 'y')", "T")
    with pytest.raises(
        ValueError, match="expected Python code in solution cell 0, got a syntax error"
    ):
        make_stub(["x = ("], "check_true(x, 'x')", "T")
    with pytest.raises(TypeError, match="expected solutions as a non-empty list of source strings"):
        make_stub("x = 1", "check_true(x, 'x')", "T")


def test_wrap_check_indents_the_check_under_exercise():
    wrapped = wrap_check("a = 1\ncheck_true(a, 'a')", "ex-a", {"a": 'the "a"'})
    assert wrapped.splitlines() == [
        "from visionbook.checks import exercise",
        "",
        'with exercise("ex-a", a=\'the "a"\'):',
        "    a = 1",
        "    check_true(a, 'a')",
    ]
    long = wrap_check("check_true(a, 'a')", "ex-a", {"a": "x" * 90})
    assert long.splitlines()[2:5] == ["with exercise(", '    "ex-a",', f'    a="{"x" * 90}",']


def test_student_copy_has_stubs_and_runs_to_the_end_saying_not_attempted(capsys):
    student, removed = strip_solutions(_exercises())
    stubs = [c for c in student.cells if STUB_TAG in c.metadata.get("tags", [])]
    assert removed == 4 and len(stubs) == 2  # three code cells and one markdown solution
    assert [c.metadata["visionbook"]["exercise"] for c in stubs] == ["ex-double", "ex-name"]
    assert not any('name = "Ada"' in c.source or "times * x" in c.source for c in student.cells)
    _run_all(student)
    assert capsys.readouterr().out.splitlines() == [
        "○ ex-double: not attempted yet: define `double`, Twice x.; `four`, double(2)",
        "○ ex-name: not attempted yet: define `name`, the name of the first programmer",
    ]


def test_solved_copy_keeps_the_solutions_in_place_of_the_stubs_and_passes(capsys):
    solved, removed = strip_solutions(_exercises(), solved=True)
    assert removed == 1 and not any(STUB_TAG in c.metadata.get("tags", []) for c in solved.cells)
    assert [
        c.metadata.get("visionbook", {}).get("exercise")
        for c in solved.cells
        if c.cell_type == "code"
    ] == [None, "ex-double", "ex-double", "ex-name", "ex-name", "ex-name"]  # fmt: skip
    _run_all(solved)
    out = capsys.readouterr().out
    assert "✓ ex-double: all checks pass" in out and "✓ ex-name: all checks pass" in out


def test_an_exercise_check_needs_its_solution_and_its_exercise_above():
    nb = _exercises()
    nb.cells[3].metadata["tags"] = []
    with pytest.raises(
        ValueError, match="expected solution code cells right before the exercise-check cell 4"
    ):
        strip_solutions(nb)
    nb = _exercises()
    nb.cells[2].source = "No directive here."
    with pytest.raises(
        ValueError, match=r"expected an \{exercise\} directive above the exercise-check cell 3"
    ):
        strip_solutions(nb)
    with pytest.raises(TypeError, match="expected solved as a bool"):
        strip_solutions(nb, solved="yes")
