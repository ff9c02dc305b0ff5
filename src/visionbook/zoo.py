"""The book's own model zoo: small models it trains for itself, cached by recipe.

``get(name)`` loads a trained model from ``data_home()/zoo`` when a verified checkpoint of
the same recipe is there; otherwise it trains the model deterministically from offline
data (within the budget of the first chapter that needs it), saves it atomically and
returns it. The file name carries a hash of the recipe (architecture and training
settings), so a changed recipe is retrained instead of loading stale weights. A checkpoint
whose SHA-256 does not match its record, or that cannot be loaded, is reported and
retrained, never used. Introduced in the chapter "Transfer learning".
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from visionbook import config


@dataclass(frozen=True)
class Recipe:
    """How to build and train one zoo model; ``settings`` are hashed into the cache key."""

    name: str
    build: Callable[[], nn.Module]
    train: Callable[[nn.Module, dict], dict]
    settings: dict = field(default_factory=dict)
    description: str = ""


_RECIPES: dict[str, Recipe] = {}


def register(recipe: Recipe) -> Recipe:
    """Add a recipe to the zoo (a name may be registered once).

    Introduced in the chapter "Transfer learning".
    """
    if recipe.name in _RECIPES and _RECIPES[recipe.name] is not recipe:
        raise ValueError(f"a zoo recipe named {recipe.name!r} is already registered")
    _RECIPES[recipe.name] = recipe
    return recipe


def names() -> list[str]:
    """The registered recipe names, sorted."""
    return sorted(_RECIPES)


def _recipe(name: str) -> Recipe:
    if name not in _RECIPES:
        raise ValueError(f"unknown zoo model {name!r}; expected one of {', '.join(names())}")
    return _RECIPES[name]


def recipe_key(recipe: Recipe) -> str:
    """A hash of the recipe: name, settings and the architecture's printed form.

    >>> len(recipe_key(_recipe("mnist_cnn")))
    16

    Introduced in the chapter "Transfer learning".
    """
    text = json.dumps({"name": recipe.name, "settings": recipe.settings, "arch": repr(recipe.build())}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def checkpoint_path(name: str) -> Path:
    """Where the checkpoint of ``name``'s current recipe lives: ``data_home()/zoo/<name>-<key>.pt``."""
    recipe = _recipe(name)
    return config.data_home() / "zoo" / f"{recipe.name}-{recipe_key(recipe)}.pt"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_write(path: Path, write: Callable[[str], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_checkpoint(model: nn.Module, path: str | os.PathLike, meta: dict) -> None:
    """Write ``model``'s weights and a JSON record (``meta`` plus the file's SHA-256), atomically.

    Args:
        model (nn.Module): the trained model; its state is saved from the CPU.
        path (str | PathLike): the ``.pt`` file; the record goes beside it as ``.json``.
        meta (dict): JSON-serialisable facts (recipe key, metrics, training time).

    Introduced in the chapter "Transfer learning".
    """
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    _atomic_write(path, lambda tmp: torch.save(state, tmp))
    record = {**meta, "sha256": _sha256(path)}
    _atomic_write(path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1)))


class CorruptCheckpointError(RuntimeError):
    """A checkpoint that is missing its record, fails its checksum, or cannot be loaded."""


def load_checkpoint(model: nn.Module, path: str | os.PathLike) -> dict:
    """Verify ``path`` against its record and load it into ``model`` (``weights_only=True``).

    Returns:
        dict: the record written by :func:`save_checkpoint`.

    Raises:
        CorruptCheckpointError: the record is missing or unreadable, the SHA-256 differs,
            or the weights do not load into ``model``.

    Introduced in the chapter "Transfer learning".
    """
    path = Path(path)
    try:
        record = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError) as err:
        raise CorruptCheckpointError(f"checkpoint record {path.with_suffix('.json')} is missing or unreadable ({err})") from err
    if _sha256(path) != record.get("sha256"):
        raise CorruptCheckpointError(f"checkpoint {path} does not match the SHA-256 in its record (truncated or altered)")
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except (RuntimeError, OSError, ValueError) as err:
        raise CorruptCheckpointError(f"checkpoint {path} could not be loaded into the model ({err})") from err
    return record


