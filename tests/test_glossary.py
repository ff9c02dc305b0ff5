"""The glossary: every term links to its definition, and every definition comes at the term's
first use.

Static checks, nothing is executed. ``book/glossary.md`` holds one Sphinx ``{glossary}`` block, in
alphabetical order; each entry says "Defined in {ref}`Chapter title <gloss-...>`", the title being
that of the chapter holding the MyST target, which is placed just before the paragraph (or list, or
table) that defines the term. Other links in an entry are "see also". For every entry:

(a) its target exists exactly once in the chapters' markdown cells, outside any directive (so that
    student copies, which drop the ``{solution}`` blocks, keep it), on its own line after a blank
    line, directly followed by the block it labels, and that block mentions the term;
(b) the chapter holding the target is the first chapter in ``_toc.yml`` reading order whose markdown
    mentions the term;
(c) within that chapter, no markdown cell before the target's cell mentions the term, nor does the
    text above the target in its own cell.

A mention is a case-insensitive match, at word boundaries, of the term or one of the few spellings
listed for it in ``SPELLINGS`` (by default the term and its plural); a space or a hyphen in a
spelling matches either. Two kinds of text announce a topic rather than use a word, and are not
searched: headings, and the "Learning objectives" list at the top of a chapter, which names what
the chapter is about to define. Fenced code, citation and glue keys, link targets and labels are
not prose and are not searched either; inline code is (``pin_memory``, ``channels_last``).
Finally, every ``gloss-`` target in the chapters is linked from the glossary.
"""

import json
import re
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
GLOSSARY = BOOK / "glossary.md"

# Spellings that count as a use of a term, besides the term itself and its plural (the default).
# Kept small and explicit: a spelling belongs here only when the book really writes the term so.
SPELLINGS = {
    "anchor box": ("anchor box", "anchor boxes"),
    "average precision": ("average precision", "mean average precision"),
    "backward pass": ("backward pass", "backward passes"),
    "batch normalisation": ("batch normalisation", "batch norm", "BatchNorm", "BatchNorms", "BN"),
    "bounding box": ("bounding box", "bounding boxes"),
    "collate": ("collate", "collates", "collated", "collating"),
    "convolutional neural network": (
        "convolutional neural network",
        "convolutional neural networks",
        "convolutional network",
        "convolutional networks",
        "CNN",
        "CNNs",
    ),
    "cross-entropy": ("cross-entropy", "cross-entropies"),
    "cross-validation": ("cross-validation", "cross-validated"),
    "data augmentation": ("data augmentation", "augmentation", "augmentations"),
    "DDIM": ("DDIM", "denoising diffusion implicit models"),
    "DDPM": ("DDPM", "denoising diffusion probabilistic models"),
    "depthwise convolution": (
        "depthwise convolution",
        "depthwise convolutions",
        "depthwise-separable convolution",
        "depthwise-separable convolutions",
    ),
    "FGSM": ("FGSM", "fast gradient sign method"),
    "fine-tuning": ("fine-tuning", "fine-tune", "fine-tuned", "fine-tunes"),
    "forward pass": ("forward pass", "forward passes"),
    "GAN": ("GAN", "GANs", "generative adversarial network", "generative adversarial networks"),
    "He initialisation": ("He initialisation", "He/Kaiming", "Kaiming"),
    "hyper-parameter": ("hyper-parameter", "hyper-parameters", "hyperparameter", "hyperparameters"),
    "IoU": ("IoU", "intersection over union"),
    "Jensen-Shannon divergence": ("Jensen-Shannon divergence", "JSD"),
    "k-nearest-neighbour classifier": (
        "k-nearest-neighbour classifier",
        "k-nearest-neighbour classifiers",
        "kNN",
    ),
    "layer normalisation": ("layer normalisation", "layer norm"),
    "learning-rate schedule": (
        "learning-rate schedule",
        "learning-rate schedules",
        "schedule",
        "schedules",
    ),
    "linearly separable": ("linearly separable", "linear separability"),
    "mini-batch": ("mini-batch", "mini-batches", "minibatch", "minibatches", "batch", "batches"),
    "multilayer perceptron": ("multilayer perceptron", "multilayer perceptrons", "MLP", "MLPs"),
    "multiply-accumulate": ("multiply-accumulate", "multiply-accumulates", "MAC", "MACs"),
    "non-maximum suppression": ("non-maximum suppression", "NMS"),
    "optimiser": ("optimiser", "optimisers", "optimizer", "optimizers"),
    "overfitting": ("overfitting", "overfit", "overfits"),
    "pretrained": ("pretrained", "pre-trained", "pretraining", "pre-training"),
    "query, key, value": ("query", "queries"),
    "regularisation": (
        "regularisation",
        "regularise",
        "regularises",
        "regularising",
        "regulariser",
        "regularisers",
    ),
    "saliency map": ("saliency",),
    "self-supervised learning": ("self-supervised learning", "self-supervised", "self-supervision"),
    "SGD": ("SGD", "stochastic gradient descent"),
    "standardisation": (
        "standardisation",
        "standardise",
        "standardised",
        "standardises",
        "standardising",
    ),
    "stride": ("stride", "strides", "strided"),
    "translation equivariance": ("translation equivariance", "translation equivariant"),
    "validation set": ("validation",),
    "VAE": ("VAE", "VAEs", "variational autoencoder", "variational autoencoders"),
    "vision transformer": ("vision transformer", "vision transformers", "ViT", "ViTs"),
    "Xavier initialisation": ("Xavier", "Glorot"),
    "zero-shot classification": ("zero-shot classification", "zero-shot"),
}

