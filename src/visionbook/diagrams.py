"""Diagrams drawn in code: a neuron, networks, blocks and pipelines.

The network and block diagrams run one forward pass with hooks, so every box names a layer the
module really has and every shape under it is the shape that layer really outputs: change the
model and the picture changes. Each function returns a matplotlib ``Figure`` about 10 inches
wide with text of at least 8 points; boxes grow to fit their text and long chains wrap to rows.

Introduced in the chapter "The perceptron" (``neuron_diagram``); each function names its chapter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Rectangle
from matplotlib.path import Path
from matplotlib.textpath import TextToPath
from torch import nn

from visionbook._validate import _expect_int, _expect_module
from visionbook.blocks import BasicBlock, DenseLayer

# points; inches: figure width, gap between boxes, note height
FONT, WIDTH, GAP, NOTE = 8.5, 10.0, 0.3, 0.2
COLOURS = {"io": "#ffffff", "conv": "#a6cee3", "pool": "#b2df8a", "norm": "#fdd9a0",
           "linear": "#cab2d6", "shape": "#e5e5e5", "attention": "#fb9a99", "block": "#d9ead3",
           "step": "#dde6f3"}  # fmt: skip
KIND_NAMES = {"conv": "convolution", "pool": "pooling", "norm": "normalisation, activation",
              "linear": "linear", "shape": "reshape", "attention": "attention",
              "block": "block"}  # fmt: skip
_CONVS = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
_SHORT = {"BatchNorm1d": "BN", "BatchNorm2d": "BN", "LayerNorm": "LN", "LayerNorm2d": "LN"}
_PALETTE = ("#fbb4ae", "#b3cde3", "#ccebc5", "#decbe4", "#fed9a6", "#ffffcc", "#e5d8bd", "#fddaec")


def _text_size(text: str, size: float = FONT) -> tuple[float, float]:
    """Width and height in inches of a label, one line per ``\\n``."""
    prop, lines = FontProperties(size=size), text.split("\n")
    width = max(
        TextToPath().get_text_width_height_descent(line, prop, ismath=False)[0] for line in lines
    )
    return width / 72, len(lines) * size * 1.3 / 72


def _arrow(ax, points: Sequence[tuple[float, float]]) -> None:
    """An arrow along a polyline (inches)."""
    ax.add_patch(
        FancyArrowPatch(
            path=Path(points), arrowstyle="-|>", mutation_scale=10, color="#333333", lw=1
        )
    )


def _rows(
    cols: list[list[int]], widths: list[float], breaks: set[int], room: float
) -> list[list[list[int]]]:
    """Split columns into rows of about equal length that fit ``room``; a new row at each break."""
    segments, rows = [[]], []
    for col in cols:
        if col[0] in breaks and segments[-1]:
            segments.append([])
        segments[-1].append(col)
    for seg in segments:
        for k in range(1, len(seg) + 1):
            per = math.ceil(len(seg) / k)
            chunks = [seg[i : i + per] for i in range(0, len(seg), per)]
            if all(sum(max(widths[n] for n in c) + GAP for c in ch) - GAP <= room for ch in chunks):
                break
        rows += chunks
    return rows


def _canvas(
    nodes: list[dict], title=None, skips=(), loop=None, legend=()
) -> tuple[Figure, list[tuple]]:
    """Draw boxes joined by arrows; return the figure and each box's ``(x, y, w, h)`` in inches.

    A node is a dict with ``text``, and optionally ``colour``, ``note`` (under the box),
    ``parent`` (index, default the previous node; None for no arrow), ``row`` (start a new
    row), ``caption`` (for that row) and ``stack`` (a bar of ``(channels, colour)`` segments).
    Nodes sharing a parent are stacked in one column. ``skips`` are ``(i, j, label)`` arcs
    above a row; ``loop`` is ``(j, label)``, an arrow from the last node back to node ``j``.
    """
    for i, n in enumerate(nodes):
        n.setdefault("parent", i - 1 if i else None)
    sizes = [_text_size(n["text"]) if n["text"] else (0.45, 0.0) for n in nodes]
    widths = [
        max(w, _text_size(n["note"])[0] if n.get("note") else 0) + 0.2
        for (w, _), n in zip(sizes, nodes)
    ]
    cols: list[list[int]] = []
    for i, n in enumerate(nodes):
        sibling = (
            i > 0
            and not n.get("row")
            and n["parent"] not in (None, i - 1)
            and n["parent"] == nodes[i - 1]["parent"]
        )
        cols[-1].append(i) if sibling else cols.append([i])
    rows = _rows(cols, widths, {i for i, n in enumerate(nodes) if n.get("row")}, WIDTH - 0.4)
    col_of = {i: (r, c) for r, row in enumerate(rows) for c, col in enumerate(row) for i in col}
    for i, j, _ in skips:
        if col_of[i][0] != col_of[j][0]:
            raise ValueError(
                f"expected the ends of a skip in one row, got boxes {i} and {j} in rows "
                f"{col_of[i][0]} and {col_of[j][0]}"
            )
    bh = [max(sizes[i][1] for col in row for i in col) + 0.16 for row in rows]
    slot = [h + (NOTE if any(n.get("note") for n in nodes) else 0.05) + 0.1 for h in bh]
    top = [
        (0.35 if any(col_of[i][0] == r for i, _, _ in skips) else 0)
        + (0.3 if nodes[row[0][0]].get("caption") else 0)
        for r, row in enumerate(rows)
    ]
    height = (
        0.2
        + (0.45 if title else 0)
        + sum(t + max(map(len, row)) * h for t, row, h in zip(top, rows, slot))
    )
    height += 0.3 * (len(rows) - 1) + (0.3 if loop else 0) + (0.35 if legend else 0)
    fig = plt.figure(figsize=(WIDTH, height))
    ax = fig.add_axes((0, 0, 1, 1), xlim=(0, WIDTH), ylim=(0, height))
    ax.axis("off")
    if title:
        ax.text(WIDTH / 2, height - 0.25, title, ha="center", va="center", fontsize=11)
    pos: list[tuple] = [()] * len(nodes)
    y, row_bottom = height - 0.1 - (0.45 if title else 0), {}
    for r, row in enumerate(rows):
        if nodes[row[0][0]].get("caption"):
            ax.text(
                0.2,
                y - 0.15,
                nodes[row[0][0]]["caption"],
                fontsize=FONT + 0.5,
                va="center",
                style="italic",
            )
        y -= top[r]
        x = (WIDTH - sum(max(widths[n] for n in c) + GAP for c in row) + GAP) / 2
        for col in row:
            cw = max(widths[n] for n in col)
            for s, i in enumerate(col):
                pos[i] = (x + cw / 2, y - bh[r] / 2 - s * slot[r], widths[i], bh[r])
                _node(ax, nodes[i], pos[i])
            x += cw + GAP
        y -= max(map(len, row)) * slot[r]
        row_bottom[r] = y
        y -= 0.3
    for i, n in enumerate(nodes):
        if n["parent"] is not None:
            p = col_of[n["parent"]][0]
            _link(ax, pos[n["parent"]], pos[i], row_bottom[p] - 0.12, wrap=p != col_of[i][0])
    for i, j, label in skips:
        _skip(ax, pos[i], pos[j], label)
    if loop:
        (j, label), end = loop, row_bottom[len(rows) - 1] - 0.15
        _link(ax, pos[-1], pos[j], end, label, wrap=True)
    _legend(ax, legend)
    return fig, pos


def _node(ax, node: dict, box: tuple) -> None:
    x, y, w, h = box
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                                boxstyle="round,pad=0,rounding_size=0.06",
                                fc=node.get("colour", COLOURS["step"]), ec="#444444",
                                lw=0.8))  # fmt: skip
    ax.text(x, y, node["text"], ha="center", va="center", fontsize=FONT, linespacing=1.15)
    if node.get("note"):
        ax.text(
            x, y - h / 2 - 0.04, node["note"], ha="center", va="top", fontsize=FONT, color="#333333"
        )
    total, base = sum(c for c, _ in node.get("stack", ())), y - h / 2 + 0.06
    for channels, colour in node.get("stack", ()):
        part = (h - 0.12) * channels / node["stack_max"]
        ax.add_patch(Rectangle((x - 0.1, base), 0.2, part, fc=colour, ec="#444444", lw=0.6))
        base += part
    if total:
        ax.text(x + 0.14, y - h / 2 + 0.06, str(total), fontsize=FONT, va="bottom")


def _link(
    ax, a: tuple, b: tuple, below: float, label: str | None = None, wrap: bool = False
) -> None:
    """An arrow from box ``a`` to box ``b``: straight, an elbow, or (``wrap``) around under
    ``a``'s row."""
    (xa, ya, wa, _), (xb, yb, wb, _) = a, b
    start, end = (xa + wa / 2, ya), (xb - wb / 2, yb)
    if not wrap:
        mid = (start[0] + end[0]) / 2
        _arrow(ax, [start, end] if ya == yb else [start, (mid, ya), (mid, yb), end])
        return
    out, back = start[0] + GAP / 2, end[0] - GAP / 2
    _arrow(ax, [start, (out, ya), (out, below), (back, below), (back, yb), end])
    _arrow_label(ax, (out + back) / 2, below, label)


