"""Build the book executing every chapter once, and let the chapter tests reuse that execution.

``python -m visionbook.tools.bookbuild`` is the one build command of the book, used by the README,
by CI (``.ci/run``) and by the workflow that publishes the HTML:

1. every chapter listed in ``_toc.yml`` that has no fresh execution in the build's cache
   (``_build/.jupyter_cache``) is executed in its own fresh kernel, two at a time by default, the
   way the Jupyter Book build itself executes them (nbclient, working directory ``book/``, the
   configured cell timeout, errors not allowed), and the executed notebook is stored in the cache;
   the same execution runs the chapter's student copy inside it (each exercise's stub and check
   before the first solution, the checks again after the solutions;
   :func:`visionbook.tools.grade.with_student_run`), and the grader's scores of both parts are
   stored with it, while the stored notebook holds the chapter's own cells only (a stub binds
   only names that its solution binds again, so the chapter's cells compute what they would alone);
2. ``jupyter-book build . -W --keep-going`` then finds every chapter in the cache and only renders.

The cache is jupyter-cache's, keyed by a hash of each notebook's code, so a chapter whose code did
not change is not executed again. Because that hash does not see the helper package, an execution
counts as fresh only if it is newer than the notebook and than every file of ``src/visionbook``
(:func:`fresh_execution`); a stale one is executed again.

The notebook tests (the repository's ``conftest.py``) use the same rule: ``pytest --nbval-lax book``
checks a chapter with a fresh execution cell by cell from that execution instead of executing it a
second time, and the grader's book test (``tests/test_grader.py``) reads the stored scores.
Introduced in the preface (how the book is built and tested).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = Path(__file__).resolve().parents[1]  # src/visionbook
CACHE = Path("_build/.jupyter_cache")


def chapters(root: Path = ROOT) -> list[Path]:
    """The notebooks listed in ``_toc.yml``, in reading order.

    >>> chapters()[0].name
    'preface.ipynb'

    Introduced in the preface.
    """
    import yaml

    from visionbook._validate import _expect_path

    root = _expect_path(root, "root")
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "file" in node or "root" in node:
                found.append(node.get("root", node.get("file")))
            for key, value in node.items():
                if key not in ("file", "root"):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load((root / "_toc.yml").read_text()))
    paths = [root / (f if f.endswith(".ipynb") else f"{f}.ipynb") for f in found]
    return [p for p in paths if p.exists()]


def _newest_source(notebook: Path) -> float:
    """The latest modification time of the notebook and of every file of the helper package."""
    package = [p.stat().st_mtime for p in PACKAGE.rglob("*.py")]
    return max([notebook.stat().st_mtime, *package])


def fresh_execution(notebook: Path, cache_path: Path | None = None):
    """The cache record of ``notebook``'s execution if it is fresh, else None.

    Fresh means: made from this notebook's current code (jupyter-cache's hash) and after the last
    change to the notebook and to ``src/visionbook``.

    Args:
        notebook (Path): a chapter.
        cache_path (Path | None): the build's cache. Default ``_build/.jupyter_cache`` at the root.

    Returns:
        jupyter-cache's record (``.pk``, ``.created``), or None.

    Introduced in the preface.
    """
    import nbformat
    from jupyter_cache import get_cache

    from visionbook._validate import _expect_path

    notebook = _expect_path(notebook, "notebook")
    cache_path = _expect_path(cache_path, "cache_path") if cache_path is not None else ROOT / CACHE
    if not cache_path.exists():
        return None
    try:
        record = get_cache(str(cache_path)).match_cache_notebook(
            nbformat.read(notebook, as_version=4)
        )
    except KeyError:
        return None
    created = record.created.replace(tzinfo=datetime.UTC).timestamp()
    return record if created > _newest_source(notebook) else None


def _execute(
    notebook: Path, timeout: int, threads: int | None, env: dict | None = None
) -> tuple[Path, float, dict]:
    """Execute one chapter, its student copy's exercises run inside it, in a child process.

    Returns:
        tuple: the path of the chapter as executed (the student part removed again), the wall
        time, and the grader's scores of the stubs and of the solutions
        (:func:`visionbook.tools.grade.split_student_run`).
    """
    import nbformat

    from visionbook.tools.grade import split_student_run, with_student_run

    env = dict(os.environ if env is None else env, VISIONBOOK_PROGRESS="0")
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    out = Path(tempfile.mkdtemp(prefix="visionbook-")) / notebook.name
    run, labels = with_student_run(nbformat.read(notebook, as_version=4))
    source = out.with_name(f"with-student-run-{notebook.name}")
    nbformat.write(run, source)
    command = [sys.executable, "-m", "visionbook.tools.runtimes", "--one", str(source),
               "--workdir", str(notebook.parent), "--timeout", str(timeout)]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(
        [*command, "--save", str(out)], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"executing {notebook.name} failed:\n{result.stderr[-4000:]}")
    wall = time.perf_counter() - start
    chapter, scores = split_student_run(nbformat.read(out, as_version=4), labels)
    nbformat.write(chapter, out)
    return out, wall, scores


def execute_into_cache(
    notebooks: list[Path],
    cache_path: Path,
    jobs: int = 2,
    timeout: int = 300,
    env: dict | None = None,
) -> dict[str, float]:
    """Execute the chapters that have no fresh execution, ``jobs`` at a time, into the
    build's cache.

    Args:
        notebooks (list of Path): the chapters.
        cache_path (Path): jupyter-cache's folder, as the book build uses it.
        jobs (int): chapters executed at once; each kernel then gets ``cpu_count // jobs`` threads.
        timeout (int): seconds allowed per cell.
        env (dict | None): the kernels' environment. Default: this process's.

    Returns:
        dict: chapter name -> wall seconds of its execution (chapters already fresh are left out).

    Raises:
        RuntimeError: a chapter failed; its error is in the message (the others still finish).

    Introduced in the preface.
    """
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    from visionbook._validate import _expect_int, _expect_path

    if not isinstance(notebooks, list | tuple):
        raise TypeError(f"expected notebooks as a list of paths, got {type(notebooks).__name__}")
    notebooks = [_expect_path(nb, f"notebooks[{i}]") for i, nb in enumerate(notebooks)]
    cache_path = _expect_path(cache_path, "cache_path")
    _expect_int(jobs, "jobs")
    _expect_int(timeout, "timeout")
    cache, lock = get_cache(str(cache_path)), threading.Lock()
    todo = [nb for nb in notebooks if fresh_execution(nb, cache_path) is None]
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    seconds, failures = {}, []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {
            pool.submit(_execute, nb, timeout, threads, env): nb for nb in _longest_first(todo)
        }
        for future in as_completed(futures):
            nb = futures[future]
            try:
                path, wall, scores = future.result()
            except RuntimeError as error:
                failures.append(str(error))
                print(f"[build] {nb.name}: FAILED", flush=True)
                continue
            with lock:
                data = {"execution_seconds": wall, "exercises": scores}
                bundle = CacheBundleIn(nbformat.read(path, as_version=4), str(nb), data=data)
                cache.cache_notebook_bundle(bundle, check_validity=False, overwrite=True)
            seconds[nb.stem] = round(wall, 1)
            print(f"[build] {nb.name}: executed in {wall:.0f} s", flush=True)
    if failures:
        raise RuntimeError("\n\n".join(failures))
    return seconds


def _longest_first(notebooks: list[Path]) -> list[Path]:
    """Order by the measured cost in book/_data/runtimes.json, so the slowest start first."""
    table = ROOT / "book" / "_data" / "runtimes.json"
    measured = (
        json.loads(table.read_text()).get("cpu", {}).get("chapters", {}) if table.exists() else {}
    )
    return sorted(notebooks, key=lambda nb: -measured.get(nb.stem, {}).get("seconds", 0))


def main(argv: list[str] | None = None) -> int:
    """Command line: execute the chapters into the cache, then run the Jupyter Book build."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="chapters executed at once (default 2)")
    parser.add_argument(
        "--timeout", type=int, default=300, help="seconds allowed per cell (default 300)"
    )
    parser.add_argument(
        "--execute-only", action="store_true", help="fill the cache, do not render the HTML"
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"expected --jobs >= 1, got {args.jobs}")
    os.chdir(ROOT)
    start = time.perf_counter()
    seconds = execute_into_cache(chapters(), ROOT / CACHE, jobs=args.jobs, timeout=args.timeout)
    print(f"[build] {len(seconds)} chapters executed in {time.perf_counter() - start:.0f} s "
          f"({args.jobs} at a time; the others were fresh in the cache)", flush=True)  # fmt: skip
    if args.execute_only:
        return 0
    return subprocess.run(
        ["jupyter-book", "build", ".", "-W", "--keep-going"], check=False
    ).returncode


if __name__ == "__main__":
    sys.exit(main())
