"""Tests of visionbook.recipes: the book's zoo recipes, read by the zoo on first use, build the
networks the chapters expect and train them with the book's one random_affine."""

import subprocess
import sys

import pytest
import torch
from torch import nn

from visionbook import augment, recipes, zoo


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("VISIONBOOK_HOME", str(tmp_path))
    return tmp_path


def test_the_zoo_serves_exactly_the_books_recipes_and_importing_registers_nothing():
    assert zoo.names() == sorted(r.name for r in recipes.BOOK_RECIPES)
    assert all(zoo._recipe(r.name) is r for r in recipes.BOOK_RECIPES)
    code = (
        "import sys; from visionbook import zoo; "
        "print(zoo._RECIPES, 'visionbook.recipes' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["{}", "False"], out.stderr


def test_mnist_cnn_contract():
    model = zoo._build(zoo._recipe("mnist_cnn"))
    assert isinstance(model, nn.Sequential)
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert model[:-1](torch.rand(2, 1, 28, 28)).shape == (2, 96)


def test_shapes_cnn_contract():
    model = zoo._build(zoo._recipe("shapes_cnn"))
    assert (
        isinstance(model, nn.Sequential)
        and isinstance(model[-1], nn.Linear)
        and model[-1].out_features == 5
    )
    assert isinstance(model[-3], nn.AdaptiveAvgPool2d) and isinstance(model[-2], nn.Flatten)
    assert isinstance(model[-4][0], nn.Conv2d)  # the last conv block, which Grad-CAM hooks
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 5)


def test_digits04_cnn_builds_a_five_class_model_of_the_small_width():
    model = zoo._build(zoo._recipe("digits04_cnn"))
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 5) and model[:-1](
        torch.rand(2, 1, 28, 28)
    ).shape == (2, 64)
    assert model[:4](torch.rand(2, 1, 28, 28)).shape == (2, 288)  # the trunk the chapters reuse


def test_digit_recipe_training_code_learns_with_the_books_random_affine(monkeypatch):
    """The recipes' own training function, run briefly on two digit classes."""
    calls = []
    real = augment.random_affine

    def spy(X, **kwargs):
        calls.append(kwargs)
        return real(X, **kwargs)

    monkeypatch.setattr(recipes, "random_affine", spy)
    # >= 40 steps: BN statistics settle
    settings = {**zoo._recipe("digits04_cnn").settings, "classes": [0, 1], "epochs": 3}
    model = zoo._build(zoo._recipe("digits04_cnn"))
    model[-1] = nn.Linear(64, 2)
    metrics = recipes._train_digits(model, settings)
    assert metrics["test_accuracy"] >= 0.95
    assert len(calls) == 3 and all(isinstance(c.pop("generator"), torch.Generator) for c in calls)
    assert calls == [{"degrees": 12.0, "max_shift": 2.5, "scale": 0.12}] * 3


def test_shapes_recipe_training_code_trains_and_reports_the_test_accuracy():
    """Too short to learn much; it must still change every layer and report the held-out
    accuracy."""
    from visionbook.shapes import make_shapes
    from visionbook.train import evaluate

    settings = {**zoo._recipe("shapes_cnn").settings, "n_train": 64, "epochs": 1}
    model = zoo._build(zoo._recipe("shapes_cnn"))
    before = [p.detach().clone() for p in model.parameters()]
    metrics = recipes._train_shapes(model, settings)
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    test = make_shapes(1000, seed=2)  # the recipe's test split
    assert metrics["test_accuracy"] == evaluate(model, (test.images, test.labels))["accuracy"]