def _arrow_label(ax, x: float, y: float, label: str, **box: float) -> None:
    """Write an arrow's label (if any) centred at ``(x, y)`` on a white box (``box``: more of
    its settings, such as ``pad``)."""
    if label:
        bbox = {"fc": "white", "ec": "none", **box}
        ax.text(x, y, label, ha="center", va="center", fontsize=FONT, bbox=bbox)


def _skip(ax, a: tuple, b: tuple, label: str) -> None:
    (xa, ya, wa, ha), (xb, yb, wb, hb) = a, b
    x0, x1, level = xa + wa / 4, xb - wb / 4, max(ya + ha / 2, yb + hb / 2) + 0.22
    _arrow(ax, [(x0, ya + ha / 2), (x0, level), (x1, level), (x1, yb + hb / 2)])
    _arrow_label(ax, (x0 + x1) / 2, level, label, pad=1)


def _legend(ax, kinds: Sequence[str]) -> None:
    labels = [KIND_NAMES[k] for k in kinds]
    x = (WIDTH - sum(_text_size(t)[0] + 0.45 for t in labels)) / 2
    for kind, text in zip(kinds, labels):
        ax.add_patch(Rectangle((x, 0.12), 0.18, 0.14, fc=COLOURS[kind], ec="#444444", lw=0.6))
        ax.text(x + 0.25, 0.19, text, va="center", fontsize=FONT)
        x += _text_size(text)[0] + 0.45


# --- layers and their shapes -------------------------------------------------------------------


