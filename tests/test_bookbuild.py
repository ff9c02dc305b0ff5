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
