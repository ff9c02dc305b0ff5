"""The book's own model zoo: a registry and a cache of the small models it trains for itself.

``get(name)`` loads a trained model from ``data_home()/zoo`` when a verified checkpoint of
the same recipe is there; otherwise it trains the model deterministically from offline
data (within the budget of the first chapter that needs it), saves it atomically and
returns it. The recipes themselves (network, data, training) are in :mod:`visionbook.recipes`.
The file name carries a hash of the recipe (architecture and training settings), so a changed
recipe is retrained instead of loading stale weights.

One checkpoint is one file: the weights, the record (recipe key, metrics, training time)
and a SHA-256 digest of both, written to a unique temporary name and renamed into place,
so a reader never sees the weights of one run with the record of another. A file whose
digest, recipe key or contents do not check out is reported and retrained, never used.
A lock file serialises training across processes, so two notebooks asking for the same
model at once train it once. Introduced in the chapter "Transfer learning".
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from visionbook import config
from visionbook._validate import _atomic_write, _expect_module

FORMAT = "visionbook-zoo/2"


@dataclass(frozen=True)
class Recipe:
    """How to build and train one zoo model; ``settings`` are hashed into the cache key.

    ``build()`` returns the untrained model (it is called under ``settings["seed"]``, default 0);
    ``train(model, settings)`` trains it in place and returns a dict of float metrics, at least
    ``"test_accuracy"`` for a classifier.
    """

    name: str
    build: Callable[[], nn.Module]
    train: Callable[[nn.Module, dict], dict]
    settings: dict = field(default_factory=dict)
    description: str = ""


# recipes added with register(), besides the book's own in visionbook.recipes
_RECIPES: dict[str, Recipe] = {}


def _registry() -> dict[str, Recipe]:
    """The book's recipes (``visionbook.recipes.BOOK_RECIPES``, read on first use) and the
    registered ones, by name."""
    from visionbook.recipes import BOOK_RECIPES  # the recipes import the zoo's Recipe

    return {**{r.name: r for r in BOOK_RECIPES}, **_RECIPES}


def register(recipe: Recipe) -> Recipe:
    """Add a recipe of your own to the zoo, besides the book's (a name may be used once).

    Args:
        recipe (Recipe): the recipe; its ``settings`` must be JSON-serialisable.

    Returns:
        Recipe: the same recipe, so that ``register`` can wrap its construction.

    Introduced in the chapter "Transfer learning".
    """
    if not isinstance(recipe, Recipe):
        raise TypeError(f"expected a zoo.Recipe, got {type(recipe).__name__}")
    if _registry().get(recipe.name, recipe) is not recipe:
        raise ValueError(f"a zoo recipe named {recipe.name!r} is already registered")
    try:
        json.dumps(recipe.settings)
    except TypeError as err:
        raise TypeError(
            f"expected JSON-serialisable settings for zoo recipe {recipe.name!r} ({err})"
        ) from err
    _RECIPES[recipe.name] = recipe
    return recipe


def names() -> list[str]:
    """The recipe names, the book's and any registered, sorted: what :func:`get` accepts.

    Returns:
        list of str: for example ``["digits04_cnn", "mnist_cnn", "shapes_cnn"]``.

    >>> names()[:2]
    ['digits04_cnn', 'mnist_cnn']

    Introduced in the chapter "Transfer learning".
    """
    return sorted(_registry())


def _recipe(name: str) -> Recipe:
    recipes = _registry()
    if name not in recipes:
        raise ValueError(f"unknown zoo model {name!r}; expected one of {', '.join(names())}")
    return recipes[name]


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed Python, NumPy and PyTorch inside the block and restore the caller's generators after,
    so that a notebook's random numbers do not depend on whether a model came from the cache."""
    # the legacy global state that seed_everything sets
    states = random.getstate(), np.random.get_state()  # noqa: NPY002
    with torch.random.fork_rng():
        config.seed_everything(seed)
        try:
            yield
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])  # noqa: NPY002


def _build(recipe: Recipe) -> nn.Module:
    with _seeded(recipe.settings.get("seed", 0)):
        return recipe.build()


