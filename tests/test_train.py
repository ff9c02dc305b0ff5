"""visionbook.train: batching, accuracy, the training loop, evaluation and prediction."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from visionbook.train import (
    _one_cycle,
    accuracy,
    batches,
    evaluate,
    fit,
    fit_for_seconds,
    fit_one_cycle,
    predict,
    train_epoch,
)


class Squares(Dataset):
    """A plain map-style Dataset (not a TensorDataset): item i is (tensor([i]), i**2)."""

    def __len__(self):
        return 11

    def __getitem__(self, i):
        return torch.tensor([float(i)]), i * i


def _tensors(n: int = 10):
    return torch.arange(n, dtype=torch.float32).unsqueeze(1), torch.arange(n)


def _separable(n: int = 64, seed: int = 0):
    """Two classes split by the line x0 + x1 = 0, with a margin of at least 0.5."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 2, generator=g)
    X = X + 0.5 * torch.sign(X.sum(1, keepdim=True)) * torch.ones(1, 2) / 2**0.5
    return X, (X.sum(1) > 0).long()


# ---------------------------------------------------------------- batches


@pytest.mark.parametrize(
    "data", [_tensors(), TensorDataset(*_tensors())], ids=["tuple", "TensorDataset"]
)
def test_batches_in_order(data):
    out = list(batches(data, 3))
    assert [len(y) for _, y in out] == [3, 3, 3, 1]
    assert torch.equal(torch.cat([y for _, y in out]), torch.arange(10))
    assert all(torch.equal(X[:, 0].long(), y) for X, y in out)  # inputs stay with their labels


def test_batches_shuffled_cover_every_example_once():
    out = list(batches(_tensors(), 4, shuffle=True, generator=torch.Generator().manual_seed(0)))
    seen = torch.cat([y for _, y in out])
    assert sorted(seen.tolist()) == list(range(10))
    assert not torch.equal(seen, torch.arange(10))
    assert all(torch.equal(X[:, 0].long(), y) for X, y in out)


def test_batches_shuffle_is_repeatable_with_a_seeded_generator():
    def order(seed):
        return torch.cat(
            [
                y
                for _, y in batches(
                    _tensors(50), 7, shuffle=True, generator=torch.Generator().manual_seed(seed)
                )
            ]
        )

    assert torch.equal(order(3), order(3))
    assert not torch.equal(order(3), order(4))


def test_batches_of_a_generic_dataset_go_through_a_dataloader():
    out = list(batches(Squares(), 4))
    assert [len(y) for _, y in out] == [4, 4, 3]
    X = torch.cat([x for x, _ in out])
    y = torch.cat([y for _, y in out])
    assert X.shape == (11, 1) and torch.equal(y, torch.arange(11) ** 2)

    def shuffled(seed):
        return torch.cat(
            [
                y
                for _, y in batches(
                    Squares(), 4, shuffle=True, generator=torch.Generator().manual_seed(seed)
                )
            ]
        )

    assert sorted(shuffled(0).tolist()) == [i * i for i in range(11)]
    assert torch.equal(shuffled(0), shuffled(0))
    assert not torch.equal(shuffled(0), torch.arange(11) ** 2)


@pytest.mark.parametrize("batch_size", [0, -2, 2.5, True, None])
def test_batches_bad_batch_size_fails_at_the_call(batch_size):
    with pytest.raises(ValueError, match="expected a positive integer batch_size, got"):
        batches(_tensors(), batch_size)


def test_batches_bad_data():
    with pytest.raises(
        TypeError, match=r"expected a Dataset or a tuple \(X, y\) of tensors, got list"
    ):
        batches([1, 2, 3], 2)
    with pytest.raises(TypeError, match="expected data as a Dataset or a tuple"):
        batches((torch.zeros(3), torch.zeros(3), torch.zeros(3)), 2)
    with pytest.raises(ValueError, match="expected X and y of the same length, got 5 and 4"):
        batches((torch.zeros(5, 2), torch.zeros(4)), 2)


# ---------------------------------------------------------------- accuracy


def test_accuracy_on_a_hand_example():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 5.0], [4.0, 4.5, 0.0]])
    # predicted classes 0, 1, 2, 1 against true 0, 1, 1, 0: two of four right
    assert accuracy(logits, torch.tensor([0, 1, 1, 0])) == 0.5
    assert accuracy(logits, torch.tensor([0, 1, 2, 1])) == 1.0
    assert accuracy(logits, torch.tensor([1, 0, 0, 0])) == 0.0


