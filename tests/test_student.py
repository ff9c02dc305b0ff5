"""Student copies: solutions removed, exercises and their checks kept, outputs cleared."""

import subprocess
import sys

import nbformat
import pytest

from visionbook.student import strip_solutions, write_student_copies

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
        v4.new_code_cell("x = 1", outputs=[v4.new_output("stream", text="hi\n")], execution_count=3),
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
    assert "check_equal(answer, 1168)" in text
    assert len(student.cells) == 4  # the colon-fenced solution's cell became empty and went away


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
    done = subprocess.run([sys.executable, "-m", "visionbook.student", str(src), str(dest)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "chapter.ipynb: 3 solution(s) removed" in done.stdout
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
