"""Tests of visionbook.zoo: caching by recipe, integrity checks, atomic writes, concurrency.

Every test uses a temporary VISIONBOOK_HOME and tiny recipes registered for the test only.
"""

import os
import random
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

from visionbook import zoo


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("VISIONBOOK_HOME", str(tmp_path))
    return tmp_path


def _tiny_train(model: nn.Module, settings: dict) -> dict:
    """Least squares on seeded random data: deterministic, a few milliseconds."""
    X = torch.randn(32, 3)
    y = (X[:, 0] > 0).long()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(settings["steps"]):
        opt.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        opt.step()
    time.sleep(settings.get("sleep", 0.0))
    if settings.get("log"):
        with open(settings["log"], "a") as f:
            f.write("trained\n")
    return {"test_accuracy": float((model(X).argmax(1) == y).float().mean())}


def _tiny(monkeypatch, name="tiny", build=lambda: nn.Linear(3, 2), calls=None, **settings):
    """Register a tiny recipe for this test only; ``calls`` counts its trainings."""

    def train(model, s):
        if calls is not None:
            calls.append(1)
        return _tiny_train(model, s)

    recipe = zoo.Recipe(name, build, train, {"seed": 0, "steps": 5, **settings}, "a test recipe")
    monkeypatch.setitem(zoo._RECIPES, name, recipe)
    return recipe


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)


# --- names, recipes, keys ------------------------------------------------------------------


def test_unknown_name_raises_listing_the_valid_ones():
    with pytest.raises(
        ValueError, match="unknown zoo model 'nope'; expected one of .*mnist_cnn.*shapes_cnn"
    ):
        zoo.get("nope")
    with pytest.raises(ValueError, match="digits04_cnn"):
        zoo.checkpoint_path("nope")


def test_register_rejects_duplicates_non_recipes_and_unserialisable_settings(monkeypatch):
    recipe = _tiny(monkeypatch)
    assert zoo.register(recipe) is recipe  # the same object again is fine
    with pytest.raises(ValueError, match="a zoo recipe named 'tiny' is already registered"):
        zoo.register(zoo.Recipe("tiny", recipe.build, recipe.train, {"seed": 1}))
    with pytest.raises(TypeError, match="expected a zoo.Recipe, got dict"):
        zoo.register({"name": "x"})
    with pytest.raises(TypeError, match="expected JSON-serialisable settings for zoo recipe 'bad'"):
        zoo.register(zoo.Recipe("bad", recipe.build, recipe.train, {"x": object()}))
    assert "bad" not in zoo.names()
    with pytest.raises(ValueError, match="a zoo recipe named 'mnist_cnn' is already registered"):
        zoo.register(zoo.Recipe("mnist_cnn", recipe.build, recipe.train, {"seed": 0}))


def test_recipe_key_is_stable_and_records_settings_and_architecture(monkeypatch):
    a = _tiny(monkeypatch)
    assert zoo.recipe_key(a) == zoo.recipe_key(a)
    assert zoo.recipe_key(a) != zoo.recipe_key(
        zoo.Recipe("tiny", a.build, a.train, {**a.settings, "steps": 6})
    )
    wider = zoo.Recipe(
        "tiny", lambda: nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)), a.train, a.settings
    )
    assert zoo.recipe_key(a) != zoo.recipe_key(wider)
    assert zoo.checkpoint_path("tiny").name == f"tiny-{zoo.recipe_key(a)}.pt"


# --- load or train -------------------------------------------------------------------------


def test_get_trains_once_then_loads_from_the_cache(monkeypatch, home, capsys):
    calls = []
    _tiny(monkeypatch, calls=calls)
    first = zoo.get("tiny", device=torch.device("cpu"))
    assert calls == [1] and "zoo: trained tiny" in capsys.readouterr().out
    assert (
        zoo.checkpoint_path("tiny").is_file() and zoo.checkpoint_path("tiny").parent == home / "zoo"
    )
    second = zoo.get("tiny", device=torch.device("cpu"))
    assert calls == [1] and "zoo: loaded tiny" in capsys.readouterr().out
    assert _same_weights(first, second) and not second.training
    assert second.zoo_record == first.zoo_record
    assert second.zoo_record["recipe"] == zoo.recipe_key(zoo._recipe("tiny"))
    assert second.zoo_record["test_accuracy"] >= 0.75  # the tiny task is linearly separable


