"""Repository checks: the table of contents, clean notebooks, the Colab cell, lint, and the two
dependency lists (exact pins for the known-good environment, lower bounds for the package)."""

import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").rglob("*.ipynb"))
NOTEBOOKS = [
    p for p in NOTEBOOKS if ".ipynb_checkpoints" not in p.parts and "_build" not in p.parts
]


def _ids(paths):
    return [str(p.relative_to(ROOT)) for p in paths]


def _toc_files() -> list[str]:
    """Every ``file:`` of _toc.yml (root, parts, chapters and nested sections), without suffix."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    found = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                found.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    return [re.sub(r"\.(ipynb|md)$", "", f) for f in found]


def _colab_cell() -> str:
    """The Colab cell exactly as CONTRIBUTING.md gives it (the python block of its step 2)."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    step = text[text.index("The Colab cell") :]
    match = re.search(r"```python\n(.*?)\n\s*```", step, re.DOTALL)
    assert match, "CONTRIBUTING.md has no python block after 'The Colab cell'"
    return textwrap.dedent(match.group(1))


def _repository_url() -> str:
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


def test_there_are_notebooks():
    assert any(p.stem == "preface" for p in NOTEBOOKS)


def test_every_notebook_is_in_the_table_of_contents():
    listed = set(_toc_files())
    missing = [
        str(p.relative_to(ROOT))
        for p in NOTEBOOKS
        if str(p.relative_to(ROOT).with_suffix("")) not in listed
    ]
    assert not missing, f"notebooks missing from _toc.yml: {missing}"


def test_every_toc_entry_exists():
    files = _toc_files()
    absent = [
        f for f in files if not ((ROOT / f"{f}.ipynb").exists() or (ROOT / f"{f}.md").exists())
    ]
    assert not absent, f"_toc.yml lists pages that do not exist: {absent}"
    assert len(files) == len(set(files)), "a page is listed twice in _toc.yml"


def test_every_chapter_has_a_measured_cost_within_the_budget():
    """The preface's table (book/_data/runtimes.json, written by python -m
    visionbook.tools.runtimes)."""
    measured = json.loads((ROOT / "book" / "_data" / "runtimes.json").read_text())["cpu"][
        "chapters"
    ]
    chapters = [Path(f).name for f in _toc_files() if (ROOT / f"{f}.ipynb").exists()]
    unmeasured = [c for c in chapters if c not in measured]
    assert not unmeasured, (
        f"chapters without a measured run time: {unmeasured}; run python -m "
        "visionbook.tools.runtimes on them"
    )
    over = {c: measured[c]["seconds"] for c in chapters if measured[c]["seconds"] > 90}
    assert not over, f"chapters over the 90 s budget on the 2-core CPU: {over}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and (c.outputs or c.execution_count is not None)
    ]
    assert not dirty, (
        f"{path.name}: cells {dirty} have outputs or execution counts; run jupyter nbconvert "
        f"--clear-output --inplace {path.name}"
    )
    assert "widgets" not in nb.metadata, f"{path.name}: saved widget state in the metadata"


