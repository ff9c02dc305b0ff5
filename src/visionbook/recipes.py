"""The recipes of the book's model zoo: which network, trained how, on what data.

Each recipe is a :class:`visionbook.zoo.Recipe` in the literal ``BOOK_RECIPES`` below; the zoo
reads them on first use (nothing registers itself at import time) and caches each trained model
under a hash of its recipe. Digit models are trained on the bundled MNIST sample with
:func:`visionbook.augment.random_affine` (rotation, shift and zoom drawn afresh each epoch);
the shapes model on the synthetic shapes. Introduced in the chapter "Transfer learning".
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from visionbook.augment import random_affine
from visionbook.data import load_mnist
from visionbook.models import digits_cnn, small_cnn
from visionbook.shapes import make_shapes
from visionbook.train import evaluate, fit
from visionbook.transfer import subset_classes
from visionbook.zoo import Recipe


def _train_classifier(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    settings: dict,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
) -> dict:
    """AdamW with a one-cycle schedule and label smoothing, through the book's ``fit`` loop.

    Args:
        model (nn.Module): the classifier, trained in place.
        train (tuple): images ``(N, C, H, W)`` and labels ``(N,)``.
        test (tuple): the same for the test images.
        settings (dict): ``epochs``, ``batch_size``, ``lr``, ``weight_decay``, ``warmup`` (the
            warm-up fraction), ``label_smoothing`` and ``seed``.
        augment (Callable | None): ``augment(X, generator)`` draws fresh training images each
            epoch. Default None.

    Returns:
        dict: ``{"test_accuracy": float}``.

    >>> X, y = torch.rand(8, 1, 4, 4), torch.arange(8) % 2
    >>> s = dict(epochs=1, batch_size=4, lr=1e-3, weight_decay=0.0, warmup=0.3,
    ...          label_smoothing=0.0, seed=0)
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    >>> list(_train_classifier(model, (X, y), (X, y), s))
    ['test_accuracy']

    Introduced in the chapter "Transfer learning".
    """
    epochs, bs, lr = settings["epochs"], settings["batch_size"], settings["lr"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=settings["weight_decay"])
    steps = epochs * -(-len(train[0]) // bs)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=steps, pct_start=settings["warmup"]
    )
    smoothing = settings["label_smoothing"]
    loss_fn = lambda logits, y: nn.functional.cross_entropy(logits, y, label_smoothing=smoothing)
    generator = torch.Generator().manual_seed(settings["seed"])
    for epoch in range(epochs):
        X = augment(train[0], generator) if augment else train[0]
        fit(
            model, (X, train[1]), epochs=1, batch_size=bs, optimizer=optimizer,
            scheduler=scheduler, loss_fn=loss_fn, seed=settings["seed"] + epoch, verbose=False,
        )  # fmt: skip
    return {"test_accuracy": evaluate(model, test)["accuracy"]}


def _train_digits(model: nn.Module, settings: dict) -> dict:
    """Train a digit CNN on the MNIST sample's ``settings["classes"]`` (relabelled 0..k-1),
    with ``random_affine(X, **settings["affine"])`` each epoch; see :func:`_train_classifier`.

    Introduced in the chapter "Transfer learning".
    """
    data = load_mnist(full=False)
    classes = settings["classes"]
    train = subset_classes(data.X_train, data.y_train, classes)
    test = subset_classes(data.X_test, data.y_test, classes)
    augment = lambda X, generator: random_affine(X, **settings["affine"], generator=generator)
    return _train_classifier(model, train, test, settings, augment)


def _train_shapes(model: nn.Module, settings: dict) -> dict:
    """Train a shapes classifier on ``settings["n_train"]`` shapes (seed 1), tested on 1,000
    others (seed 2); see :func:`_train_classifier`.

    Introduced in the chapter "Transfer learning".
    """
    train, test = make_shapes(settings["n_train"], seed=1), make_shapes(1000, seed=2)
    return _train_classifier(
        model, (train.images, train.labels), (test.images, test.labels), settings
    )


_DIGITS = {
    "data": "MNIST sample 4,000/1,000",
    "affine": {"degrees": 12.0, "max_shift": 2.5, "scale": 0.12},
    "batch_size": 64,
    "lr": 4e-3,
    "weight_decay": 5e-4,
    "warmup": 0.3,
    "label_smoothing": 0.1,
    "seed": 0,
}

BOOK_RECIPES = (
    Recipe(
        "mnist_cnn",
        lambda: digits_cnn(10, (12, 24, 48), 96),
        _train_digits,
        {**_DIGITS, "classes": list(range(10)), "epochs": 12},
        "digit classifier (conv 12-24-48, 96 penultimate units) trained on the bundled "
        "MNIST sample",
    ),
    Recipe(
        "digits04_cnn",
        lambda: digits_cnn(5, (8, 16, 32), 64),
        _train_digits,
        {**_DIGITS, "classes": [0, 1, 2, 3, 4], "epochs": 6},
        "a small digit CNN (conv 8-16-32, 64 penultimate units) pretrained on digits 0-4 only: "
        "the source task of transfer",
    ),
    Recipe(
        "shapes_cnn",
        lambda: small_cnn(num_classes=5, in_channels=3, channels=(16, 32, 64)),
        _train_shapes,
        {
            "data": "shapes 32x32, train seed 1, test seed 2",
            "n_train": 8000,
            "epochs": 3,
            "batch_size": 32,
            "lr": 5e-3,
            "weight_decay": 1e-4,
            "warmup": 0.2,
            "label_smoothing": 0.0,
            "seed": 0,
        },
        "three-block CNN (16-32-64 channels, global average pooling) classifying the five shapes",
    ),
)
