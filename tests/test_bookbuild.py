"""The build executes each chapter once into jupyter-cache; stale or failed executions are
not reused."""

import os
import time

import nbformat
import pytest
import yaml

from visionbook.tools import bookbuild


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A chapter"),
        *map(nbformat.v4.new_code_cell, sources),
    ]
    nbformat.write(nb, path)
    return path


def test_chapters_are_the_table_of_contents_in_reading_order():
    toc = yaml.safe_load((bookbuild.ROOT / "_toc.yml").read_text())
    found = [p.relative_to(bookbuild.ROOT).with_suffix("").as_posix() for p in bookbuild.chapters()]
    assert found[0] == toc["root"]
    assert found[1] == toc["parts"][0]["chapters"][0]["file"]
    assert len(found) == len(set(found)) and all(
        p.endswith(".ipynb") for p in map(str, bookbuild.chapters())
    )


def test_an_execution_is_cached_reused_and_matched_to_the_source(tmp_path):
    nb = _notebook(tmp_path / "ok.ipynb", "x = 6 * 7", "print(x)")
    cache = tmp_path / "cache"
    assert bookbuild.execute_into_cache([nb], cache, jobs=1) == {"ok": pytest.approx(1, abs=60)}
    record = bookbuild.fresh_execution(nb, cache)
    assert record is not None
    from jupyter_cache import get_cache

    executed = get_cache(str(cache)).get_cache_bundle(record.pk).nb
    assert executed.cells[-1].outputs[0]["text"] == "42\n"  # the cache keeps the code cells
    assert bookbuild.execute_into_cache([nb], cache, jobs=1) == {}  # fresh: not executed again


def test_a_changed_notebook_or_package_makes_the_execution_stale(tmp_path, monkeypatch):
    package = tmp_path / "package"
    package.mkdir()
    (package / "module.py").write_text("x = 1\n")
    monkeypatch.setattr(bookbuild, "PACKAGE", package)
    nb = _notebook(tmp_path / "ok.ipynb", "x = 1")
    cache = tmp_path / "cache"
    bookbuild.execute_into_cache([nb], cache, jobs=1)
    assert bookbuild.fresh_execution(nb, cache) is not None
    later = time.time() + 5
    os.utime(package / "module.py", (later, later))  # the helper package changed after the run
    assert bookbuild.fresh_execution(nb, cache) is None
    os.utime(package / "module.py", (later - 3600, later - 3600))
    assert bookbuild.fresh_execution(nb, cache) is not None
    _notebook(nb, "x = 2")
    assert bookbuild.fresh_execution(nb, cache) is None  # other code: no match


def test_a_failing_chapter_fails_the_build_and_is_not_cached(tmp_path):
    bad = _notebook(tmp_path / "bad.ipynb", "raise ValueError('a self-check failed')")
    good = _notebook(tmp_path / "good.ipynb", "y = 1")
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError, match="(?s)bad.ipynb failed.*a self-check failed"):
        bookbuild.execute_into_cache([bad, good], cache, jobs=2)
    assert bookbuild.fresh_execution(bad, cache) is None
    assert bookbuild.fresh_execution(good, cache) is not None


def test_the_student_copy_runs_inside_the_build_and_leaves_the_chapter_as_it_is(tmp_path):
    v4 = nbformat.v4
    nb = nbformat.read(_notebook(tmp_path / "ex.ipynb"), as_version=4)
    nb.cells = [
        v4.new_markdown_cell("# A chapter"),
        v4.new_code_cell("from visionbook.checks import check_equal\nx = 1"),
        v4.new_markdown_cell("```{exercise} Double it\n:label: ex-double\n\nWrite `d`.\n```"),
        v4.new_code_cell("d = 2 * 21  # twice 21", metadata={"tags": ["solution", "hide-cell"]}),
        v4.new_code_cell('check_equal(d, 42, "d")', metadata={"tags": ["exercise-check"]}),
        v4.new_code_cell("print(d + x)"),
    ]
    path = tmp_path / "ex.ipynb"
    nbformat.write(nb, path)
    cache = tmp_path / "cache"
    bookbuild.execute_into_cache([path], cache, jobs=1)
    from jupyter_cache import get_cache

    record = bookbuild.fresh_execution(path, cache)
    executed = get_cache(str(cache)).get_cache_bundle(record.pk).nb
    code = [c for c in executed.cells if c.cell_type == "code"]  # the cache keeps code cells
    assert [c.source for c in code] == [c.source for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == [1, 2, 3, 4]
    assert code[-1].outputs[0]["text"] == "43\n"
    stubs, solutions = record.data["exercises"]["stubs"], record.data["exercises"]["solutions"]
    assert stubs == {"ex-double": [False, "not attempted yet: define `d`, twice 21"]}
    assert solutions["ex-double"][0] is True
