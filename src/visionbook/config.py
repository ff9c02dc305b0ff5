"""Reproducibility, device choice and the book's switches (introduced in "Images as data")."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _flag(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    value = "" if raw is None else raw.strip().lower()
    if value == "":
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"expected {name} to be 1/true/yes/on or 0/false/no/off, got {raw!r}")


def seed_everything(seed: int = 0, deterministic: bool = True) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) so that a run can be repeated.

    Args:
        seed (int): the seed, an integer in ``[0, 2**32)`` (NumPy's range). Default 0.
        deterministic (bool): also ask PyTorch for deterministic algorithms where that is
            cheap (cuDNN's deterministic kernels; ``warn_only`` so that operations without
            a deterministic version still run). Default True.

    Returns:
        None.

    >>> seed_everything(42); a = torch.rand(2)
    >>> seed_everything(42); b = torch.rand(2)
    >>> torch.equal(a, b)
    True

    Introduced in the chapter "Images as data".
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"expected an integer seed in [0, 2**32), got {seed!r}")
    if not isinstance(deterministic, bool):
        raise TypeError(f"expected deterministic as a bool, got {deterministic!r}")
    seed = (seed + seed_offset()) % 2**32
    random.seed(seed)
    # the legacy global generator, which scikit-learn and older code still draw from
    np.random.seed(seed)  # noqa: NPY002
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def seed_offset() -> int:
    """The offset ``VISIONBOOK_SEED_OFFSET`` adds to every seed (default 0; readers never set it).

    :mod:`visionbook.tools.seedspread` runs each chapter with offsets 0, 1, 2, ... to measure how
    much a trained model's numbers move with the seed, as they do on a reader's machine, whose
    different rounding acts like a different seed. :func:`seed_everything` and the shuffling of
    :func:`visionbook.train.fit` add it.

    Returns:
        int: the offset, at least 0.

    >>> seed_offset()
    0

    Introduced in the chapter "Images as data".
    """
    value = os.environ.get("VISIONBOOK_SEED_OFFSET", "0").strip() or "0"
    if not value.isdigit():
        raise ValueError(
            f"expected VISIONBOOK_SEED_OFFSET to be a non-negative integer, got {value!r}"
        )
    return int(value)


def device() -> torch.device:
    """The best available device: CUDA, then Apple's MPS, then the CPU.

    Returns:
        torch.device: for example ``device(type='cpu')``.

    >>> device().type in {"cuda", "mps", "cpu"}
    True

    Introduced in the chapter "Images as data".
    """
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def data_home() -> Path:
    """The directory where data sets, downloads and trained checkpoints are cached.

    ``VISIONBOOK_HOME`` overrides the default, ``$XDG_CACHE_HOME/visionbook`` (usually
    ``~/.cache/visionbook``). The directory is created if needed.

    Returns:
        pathlib.Path: an existing directory.

    >>> data_home().is_dir()
    True

    Introduced in the chapter "Images as data".
    """
    home = os.environ.get("VISIONBOOK_HOME")
    if home:
        path = Path(home).expanduser()
    else:
        cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        path = Path(cache) / "visionbook"
    path.mkdir(parents=True, exist_ok=True)
    return path


def offline() -> bool:
    """True when ``VISIONBOOK_OFFLINE=1``: every network attempt is switched off.

    Returns:
        bool.

    >>> isinstance(offline(), bool)
    True

    Introduced in the chapter "Images as data".
    """
    return _flag("VISIONBOOK_OFFLINE")


def full() -> bool:
    """True when ``VISIONBOOK_FULL=1``: full data sets and longer training where offered.

    Returns:
        bool.

    >>> isinstance(full(), bool)
    True

    Introduced in the chapter "Images as data".
    """
    return _flag("VISIONBOOK_FULL")


def quick_or_full(quick: T, full: T) -> T:
    """A length for this run: ``full`` in full mode (``VISIONBOOK_FULL=1``), else ``quick``.

    Chapters take every size that full mode changes (epochs, steps, seeds, images) from here, so
    that a rehearsal (:func:`rehearsal`) can execute full mode's branches, data and weights at the
    quick lengths: in a rehearsal it returns ``quick`` even with ``VISIONBOOK_FULL=1``.

    Args:
        quick: the value of the quick (default) run, and of a rehearsal.
        full: the value of full mode, of the same type.

    Returns:
        ``quick`` or ``full``.

    >>> quick_or_full(8, 12)  # a quick run
    8

    Introduced in the chapter "Images as data".
    """
    if type(quick) is not type(full):
        raise TypeError(
            "expected quick and full as two values of one type (the same length for each mode), "
            f"got {type(quick).__name__} {quick!r} and {type(full).__name__} {full!r}"
        )
    return full if _flag("VISIONBOOK_FULL") and rehearsal() is None else quick


def rehearsal() -> dict | None:
    """The stand-in manifest of a full-mode rehearsal, or None (always None for readers).

    ``VISIONBOOK_REHEARSAL`` names a JSON file written by :mod:`visionbook.tools.rehearse`: for
    each download URL of the book (MNIST's and Fashion-MNIST's idx files, CIFAR-10's archive,
    torchvision's weights) a local stand-in file in the same on-disk format and its checksums.
    :func:`visionbook.data.download` then fetches the stand-in and verifies it against those
    checksums, and :func:`quick_or_full` gives the quick lengths. CI sets it to execute every
    full-mode branch without a network; a reader never does.

    Returns:
        dict | None: ``{"files": {url: {"path": ..., "md5": ..., "sha256": ..., ...}}}``.

    >>> rehearsal() is None
    True

    Introduced in the chapter "Images as data".
    """
    import json

    raw = os.environ.get("VISIONBOOK_REHEARSAL", "").strip()
    if not raw:
        return None
    try:
        manifest = json.loads(Path(raw).read_text())
    except (OSError, ValueError) as err:
        raise ValueError(
            f"expected VISIONBOOK_REHEARSAL to name a readable stand-in manifest (JSON), got "
            f"{raw!r}: {err}"
        ) from err
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("path"), str) for v in files.values()
    ):
        raise ValueError(
            f"expected {raw} to hold {{'files': {{url: {{'path': ..., 'md5': ..., "
            f"'sha256': ...}}}}}}, got {str(manifest)[:120]}"
        )
    return manifest


def progress_enabled() -> bool:
    """Whether training loops show a progress bar (``VISIONBOOK_PROGRESS=0`` hides it).

    Returns:
        bool: True unless the variable is set to a false value.

    >>> isinstance(progress_enabled(), bool)
    True

    Introduced in the chapter "Images as data".
    """
    return _flag("VISIONBOOK_PROGRESS", default=True)