TARGET = re.compile(r"^\((gloss-[A-Za-z0-9-]+)\)=\s*$")
REF = re.compile(r"\{ref\}`([^`<]+?)\s*<(gloss-[A-Za-z0-9-]+)>`")
DEFINED = re.compile(r"\bDefined\b[^{.]*" + REF.pattern)  # "Defined in {ref}`...`": the definition


def _reading_order() -> list[str]:
    """The chapters' stems (notebooks only) in the order of _toc.yml."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for key, value in node.items():
                if key != "file":
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    stems = [re.sub(r"\.(ipynb|md)$", "", f) for f in files]
    return [Path(s).name for s in stems if (ROOT / f"{s}.ipynb").exists()]


@cache
def _markdown_cells(stem: str) -> tuple[str, ...]:
    """The sources of a chapter's markdown cells, in order."""
    cells = json.loads((BOOK / f"{stem}.ipynb").read_text(encoding="utf-8"))["cells"]
    return tuple("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def _lines(text: str):
    """(line number, line, inside code, inside a directive) for each line of a markdown cell; fence
    lines are skipped, except that a directive's title is given as a line of its body."""
    stack: list[tuple[str, bool]] = []  # (fence marker, is code)
    for n, line in enumerate(text.splitlines()):
        fence = re.match(r"^\s*(`{3,}|~{3,})\s*(.*?)\s*$", line)
        if fence and not fence.group(2) and stack and fence.group(1).startswith(stack[-1][0]):
            stack.pop()
            continue
        if fence and (not stack or not stack[-1][1]):
            stack.append((fence.group(1), not fence.group(2).startswith("{")))
            if not stack[-1][1]:
                # a directive's title
                yield n, re.sub(r"^\{[^}]*\}", "", fence.group(2)), False, True
            continue
        yield n, line, any(code for _, code in stack), bool(stack)


def _prose(text: str) -> str:
    """What a mention is looked for in: markdown without code blocks, headings, labels, keys and
    the learning-objectives list (see the module docstring)."""
    kept, objectives = [], False
    for _, line, code, _ in _lines(text):
        stripped = line.strip()
        if code:
            continue
        if stripped.startswith("**Learning objectives.**"):
            objectives = True
        elif objectives and stripped.startswith("**Prerequisites.**"):
            objectives = False
        if (
            objectives
            or stripped.startswith("#")
            or TARGET.match(stripped)
            or re.match(r"^:\w+:", stripped)
        ):
            continue
        kept.append(line)
    prose = "\n".join(kept)
    prose = re.sub(r"\{(footcite|cite|glue)[^}]*\}`[^`]*`", " ", prose)
    prose = re.sub(r"\{(ref|numref|doc)\}`([^`<]*)(<[^`]*>)?`", r"\2", prose)
    prose = re.sub(r"\]\([^)]*\)", "]", prose)
    return prose.replace("*", "")  # emphasis marks, as in "*Multi-head* attention"


def _pattern(term: str) -> re.Pattern:
    spellings = SPELLINGS.get(term, (term, term + "s"))
    alternatives = "|".join(
        r"[\s-]+".join(re.escape(w) for w in re.split(r"[\s-]+", s)) for s in spellings
    )
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _mentions(term: str, text: str) -> bool:
    return bool(_pattern(term).search(_prose(text)))


def _title(stem: str) -> str:
    first = _markdown_cells(stem)[0]
    return re.search(r"^# (.+)$", first, re.MULTILINE).group(1).strip()


def _glossary() -> list[tuple[str, str]]:
    """(term, definition) for every entry of the {glossary} block, in the page's order."""
    text = GLOSSARY.read_text(encoding="utf-8")
    block = re.search(r"^```\{glossary\}[^\n]*\n(.*?)^```\s*$", text, re.DOTALL | re.MULTILINE)
    assert block, "book/glossary.md has no {glossary} block"
    entries = []
    for line in block.group(1).splitlines():
        if not line.strip() or line.lstrip().startswith(":"):
            continue
        if not line[0].isspace():
            entries.append([line.strip(), ""])
        else:
            assert entries, f"a definition before the first term: {line!r}"
            entries[-1][1] += " " + line.strip()
    return [(term, definition.strip()) for term, definition in entries]


def _targets() -> dict[str, list[tuple[str, int, str, str]]]:
    """For every gloss- target: (chapter, cell index, text above it in the cell, the block it
    labels)."""
    found: dict[str, list] = {}
    for stem in _reading_order():
        for index, source in enumerate(_markdown_cells(stem)):
            lines = source.splitlines()
            inside = {n: directive for n, _, _, directive in _lines(source)}
            for n, line in enumerate(lines):
                match = TARGET.match(line.strip())
                if not match:
                    continue
                after = []
                for following in lines[n + 1 :]:
                    if not following.strip():
                        break
                    after.append(following)
                where = (stem, index, "\n".join(lines[:n]), "\n".join(after))
                found.setdefault(match.group(1), []).append(where)
                assert not inside.get(n, True), (
                    f"{match.group(1)} in {stem} lies inside a directive"
                )
                assert n == 0 or not lines[n - 1].strip(), (
                    f"{match.group(1)} in {stem}: no blank line before it"
                )
                assert after and line == line.strip(), (
                    f"{match.group(1)} in {stem}: not directly before a block"
                )
    return found


def test_the_glossary_is_in_the_back_matter_before_the_bibliography():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    back = next(p for p in toc["parts"] if p.get("caption") == "Back matter")
    files = [c["file"] for c in back["chapters"]]
    assert "book/glossary" in files, "_toc.yml: book/glossary is not in the Back matter"
    assert files.index("book/glossary") < files.index("book/bibliography")
    assert GLOSSARY.read_text(encoding="utf-8").startswith("# Glossary\n")


def test_the_entries_are_alphabetical_and_each_is_defined_once():
    terms = [term for term, _ in _glossary()]
    assert len(terms) >= 60, f"only {len(terms)} glossary entries"
    assert terms == sorted(terms, key=str.casefold), (
        "glossary entries are not in alphabetical order"
    )
    assert len({t.casefold() for t in terms}) == len(terms), "a term appears twice in the glossary"


@pytest.mark.parametrize("term,definition", _glossary(), ids=[t for t, _ in _glossary()])
def test_the_entry_links_to_the_definition_at_the_first_use(term, definition):
    refs = DEFINED.findall(definition)
    assert len(refs) == 1, (
        f"{term}: the entry needs one 'Defined in {{ref}}`Chapter title <gloss-...>`'"
    )
    title, label = refs[0]
    targets = _targets().get(label, [])
    assert len(targets) == 1, (
        f"{term}: target ({label})= found {len(targets)} times in the chapters"
    )
    stem, index, above, block = targets[0]
    assert title == _title(stem), (
        f"{term}: the link says {title!r}, but {label} is in {_title(stem)!r}"
    )
    assert _mentions(term, block), (
        f"{term}: the block after ({label})= in {stem} does not mention it"
    )
    order = _reading_order()
    first = next(s for s in order if any(_mentions(term, cell) for cell in _markdown_cells(s)))
    assert first == stem, f"{term}: first used in {first}, before its definition in {stem}"
    earlier = [i for i, cell in enumerate(_markdown_cells(stem)[:index]) if _mentions(term, cell)]
    assert not earlier, (
        f"{term}: used in markdown cells {earlier} of {stem} before the definition in cell {index}"
    )
    assert not _mentions(term, above), (
        f"{term}: used in cell {index} of {stem} above its definition"
    )


def test_every_listed_spelling_belongs_to_a_glossary_term():
    terms = {term for term, _ in _glossary()}
    assert not set(SPELLINGS) - terms, (
        f"SPELLINGS for terms not in the glossary: {sorted(set(SPELLINGS) - terms)}"
    )


def test_every_target_in_the_chapters_is_used_by_the_glossary():
    linked = {label for _, definition in _glossary() for _, label in REF.findall(definition)}
    unused = sorted(set(_targets()) - linked)
    assert not unused, f"gloss- targets that no glossary entry links to: {unused}"