def test_training_is_deterministic_and_retrain_ignores_the_cache(monkeypatch):
    calls = []
    _tiny(monkeypatch, calls=calls)
    first = zoo.get("tiny", device=torch.device("cpu"))
    again = zoo.get("tiny", device=torch.device("cpu"), retrain=True)
    assert calls == [1, 1] and _same_weights(first, again)


def test_get_leaves_the_callers_random_generators_alone(monkeypatch):
    """The legacy global NumPy generator is the one seed_everything sets, so it is the one
    to test."""
    _tiny(monkeypatch)
    torch.manual_seed(123), np.random.seed(123), random.seed(123)  # noqa: NPY002
    expected = torch.rand(3), np.random.rand(), random.random()  # noqa: NPY002
    torch.manual_seed(123), np.random.seed(123), random.seed(123)  # noqa: NPY002
    zoo.get("tiny", device=torch.device("cpu"))  # a cold run: builds and trains under its own seed
    assert (
        torch.equal(torch.rand(3), expected[0])
        and np.random.rand() == expected[1]  # noqa: NPY002
        and random.random() == expected[2]
    )


def test_a_changed_recipe_retrains_instead_of_loading_stale_weights(monkeypatch):
    calls = []
    _tiny(monkeypatch, calls=calls, steps=5)
    old = zoo.get("tiny", device=torch.device("cpu"))
    old_path = zoo.checkpoint_path("tiny")
    _tiny(monkeypatch, calls=calls, steps=50)  # same name, new training settings
    new = zoo.get("tiny", device=torch.device("cpu"))
    assert calls == [1, 1] and zoo.checkpoint_path("tiny") != old_path
    assert not _same_weights(old, new) and new.zoo_record["settings"]["steps"] == 50
    _tiny(
        monkeypatch,
        calls=calls,
        build=lambda: nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)),
        steps=50,
    )
    assert isinstance(zoo.get("tiny", device=torch.device("cpu")), nn.Sequential) and calls == [
        1,
        1,
        1,
    ]


def test_get_uses_weights_only_loading(monkeypatch):
    _tiny(monkeypatch)
    zoo.get("tiny", device=torch.device("cpu"))
    seen = []
    real_load = torch.load
    monkeypatch.setattr(
        torch, "load", lambda *a, **k: seen.append(k.get("weights_only")) or real_load(*a, **k)
    )
    zoo.get("tiny", device=torch.device("cpu"))
    assert seen == [True]


# --- corrupt, truncated, mismatched files --------------------------------------------------


def test_every_altered_byte_is_detected_or_harmless(monkeypatch):
    _tiny(monkeypatch)
    good = zoo.get("tiny", device=torch.device("cpu"))
    path = zoo.checkpoint_path("tiny")
    raw = path.read_bytes()
    detected = 0
    for offset in range(0, len(raw), 7):
        flipped = bytearray(raw)
        flipped[offset] ^= 0xFF
        path.write_bytes(bytes(flipped))
        model = nn.Linear(3, 2)
        try:
            record = zoo.load_checkpoint(model, path)
        except zoo.CorruptCheckpointError:
            detected += 1
            continue
        # a byte the loader never reads (zip padding, a local header that mirrors the central
        # directory): the weights and record must then be exactly the saved ones
        assert _same_weights(model, good) and record == good.zoo_record, (
            f"byte {offset} changed the result silently"
        )
    assert detected > len(raw) // 7 // 4  # most offsets hit bytes that are read and checked