@pytest.mark.parametrize(
    ("logits", "y"),
    [
        (torch.zeros(4), torch.zeros(4, dtype=torch.long)),
        (torch.zeros(4, 3), torch.zeros(5, dtype=torch.long)),
        (torch.zeros(4, 3), torch.zeros(4, 1, dtype=torch.long)),
        (torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)),
    ],
)
def test_accuracy_bad_shapes(logits, y):
    with pytest.raises(
        ValueError, match=r"expected logits \(N, K\) and labels \(N,\) with N > 0, got"
    ):
        accuracy(logits, y)


def test_accuracy_needs_tensors():
    with pytest.raises(
        TypeError, match="expected logits and labels as tensors, got list and Tensor"
    ):
        accuracy([[1.0, 0.0]], torch.tensor([0]))


# ---------------------------------------------------------------- fit, evaluate, predict


def test_fit_separates_a_linearly_separable_problem(capsys):
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    train, val = _separable(64, seed=0), _separable(32, seed=1)
    history = fit(model, train, val, epochs=20, lr=0.1, batch_size=16, device=torch.device("cpu"))
    assert set(history) == {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds"}
    assert all(len(v) == 20 for v in history.values())
    assert history["train_accuracy"][-1] == 1.0 and history["val_accuracy"][-1] == 1.0
    assert history["train_loss"][-1] < history["train_loss"][0] / 2
    assert all(s > 0 for s in history["seconds"])
    lines = capsys.readouterr().out.splitlines()
    # a short log
    assert [int(line.split()[1].split("/")[0]) for line in lines] == [1, 5, 9, 12, 16, 20]
    assert lines[-1].startswith("epoch 20/20  train loss") and "val loss" in lines[-1]
    assert evaluate(model, val)["accuracy"] == 1.0


@pytest.mark.parametrize("epochs", [1, 2, 6, 7, 50])
def test_fit_logs_the_first_and_last_epoch_and_at_most_six(epochs, capsys):
    fit(nn.Linear(2, 2), _separable(8, seed=0), epochs=epochs, device=torch.device("cpu"))
    logged = [int(line.split()[1].split("/")[0]) for line in capsys.readouterr().out.splitlines()]
    assert logged[0] == 1 and logged[-1] == epochs and logged == sorted(set(logged))
    assert len(logged) == min(epochs, 6)


def test_fit_without_validation_and_quietly(capsys):
    history = fit(nn.Linear(2, 2), _separable(16), epochs=3, verbose=False)
    assert (
        len(history["train_loss"]) == 3
        and history["val_loss"] == []
        and history["val_accuracy"] == []
    )
    assert capsys.readouterr().out == ""


def test_fit_is_repeatable_with_the_same_seed():
    def run(seed):
        torch.manual_seed(0)  # the same initial weights
        return fit(
            nn.Linear(2, 2),
            _separable(64),
            epochs=3,
            lr=0.05,
            batch_size=8,
            seed=seed,
            verbose=False,
        )["train_loss"]

    assert run(0) == run(0)
    assert run(0) != run(1)  # the seed decides the order of the batches


def test_fit_matches_a_hand_written_loop():
    """With shuffling fixed by the seed, fit() is exactly zero_grad, forward, backward, step
    per batch."""
    X, y = _separable(24)
    torch.manual_seed(0)
    ours, reference = nn.Linear(2, 2), nn.Linear(2, 2)
    reference.load_state_dict(ours.state_dict())
    fit(
        ours,
        (X, y),
        epochs=2,
        lr=0.1,
        batch_size=8,
        optimizer=torch.optim.SGD(ours.parameters(), lr=0.1),
        seed=5,
        verbose=False,
    )
    g, opt = torch.Generator().manual_seed(5), torch.optim.SGD(reference.parameters(), lr=0.1)
    for _ in range(2):
        order = torch.randperm(24, generator=g)
        for i in range(0, 24, 8):
            idx = order[i : i + 8]
            opt.zero_grad()
            F.cross_entropy(reference(X[idx]), y[idx]).backward()
            opt.step()
    assert torch.allclose(ours.weight, reference.weight, atol=1e-6) and torch.allclose(
        ours.bias, reference.bias, atol=1e-6
    )


def test_fit_steps_the_scheduler_once_per_batch():
    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5**step)
    fit(
        model,
        _separable(20),
        epochs=2,
        batch_size=8,
        optimizer=opt,
        scheduler=scheduler,
        verbose=False,
    )
    assert scheduler.last_epoch == 6  # 3 batches (8, 8, 4) in each of 2 epochs
    assert opt.param_groups[0]["lr"] == 0.5**6