def _kind(m: nn.Module) -> str:
    name = type(m).__name__
    if isinstance(m, _CONVS):
        return "conv"
    if "Pool" in name:
        return "pool"
    if isinstance(m, nn.Linear):
        return "linear"
    if "Attention" in name or "Excite" in name:
        return "attention"
    if isinstance(m, nn.Flatten | nn.Unflatten | nn.Identity):
        return "shape"
    if isinstance(m, nn.LayerNorm):  # subclasses too, such as blocks.LayerNorm2d
        return "norm"
    if type(m).__module__.rsplit(".", 1)[-1] in (
        "activation",
        "batchnorm",
        "normalization",
        "dropout",
    ):
        return "norm"
    return "block"


def _pair(k) -> str:
    return "×".join(map(str, k)) if isinstance(k, tuple) else f"{k}×{k}"


def _describe(m: nn.Module) -> list[str]:
    """A layer's type and key hyper-parameters, for example ``["Conv2d", "1→16, 5×5"]``."""
    name = type(m).__name__
    if isinstance(m, _CONVS):
        extra = [f"stride {m.stride[0]}"] * (m.stride[0] > 1) + [f"dilation {m.dilation[0]}"] * (
            m.dilation[0] > 1
        )
        extra += ["depthwise"] * (m.groups > 1 and m.groups == m.in_channels)
        return [name, f"{m.in_channels}→{m.out_channels}, {_pair(m.kernel_size)}"] + [
            ", ".join(extra)
        ] * bool(extra)
    if isinstance(m, nn.Linear):
        return [name, f"{m.in_features}→{m.out_features}"]
    if hasattr(m, "output_size"):
        return [name, f"to {_pair(m.output_size)}"]
    if "Pool" in name:
        return [name, _pair(m.kernel_size)]
    if hasattr(m, "reduce") and hasattr(m, "expand"):  # squeeze-and-excitation
        return [name, f"{m.reduce.in_channels}→{m.reduce.out_channels}→{m.expand.out_channels}"]
    if isinstance(m, nn.Sequential) and len({type(c) for c in m}) == 1:
        return [f"{len(m)} × {type(m[0]).__name__}"]
    if isinstance(m, nn.Sequential) and len(m) <= 4:
        return [", ".join(_SHORT.get(type(c).__name__, type(c).__name__) for c in m)]
    if isinstance(m, nn.Sequential):
        return [name, f"{len(m)} layers"]
    return [name]


def _shape(out) -> str:
    return "×".join(map(str, out.shape[1:])) if isinstance(out, torch.Tensor) else ""


def _check_model(model: nn.Module, input_shape: tuple[int, ...]) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    ok = (
        isinstance(input_shape, tuple)
        and input_shape
        and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in input_shape)
    )
    if not ok:
        raise ValueError(
            "expected input_shape as a tuple of positive ints without the batch, such as "
            f"(1, 28, 28), got {input_shape!r}"
        )


def _trace(
    model: nn.Module, input_shape: tuple[int, ...], named: list[tuple[str, nn.Module]]
) -> tuple[torch.Tensor, list]:
    """One forward pass of a zero input ``(1, *input_shape)``; each named module's
    (name, module, input, output)."""
    _check_model(model, input_shape)
    p = next(model.parameters(), None)
    x, calls = torch.zeros(1, *input_shape, device=p.device if p is not None else "cpu"), []
    hooks = [
        m.register_forward_hook(
            lambda mod, args, out, n=n: calls.append((n, mod, args[0] if args else None, out))
        )
        for n, m in named
    ]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(x)
    except RuntimeError as err:
        raise ValueError(
            f"expected an input_shape the model accepts, got {input_shape}: {err}"
        ) from err
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return x, calls


def _layer_nodes(x: torch.Tensor, calls: list, merge: bool = True, first: int = 0) -> list[dict]:
    """Boxes for traced calls, after an input box; normalisations and activations join the box
    before them."""
    nodes, owner = (
        [{"text": "input", "colour": COLOURS["io"], "note": _shape(x), "kind": "io"}],
        {id(x): 0},
    )
    for name, mod, inp, out in calls:
        parent, kind = owner.get(id(inp), len(nodes) - 1), _kind(mod)
        if merge and kind == "norm" and parent == len(nodes) - 1 and nodes[parent]["kind"] != "io":
            extra, text = _SHORT.get(type(mod).__name__, type(mod).__name__), nodes[parent]["text"]
            nodes[parent]["text"] += (
                f", {extra}" if text.rsplit("\n", 1)[-1].startswith("+ ") else f"\n+ {extra}"
            )
        else:
            label = name.rsplit(".", 1)[-1]
            lines = ([] if label.isdigit() else [label]) + _describe(mod)
            nodes.append(
                {
                    "text": "\n".join(lines),
                    "colour": COLOURS[kind],
                    "kind": kind,
                    "parent": first + parent,
                }
            )
        nodes[-1]["note"], owner[id(out)] = _shape(out), len(nodes) - 1
    return nodes


