"""The instructor guide's facts are read from a chapter's own text."""

import json

import nbformat
import pytest

from visionbook.tools.syllabus import chapter_facts, guide_markdown

INTRO = """# Convolution and pooling

Why images need local, shared weights.

**Learning objectives.** By the end of this chapter you can:

- write cross-correlation with loops;
- vectorise it with unfold
  and check it against `F.conv2d`;
- compute output sizes.

**Prerequisites.** The multilayer networks of [](mlp.ipynb);
array indexing in NumPy.
"""
EXERCISES = """```{exercise} Output sizes
:label: conv-ex-1

Compute them.
```

````{exercise} A blur kernel
:label: conv-ex-2
````"""


@pytest.fixture
def chapter(tmp_path):
    v4 = nbformat.v4
    nb = v4.new_notebook(
        cells=[
            v4.new_markdown_cell(INTRO),
            v4.new_code_cell("x = 1"),
            v4.new_markdown_cell(EXERCISES),
        ]
    )
    path = tmp_path / "convolution.ipynb"
    nbformat.write(nb, path)
    return path


def test_chapter_facts_reads_title_objectives_prerequisites_and_exercises(chapter):
    facts = chapter_facts(chapter)
    assert facts["title"] == "Convolution and pooling"
    assert facts["objectives"] == [
        "write cross-correlation with loops;",
        "vectorise it with unfold and check it against `F.conv2d`;",
        "compute output sizes.",
    ]
    assert (
        facts["prerequisites"]
        == "The multilayer networks of [](mlp.ipynb); array indexing in NumPy."
    )
    assert facts["exercises"] == ["Output sizes", "A blur kernel"]


def test_guide_markdown_includes_measured_times(chapter, tmp_path):
    runtimes = tmp_path / "runtimes.json"
    runtimes.write_text(
        json.dumps({"cpu": {"chapters": {"convolution": {"seconds": 21.4, "peak_mib": 700}}}})
    )
    text = guide_markdown([chapter], runtimes)
    assert "**Convolution and pooling** (`convolution.ipynb`)" in text
    assert "Run time: 21 s on a 2-core CPU" in text
    assert "  - A blur kernel" in text
    runtimes.write_text(json.dumps({"cpu": {"chapters": {}}}))
    assert "not yet measured" in guide_markdown([chapter], runtimes)


def test_bad_path_is_refused(tmp_path):
    with pytest.raises(ValueError, match="expected an existing .ipynb chapter"):
        chapter_facts(tmp_path / "missing.ipynb")