def test_fit_on_a_generic_dataset():
    class Blobs(Dataset):
        def __init__(self):
            self.X, self.y = _separable(32)

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            return self.X[i], self.y[i]

    history = fit(nn.Linear(2, 2), Blobs(), Blobs(), epochs=2, batch_size=8, verbose=False)
    assert len(history["train_loss"]) == 2 and len(history["val_accuracy"]) == 2


def test_train_epoch_reports_the_mean_loss_and_accuracy_over_its_batches():
    model = nn.Linear(2, 2)
    X, y = _separable(20)
    # the weights stay, so the epoch sees one model
    frozen = torch.optim.SGD(model.parameters(), lr=0.0)
    model.eval()
    result = train_epoch(
        model,
        (X, y),
        frozen,
        F.cross_entropy,
        8,
        torch.Generator().manual_seed(0),
        torch.device("cpu"),
    )
    assert model.training  # train_epoch switches to training mode
    with torch.no_grad():
        logits = model(X)
    # batches of 8, 8, 4, weighted
    assert result["loss"] == pytest.approx(F.cross_entropy(logits, y).item(), abs=1e-6)
    assert result["accuracy"] == pytest.approx(accuracy(logits, y))


@pytest.mark.parametrize("epochs", [0, -1, 1.5, True])
def test_fit_bad_epochs(epochs):
    model = nn.Linear(2, 2)
    before = model.weight.clone()
    with pytest.raises(ValueError, match="expected a positive integer number of epochs, got"):
        fit(model, _separable(8), epochs=epochs, verbose=False)
    assert torch.equal(model.weight, before)


@pytest.mark.parametrize("batch_size", [0, -4, 8.0])
def test_fit_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="expected a positive integer batch_size, got"):
        fit(nn.Linear(2, 2), _separable(8), epochs=1, batch_size=batch_size, verbose=False)


def test_fit_empty_data():
    with pytest.raises(ValueError, match="expected at least one training example"):
        fit(
            nn.Linear(2, 2),
            (torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)),
            epochs=1,
            verbose=False,
        )


def test_evaluate_by_hand():
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))  # the logits are the inputs
    X = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    y = torch.tensor([0, 0, 0])
    result = evaluate(model, (X, y), batch_size=2)
    assert result["accuracy"] == pytest.approx(2 / 3)
    assert result["loss"] == pytest.approx(F.cross_entropy(X, y).item(), abs=1e-6)
    mse = evaluate(model, (X, y), loss_fn=lambda logits, y: logits.pow(2).mean())
    assert mse["loss"] == pytest.approx(X.pow(2).mean().item())


def test_predict_returns_logits_and_labels_in_order_in_eval_mode():
    model = nn.Sequential(nn.Linear(2, 3), nn.Dropout(0.5))
    X, y = _separable(10)
    model.train()
    logits, labels = predict(model, (X, y), batch_size=3)
    assert not model.training
    assert logits.shape == (10, 3) and logits.device.type == "cpu"
    assert torch.equal(labels, y)
    with torch.no_grad():
        # eval mode: dropout is off, so this is repeatable
        assert torch.allclose(logits, model(X), atol=1e-6)