def get(name: str, device: torch.device | None = None, retrain: bool = False) -> nn.Module:
    """A trained zoo model in eval mode: loaded from the cache, or trained now and cached.

    Args:
        name (str): one of :func:`names`, for example ``"mnist_cnn"`` or ``"shapes_cnn"``.
        device (torch.device | None): where to put the model. Default ``config.device()``.
        retrain (bool): ignore any cached checkpoint. Default False.

    Returns:
        nn.Module: the model, in eval mode, with ``model.zoo_record`` holding its record
        (recipe key, test metrics, training time).

    >>> model = get("mnist_cnn")  # doctest: +SKIP

    Introduced in the chapter "Transfer learning".
    """
    recipe = _recipe(name)
    path, key = checkpoint_path(name), recipe_key(recipe)
    model = recipe.build()
    if path.exists() and not retrain:
        try:
            record = load_checkpoint(model, path)
            print(f"zoo: loaded {name} (recipe {key}) from {path}")
            model.zoo_record = record
            return model.to(device or config.device()).eval()
        except CorruptCheckpointError as err:
            print(f"zoo: {err}; training {name} again")
            model = recipe.build()
    start = time.perf_counter()
    metrics = recipe.train(model, recipe.settings)
    model.cpu()
    record = {"name": name, "recipe": key, "settings": recipe.settings, "seconds": round(time.perf_counter() - start, 1), **metrics}
    save_checkpoint(model, path, record)
    shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
    print(f"zoo: trained {name} (recipe {key}) in {record['seconds']} s: {shown}; saved to {path}")
    model.zoo_record = record
    return model.to(device or config.device()).eval()


# --- the recipes -----------------------------------------------------------------------------


def _train_classifier(model: nn.Module, train_data, test_data, settings: dict) -> dict:
    from visionbook.train import evaluate, fit

    config.seed_everything(settings["seed"])
    fit(model, train_data, epochs=settings["epochs"], lr=settings["lr"], batch_size=settings["batch_size"], seed=settings["seed"], verbose=False)
    return {"test_accuracy": evaluate(model, test_data)["accuracy"]}


def _build_mnist_cnn() -> nn.Module:
    from visionbook.models import lenet

    config.seed_everything(0)
    return lenet(num_classes=10, width=2)


def _train_mnist_cnn(model: nn.Module, settings: dict) -> dict:
    from visionbook.data import load_mnist

    data = load_mnist(full=False)
    return _train_classifier(model, data.train_set(), data.test_set(), settings)


def _build_shapes_cnn() -> nn.Module:
    from visionbook.models import small_cnn

    config.seed_everything(0)
    return small_cnn(num_classes=5, in_channels=3, channels=(16, 32, 64))


def _train_shapes_cnn(model: nn.Module, settings: dict) -> dict:
    from visionbook.shapes import make_shapes

    train = make_shapes(settings["n_train"], seed=1)
    test = make_shapes(1000, seed=2)
    return _train_classifier(model, (train.images, train.labels), (test.images, test.labels), settings)


register(
    Recipe(
        "mnist_cnn",
        _build_mnist_cnn,
        _train_mnist_cnn,
        {"data": "MNIST sample 4,000/1,000", "epochs": 8, "lr": 2e-3, "batch_size": 64, "seed": 0},
        "LeNet-style digit classifier (width 2) trained on the bundled MNIST sample",
    )
)
register(
    Recipe(
        "shapes_cnn",
        _build_shapes_cnn,
        _train_shapes_cnn,
        {"data": "shapes 32x32, train seed 1, test seed 2", "n_train": 6000, "epochs": 10, "lr": 3e-3, "batch_size": 64, "seed": 0},
        "three-block CNN (16-32-64 channels, global average pooling) classifying the five shapes",
    )
)
