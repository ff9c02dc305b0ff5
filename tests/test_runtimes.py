"""visionbook.tools.runtimes: the table of measured chapter costs, and the measurement itself."""

import json
from pathlib import Path

import nbformat
import pytest

from visionbook.tools import runtimes

CPU = {
    "machine": "CPU: 2 cores (x86_64), no GPU",
    "command": "python -m visionbook.tools.runtimes book/*.ipynb",
    "date": "2026-01-02",
    "chapters": {
        "preface": {"title": "Preface", "seconds": 1.3, "peak_mib": 67},
        "cnn": {"title": "Convolutional neural networks", "seconds": 58.6, "peak_mib": 1234},
    },
}
GPU = {
    "machine": "GPU: NVIDIA H100",
    "command": "python -m visionbook.tools.runtimes --kind gpu book/*.ipynb",
    "date": "2026-01-03",
    "chapters": {
        "cnn": {"title": "Convolutional neural networks", "seconds": 12.2, "peak_mib": 2000}
    },
}


def _table(tmp_path, content) -> str:
    path = tmp_path / "runtimes.json"
    path.write_text(json.dumps(content))
    return runtimes.runtime_table(path).data


def test_runtime_table_without_a_gpu_section(tmp_path):
    lines = _table(tmp_path, {"cpu": CPU}).splitlines()
    assert (
        lines[0] == "| Chapter | Wall time, CPU (s) | Peak memory, CPU (MiB) | Wall time, GPU (s) |"
    )
    assert lines[2] == "| Preface | 1 | 67 | not measured |"
    assert lines[3] == "| Convolutional neural networks | 59 | 1,234 | not measured |"
    assert lines[4] == "| **All chapters** | **60** | |  |"  # 1.3 + 58.6 = 59.9
    assert lines[-1] == (
        "CPU: 2 cores (x86_64), no GPU; measured 2026-01-02 with `python -m "
        "visionbook.tools.runtimes book/*.ipynb`."
    )


def test_runtime_table_with_a_gpu_section(tmp_path):
    lines = _table(tmp_path, {"cpu": CPU, "gpu": GPU}).splitlines()
    assert lines[2] == "| Preface | 1 | 67 | not measured |"
    assert lines[3] == "| Convolutional neural networks | 59 | 1,234 | 12 |"
    assert lines[4] == "| **All chapters** | **60** | | **12** |"
    assert lines[-1].endswith(
        "GPU: NVIDIA H100; measured 2026-01-03 with `python -m visionbook.tools.runtimes --kind "
        "gpu book/*.ipynb`."
    )


def test_runtime_table_states_the_whole_book(tmp_path):
    book = {"seconds": 409.4, "chapters": 2, "jobs": 2, "date": "2026-01-04",
            "command": "python -m visionbook.tools.runtimes --book book/*.ipynb"}  # fmt: skip
    last = _table(tmp_path, {"cpu": {**CPU, "book": book}}).splitlines()[-1]
    assert last.endswith(
        "The whole book, executed cold as the build command executes it (2 chapters at a time, one "
        "cache for all): **409 s**, measured 2026-01-04 with `python -m visionbook.tools.runtimes "
        "--book book/*.ipynb`."
    )


def test_runtime_table_missing_file(tmp_path):
    with pytest.raises(
        FileNotFoundError,
        match=(
            f"no runtime measurements at {tmp_path / 'none.json'}; run python -m "
            "visionbook.tools.runtimes"
        ),
    ):
        runtimes.runtime_table(tmp_path / "none.json")


def test_the_books_own_table_renders():
    path = Path(__file__).resolve().parents[1] / "book" / "_data" / "runtimes.json"
    assert runtimes.runtime_table(path).data.startswith("| Chapter |")


def _notebook(path, *code: str) -> None:
    cells = [nbformat.v4.new_markdown_cell("# A tiny chapter\n\nTwo cells.")] + [
        nbformat.v4.new_code_cell(c) for c in code
    ]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)


