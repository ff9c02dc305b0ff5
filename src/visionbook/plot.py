"""Figures used throughout the book: image grids, training curves, confusion matrices, and code.

:func:`show_source` shows the book's own functions on the page, so that a chapter can call a
helper and show the reader what it does. Introduced in the chapter "Images as data".
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def to_hwc(image: torch.Tensor) -> np.ndarray:
    """A ``(C, H, W)`` or ``(H, W)`` tensor as an array matplotlib shows: ``(H, W, 3)`` or
    ``(H, W)``.

    >>> to_hwc(torch.zeros(3, 4, 5)).shape
    (4, 5, 3)

    Introduced in the chapter "Images as data".
    """
    if (
        not isinstance(image, torch.Tensor)
        or image.ndim not in (2, 3)
        or (image.ndim == 3 and image.shape[0] not in (1, 3))
    ):
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(
            f"expected an image tensor of shape (C, H, W) with C in (1, 3), or (H, W); got {shape}"
        )
    image = image.detach().cpu().float()
    if image.ndim == 3:
        image = image[0] if image.shape[0] == 1 else image.permute(1, 2, 0)
    return image.numpy()


def show_images(
    images: torch.Tensor | Sequence[torch.Tensor],
    labels: Sequence[str] | None = None,
    ncols: int = 8,
    size: float = 1.4,
    cmap: str = "gray",
    title: str | None = None,
):
    """Show images in a grid, each with an optional label above it.

    Args:
        images (Tensor | sequence): ``(N, C, H, W)`` or a list of ``(C, H, W)`` / ``(H, W)``.
        labels (sequence of str | None): one caption per image. Default None.
        ncols (int): images per row. Default 8.
        size (float): inches per image. Default 1.4.
        cmap (str): colour map for one-channel images. Default "gray".
        title (str | None): figure title.

    Returns:
        matplotlib.figure.Figure.

    >>> fig = show_images(torch.rand(4, 1, 8, 8), ["a", "b", "c", "d"])

    Introduced in the chapter "Images as data".
    """
    if isinstance(images, torch.Tensor) and images.ndim != 4:
        raise ValueError(
            f"expected a batch of images of shape (N, C, H, W), got {tuple(images.shape)}"
        )
    images = list(images)
    if not images:
        raise ValueError("expected at least one image, got none")
    if isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"expected a positive integer ncols, got {ncols!r}")
    if labels is not None and len(labels) != len(images):
        raise ValueError(
            f"expected one label per image, got {len(labels)} labels for {len(images)} images"
        )
    ncols = min(ncols, len(images))
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if title else 0)), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(to_hwc(images[i]), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            if labels is not None:
                ax.set_title(str(labels[i]), fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_history(history: dict[str, list[float]], title: str | None = None):
    """Loss and accuracy per epoch, training and validation, side by side (accuracy if recorded).

    Args:
        history (dict): as returned by :func:`visionbook.train.fit`.
        title (str | None): figure title.

    Returns:
        matplotlib.figure.Figure.

    >>> fig = plot_history({"train_loss": [1.0, 0.5], "val_loss": [1.1, 0.7]})

    Introduced in the chapter "Multilayer networks and activation functions".
    """
    if not isinstance(history, dict):
        raise TypeError(f"expected a history dict as fit() returns, got {type(history).__name__}")
    if not isinstance(history.get("train_loss"), list | tuple) or not history["train_loss"]:
        raise ValueError(
            "expected a history with a non-empty 'train_loss' list, as fit() returns; got keys "
            f"{sorted(history)}"
        )
    metrics = [
        m for m in ("loss", "accuracy") if history.get(f"train_{m}") or history.get(f"val_{m}")
    ]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for split in ("train", "val"):
            values = history.get(f"{split}_{metric}", [])
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} per epoch")
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_matrix(y_true: torch.Tensor, y_pred: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts ``C[i, j]`` of examples of true class ``i`` predicted as ``j``: ``(K, K)`` int64.

    >>> confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), 2).tolist()
    [[1, 0], [1, 1]]

    Introduced in the chapter "Multilayer networks and activation functions".
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"expected a positive integer num_classes, got {num_classes!r}")
    y_true, y_pred = torch.as_tensor(y_true).cpu(), torch.as_tensor(y_pred).cpu()
    if y_true.is_floating_point() or y_pred.is_floating_point():
        raise TypeError(
            f"expected integer labels, got {y_true.dtype} and {y_pred.dtype} (take "
            "logits.argmax(1) first)"
        )
    y_true, y_pred = y_true.long(), y_pred.long()
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(
            f"expected two label vectors of the same shape (N,), got {tuple(y_true.shape)} and "
            f"{tuple(y_pred.shape)}"
        )
    if len(y_true) and (
        min(y_true.min(), y_pred.min()) < 0 or max(y_true.max(), y_pred.max()) >= num_classes
    ):
        got = (int(min(y_true.min(), y_pred.min())), int(max(y_true.max(), y_pred.max())))
        raise ValueError(
            f"expected labels in 0..{num_classes - 1}, got labels from {got[0]} to {got[1]}"
        )
    return torch.bincount(y_true * num_classes + y_pred, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def plot_confusion_matrix(
    y_true: torch.Tensor, y_pred: torch.Tensor, classes: Sequence[str], title: str | None = None
):
    """Draw the confusion matrix with counts in the cells.

    Args:
        y_true (Tensor): ``(N,)`` true labels.
        y_pred (Tensor): ``(N,)`` predicted labels.
        classes (sequence of str): class names, index = label.
        title (str | None): axes title.

    Returns:
        matplotlib.figure.Figure.

    >>> fig = plot_confusion_matrix(
    ...     torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), ["cat", "dog"]
    ... )

    Introduced in the chapter "Multilayer networks and activation functions".
    """
    if (
        isinstance(classes, str)
        or not isinstance(classes, Sequence)
        or not all(isinstance(c, str) for c in classes)
    ):
        raise TypeError(f"expected classes as a list of names, got {classes!r}")
    cm = confusion_matrix(y_true, y_pred, len(classes)).numpy()
    fig, ax = plt.subplots(figsize=(0.5 * len(classes) + 2, 0.5 * len(classes) + 1.6))
    ax.imshow(cm, cmap="Blues")
    for (i, j), count in np.ndenumerate(cm):
        ax.text(
            j,
            i,
            str(count),
            ha="center",
            va="center",
            fontsize=8,
            color="white" if count > cm.max() / 2 else "black",
        )
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"accuracy {np.trace(cm) / cm.sum():.1%}")
    fig.tight_layout()
    return fig


def _without_docstring(source: str) -> str:
    """``source`` (one function or class, dedented) without the docstring of its body."""
    node = ast.parse(source).body[0]
    first = node.body[0] if getattr(node, "body", None) else None
    if not (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return source
    lines = source.splitlines(keepends=True)
    if len(node.body) == 1:  # nothing but a docstring: keep a body that still parses
        indent = lines[first.lineno - 1][: first.col_offset]
        return (
            "".join(lines[: first.lineno - 1])
            + f"{indent}...\n"
            + "".join(lines[first.end_lineno :])
        )
    return "".join(lines[: first.lineno - 1] + lines[first.end_lineno :])


def show_source(*objects, docstring: bool = False):
    """The source code of functions, methods or classes, for the page (syntax-highlighted).

    Args:
        *objects: functions, methods or classes, shown one after another.
        docstring (bool): keep their docstrings. Default False: the chapter's prose explains them.

    Returns:
        IPython.display.Code: displayed as highlighted Python when it ends a cell.

    >>> print(show_source(to_hwc).data.splitlines()[0])
    def to_hwc(image: torch.Tensor) -> np.ndarray:

    Introduced in the chapter "Backpropagation from scratch".
    """
    from IPython.display import Code

    if not objects:
        raise ValueError("expected at least one function, method or class, got none")
    if not isinstance(docstring, bool):
        raise TypeError(f"expected docstring as a bool, got {docstring!r}")
    parts = []
    for obj in objects:
        if not (inspect.isfunction(obj) or inspect.ismethod(obj) or inspect.isclass(obj)):
            raise TypeError(f"expected functions, methods or classes, got {type(obj).__name__}")
        source = textwrap.dedent(inspect.getsource(obj))
        parts.append(source if docstring else _without_docstring(source))
    return Code("\n".join(p.rstrip("\n") + "\n" for p in parts), language="python")
