"""Measured cost of each chapter: execute notebooks cold and record wall time and peak memory.

``python -m visionbook.tools.runtimes book/*.ipynb`` executes every chapter in a fresh kernel, with
an empty cache directory (so zoo models are trained, as on a first run) and the network switched
off, and writes ``book/_data/runtimes.json``; the preface and the instructor guide render it with
:func:`runtime_table`. Each chapter is measured alone, cold: the budget of one chapter.

``python -m visionbook.tools.runtimes --book book/*.ipynb`` measures the budget of the whole book:
the chapters executed as the build command executes them
(:func:`visionbook.tools.bookbuild.execute_into_cache`, two at a time, each in a fresh kernel), cold
and offline, starting from one empty cache directory that every chapter shares (a model trained by
one chapter serves the next, as for a reader who builds the book). Introduced in the preface.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_JSON = Path("book/_data/runtimes.json")


def _title(notebook: Path) -> str:
    import nbformat

    for cell in nbformat.read(notebook, as_version=4).cells:
        for line in cell.source.splitlines() if cell.cell_type == "markdown" else []:
            if line.startswith("# "):
                return line[2:].strip()
    return notebook.stem


def skip_output_widget_mimic() -> None:
    """Stop nbclient from imitating a front end for ``ipywidgets.Output`` (which ``interact`` uses).

    The imitation answers the kernel on the shell channel from inside the task that reads IOPub,
    while another task waits on that shell channel for the cell's reply; now and then that reply
    is never delivered and the cell hangs until its timeout (jupyter/nbclient#312, still open).
    The book's widget cells are tagged ``remove-output`` and show a static figure instead, so
    nothing on the page depends on the imitation. Called by the book build (``book/_ext``) and by
    the measurements here, so both execute chapters the same way.
    """
    from nbclient.client import NotebookClient

    NotebookClient.on_comm_open_jupyter_widget = lambda self, msg: None


def _execute_one(
    notebook: str, timeout: int, save: str | None = None, workdir: str | None = None
) -> None:
    """Child process: execute one notebook, print its wall time and the kernel's peak RSS.

    With ``save``, the executed notebook is written there (:mod:`visionbook.tools.bookbuild`
    caches it). The kernel works in ``workdir`` (default: the notebook's folder).
    """
    import nbformat
    from nbclient import NotebookClient

    skip_output_widget_mimic()
    nb = nbformat.read(notebook, as_version=4)
    start = time.perf_counter()
    client = NotebookClient(
        nb,
        timeout=timeout,
        record_timing=False,
        resources={"metadata": {"path": workdir or str(Path(notebook).parent)}},
    )
    # no timing metadata, as the book build executes: the cached copy then matches the source
    client.execute()
    seconds = time.perf_counter() - start
    if save:
        nbformat.write(nb, save)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the kernel, once it has exited
    cpu = usage.ru_utime + usage.ru_stime
    print(
        json.dumps(
            {
                "seconds": round(seconds, 1),
                "cpu_seconds": round(cpu, 1),
                "peak_mib": round(usage.ru_maxrss / 1024),
            }
        )
    )


def _cold_env(home: str, gpu: bool) -> dict:
    """This process's environment for a cold, offline kernel: ``home`` as an empty cache (and
    inside it an empty cache for the code ``torch.compile`` generates, which otherwise outlives
    the run in the system's temporary folder), no full mode, no progress bars, and no GPU unless
    ``gpu``."""
    env = {
        **os.environ,
        "VISIONBOOK_HOME": home,
        "VISIONBOOK_OFFLINE": "1",
        "VISIONBOOK_PROGRESS": "0",
        "TORCHINDUCTOR_CACHE_DIR": str(Path(home) / "torchinductor"),
        "TRITON_CACHE_DIR": str(Path(home) / "triton"),
    }
    env.pop("VISIONBOOK_FULL", None)
    if not gpu:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def measure(notebook: Path, timeout: int = 600, *, gpu: bool = True) -> dict:
    """Execute ``notebook`` cold in a child process; return ``{"seconds", "peak_mib"}``.

    Cold means a fresh kernel, an empty ``VISIONBOOK_HOME`` (zoo models are trained as on a first
    run), ``VISIONBOOK_OFFLINE=1`` and no ``VISIONBOOK_FULL``.

    Args:
        notebook (Path): the ``.ipynb`` file.
        timeout (int): seconds allowed per cell. Default 600.
        gpu (bool): let the kernel see a GPU if there is one; False hides it. Default True.

    Returns:
        dict: wall ``seconds`` of the execution and the kernel's peak memory ``peak_mib``.

    >>> measure(Path("book/preface.ipynb"))  # doctest: +SKIP
    {'seconds': 1.3, 'peak_mib': 67}

    Introduced in the preface.
    """
    from visionbook._validate import _expect_int, _expect_path

    _expect_path(notebook, "notebook")
    _expect_int(timeout, "timeout")
    with tempfile.TemporaryDirectory() as home:
        env = _cold_env(home, gpu)
        out = subprocess.run(
            [sys.executable, "-m", "visionbook.tools.runtimes", "--one", str(notebook),
             "--timeout", str(timeout)],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"executing {notebook} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_book(
    notebooks: list[Path], timeout: int = 600, *, gpu: bool = True, jobs: int = 2
) -> dict:
    """Execute ``notebooks`` as the book build does, cold, from one shared empty cache; time it all.

    Args:
        notebooks (list of Path): the chapters.
        timeout (int): seconds allowed per cell. Default 600.
        gpu (bool): let the kernels see a GPU if there is one; False hides it. Default True.
        jobs (int): chapters executed at once, as ``python -m visionbook.tools.bookbuild --jobs``.
            Default 2.

    Returns:
        dict: wall ``seconds`` for all the chapters, ``chapters`` (how many) and ``jobs``.

    Introduced in the preface.
    """
    from visionbook._validate import _expect_int, _expect_path
    from visionbook.tools.bookbuild import execute_into_cache

    _expect_int(timeout, "timeout")
    if not isinstance(notebooks, list | tuple) or not notebooks:
        raise TypeError(f"expected a non-empty list of .ipynb notebooks, got {notebooks!r}")
    paths = [_expect_path(nb, "notebook") for nb in notebooks]
    if not all(p.suffix == ".ipynb" and p.is_file() for p in paths):
        raise ValueError(f"expected a list of .ipynb notebooks, got {notebooks!r}")
    with tempfile.TemporaryDirectory() as home, tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        execute_into_cache(
            [p.resolve() for p in paths], Path(cache), jobs, timeout, env=_cold_env(home, gpu)
        )
        seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 1), "chapters": len(notebooks), "jobs": jobs}


def _machine(gpu: bool) -> str:
    import torch

    if gpu and torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)}"
    return f"CPU: {os.cpu_count()} cores ({platform.machine()}), no GPU"


def main(argv: list[str] | None = None) -> None:
    """Command line: measure notebooks and merge the results into the JSON file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--output", type=Path, default=DEFAULT_JSON)
    parser.add_argument(
        "--kind", choices=("cpu", "gpu"), default="cpu", help="which column to write"
    )
    parser.add_argument("--timeout", type=int, default=600)
    parser.add_argument(
        "--book", action="store_true", help="time the whole book as the build executes it"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        return _execute_one(args.one, args.timeout, args.save, args.workdir)
    gpu = args.kind == "gpu"  # the CPU column is measured with any GPU hidden
    table = json.loads(args.output.read_text()) if args.output.exists() else {}
    entry = table.setdefault(args.kind, {"machine": _machine(gpu), "chapters": {}})
    shown = (
        " ".join(map(str, args.notebooks))
        if len(args.notebooks) <= 3
        else f"{args.notebooks[0].parent}/*.ipynb"
    )
    kind = " --kind gpu" if gpu else ""
    if args.book:
        entry["book"] = {
            **measure_book(args.notebooks, args.timeout, gpu=gpu),
            "date": time.strftime("%Y-%m-%d"),
            "command": f"python -m visionbook.tools.runtimes{kind} --book {shown}",
        }
        print(f"the whole book: {entry['book']['seconds']} s", flush=True)
        args.output.write_text(json.dumps(table, indent=1) + "\n")
        return None
    entry.update(
        machine=_machine(gpu),
        command=f"python -m visionbook.tools.runtimes{kind} {shown}",
        date=time.strftime("%Y-%m-%d"),
    )
    for nb in args.notebooks:
        result = measure(nb, args.timeout, gpu=gpu)
        entry["chapters"][nb.stem] = {"title": _title(nb), **result}
        print(f"{nb}: {result['seconds']} s, peak {result['peak_mib']} MiB", flush=True)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(table, indent=1) + "\n")


def runtime_table(path: str | os.PathLike | None = None):
    """The measured chapter costs as a Markdown table (displayed in a notebook).

    Args:
        path (str | PathLike | None): the JSON file. Default: ``_data/runtimes.json`` beside
            the notebook, or ``book/_data/runtimes.json`` from the repository root.

    Returns:
        IPython.display.Markdown.

    Introduced in the preface.
    """
    from IPython.display import Markdown

    from visionbook._validate import _expect_path

    candidates = (
        [_expect_path(path)]
        if path not in (None, "")
        else [Path("_data/runtimes.json"), DEFAULT_JSON]
    )
    found = next((p for p in candidates if p.exists()), None)
    if found is None:
        raise FileNotFoundError(
            f"no runtime measurements at {' or '.join(map(str, candidates))}; run python -m "
            "visionbook.tools.runtimes"
        )
    table = json.loads(found.read_text())
    cpu, gpu = table.get("cpu", {}), table.get("gpu", {})
    chapters, gpu_chapters = cpu.get("chapters", {}), gpu.get("chapters", {})
    # kernel CPU time, robust to a shared machine
    with_cpu = any("cpu_seconds" in c for c in chapters.values())
    rows = [
        "| Chapter | Wall time, CPU (s) |"
        + (" Kernel CPU time (s) |" if with_cpu else "")
        + " Peak memory, CPU (MiB) | Wall time, GPU (s) |"
    ]
    rows.append("| --- | ---: |" + (" ---: |" if with_cpu else "") + " ---: | ---: |")
    for stem, c in chapters.items():
        g = f"{gpu_chapters[stem]['seconds']:.0f}" if stem in gpu_chapters else "not measured"
        kernel = (
            f" {c['cpu_seconds']:.0f} |"
            if with_cpu and "cpu_seconds" in c
            else (" ? |" if with_cpu else "")
        )
        rows.append(f"| {c['title']} | {c['seconds']:.0f} |{kernel} {c['peak_mib']:,} | {g} |")
    cpu_total = sum(c["seconds"] for c in cpu.get("chapters", {}).values())
    gpu_total = (
        f"**{sum(g['seconds'] for g in gpu_chapters.values()):.0f}**" if gpu_chapters else ""
    )
    cpu_kernel = (
        f" **{sum(c.get('cpu_seconds', 0) for c in chapters.values()):.0f}** |" if with_cpu else ""
    )
    rows.append(f"| **All chapters** | **{cpu_total:.0f}** |{cpu_kernel} | {gpu_total} |")
    note = (
        f"\n\n{cpu.get('machine', 'CPU: ?')}; measured {cpu.get('date', '?')} with "
        f"`{cpu.get('command', '?')}`."
    )
    if cpu.get("book"):
        book = cpu["book"]
        note += (f" Each chapter is measured alone, so each trains the models it needs. The whole"
                 f" book, executed cold as the build command executes it ({book['jobs']} chapters"
                 f" at a time, one cache for all): **{book['seconds']:.0f} s**, measured"
                 f" {book['date']} with `{book['command']}`.")  # fmt: skip
    note += f" {cpu['note']}" if cpu.get("note") else ""
    if gpu:
        note += (
            f" {gpu.get('machine', 'GPU: ?')}; measured {gpu.get('date', '?')} with "
            f"`{gpu.get('command', '?')}`."
        )
    return Markdown("\n".join(rows) + note)


if __name__ == "__main__":
    main()
