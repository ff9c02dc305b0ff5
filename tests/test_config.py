"""visionbook.config: seeding, device choice, the cache directory and the switches."""

import random

import numpy as np
import pytest
import torch

from visionbook import config


def _draws() -> tuple:
    # the global streams, because they are what seed_everything seeds
    return random.random(), np.random.rand(), torch.rand(3)  # noqa: NPY002


def test_seed_everything_repeats_python_numpy_and_torch_streams():
    config.seed_everything(123)
    first = _draws()
    config.seed_everything(123)
    second = _draws()
    assert first[0] == second[0]
    assert first[1] == second[1]
    assert torch.equal(first[2], second[2])


def test_different_seeds_give_different_streams():
    config.seed_everything(1)
    first = _draws()
    config.seed_everything(2)
    second = _draws()
    assert first[0] != second[0]
    assert first[1] != second[1]
    assert not torch.equal(first[2], second[2])


def test_seed_everything_asks_for_deterministic_algorithms():
    before = torch.are_deterministic_algorithms_enabled()
    try:
        config.seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    finally:
        torch.use_deterministic_algorithms(before, warn_only=True)


def test_largest_seed_is_accepted_and_reproduces_the_draws():
    def draws():
        # the global NumPy state is what seed_everything seeds
        legacy = np.random.rand(3)  # noqa: NPY002
        return torch.rand(3), legacy, random.random()

    config.seed_everything(2**32 - 1)
    first = draws()
    config.seed_everything(2**32 - 1)
    second = draws()
    assert (
        torch.equal(first[0], second[0])
        and np.array_equal(first[1], second[1])
        and first[2] == second[2]
    )


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "0", None, True])
def test_bad_seeds_raise(seed):
    with pytest.raises(ValueError, match=r"expected an integer seed in \[0, 2\*\*32\), got"):
        config.seed_everything(seed)


def test_device_is_a_torch_device_that_works():
    dev = config.device()
    assert isinstance(dev, torch.device)
    assert dev.type in {"cuda", "mps", "cpu"}
    assert (torch.ones(2, device=dev) * 2).sum().item() == 4.0
    if torch.cuda.is_available():
        assert dev.type == "cuda"


def test_device_falls_back_to_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert config.device() == torch.device("cpu")


def test_data_home_honours_visionbook_home_and_creates_it(monkeypatch, tmp_path):
    target = tmp_path / "a" / "b"
    monkeypatch.setenv("VISIONBOOK_HOME", str(target))
    assert not target.exists()
    assert config.data_home() == target
    assert target.is_dir()


def test_data_home_default_is_under_the_cache_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("VISIONBOOK_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert config.data_home() == tmp_path / "visionbook"
    assert (tmp_path / "visionbook").is_dir()


@pytest.mark.parametrize("switch", [config.offline, config.full])
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        (" yes ", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("no", False),
        ("off", False),
        ("", False),
    ],
)
def test_switches_parse_true_and_false(monkeypatch, switch, value, expected):
    monkeypatch.setenv(f"VISIONBOOK_{switch.__name__.upper()}", value)
    assert switch() is expected


@pytest.mark.parametrize("switch", [config.offline, config.full])
def test_switches_are_off_when_unset(monkeypatch, switch):
    monkeypatch.delenv(f"VISIONBOOK_{switch.__name__.upper()}", raising=False)
    assert switch() is False


@pytest.mark.parametrize("switch", [config.offline, config.full, config.progress_enabled])
def test_switches_reject_garbage(monkeypatch, switch):
    name = (
        "VISIONBOOK_PROGRESS"
        if switch is config.progress_enabled
        else f"VISIONBOOK_{switch.__name__.upper()}"
    )
    monkeypatch.setenv(name, "maybe")
    with pytest.raises(
        ValueError, match=f"expected {name} to be 1/true/yes/on or 0/false/no/off, got 'maybe'"
    ):
        switch()


@pytest.mark.parametrize(
    ("value", "expected"), [(None, True), ("", True), ("1", True), ("0", False), ("false", False)]
)
def test_progress_enabled(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("VISIONBOOK_PROGRESS", raising=False)
    else:
        monkeypatch.setenv("VISIONBOOK_PROGRESS", value)
    assert config.progress_enabled() is expected


def test_seed_everything_rejects_a_non_bool_deterministic():
    with pytest.raises(TypeError, match="expected deterministic as a bool, got 'yes'"):
        config.seed_everything(0, deterministic="yes")