@pytest.mark.slow
def test_measure_executes_cold_and_offline_and_main_records_it(tmp_path, capsys, monkeypatch):
    # the opposite of a cold offline run in this process; measure() must not pass it on
    monkeypatch.setenv("VISIONBOOK_OFFLINE", "0")
    monkeypatch.setenv("VISIONBOOK_FULL", "1")
    (tmp_path / "warm-cache").mkdir()
    (tmp_path / "warm-cache" / "model.pt").write_bytes(b"cached")
    monkeypatch.setenv("VISIONBOOK_HOME", str(tmp_path / "warm-cache"))
    nb = tmp_path / "tiny.ipynb"
    # the cells fail unless the kernel runs offline, without the full switch, in a fresh
    # cache directory
    _notebook(
        nb,
        "import os\nassert os.environ['VISIONBOOK_OFFLINE'] == '1' and 'VISIONBOOK_FULL' not "
        "in os.environ",
        "from visionbook import config\nassert list(config.data_home().iterdir()) == []\n"
        "block = bytearray(50 * 2**20)",
    )
    output = tmp_path / "out" / "runtimes.json"
    runtimes.main([str(nb), "--output", str(output)])
    entry = json.loads(output.read_text())["cpu"]
    result = entry["chapters"]["tiny"]
    assert result["title"] == "A tiny chapter"
    assert 0 < result["seconds"] < 120
    assert result["peak_mib"] >= 50  # the kernel held a 50 MiB block
    assert entry["command"] == f"python -m visionbook.tools.runtimes {nb}" and entry[
        "machine"
    ].startswith("CPU: ")
    assert capsys.readouterr().out.startswith(
        f"{nb}: {result['seconds']} s, peak {result['peak_mib']} MiB"
    )


@pytest.mark.slow
def test_measure_book_shares_one_cold_cache_and_records_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VISIONBOOK_OFFLINE", "0")
    monkeypatch.setenv("VISIONBOOK_HOME", str(tmp_path / "warm-cache"))
    first, second = tmp_path / "first.ipynb", tmp_path / "second.ipynb"
    cold = (
        "import os\nfrom visionbook import config\nassert os.environ['VISIONBOOK_OFFLINE'] == '1'\n"
    )
    # the first chapter finds the cache empty and writes to it; the second (started after it) finds
    # the file
    _notebook(first, cold + "assert not (config.data_home() / 'model.pt').exists()",
              "import time\ntime.sleep(3)",
              "(config.data_home() / 'model.pt').write_bytes(b'trained')")  # fmt: skip
    _notebook(
        second,
        cold + "import time\ntime.sleep(6)\nassert (config.data_home() / 'model.pt').exists()",
    )
    output = tmp_path / "runtimes.json"
    runtimes.main(["--book", str(first), str(second), "--output", str(output)])
    book = json.loads(output.read_text())["cpu"]["book"]
    assert book["chapters"] == 2 and book["jobs"] == 2 and 6 < book["seconds"] < 120
    assert book["command"] == f"python -m visionbook.tools.runtimes --book {first} {second}"
    assert capsys.readouterr().out.endswith(f"the whole book: {book['seconds']} s\n")
    assert not (tmp_path / "warm-cache").exists()  # nothing written to the caller's cache
    with pytest.raises(ValueError, match="expected a list of .ipynb notebooks"):
        runtimes.measure_book([tmp_path / "missing.ipynb"])


@pytest.mark.slow
def test_measure_reports_a_failing_notebook(tmp_path):
    nb = tmp_path / "broken.ipynb"
    _notebook(nb, "raise ValueError('this chapter is broken')")
    with pytest.raises(RuntimeError, match=f"executing {nb} failed:(.|\n)*this chapter is broken"):
        runtimes.measure(nb)


def test_widget_cells_execute_without_the_output_widget_mimic(monkeypatch):
    """An ``interact`` cell runs to the end, and its figure lands in the cell's own outputs."""
    from nbclient import NotebookClient

    monkeypatch.setattr(
        NotebookClient, "on_comm_open_jupyter_widget", NotebookClient.on_comm_open_jupyter_widget
    )
    runtimes.skip_output_widget_mimic()
    code = (
        "import matplotlib\nmatplotlib.use('module://matplotlib_inline.backend_inline')\n"
        "import matplotlib.pyplot as plt\nimport ipywidgets as widgets\n"
        "def draw(k):\n    plt.plot(range(k))\n    plt.show()\n"
        "widgets.interact(draw, k=(2, 5));"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    assert any("image/png" in out.get("data", {}) for out in outputs), outputs


def test_the_cold_environment_has_empty_caches_inside_its_home(monkeypatch):
    monkeypatch.setenv("VISIONBOOK_FULL", "1")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/warm/inductor")
    env = runtimes._cold_env("/cold/home", gpu=False)
    assert env["VISIONBOOK_HOME"] == "/cold/home" and env["VISIONBOOK_OFFLINE"] == "1"
    assert env["TORCHINDUCTOR_CACHE_DIR"] == "/cold/home/torchinductor"  # torch.compile's code
    assert env["CUDA_VISIBLE_DEVICES"] == "" and "VISIONBOOK_FULL" not in env
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert "CUDA_VISIBLE_DEVICES" not in runtimes._cold_env("/cold/home", gpu=True)