def recipe_key(recipe: Recipe) -> str:
    """A 16-hex-digit hash of the recipe: its name, settings and the architecture's printed form.

    Args:
        recipe (Recipe): the recipe.

    Returns:
        str: the key, part of the checkpoint's file name.

    >>> len(recipe_key(_recipe("mnist_cnn")))
    16

    Introduced in the chapter "Transfer learning".
    """
    if not isinstance(recipe, Recipe):
        raise TypeError(f"expected a zoo.Recipe, got {type(recipe).__name__}")
    text = json.dumps(
        {"name": recipe.name, "settings": recipe.settings, "arch": repr(_build(recipe))},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def checkpoint_path(name: str) -> Path:
    """Where the checkpoint of ``name``'s current recipe lives: ``data_home()/zoo/<name>-<key>.pt``.

    Introduced in the chapter "Transfer learning".
    """
    recipe = _recipe(name)
    return config.data_home() / "zoo" / f"{recipe.name}-{recipe_key(recipe)}.pt"


def _check_record(record: dict) -> None:
    if not isinstance(record, dict):
        raise TypeError(f"expected record as a dict, got {type(record).__name__}")


def digest(state: dict[str, torch.Tensor], record: dict) -> str:
    """SHA-256 of a record and of every tensor of a state dict (names, dtypes, shapes, bytes).

    Args:
        state (dict): a ``state_dict`` of CPU tensors.
        record (dict): JSON-serialisable facts saved with the weights.

    Returns:
        str: 64 hex digits; any changed byte, name or shape changes it.

    >>> digest({"w": torch.zeros(2)}, {}) == digest({"w": torch.zeros(2)}, {})
    True

    Introduced in the chapter "Transfer learning".
    """
    if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise TypeError(
            f"expected state as a dict of tensors (a state_dict), got {type(state).__name__}"
        )
    _check_record(record)
    h = hashlib.sha256(json.dumps(record, sort_keys=True).encode())
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(model: nn.Module, path: str | os.PathLike, record: dict) -> None:
    """Write ``model``'s weights, ``record`` and their digest as one file, atomically.

    Args:
        model (nn.Module): the trained model; its state is saved from the CPU.
        path (str | PathLike): the ``.pt`` file.
        record (dict): JSON-serialisable facts (recipe key, metrics, training time).

    Returns:
        None.

    Introduced in the chapter "Transfer learning".
    """
    state = {k: v.detach().cpu().clone() for k, v in _expect_module(model).state_dict().items()}
    _check_record(record)
    record = json.loads(json.dumps(record))  # plain types only, as weights_only loading requires
    payload = {"format": FORMAT, "record": record, "state": state, "sha256": digest(state, record)}
    _atomic_write(Path(path), lambda f: torch.save(payload, f))


class CorruptCheckpointError(RuntimeError):
    """A checkpoint that cannot be read, fails its digest, belongs to another recipe, or does not
    fit the model."""


def _read_payload(path: Path) -> dict:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    # a truncated or overwritten file fails in many ways (zip, pickle, EOF)
    except Exception as err:
        raise CorruptCheckpointError(
            f"checkpoint {path} cannot be read ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CorruptCheckpointError(f"checkpoint {path} is not a {FORMAT} file")
    if digest(payload["state"], payload["record"]) != payload["sha256"]:
        raise CorruptCheckpointError(
            f"checkpoint {path} does not match its SHA-256 digest (altered or corrupt)"
        )
    return payload


def load_checkpoint(model: nn.Module, path: str | os.PathLike, key: str | None = None) -> dict:
    """Verify ``path`` and load its weights into ``model`` (``torch.load(..., weights_only=True)``).

    Args:
        model (nn.Module): a model of the checkpoint's architecture.
        path (str | PathLike): a file written by :func:`save_checkpoint`.
        key (str | None): the recipe key the record must carry; None skips that check.

    Returns:
        dict: the record saved with the weights.

    Raises:
        CorruptCheckpointError: the file cannot be read, its digest differs, its recipe key is
            not ``key``, or its weights do not fit ``model``.

    Introduced in the chapter "Transfer learning".
    """
    path = Path(path)
    _expect_module(model)
    if key is not None and not isinstance(key, str):
        raise TypeError(f"expected key as a recipe key string or None, got {key!r}")
    payload = _read_payload(path)
    record = payload["record"]
    if key is not None and record.get("recipe") != key:
        raise CorruptCheckpointError(
            f"checkpoint {path} holds recipe {record.get('recipe')!r}, expected {key!r}"
        )
    try:
        model.load_state_dict(payload["state"])
    except RuntimeError as err:
        raise CorruptCheckpointError(f"checkpoint {path} does not fit the model ({err})") from err
    return record


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<path>.lock`` (POSIX ``flock``; no lock where it is missing)."""
    try:
        import fcntl
    except ImportError:  # Windows: no cross-process lock, the atomic rename still keeps files whole
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"zoo: waiting for another process that is training {path.name}")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _train(recipe: Recipe, model: nn.Module, key: str, path: Path) -> dict:
    start = time.perf_counter()
    with _seeded(recipe.settings.get("seed", 0)):
        metrics = recipe.train(model, recipe.settings)
    model.cpu()
    seconds = round(time.perf_counter() - start, 1)
    record = {
        "name": recipe.name,
        "recipe": key,
        "settings": recipe.settings,
        "seconds": seconds,
        **metrics,
    }
    save_checkpoint(model, path, record)
    shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
    print(
        f"zoo: trained {recipe.name} (recipe {key}) in {seconds} s: {shown}; cached as "
        f"zoo/{path.name}"
    )
    return record


def get(name: str, device: torch.device | None = None, retrain: bool = False) -> nn.Module:
    """A trained zoo model in eval mode: loaded from the cache, or trained now and cached.

    Args:
        name (str): one of :func:`names`, for example ``"mnist_cnn"`` or ``"shapes_cnn"``.
        device (torch.device | None): where to put the model. Default ``config.device()``.
        retrain (bool): ignore any cached checkpoint. Default False.

    Returns:
        nn.Module: the model, in eval mode, with ``model.zoo_record`` holding its record
        (recipe key, settings, test metrics, training time).

    >>> model = get("mnist_cnn")  # doctest: +SKIP

    Introduced in the chapter "Transfer learning".
    """
    recipe = _recipe(name)
    if device is not None and not isinstance(device, torch.device | str):
        raise TypeError(
            f"expected device as a torch.device, a string such as 'cpu', or None, got {device!r}"
        )
    if not isinstance(retrain, bool):
        raise TypeError(f"expected retrain as a bool, got {retrain!r}")
    key = recipe_key(recipe)
    path = config.data_home() / "zoo" / f"{name}-{key}.pt"
    with _locked(path):
        model = _build(recipe)
        record = None
        if path.exists() and not retrain:
            try:
                record = load_checkpoint(model, path, key)
                print(f"zoo: loaded {name} (recipe {key}) from the zoo cache")
            except CorruptCheckpointError as err:
                print(f"zoo: {err}; training {name} again")
                model = _build(recipe)
        if record is None:
            record = _train(recipe, model, key, path)
    model.zoo_record = record
    return model.to(device or config.device()).eval()