def _named(
    model: nn.Module, modules: Sequence[str] | None, expand: bool
) -> list[tuple[str, nn.Module]]:
    """The (name, module) pairs to hook: ``modules`` by name, or the children with Sequentials
    opened."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    if modules is not None:
        if isinstance(modules, str) or not all(isinstance(n, str) for n in modules):
            raise TypeError(
                "expected modules as a list of submodule names such as ['backbone', 'heatmap'], "
                f"got {modules!r}"
            )
        try:
            return [(n, model.get_submodule(n)) for n in modules]
        except AttributeError as err:
            raise ValueError(
                f"expected names of submodules of the model, got {modules!r}: {err}"
            ) from err
    named = []
    for name, child in model.named_children():
        inner = list(child.named_children()) if expand and isinstance(child, nn.Sequential) else []
        named += [(f"{name}.{n}", c) for n, c in inner] or [(name, child)]
    return named or [("", model)]


def layer_diagram(
    model: nn.Module,
    input_shape: tuple[int, ...],
    title: str | None = None,
    modules: Sequence[str] | None = None,
    expand: bool = True,
    merge: bool = True,
) -> Figure:
    """A network as a chain of boxes, each a layer with its hyper-parameters and output shape.

    One forward pass of zeros ``(1, *input_shape)`` with hooks reads every shape. Layers that
    read the same tensor (a detector's heads) are drawn side by side in one column.

    Args:
        model (nn.Module): the network (put into eval mode for the pass, then restored).
        input_shape (tuple of int): one input without the batch, for example ``(1, 28, 28)``.
        title (str | None): figure title. Default None.
        modules (sequence of str | None): names of the submodules to draw; default the
            top-level children, with those that are ``nn.Sequential`` opened one level.
        expand (bool): open ``nn.Sequential`` children. Default True.
        merge (bool): write normalisations and activations into the box before them. Default True.

    Returns:
        matplotlib.figure.Figure, 10 inches wide.

    >>> fig = layer_diagram(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten()), (1, 5, 5))
    >>> [t.get_text() for t in fig.axes[0].texts][:3]
    ['input', '1×5×5', 'Conv2d\\n1→4, 3×3\\n+ ReLU']

    Introduced in the chapter "Convolutional neural networks".
    """
    _expect_module(model)
    nodes = _layer_nodes(*_trace(model, input_shape, _named(model, modules, expand)), merge=merge)
    kinds = [k for k in KIND_NAMES if any(n["kind"] == k for n in nodes)]
    return _canvas(nodes, title, legend=kinds)[0]


def gan_diagram(
    generator: nn.Module, discriminator: nn.Module, z_dim: int, title: str | None = None
) -> Figure:
    """A GAN's generator and discriminator, layer by layer: noise ``z`` -> image ->
    real-or-fake logit.

    Args:
        generator (nn.Module): maps ``(B, z_dim)`` to images.
        discriminator (nn.Module): maps those images to ``(B, 1)`` logits.
        z_dim (int): length of the noise vector.
        title (str | None): figure title. Default None.

    Returns:
        matplotlib.figure.Figure.

    >>> G, D = (
    ...     nn.Sequential(nn.Linear(2, 4), nn.Unflatten(1, (1, 2, 2))),
    ...     nn.Sequential(nn.Flatten(), nn.Linear(4, 1)),
    ... )
    >>> fig = gan_diagram(G, D, 2)

    Introduced in the chapter "Generative models: GANs and a VAE, measured".
    """
    _expect_module(generator, "generator")
    _expect_module(discriminator, "discriminator")
    if isinstance(z_dim, bool) or not isinstance(z_dim, int):
        raise TypeError(f"expected a positive integer z_dim, got {z_dim!r}")
    if z_dim < 1:
        raise ValueError(f"expected a positive integer z_dim, got {z_dim!r}")
    z, calls = _trace(generator, (z_dim,), _named(generator, None, True))
    if not calls or not isinstance(calls[-1][3], torch.Tensor):
        raise ValueError(
            "expected a generator whose last layer returns the images, got another output"
        )
    g = _layer_nodes(z, calls)
    d = _layer_nodes(
        *_trace(discriminator, tuple(calls[-1][3].shape[1:]), _named(discriminator, None, True)),
        first=len(g),
    )
    g[0].update(text="noise z", caption="generator G", row=True)
    d[0].update(
        text="image: real,\nor G(z) (fake)", caption="discriminator D", row=True, parent=len(g) - 1
    )
    d[-1]["note"] += " logit"
    nodes = g + d
    kinds = [k for k in KIND_NAMES if any(n["kind"] == k for n in nodes)]
    return _canvas(nodes, title, legend=kinds)[0]


# --- blocks ------------------------------------------------------------------------------------


def block_diagram(
    module: nn.Module, input_shape: tuple[int, ...], title: str | None = None
) -> Figure:
    """A residual, dense, MBConv or ConvNeXt block with the layers of its ``body`` and its shortcut.

    Reads :class:`~visionbook.blocks.BasicBlock`, :class:`~visionbook.blocks.MBConv`,
    :class:`~visionbook.blocks.ConvNeXtBlock` and :class:`~visionbook.blocks.DenseLayer` (anything
    with a ``body``), drawing the skip when the block adds (``residual``) or concatenates (a dense
    layer) its input; a block's layer scale (a ``gamma``) is written into the join. A
    :func:`~visionbook.blocks.dense_block` is drawn as its layers with the growing stack of
    channels, each layer's new channels in that layer's colour.

    Args:
        module (nn.Module): the block.
        input_shape (tuple of int): one input ``(C, H, W)``.
        title (str | None): figure title. Default None.

    Returns:
        matplotlib.figure.Figure.

    >>> from visionbook.blocks import BasicBlock
    >>> fig = block_diagram(BasicBlock(8, 16, stride=2), (8, 8, 8))
    >>> fig.axes[0].texts[-1].get_text()
    'projection: conv 8→16, 1×1, stride 2, BN'

    Introduced in the chapter "Modern architectures".
    """
    if (
        isinstance(module, nn.Sequential)
        and len(module)
        and all(isinstance(m, DenseLayer) for m in module)
    ):
        return _dense_diagram(module, input_shape, title)
    if not isinstance(getattr(module, "body", None), nn.Sequential):
        raise TypeError(
            "expected a block with a .body (BasicBlock, DenseLayer, MBConv, ConvNeXtBlock) or a "
            f"dense block, got {type(module).__name__}"
        )
    named = [(f"body.{n}", m) for n, m in module.body.named_children()] + [("block", module)]
    shortcut = getattr(module, "shortcut", nn.Identity())
    x, calls = _trace(module, input_shape, named)
    nodes = _layer_nodes(x, calls[:-1])
    concat = isinstance(module, DenseLayer)
    if concat or getattr(module, "residual", False):
        scale = "× γ (layer scale)\nthen " if getattr(module, "gamma", None) is not None else ""
        join = (
            "concat"
            if concat
            else scale + "add" + ("\n+ ReLU" if isinstance(module, BasicBlock) else "")
        )
        nodes.append(
            {"text": join, "colour": COLOURS["io"], "note": _shape(calls[-1][3]), "kind": "io"}
        )
        label = "copy" if concat else "identity"
        if not isinstance(shortcut, nn.Identity):
            parts = [
                _SHORT.get(type(m).__name__) or "conv " + ", ".join(_describe(m)[1:])
                for m in shortcut.children()
            ]
            label = "projection: " + ", ".join(parts)
        return _canvas(nodes, title, skips=[(0, len(nodes) - 1, label)])[0]
    return _canvas(nodes, title or f"{type(module).__name__} without a shortcut")[0]


def _dense_diagram(block: nn.Sequential, input_shape: tuple[int, ...], title: str | None) -> Figure:
    x, calls = _trace(block, input_shape, list(block.named_children()))
    stack, nodes = [(x.shape[1], "#d9d9d9")], []
    total = calls[-1][3].shape[1]
    nodes.append(
        {
            "text": "",
            "note": "input",
            "colour": COLOURS["io"],
            "stack": list(stack),
            "stack_max": total,
        }
    )
    for k, (_, layer, inp, out) in enumerate(calls):
        convs = [m for m in layer.body if isinstance(m, nn.Conv2d)]
        colour = _PALETTE[k % len(_PALETTE)]
        text = "\n".join(
            [f"layer {k + 1}"]
            + [f"{_pair(c.kernel_size)}: {c.in_channels}→{c.out_channels}" for c in convs]
        )
        stack.append((out.shape[1] - inp.shape[1], colour))
        nodes += [
            {"text": text, "colour": colour},
            {"text": "", "note": "concat", "stack": list(stack), "stack_max": total},
        ]
    skips = [(2 * k, 2 * k + 2, "copy") for k in range(len(calls))]
    return _canvas(nodes, title, skips=skips)[0]


# --- pipelines, a neuron, an MLP, a ViT --------------------------------------------------------


def _check_steps(steps: Sequence[str], what: str = "steps") -> None:
    if (
        isinstance(steps, str)
        or not isinstance(steps, Sequence)
        or not all(isinstance(s, str) for s in steps)
    ):
        raise TypeError(f"expected {what} as a list of strings, got {steps!r}")
    if not steps:
        raise ValueError(f"expected at least one of the {what}, got none")


def flow_diagram(
    steps: Sequence[str],
    title: str | None = None,
    cycle: bool = False,
    skip: tuple[int, int, str] | None = None,
    notes: Sequence[str] | None = None,
) -> Figure:
    """Labelled boxes joined by arrows: a pipeline, a loop, or a block with a shortcut.

    Args:
        steps (sequence of str): the boxes' labels, in order (``\\n`` breaks a line).
        title (str | None): figure title. Default None.
        cycle (bool): an arrow from the last box back to the first. Default False.
        skip (tuple | None): ``(i, j, label)``, an arc from box ``i`` over to box ``j``.
            Default None.
        notes (sequence of str | None): one note under each box. Default None.

    Returns:
        matplotlib.figure.Figure.

    >>> fig = flow_diagram(["x", "conv", "conv", "+"], skip=(0, 3, "identity"))

    Introduced in the chapter "Training neural networks well".
    """
    _check_steps(steps)
    if notes is not None:
        _check_steps(notes, "notes")
        if len(notes) != len(steps):
            raise ValueError(
                f"expected one note per step, got {len(notes)} notes for {len(steps)} steps"
            )
    ok = (
        isinstance(skip, tuple)
        and len(skip) == 3
        and all(isinstance(i, int) and 0 <= i < len(steps) for i in skip[:2])
    )
    if skip is not None and not (ok and skip[0] < skip[1] and isinstance(skip[2], str)):
        raise ValueError(
            f"expected skip as (i, j, label) with 0 <= i < j < {len(steps)}, got {skip!r}"
        )
    nodes = [{"text": s, "note": notes[i] if notes else None} for i, s in enumerate(steps)]
    return _canvas(nodes, title, skips=[skip] if skip else (), loop=(0, None) if cycle else None)[0]


def dataloader_diagram(loader: torch.utils.data.DataLoader, title: str | None = None) -> Figure:
    """How a ``DataLoader`` turns a data set into batches, with the loader's own sizes.

    Dataset items ``(x_i, y_i)`` -> sampler (shuffled or in order) -> groups of ``B`` indices
    -> ``collate`` stacks them into tensors ``X`` ``(B, C, H, W)`` and ``y`` ``(B,)`` -> the
    training step, which asks for the next batch.

    Args:
        loader (DataLoader): a map-style loader with a ``batch_size``, whose items are ``(x, y)``.
        title (str | None): figure title. Default None.

    Returns:
        matplotlib.figure.Figure.

    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> fig = dataloader_diagram(
    ...     DataLoader(TensorDataset(torch.zeros(10, 1, 8, 8), torch.zeros(10)), batch_size=4)
    ... )

    Introduced in the chapter "Training neural networks well".
    """
    if not isinstance(loader, torch.utils.data.DataLoader) or loader.batch_size is None:
        raise TypeError(
            f"expected a torch DataLoader with a batch_size, got {type(loader).__name__}"
        )
    # reading item 0 may draw a random augmentation: leave the seed alone
    with torch.random.fork_rng(devices=[]):
        n, b, item = len(loader.dataset), loader.batch_size, loader.dataset[0]
    if not (
        isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], torch.Tensor)
    ):
        raise ValueError(
            f"expected data set items (x, y) with x a tensor, got {type(item).__name__}"
        )
    x, y = item[0], torch.as_tensor(item[1])
    shuffled = isinstance(loader.sampler, torch.utils.data.RandomSampler)
    last = (
        ""
        if n % b == 0
        else (f" ({n % b} items dropped)" if loader.drop_last else f" ({n // b} × {b} + {n % b})")
    )
    nodes = [
        {"text": f"Dataset\n{n:,} items (x_i, y_i)", "note": f"x_i: {'×'.join(map(str, x.shape))}"},
        {"text": f"{type(loader.sampler).__name__}\n"
                 f"{'shuffled' if shuffled else 'in order'}: 0 … {n - 1}",
         "note": "a new order every epoch" if shuffled else "the same order every epoch"},
        {"text": f"BatchSampler\ngroups of B = {b} indices",
         "note": f"{len(loader)} batches per epoch{last}"},
        {"text": "collate\nstack B items",
         "note": f"X: {'×'.join(map(str, (b, *x.shape)))},  "
                 f"y: {'×'.join(map(str, (b, *y.shape)))}"},
        {"text": "training step\nfor X, y in loader"},
    ]  # fmt: skip
    return _canvas(nodes, title, loop=(2, "next batch"))[0]


def neuron_diagram(n_inputs: int = 3, activation: str = "f", title: str | None = None) -> Figure:
    """One neuron: inputs ``x_j`` times weights ``w_j``, summed with a bias ``b``, then an
    activation.

    Args:
        n_inputs (int): number of inputs drawn, 1 to 8. Default 3.
        activation (str): the activation's name, for example ``"sign"`` or ``"σ"``. Default ``"f"``.
        title (str | None): figure title. Default a formula.

    Returns:
        matplotlib.figure.Figure.

    >>> fig = neuron_diagram(2, "sign")

    Introduced in the chapter "The perceptron".
    """
    if isinstance(n_inputs, bool) or not isinstance(n_inputs, int):
        raise TypeError(f"expected n_inputs as an integer from 1 to 8, got {n_inputs!r}")
    if not 1 <= n_inputs <= 8:
        raise ValueError(f"expected n_inputs as an integer from 1 to 8, got {n_inputs!r}")
    if not isinstance(activation, str) or not activation:
        raise TypeError(f"expected the activation's name as a non-empty string, got {activation!r}")
    height = max(2.6, 0.65 * n_inputs + 1.4)
    fig = plt.figure(figsize=(WIDTH, height))
    ax = fig.add_axes((0, 0, 1, 1), xlim=(0, WIDTH), ylim=(0, height))
    ax.axis("off")
    mid, big = (height - 0.2) / 2, {"ha": "center", "va": "center", "fontsize": 12}
    f = rf"\mathrm{{{activation}}}" if len(activation) > 1 else activation
    ax.text(
        WIDTH / 2,
        height - 0.25,
        title or rf"$z = \sum_j w_j x_j + b,\quad \hat{{y}} = {f}(z)$",
        **big,
    )
    for j in range(n_inputs):
        y = mid + 0.65 * ((n_inputs - 1) / 2 - j)
        ax.add_patch(Circle((1.6, y), 0.25, fc=COLOURS["io"], ec="#444444"))
        ax.text(1.6, y, f"$x_{j + 1}$", **big)
        _arrow(ax, [(1.85, y), (4.9 - 0.4 * 0.9, mid + 0.4 * (y - mid) / 3)])
        ax.text(3.0, y + (mid - y) * 0.37 + 0.1, f"$w_{j + 1}$", **big)
    ax.add_patch(Circle((5.0, mid), 0.4, fc=COLOURS["linear"], ec="#444444"))
    ax.text(5.0, mid, r"$\Sigma$", **(big | {"fontsize": 16}))
    _arrow(ax, [(5.0, mid + 1.0), (5.0, mid + 0.4)])
    ax.text(5.0, mid + 1.15, "$b$", **big)
    ax.add_patch(
        FancyBboxPatch(
            (6.6, mid - 0.3),
            1.1,
            0.6,
            boxstyle="round,pad=0,rounding_size=0.06",
            fc=COLOURS["norm"],
            ec="#444444",
        )
    )
    ax.text(7.15, mid, activation, **big)
    _arrow(ax, [(5.4, mid), (6.6, mid)])
    ax.text(6.0, mid + 0.2, "$z$", **big)
    _arrow(ax, [(7.7, mid), (8.6, mid)])
    ax.text(8.9, mid, r"$\hat{y}$", **big)
    for x, text in (
        (1.6, "inputs"),
        (3.0, "weights"),
        (5.0, "weighted sum\nplus bias"),
        (7.15, "activation"),
        (8.9, "output"),
    ):
        ax.text(x, 0.3, text, ha="center", va="center", fontsize=FONT + 1, color="#333333")
    return fig


def _mlp_widths(model) -> tuple[list[int], list[str]]:
    """Layer widths and each layer's activation name, from a model's Linear layers or a list
    of ints."""
    if isinstance(model, nn.Module):
        leaves = [m for m in model.modules() if next(m.children(), None) is None]
        idx = [k for k, m in enumerate(leaves) if isinstance(m, nn.Linear)]
        if not idx:
            raise ValueError(
                f"expected a model with Linear layers, got none in {type(model).__name__}"
            )
        acts = [
            type(leaves[k + 1]).__name__
            if k + 1 < len(leaves) and _kind(leaves[k + 1]) == "norm"
            else ""
            for k in idx
        ]
        return [leaves[idx[0]].in_features] + [leaves[k].out_features for k in idx], ["", *acts]
    if (
        isinstance(model, Sequence)
        and len(model) >= 2
        and all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in model)
    ):
        return list(model), [""] * len(model)
    raise TypeError(
        f"expected an nn.Module with Linear layers or at least two positive widths, got {model!r}"
    )


def mlp_diagram(
    model: nn.Module | Sequence[int], max_nodes: int = 6, title: str | None = None
) -> Figure:
    """A multilayer perceptron as columns of neurons, every neuron joined to every one in the
    next column.

    Layers wider than ``max_nodes`` show ``max_nodes - 1`` neurons and a vertical ellipsis; the
    width is written under each column.

    Args:
        model (nn.Module | sequence of int): a network whose ``nn.Linear`` layers are read in
            order, or the widths, for example ``(784, 256, 10)``.
        max_nodes (int): most neurons drawn per column, at least 3. Default 6.
        title (str | None): figure title. Default None.

    Returns:
        matplotlib.figure.Figure.

    >>> fig = mlp_diagram((2, 3, 1))

    Introduced in the chapter "Multilayer networks and activation functions".
    """
    widths, acts = _mlp_widths(model)
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int):
        raise TypeError(f"expected an integer max_nodes of at least 3, got {max_nodes!r}")
    if max_nodes < 3:
        raise ValueError(f"expected an integer max_nodes of at least 3, got {max_nodes!r}")
    rows = min(max(widths), max_nodes)
    height = rows * 0.42 + 1.0 + (0.45 if title else 0)
    fig = plt.figure(figsize=(WIDTH, height))
    ax = fig.add_axes((0, 0, 1, 1), xlim=(0, WIDTH), ylim=(0, height))
    ax.axis("off")
    if title:
        ax.text(WIDTH / 2, height - 0.25, title, ha="center", va="center", fontsize=11)
    mid, step = 0.95 + (rows - 1) * 0.21, (WIDTH - 2.4) / (len(widths) - 1)
    columns = []
    for k, w in enumerate(widths):
        shown = min(w, max_nodes)
        ys = [mid + 0.42 * ((shown - 1) / 2 - i) for i in range(shown)]
        if w > max_nodes:
            ax.text(1.2 + k * step, ys[-2], "⋮", ha="center", va="center", fontsize=14)
            ys = ys[:-2] + ys[-1:]
        columns.append(ys)
        kind = "io" if k == 0 else "linear"
        for y in ys:
            ax.add_patch(
                Circle((1.2 + k * step, y), 0.13, fc=COLOURS[kind], ec="#444444", lw=0.8, zorder=3)
            )
        name = "input" if k == 0 else "output" if k == len(widths) - 1 else f"hidden {k}"
        ax.text(
            1.2 + k * step,
            0.35,
            f"{name}\n{w:,}" + (f" + {acts[k]}" if acts[k] else ""),
            ha="center",
            va="center",
            fontsize=FONT + 0.5,
        )
    for k in range(len(widths) - 1):
        for y0 in columns[k]:
            for y1 in columns[k + 1]:
                ax.plot(
                    [1.2 + k * step, 1.2 + (k + 1) * step],
                    [y0, y1],
                    color="#888888",
                    lw=0.5,
                    zorder=1,
                )
    return fig


def vit_diagram(model: nn.Module, title: str | None = None) -> Figure:
    """A Vision Transformer with its own sizes: patches, tokens, encoder blocks, head; and one
    block inside.

    Args:
        model (ViT): a :class:`visionbook.attention.ViT`; patch size, token dimension, depth,
            heads, MLP width and classes are read from it.
        title (str | None): figure title. Default None.

    Returns:
        matplotlib.figure.Figure.

    >>> from visionbook.attention import ViT
    >>> fig = vit_diagram(ViT(28, 7, dim=16, depth=1, heads=2))

    Introduced in the chapter "Attention and vision transformers".
    """
    from visionbook.attention import ViT

    if not isinstance(model, ViT):
        raise TypeError(f"expected a visionbook.attention.ViT, got {type(model).__name__}")
    c, p, g = model.embed.proj.in_channels, model.embed.patch, model.grid
    d, depth, block, k = (
        model.embed.proj.out_channels,
        len(model.blocks),
        model.blocks[0],
        model.head.out_features,
    )
    n, hidden = g * g, block.mlp[0].out_features
    where = (
        "learned"
        if isinstance(model.pos, nn.Parameter)
        else "sinusoidal"
        if model.pos.abs().sum()
        else "no"
    )
    L = lambda text, kind="step", note=None, **kw: {
        "text": text,
        "colour": COLOURS[kind],
        "note": note,
        **kw,
    }
    nodes = [
        L("image", "io", f"{c}×{g * p}×{g * p}"),
        L(f"cut into patches\n{g}×{g} grid of {p}×{p}", "shape", f"{n}×{c * p * p}"),
        L(f"patch embedding\nLinear {c * p * p}→{d}", "linear", f"{n}×{d}"),
        L(f"+ [CLS] token\n+ {where} positions", "step", f"{n + 1}×{d}"),
        L(f"encoder block\n× {depth}", "attention", f"{n + 1}×{d}"),
        L("LayerNorm\n[CLS] token only", "norm", f"{d}"),
        L(f"head\nLinear {d}→{k}", "linear", f"{k} logits"),
        L("tokens", "io", f"{n + 1}×{d}", row=True, parent=None, caption=" "),
        L("LayerNorm", "norm"),
        L(f"multi-head\nattention\n{block.attn.heads} heads", "attention"),
        L("add", "io"),
        L("LayerNorm", "norm"),
        L(f"MLP\n{d}→{hidden}→{d}\nGELU", "linear"),
        L("add", "io", f"{n + 1}×{d}"),
    ]  # fmt: skip
    fig, pos = _canvas(nodes, title, skips=[(7, 10, "residual"), (10, 13, "residual")])
    ax, (x, y, w, h) = fig.axes[0], pos[4]
    left, right = pos[7][0] - pos[7][2] / 2 - 0.15, pos[13][0] + pos[13][2] / 2 + 0.15
    top = pos[7][1] + h / 2 + 0.7
    ax.add_patch(FancyBboxPatch((left, 0.08), right - left, top - 0.08,
                                boxstyle="round,pad=0,rounding_size=0.1",
                                fc="none", ec="#888888", ls="--"))  # fmt: skip
    ax.text(
        left + 0.12,
        top - 0.17,
        f"inside each of the {depth} encoder blocks",
        fontsize=FONT + 0.5,
        va="center",
        style="italic",
    )
    for xa, xb in ((x - w / 2, left), (x + w / 2, right)):
        ax.plot([xa, xb], [y - h / 2, top], color="#888888", ls="--", lw=0.8)
    return fig


# --- data parallelism --------------------------------------------------------------------------


def data_parallel_diagram(
    world_size: int = 4, batch_size: int = 256, title: str | None = None
) -> Figure:
    """Data parallelism: one batch cut into shards, a replica of the model per worker, and the
    ring all-reduce that averages their gradients before the same update everywhere.

    Args:
        world_size (int): number of workers drawn, 2 to 8. Default 4.
        batch_size (int): the global batch, divisible by ``world_size``. Default 256.
        title (str | None): figure title. Default None.

    Returns:
        matplotlib.figure.Figure.

    >>> fig = data_parallel_diagram(2, 64)

    Introduced in the chapter "Training past one device".
    """
    _expect_int(world_size, "world_size", minimum=2)
    _expect_int(batch_size, "batch_size")
    if title is not None and not isinstance(title, str):
        raise TypeError(f"expected title as a string or None, got {type(title).__name__}")
    if world_size > 8 or batch_size % world_size:
        raise ValueError(
            f"expected 2 to 8 workers and a batch divisible by them, got {world_size} workers "
            f"and a batch of {batch_size}"
        )
    shard, height = batch_size // world_size, 5.6 + (0.45 if title else 0)
    fig = plt.figure(figsize=(WIDTH, height))
    ax = fig.add_axes((0, 0, 1, 1), xlim=(0, WIDTH), ylim=(0, height))
    ax.axis("off")
    if title:
        ax.text(WIDTH / 2, height - 0.25, title, ha="center", va="center", fontsize=11)
    top = 5.3
    _node(ax, {"text": f"global batch of {batch_size} images", "colour": COLOURS["io"]},
          (WIDTH / 2, top, 4.0, 0.4))  # fmt: skip
    step = (WIDTH - 1.0) / world_size
    xs = [0.5 + step * (k + 0.5) for k in range(world_size)]
    levels = [
        ("shard {k}\n{shard} images", COLOURS["shape"], 4.3),
        ("worker (rank) {k}\nreplica of the model", COLOURS["conv"], 3.3),
        ("gradient g{k}\nof its shard", COLOURS["norm"], 2.3),
        ("ḡ = mean of g0…g{last}\nsame step everywhere", COLOURS["linear"], 0.5),
    ]
    width = min(step - 0.25, 2.0)
    for k, x in enumerate(xs):
        _arrow(ax, [(x, top - 0.2), (x, levels[0][2] + 0.3)])
        for i, (text, colour, y) in enumerate(levels):
            label = text.format(k=k, shard=shard, last=world_size - 1)
            _node(ax, {"text": label, "colour": colour}, (x, y, width, 0.6))
            if i in (1, 2):
                _arrow(ax, [(x, levels[i - 1][2] - 0.3), (x, y + 0.3)])
    ring_y = 1.4
    ax.text(WIDTH / 2, ring_y + 0.28, "ring all-reduce: each worker sends to its right-hand "
            "neighbour, 2(p-1)/p of the gradient's bytes", ha="center", fontsize=FONT)  # fmt: skip
    for k, x in enumerate(xs):
        _arrow(ax, [(x, levels[2][2] - 0.3), (x, levels[3][2] + 0.3)])
        if k + 1 < world_size:
            _arrow(ax, [(x + 0.15, ring_y), (xs[k + 1] - 0.15, ring_y)])
    below = ring_y - 0.22
    _arrow(ax, [(xs[-1] + 0.15, ring_y), (xs[-1] + 0.35, ring_y), (xs[-1] + 0.35, below),
                (xs[0] - 0.35, below), (xs[0] - 0.35, ring_y), (xs[0] - 0.15, ring_y)])  # fmt: skip
    return fig