def test_predict_with_a_model_without_parameters():
    logits, labels = predict(nn.Identity(), (torch.eye(3), torch.arange(3)))
    assert torch.equal(logits, torch.eye(3)) and torch.equal(labels, torch.arange(3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_fit_and_predict_on_the_gpu():
    model = nn.Linear(2, 2)
    fit(model, _separable(32), epochs=2, device=torch.device("cuda"), verbose=False)
    assert next(model.parameters()).is_cuda
    logits, _ = predict(model, _separable(8))
    assert logits.device.type == "cpu"


def test_batches_and_train_epoch_reject_bad_helpers():
    data = (torch.zeros(4, 2), torch.zeros(4).long())
    with pytest.raises(TypeError, match="expected a torch.Generator or None, got int"):
        batches(data, 2, shuffle=True, generator=0)
    with pytest.raises(TypeError, match="expected a torch.optim.Optimizer, got str"):
        train_epoch(
            nn.Linear(2, 2),
            data,
            "sgd",
            nn.functional.cross_entropy,
            2,
            torch.Generator(),
            torch.device("cpu"),
        )


# --- one-cycle recipes (introduced in "Modern architectures") ------------------------------


def test_fit_one_cycle_learns_a_separable_problem():
    torch.manual_seed(0)
    X = torch.randn(256, 2)
    y = (X[:, 0] > 0).long()
    model = nn.Linear(2, 2)
    history = fit_one_cycle(model, (X, y), epochs=5, max_lr=0.1)
    assert history["train_accuracy"][-1] > 0.95
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_one_cycle_on_the_clock_has_onecyclelr_s_ends_and_peak():
    assert _one_cycle(0.0, 5e-3) == pytest.approx((5e-3 / 25, 0.95))
    assert _one_cycle(0.3, 5e-3) == pytest.approx((5e-3, 0.85))
    assert _one_cycle(1.0, 5e-3) == pytest.approx((5e-3 / 25 / 1e4, 0.95))
    lrs = [_one_cycle(f / 100, 1.0)[0] for f in range(101)]
    assert lrs.index(max(lrs)) == 30 and all(a >= b for a, b in zip(lrs[30:], lrs[31:]))


def test_fit_for_seconds_keeps_to_its_budget_and_learns():
    torch.manual_seed(0)
    X = torch.randn(256, 2)
    y = (X[:, 0] > 0).long()
    model, threads = nn.Linear(2, 2), torch.get_num_threads()
    # tiny steps: a second thread only waits, and on a busy machine waits long
    torch.set_num_threads(1)
    try:
        run = fit_for_seconds(model, (X, y), seconds=0.3, max_lr=0.1, device=torch.device("cpu"))
    finally:
        torch.set_num_threads(threads)
    assert 0.3 <= run["seconds"] < 0.8 and run["steps"] == len(run["train_loss"]) > 10
    assert run["epochs"] == pytest.approx(run["steps"] * 64 / 256)  # 256 is a multiple of the batch
    with torch.no_grad():
        assert (model(X).argmax(1) == y).float().mean() > 0.95


@pytest.mark.parametrize(
    "call,message",
    [
        (
            lambda: fit_one_cycle(
                nn.Linear(2, 2), (torch.zeros(4, 2), torch.zeros(4).long()), epochs=0
            ),
            "epochs and max_lr > 0, got 0",
        ),
        (
            lambda: fit_for_seconds(nn.Linear(2, 2), (torch.zeros(4, 2), torch.zeros(4).long()), 0),
            "seconds > 0",
        ),
        (
            lambda: fit_for_seconds(nn.Linear(2, 2), (torch.zeros(0, 2), torch.zeros(0).long()), 1),
            "at least one training",
        ),
    ],
)
def test_one_cycle_recipes_name_what_was_expected_and_what_came(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ---------------------------------------------------------------- checkpoints and resuming


def _dropout_run(path=None, interrupt_at=None, **kwargs):
    """Three epochs of a dropout network with Adam and OneCycleLR; the loss raises
    KeyboardInterrupt at its ``interrupt_at``-th call."""
    X, y = _separable(50)
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(2, 16), nn.Dropout(0.3), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=3 * 7)
    calls = [0]

    def loss_fn(logits, target):
        calls[0] += 1
        if calls[0] == interrupt_at:
            raise KeyboardInterrupt
        return F.cross_entropy(logits, target)

    history = fit(model, (X, y), (X, y), epochs=3, batch_size=8, optimizer=opt, scheduler=sched,
                  loss_fn=loss_fn, verbose=False, checkpoint=path, **kwargs)  # fmt: skip
    return model, history


def test_a_run_interrupted_mid_epoch_and_resumed_is_bit_identical(tmp_path):
    reference, ref_history = _dropout_run()
    path = tmp_path / "run.pt"
    # the loss's 12th call is step 4 of epoch 2 (call 8 validated epoch 1): 11 steps of 21 done
    with pytest.raises(KeyboardInterrupt):
        _dropout_run(path, interrupt_at=12, checkpoint_every=3)
    assert torch.load(path, weights_only=True)["run"]["step"] == 2  # saved after 9 = 7 + 2
    torch.manual_seed(123)  # the resumed run must not depend on the state it starts in
    resumed, history = _dropout_run(path, resume=True, checkpoint_every=3)
    for a, b in zip(reference.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        assert history[key] == ref_history[key]


def test_resume_restores_numpy_python_and_torch_random_states(tmp_path):
    import random

    import numpy as np

    path = tmp_path / "run.pt"
    X, y = _separable(16)
    torch.manual_seed(5), np.random.seed(5), random.seed(5)  # noqa: NPY002
    fit(nn.Linear(2, 2), (X, y), epochs=1, batch_size=4, verbose=False, checkpoint=path)
    expected = torch.rand(3), np.random.rand(3), random.random()  # noqa: NPY002
    torch.manual_seed(9), np.random.seed(9), random.seed(9)  # noqa: NPY002
    fit(nn.Linear(2, 2), (X, y), epochs=1, batch_size=4, verbose=False, checkpoint=path,
        resume=True)  # fmt: skip
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1]) and random.random() == expected[2]  # noqa: NPY002


def test_resume_without_a_checkpoint_file_starts_afresh_and_a_finished_run_returns(tmp_path):
    path = tmp_path / "new" / "run.pt"
    model, history = _dropout_run(path, resume=True)
    assert path.exists() and len(history["train_loss"]) == 3
    weights = [p.detach().clone() for p in model.parameters()]
    again, history_again = _dropout_run(path, resume=True)  # already done: nothing to train
    assert all(torch.equal(a, b) for a, b in zip(weights, again.parameters()))
    assert history_again["train_loss"] == history["train_loss"]


def test_an_interrupted_checkpoint_write_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    path = tmp_path / "run.pt"
    _dropout_run(path)
    before = path.read_bytes()
    real_save = torch.save

    def half_save(obj, f):
        real_save(obj, f)
        f.seek(f.tell() // 2)
        f.truncate()
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", half_save)
    with pytest.raises(OSError, match="disk full"):
        _dropout_run(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]  # no temporary file left
    assert torch.load(path, weights_only=True)["run"]["epoch"] == 4  # whole and loadable


def test_fit_checkpoint_arguments_name_what_was_expected(tmp_path):
    data = _separable(8)
    with pytest.raises(ValueError, match="expected a checkpoint path with resume=True"):
        fit(nn.Linear(2, 2), data, epochs=1, verbose=False, resume=True)
    with pytest.raises(ValueError, match="expected a checkpoint path"):
        fit(nn.Linear(2, 2), data, epochs=1, verbose=False, checkpoint_every=2)
    with pytest.raises(TypeError, match="expected an integer checkpoint_every"):
        fit(nn.Linear(2, 2), data, epochs=1, verbose=False, checkpoint="a.pt", checkpoint_every=1.5)
    with pytest.raises(TypeError, match="expected resume as True or False"):
        fit(nn.Linear(2, 2), data, epochs=1, verbose=False, checkpoint="a.pt", resume=1)
    with pytest.raises(TypeError, match="expected checkpoint as a path"):
        fit(nn.Linear(2, 2), data, epochs=1, verbose=False, checkpoint=3)


def test_resume_refuses_foreign_files_and_mismatched_runs(tmp_path):
    data, path = _separable(16), tmp_path / "run.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read run.pt"):
        fit(nn.Linear(2, 2), data, epochs=1, verbose=False, checkpoint=path, resume=True)
    torch.save({"format": "other"}, path)
    with pytest.raises(ValueError, match="checkpoint, got another file: run.pt"):
        fit(nn.Linear(2, 2), data, epochs=1, verbose=False, checkpoint=path, resume=True)
    with pytest.raises(KeyboardInterrupt):
        _dropout_run(path, interrupt_at=4, checkpoint_every=3)
    with pytest.raises(ValueError, match="expected the checkpoint's batch size, got batch_size=2"):
        fit(nn.Linear(2, 2), data, epochs=3, batch_size=2, verbose=False, checkpoint=path,
            resume=True)  # fmt: skip
    model = nn.Sequential(nn.Linear(2, 16), nn.Dropout(0.3), nn.ReLU(), nn.Linear(16, 2))
    with pytest.raises(ValueError, match="expected a scheduler exactly when"):
        fit(model, data, epochs=3, batch_size=8, verbose=False, checkpoint=path, resume=True)
    _dropout_run(path)
    with pytest.raises(ValueError, match="expected a checkpoint of at most 2 epochs, got one of 3"):
        fit(model, data, epochs=2, batch_size=8, verbose=False, checkpoint=path, resume=True)