MAX_CELL_LINES, MAX_LINE_CHARS = 15, 100


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_first_code_cell_is_the_colab_cell(path):
    code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code cell"
    first = code[0]
    assert first.source.strip() == _colab_cell().strip(), (
        f"{path.name}: the first code cell is not the Colab cell of CONTRIBUTING.md"
    )
    assert "remove-cell" in first.metadata.get("tags", []), (
        f"{path.name}: the Colab cell is not tagged remove-cell"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_code_cells_and_lines_are_short(path):
    """Every code cell at most 15 lines and every code line at most 100 characters.

    The Colab cell (the first code cell) and the setup cell (the second code cell, the imports)
    are exempt from the 15 lines, not from the 100 characters. Lines are counted as the
    notebook stores them, blank lines included.
    """
    code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    long_cells, long_lines = [], []
    for k, cell in enumerate(code):
        lines = cell.source.split("\n")
        if k >= 2 and len(lines) > MAX_CELL_LINES:
            long_cells.append(f"code cell {k} (id {cell.get('id')}): {len(lines)} lines")
        long_lines += [
            f"code cell {k} (id {cell.get('id')}), line {i + 1}: {len(line)} characters"
            for i, line in enumerate(lines)
            if len(line) > MAX_LINE_CHARS
        ]
    assert not long_cells, (
        f"{path.name}: code cells over {MAX_CELL_LINES} lines (split them at a natural point, "
        "CONTRIBUTING.md): " + "; ".join(long_cells)
    )
    assert not long_lines, (
        f"{path.name}: code lines over {MAX_LINE_CHARS} characters: " + "; ".join(long_lines)
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_solution_code_folds_away_with_its_output(path):
    cells = nbformat.read(path, as_version=4).cells
    tags = [set(c.metadata.get("tags", [])) for c in cells if c.cell_type == "code"]
    open_answers = [i for i, t in enumerate(tags) if "solution" in t and "hide-cell" not in t]
    assert not open_answers, (
        f"{path.name}: solution code cells {open_answers} are not tagged hide-cell "
        "(CONTRIBUTING.md)"
    )


def test_colab_cell_installs_from_the_configured_repository():
    url = re.search(r'git\+(\S+?)"', _colab_cell())
    assert url and url.group(1).rstrip("/") == _repository_url().rstrip("/")


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_lint():
    result = _ruff("check", ".", "--no-cache")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]


def test_ruff_format():
    result = _ruff("format", "--check", ".", "--no-cache")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]


def test_requirements_pin_every_package_and_end_with_the_helper():
    lines = [
        line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
    ]
    lines = [line for line in lines if line]
    assert lines[-1] == "-e .", "requirements.txt must end by installing the helper package: -e ."
    unpinned = [
        line
        for line in lines[:-1]
        if not re.fullmatch(r"[A-Za-z0-9._\[\],-]+==[A-Za-z0-9.+!-]+", line)
    ]
    assert not unpinned, f"requirements.txt lines without an exact == pin: {unpinned}"
    names = [re.split(r"[\[=]", line)[0].lower().replace("_", "-") for line in lines[:-1]]
    assert len(names) == len(set(names)), "a package is pinned twice in requirements.txt"


def test_pyproject_states_lower_bounds_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dependencies = list(project["dependencies"]) + [
        d for extra in project.get("optional-dependencies", {}).values() for d in extra
    ]
    pinned = [d for d in dependencies if "==" in d or "===" in d or "~=" in d]
    assert not pinned, (
        f"pyproject.toml must not pin exact versions (Colab keeps its own torch): {pinned}"
    )
    assert any(d.startswith("torch>=") for d in project["dependencies"])


def test_every_pyproject_dependency_is_pinned_in_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = {
        line.split("==")[0].strip().lower()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line
    }
    names = [re.split(r"[<>=!~ \[]", d)[0].lower() for d in project["dependencies"]]
    assert not [n for n in names if n not in pinned], (
        "pyproject dependencies not pinned in requirements.txt: "
        f"{[n for n in names if n not in pinned]}"
    )


def _readme_commands() -> list[str]:
    """The commands of the README's set-up section, in order (its bash blocks)."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Set up, build, test") : text.index("## What the book covers")]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.DOTALL)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def _normalised(command: str) -> str:
    """A command without leading VAR=value settings, ``python3 -m``/``python -m``, pip's ``-q`` and
    pytest's ``--durations=N`` (CI lists the slowest tests; it changes nothing that is tested)."""
    words = command.split()
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
        words.pop(0)
    text = re.sub(r" --durations=\d+", "", " ".join(words).replace(" -q ", " "))
    return re.sub(r"^python3? -m ", "", text)