def test_a_flipped_weight_byte_is_reported_and_the_model_retrained(monkeypatch, capsys):
    calls = []
    _tiny(monkeypatch, calls=calls)
    good = zoo.get("tiny", device=torch.device("cpu"))
    path = zoo.checkpoint_path("tiny")
    raw = bytearray(path.read_bytes())
    at = bytes(raw).find(good.weight.detach().numpy().tobytes())
    assert at > 0
    # a tiny change of one weight: the file still loads, only the digest sees it
    raw[at + 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(zoo.CorruptCheckpointError, match="does not match its SHA-256 digest"):
        zoo.load_checkpoint(nn.Linear(3, 2), path)
    capsys.readouterr()
    model = zoo.get("tiny", device=torch.device("cpu"))
    assert "does not match its SHA-256 digest" in capsys.readouterr().out and calls == [1, 1]
    assert _same_weights(model, good)
    zoo.load_checkpoint(nn.Linear(3, 2), path)  # the file was rewritten and verifies again


@pytest.mark.parametrize("keep", [0, 10, 0.5, -1])
def test_a_truncated_file_is_reported_and_the_model_retrained(monkeypatch, capsys, keep):
    calls = []
    _tiny(monkeypatch, calls=calls)
    good = zoo.get("tiny", device=torch.device("cpu"))
    path = zoo.checkpoint_path("tiny")
    raw = path.read_bytes()
    path.write_bytes(
        raw[
            : int(len(raw) * keep)
            if isinstance(keep, float)
            else keep
            if keep >= 0
            else len(raw) + keep
        ]
    )
    with pytest.raises(zoo.CorruptCheckpointError, match="cannot be read"):
        zoo.load_checkpoint(nn.Linear(3, 2), path)
    capsys.readouterr()
    assert _same_weights(zoo.get("tiny", device=torch.device("cpu")), good)
    assert "cannot be read" in capsys.readouterr().out and calls == [1, 1]


def test_other_files_are_rejected(monkeypatch, tmp_path):
    _tiny(monkeypatch)
    good = zoo.get("tiny", device=torch.device("cpu"))
    path = zoo.checkpoint_path("tiny")
    with pytest.raises(zoo.CorruptCheckpointError, match="holds recipe .* expected 'abc'"):
        zoo.load_checkpoint(nn.Linear(3, 2), path, key="abc")
    with pytest.raises(zoo.CorruptCheckpointError, match="does not fit the model"):
        zoo.load_checkpoint(nn.Linear(3, 5), path)
    plain = tmp_path / "plain.pt"
    torch.save(good.state_dict(), plain)  # a bare state dict: no record, no digest
    with pytest.raises(zoo.CorruptCheckpointError, match="is not a visionbook-zoo/2 file"):
        zoo.load_checkpoint(nn.Linear(3, 2), plain)
    plain.write_bytes(b"not a checkpoint at all")
    with pytest.raises(zoo.CorruptCheckpointError, match="cannot be read"):
        zoo.load_checkpoint(nn.Linear(3, 2), plain)


def test_digest_sees_names_shapes_dtypes_values_and_record():
    state = {"w": torch.arange(4.0)}
    base = zoo.digest(state, {"a": 1})
    assert base == zoo.digest({"w": torch.arange(4.0)}, {"a": 1}) and len(base) == 64
    others = [
        ({"v": torch.arange(4.0)}, {"a": 1}),
        ({"w": torch.arange(4.0).reshape(2, 2)}, {"a": 1}),
        ({"w": torch.arange(4.0).double()}, {"a": 1}),
        ({"w": torch.tensor([0.0, 1.0, 2.0, 3.0000002])}, {"a": 1}),
        ({"w": torch.arange(4.0)}, {"a": 2}),
    ]
    assert all(zoo.digest(s, r) != base for s, r in others)


# --- atomic writes and concurrency ---------------------------------------------------------


def test_a_failure_during_save_leaves_no_file_and_keeps_the_old_one(monkeypatch, tmp_path):
    path = tmp_path / "zoo" / "m.pt"

    def broken_save(obj, f):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        zoo.save_checkpoint(nn.Linear(3, 2), path, {"recipe": "k"})
    assert list(path.parent.iterdir()) == []
    monkeypatch.undo()
    monkeypatch.setenv("VISIONBOOK_HOME", str(tmp_path))
    old = nn.Linear(3, 2)
    zoo.save_checkpoint(old, path, {"recipe": "k"})
    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        zoo.save_checkpoint(nn.Linear(3, 2), path, {"recipe": "k"})
    assert [p.name for p in path.parent.iterdir()] == ["m.pt"]
    model = nn.Linear(3, 2)
    assert zoo.load_checkpoint(model, path, key="k") == {"recipe": "k"} and _same_weights(
        model, old
    )


def test_concurrent_writers_never_pair_weights_with_another_record(tmp_path):
    """Two writers save different models to one path while a reader loads it: every read is
    whole and consistent (the hazard of a separate .pt and .json written one after the other)."""
    path = tmp_path / "zoo" / "shared.pt"
    zoo.save_checkpoint(nn.Linear(3, 2), path, {"writer": -1})
    stop, problems = threading.Event(), []

    def writer(who):
        model = nn.Linear(3, 2)
        nn.init.constant_(model.weight, who)
        for i in range(30):
            zoo.save_checkpoint(model, path, {"writer": who, "i": i})

    def reader():
        while not stop.is_set():
            model = nn.Linear(3, 2)
            try:
                record = zoo.load_checkpoint(model, path)
            except zoo.CorruptCheckpointError as err:
                problems.append(str(err))
                continue
            if record["writer"] >= 0 and not torch.all(model.weight == record["writer"]):
                problems.append(f"weights of another writer under record {record}")

    threads = [threading.Thread(target=writer, args=(w,)) for w in (1, 2)]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    watcher.join()
    assert problems == []
    assert [p.name for p in path.parent.iterdir()] == ["shared.pt"]  # no temporary files left


_CHILD = """
import os, sys, time, torch
from torch import nn
from visionbook import zoo

def train(model, settings):
    with open(settings["log"], "a") as f:
        f.write("trained\\n")
    deadline = time.time() + 120
    while not os.path.exists(settings["release"]) and time.time() < deadline:
        time.sleep(0.05)  # keep training until the test has seen the other process wait
    torch.nn.init.constant_(model.weight, 0.5)
    return {"test_accuracy": 1.0}

settings = {"seed": 0, "log": sys.argv[1], "release": sys.argv[2]}
zoo.register(zoo.Recipe("tiny", lambda: nn.Linear(3, 2), train, settings))
print("weights", zoo.get("tiny", device=torch.device("cpu")).weight.sum().item())
"""


def test_two_processes_asking_at_once_train_once(tmp_path):
    """One process trains while holding the lock; the other waits, then loads what it saved."""
    log, release = tmp_path / "trainings.log", tmp_path / "release"
    env = {
        **os.environ,
        "VISIONBOOK_HOME": str(tmp_path),
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    outs = [tmp_path / f"out{i}.txt" for i in range(2)]
    files = [open(out, "w") for out in outs]
    children = [
        subprocess.Popen([sys.executable, "-c", _CHILD, str(log), str(release)], env=env, stdout=f)
        for f in files
    ]
    deadline = time.time() + 120
    while (
        not any("zoo: waiting for another process" in out.read_text() for out in outs)
        and time.time() < deadline
    ):
        time.sleep(0.05)
    release.touch()
    for child, f in zip(children, files):
        child.wait(timeout=120)
        f.close()
    texts = [out.read_text() for out in outs]
    assert [child.returncode for child in children] == [0, 0], texts
    assert any("zoo: waiting for another process" in t for t in texts), texts
    assert log.read_text() == "trained\n"  # trained once: the waiting process loaded the checkpoint
    assert sum("zoo: loaded tiny" in t for t in texts) == 1 and all(
        "weights 3.0" in t for t in texts
    ), texts


def test_new_bad_input_messages(tmp_path):
    with pytest.raises(
        TypeError, match="expected device as a torch.device, a string such as 'cpu', or None, got 1"
    ):
        zoo.get("mnist_cnn", device=1)
    with pytest.raises(TypeError, match="expected retrain as a bool, got 'yes'"):
        zoo.get("mnist_cnn", retrain="yes")
    with pytest.raises(TypeError, match="expected a zoo.Recipe, got str"):
        zoo.recipe_key("mnist_cnn")
    with pytest.raises(
        TypeError, match=r"expected state as a dict of tensors \(a state_dict\), got str"
    ):
        zoo.digest("state", {})
    with pytest.raises(TypeError, match="expected record as a dict, got str"):
        zoo.save_checkpoint(torch.nn.Linear(2, 2), tmp_path / "m.pt", "record")
    zoo.save_checkpoint(torch.nn.Linear(2, 2), tmp_path / "m.pt", {})
    with pytest.raises(TypeError, match="expected model as an nn.Module, got str"):
        zoo.load_checkpoint("model", tmp_path / "m.pt")
    with pytest.raises(TypeError, match="expected key as a recipe key string or None, got 1"):
        zoo.load_checkpoint(torch.nn.Linear(2, 2), tmp_path / "m.pt", key=1)
