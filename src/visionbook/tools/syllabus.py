"""The instructor guide's facts, read from the chapters themselves so they never drift:
each chapter's title, learning objectives, prerequisites and exercises, plus its measured cost.

Introduced in the page "For instructors".
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat

_EXERCISE = re.compile(r"^[`:]{3,}\{exercise\}\s*(?P<title>.*)$", re.MULTILINE)


def _bullets_after(lines: list[str], pattern: str) -> list[str]:
    """The bullet items of the first list that follows a line matching ``pattern``."""
    for i, line in enumerate(lines):
        if re.search(pattern, line, re.IGNORECASE):
            items = []
            for following in lines[i + 1 :]:
                if following.lstrip().startswith(("- ", "* ", "1.", "2.", "3.", "4.", "5.", "6.")):
                    items.append(re.sub(r"^\s*(?:[-*]|\d+\.)\s+", "", following).strip())
                elif items and not following.strip():
                    break
                elif items and following.startswith("  "):
                    items[-1] += " " + following.strip()
                elif following.strip() and not items and following.lstrip().startswith("#"):
                    break
            return items
    return []


def _prerequisites(lines: list[str]) -> str:
    """The paragraph that starts with "Prerequisites", or the bullet list right after it."""
    for i, line in enumerate(lines):
        if re.search(r"prerequisite", line, re.IGNORECASE):
            paragraph = [
                re.split(r"prerequisites?", line, maxsplit=1, flags=re.IGNORECASE)[-1].lstrip(
                    " :*."
                )
            ]
            for following in lines[i + 1 :]:
                if not following.strip() or following.lstrip().startswith(("- ", "* ", "#")):
                    break
                paragraph.append(following.strip())
            text = " ".join(p for p in paragraph if p).strip()
            items = _bullets_after(lines[i:], r"prerequisite")
            return "; ".join(([text] if text else []) + items) or "none"
    return "none stated"


def chapter_facts(path: str | Path) -> dict:
    """Title, objectives, prerequisites and exercise titles of one chapter notebook.

    Args:
        path (str | Path): the chapter's ``.ipynb``.

    Returns:
        dict with ``title`` (str), ``objectives`` (list of str), ``prerequisites`` (str),
        ``exercises`` (list of str).

    Introduced in the page "For instructors".
    """
    path = Path(path)
    if path.suffix != ".ipynb" or not path.exists():
        raise ValueError(f"expected an existing .ipynb chapter, got {path}")
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]
    intro = "\n".join(c.source for c in cells[:3]).splitlines()
    title = next((line[2:].strip() for line in intro if line.startswith("# ")), path.stem)
    exercises = [
        m.group("title").strip() or "(untitled)"
        for c in cells
        for m in _EXERCISE.finditer(c.source)
    ]
    return {
        "title": title,
        "objectives": _bullets_after(intro, r"objective|you will|by the end"),
        "prerequisites": _prerequisites(intro),
        "exercises": exercises,
    }


def guide_markdown(chapters: list[str | Path], runtimes: str | Path) -> str:
    """Markdown for the instructor guide: one block per chapter with its facts and cost.

    Args:
        chapters (list): chapter notebooks in reading order.
        runtimes (str | Path): the JSON written by ``python -m visionbook.tools.runtimes``.

    Returns:
        str: Markdown.

    Introduced in the page "For instructors".
    """
    measured = json.loads(Path(runtimes).read_text())
    cpu = measured.get("cpu", {}).get("chapters", {})
    gpu = measured.get("gpu", {}).get("chapters", {})
    blocks = []
    for path in map(Path, chapters):
        facts, stem = chapter_facts(path), path.stem
        cost = (
            f"{cpu[stem]['seconds']:.0f} s on a 2-core CPU" if stem in cpu else "not yet measured"
        )
        cost += f", {gpu[stem]['seconds']:.0f} s on a GPU" if stem in gpu else ""
        objectives = "\n".join(f"  - {o}" for o in facts["objectives"]) or "  - (see the chapter)"
        exercises = "\n".join(f"  - {e}" for e in facts["exercises"]) or "  - (none yet)"
        blocks.append(
            f"**{facts['title']}** (`{path.name}`)\n\n- Run time: {cost}\n"
            f"- Prerequisites: {facts['prerequisites']}\n"
            f"- Learning objectives:\n{objectives}\n"
            f"- Suggested assignments (the chapter's exercises):\n{exercises}\n"
        )
    return "\n".join(blocks)