def test_ci_runs_the_readme_commands_in_order():
    """The README's install, build and test commands are exactly what .ci/run executes, in
    that order."""
    script = (ROOT / ".ci" / "run").read_text().replace("\\\n", " ")
    ci = [
        _normalised(line)
        for line in script.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    readme = [_normalised(c) for c in _readme_commands()]
    assert len(readme) == 3, (
        f"expected install, build and test commands in the README, got {readme}"
    )
    missing = [c for c in readme if c not in ci]
    assert not missing, f".ci/run does not run these README commands: {missing}"
    assert [ci.index(c) for c in readme] == sorted(ci.index(c) for c in readme), (
        ".ci/run runs them out of order"
    )


def test_the_publishing_workflow_publishes_what_ci_built_and_tested():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    steps = workflow["jobs"]["build"]["steps"]
    runs = [s["run"] for s in steps if "run" in s]
    assert runs == ["bash .ci/run"], f"the publishing build must be exactly .ci/run, got {runs}"
    assert "env" not in workflow["jobs"]["build"], (
        "the publishing build must use CI's settings, not its own"
    )
    upload = [s for s in steps if "upload-pages-artifact" in s.get("uses", "")]
    assert upload and steps.index(upload[0]) > steps.index(next(s for s in steps if "run" in s))


# Imported by chapters but provided by every Jupyter kernel (Colab's included), so not declared.
KERNEL_PROVIDED = {"IPython": "the kernel itself (ipykernel depends on it)"}


def _chapter_imports() -> set[str]:
    """Top-level modules that the chapters' code cells import (magics and shell lines left out)."""
    import ast

    found = set()
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            lines = [re.sub(r"^(\s*)[%!].*", r"\1pass", line) for line in cell.source.splitlines()]
            for node in ast.walk(ast.parse("\n".join(lines))):
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "visionbook"}


def test_every_module_a_chapter_imports_is_declared_by_the_helper():
    """A Colab reader installs only the helper package: its dependencies must cover the chapters."""
    from importlib.metadata import packages_distributions

    declared = {
        re.split(r"[<>=!~ \[]", d)[0].lower().replace("_", "-")
        for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    providers = packages_distributions()
    undeclared = {}
    for module in sorted(_chapter_imports() - set(KERNEL_PROVIDED)):
        names = {d.lower().replace("_", "-") for d in providers.get(module, [])}
        if not names & declared:
            undeclared[module] = sorted(names) or ["not installed"]
    assert not undeclared, (
        f"chapters import modules that pyproject.toml does not declare: {undeclared}"
    )


# The only cells that an offline build does not execute: each needs weights that only a network
# provides, and each says so in one line. Everything a reader comes for runs offline: the real
# ImageNet network of these chapters is EfficientNet-Lite0, whose weights come with a package.
NETWORK_ONLY = {
    "transfer": "ImageNet ResNet-18 fine-tuned with torchvision's weights (the scale-up)",
    "interpretability": "Grad-CAM of torchvision's ImageNet ResNet-18 (the scale-up)",
    "detection": "torchvision's COCO-trained Faster R-CNN",
}


def _network_only_cells() -> dict[str, int]:
    """Per chapter, the code cells that run only with a network (gated on config.offline())."""
    found: dict[str, int] = {}
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code" and "config.offline()" in cell.source:
                found[path.stem] = found.get(path.stem, 0) + 1
    return found


def test_only_the_listed_cells_need_a_network():
    assert _network_only_cells() == dict.fromkeys(NETWORK_ONLY, 1), (
        "a cell gated on config.offline() was added or removed: an offline build must execute "
        "everything a reader comes for; update NETWORK_ONLY only for content that exists solely "
        "behind a network"
    )


def test_in_the_built_book_only_network_cells_say_not_executed():
    """Read the build's executions: 'not executed' may come only from the NETWORK_ONLY cells."""
    from jupyter_cache import get_cache

    from visionbook.tools.bookbuild import CACHE, chapters, fresh_execution

    records = {nb.stem: fresh_execution(nb) for nb in chapters()}
    if not all(records.values()):
        if os.environ.get("VISIONBOOK_REQUIRE_HTML") == "1":
            pytest.fail("the book build has no fresh execution of every chapter")
        pytest.skip("no fresh build of every chapter (python -m visionbook.tools.bookbuild)")
    cache, saying = get_cache(str(ROOT / CACHE)), {}
    for stem, record in records.items():
        for cell in _executed_code_cells(cache, record):
            text = " ".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
            if re.search(r"not executed", text, re.IGNORECASE):
                assert "config.offline()" in cell.source, (
                    f"{stem}: a cell not gated on the network says it was not executed"
                )
                saying[stem] = saying.get(stem, 0) + 1
    assert saying == dict.fromkeys(NETWORK_ONLY, 1)


def _executed_code_cells(cache, record):
    return cache.get_cache_bundle(record.pk).nb.cells
