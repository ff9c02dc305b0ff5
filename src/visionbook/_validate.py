"""Private helpers shared by the package's modules: argument checks and atomic file writes.

Bad input to any public function gets one clear ``TypeError`` or ``ValueError`` that names what
was expected and what came ("expected images of shape (N, C, H, W), got (3, 32, 32)"); files
(downloads, checkpoints) are written to a temporary name beside their place and renamed into it,
so a crash never leaves half a file where a whole one is expected. Not part of the book's API:
chapters never import it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _as_array(x: Any, what: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"expected a number, array or tensor for {what}, got {type(x).__name__}"
        ) from err


def _as_scalar(x: Any, what: str) -> float:
    array = _as_array(x, what)
    if array.size != 1:
        raise ValueError(
            f"expected a single number for {what}, got an array of shape {array.shape}"
        )
    return float(array.reshape(()))


def _shape(x: Any) -> str:
    """How a wrong argument is shown in a message: its shape for a tensor or array, else
    its type."""
    return str(tuple(x.shape)) if isinstance(x, torch.Tensor | np.ndarray) else type(x).__name__


def _expect_tensor(
    x: Any, what: str, shape: str = "", ndim: int | tuple[int, ...] | None = None, min_ndim: int = 0
) -> torch.Tensor:
    """``x`` if it is a tensor with ``ndim`` (or at least ``min_ndim``) dimensions; else TypeError
    or ValueError "expected {what} of shape {shape}, got ..."."""
    of = f" of shape {shape}" if shape else ""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected {what} as a tensor{of}, got {_shape(x)}")
    if x.ndim < min_ndim or (
        ndim is not None and x.ndim not in ((ndim,) if isinstance(ndim, int) else ndim)
    ):
        raise ValueError(f"expected {what}{of}, got {_shape(x)}")
    return x


def _expect_module(x: Any, what: str = "model") -> Any:
    """``x`` if it is an ``nn.Module``; else TypeError "expected {what} as an nn.Module,
    got ..."."""
    if not isinstance(x, torch.nn.Module):
        raise TypeError(f"expected {what} as an nn.Module, got {_shape(x)}")
    return x


def _expect_path(x: Any, what: str = "path") -> Path:
    """``x`` as a ``Path`` if it is a ``str`` or ``os.PathLike``; else TypeError "expected {what} as
    a path, ..."."""
    if not isinstance(x, str | os.PathLike):
        raise TypeError(f"expected {what} as a path (str or Path), got {_shape(x)}")
    return Path(x)


def _expect_int(x: Any, what: str, minimum: int = 1) -> int:
    """``x`` if it is an int (not a bool) of at least ``minimum``; else TypeError or ValueError."""
    if isinstance(x, bool) or not isinstance(x, int | np.integer):
        raise TypeError(f"expected an integer {what}, got {x!r}")
    if x < minimum:
        raise ValueError(f"expected an integer {what} of at least {minimum}, got {x!r}")
    return int(x)


def _expect_number(
    x: Any, what: str, low: float = float("-inf"), high: float = float("inf")
) -> float:
    """``x`` as a float if it is a real number in ``[low, high]``; else TypeError or ValueError."""
    if isinstance(x, bool) or not isinstance(x, int | float | np.integer | np.floating):
        raise TypeError(f"expected a number for {what}, got {x!r}")
    if not low <= x <= high:
        has_low, has_high = low > float("-inf"), high < float("inf")
        bounds = (
            f"in [{low:g}, {high:g}]"
            if has_low and has_high
            else f">= {low:g}"
            if has_low
            else f"<= {high:g}"
        )
        raise ValueError(f"expected {what} {bounds}, got {x!r}")
    return float(x)


def _positive_int(x: Any) -> bool:
    """Whether ``x`` is an int (not a bool) of at least 1."""
    return isinstance(x, int) and not isinstance(x, bool) and x >= 1


def _check_positive(**values: Any) -> None:
    """ValueError "expected a positive integer {name}, got ..." for the first value that is
    not one."""
    for name, value in values.items():
        if not _positive_int(value):
            raise ValueError(f"expected a positive integer {name}, got {value!r}")


def _check_boxes(boxes: Any, name: str = "boxes") -> None:
    """ValueError "expected {name} of shape (N, 4), got ..." unless ``boxes`` is an
    (N, 4) tensor."""
    if not isinstance(boxes, torch.Tensor) or boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"expected {name} of shape (N, 4), got {_shape(boxes)}")


def _file_digest(path: str | os.PathLike, algorithm: str) -> str:
    """The hex digest of a file under ``hashlib``'s ``algorithm``, read in chunks of 1 MiB."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Write through ``write(file)`` to a unique temporary name beside ``path``, then rename it
    into place; on any failure (``write`` may raise to refuse what it wrote) the temporary file is
    removed and ``path`` is left as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
