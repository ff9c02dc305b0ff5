"""One training loop for the whole book, in the canonical pytorch/examples order.

Introduced in the chapter "Images as data" and used from "Multilayer networks" on. The one-cycle
recipes built on it (:func:`fit_one_cycle`, and :func:`fit_for_seconds` for a wall-clock budget)
come with "Modern architectures".
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from visionbook import config
from visionbook._validate import (
    _atomic_write,
    _expect_int,
    _expect_module,
    _expect_number,
    _expect_path,
)

Data = Dataset | tuple[torch.Tensor, torch.Tensor]
History = dict[str, list[float]]
# most epoch lines fit prints: a page shows a short log, the progress bar shows every epoch
LOG_LINES = 6
# the format tag of the training checkpoints that fit writes
CHECKPOINT_FORMAT = "visionbook-train-1"


def _as_tensors(data: Data) -> tuple[torch.Tensor, torch.Tensor] | None:
    if isinstance(data, tuple):
        if len(data) != 2 or not all(isinstance(t, torch.Tensor) for t in data):
            raise TypeError("expected data as a Dataset or a tuple (X, y) of two tensors")
        if len(data[0]) != len(data[1]):
            raise ValueError(
                f"expected X and y of the same length, got {len(data[0])} and {len(data[1])}"
            )
        return data
    if isinstance(data, TensorDataset) and len(data.tensors) == 2:
        return data.tensors[0], data.tensors[1]
    if isinstance(data, Dataset):
        return None
    raise TypeError(f"expected a Dataset or a tuple (X, y) of tensors, got {type(data).__name__}")


def batches(
    data: Data, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(X, y)`` mini-batches; in-memory tensors are sliced directly (fast on a CPU).

    Args:
        data (Dataset | tuple): a ``Dataset`` of ``(x, y)`` pairs or a tuple ``(X, y)``.
        batch_size (int): examples per batch, positive.
        shuffle (bool): visit the examples in a random order. Default False.
        generator (torch.Generator | None): source of that order, for repeatable runs.

    Returns:
        Iterator of ``(X, y)`` batches.

    >>> [len(y) for _, y in batches((torch.zeros(5, 2), torch.zeros(5)), 2)]
    [2, 2, 1]

    Introduced in the chapter "Images as data".
    """
    _check_batch_size(batch_size)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"expected a torch.Generator or None, got {type(generator).__name__}")
    tensors = _as_tensors(data)  # checked now, not at the first batch
    if tensors is None:
        return iter(DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator))
    return _tensor_batches(*tensors, batch_size, shuffle, generator)


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"expected a positive integer batch_size, got {batch_size!r}")


def _tensor_batches(
    X: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    shuffle: bool,
    generator: torch.Generator | None,
):
    order = torch.randperm(len(X), generator=generator) if shuffle else torch.arange(len(X))
    for start in range(0, len(X), batch_size):
        idx = order[start : start + batch_size]
        yield X[idx], y[idx]


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows whose largest logit is at the true class.

    Args:
        logits (Tensor): ``(N, K)`` scores.
        y (Tensor): ``(N,)`` integer labels.

    Returns:
        float: accuracy in [0, 1].

    >>> accuracy(torch.tensor([[2.0, 1.0], [0.0, 3.0]]), torch.tensor([0, 0]))
    0.5

    Introduced in the chapter "Multilayer networks and activation functions".
    """
    if not isinstance(logits, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(
            f"expected logits and labels as tensors, got {type(logits).__name__} and "
            f"{type(y).__name__}"
        )
    if logits.ndim != 2 or y.ndim != 1 or len(logits) != len(y) or len(y) == 0:
        raise ValueError(
            f"expected logits (N, K) and labels (N,) with N > 0, got {tuple(logits.shape)} and "
            f"{tuple(y.shape)}"
        )
    return (logits.argmax(1) == y).float().mean().item()


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def predict(
    model: nn.Module, data: Data, batch_size: int = 512, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model`` in eval mode over ``data``.

    Args:
        model (nn.Module): the network.
        data (Dataset | tuple): the examples.
        batch_size (int): examples per forward pass. Default 512.
        device (torch.device | None): where to compute. Default: the model's device.

    Returns:
        tuple: logits ``(N, K)`` and labels ``(N,)``, on the CPU.

    Introduced in the chapter "Multilayer networks and activation functions".
    """
    device = device or _model_device(model)
    model.eval()
    outs, ys = [], []
    for X, y in batches(data, batch_size):
        outs.append(model(X.to(device)).cpu())
        ys.append(y)
    if not outs:
        raise ValueError("expected at least one example to predict, got an empty data set")
    return torch.cat(outs), torch.cat(ys)


def evaluate(
    model: nn.Module,
    data: Data,
    loss_fn: Callable | None = None,
    batch_size: int = 512,
    device: torch.device | None = None,
) -> dict[str, float]:
    """Mean loss and accuracy of a classifier on ``data``.

    Args:
        model (nn.Module): the classifier.
        data (Dataset | tuple): the examples.
        loss_fn (Callable | None): loss on ``(logits, y)``. Default cross-entropy.
        batch_size (int): examples per forward pass. Default 512.
        device (torch.device | None): where to compute. Default: the model's device.

    Returns:
        dict: ``{"loss": float, "accuracy": float}``.

    Introduced in the chapter "Multilayer networks and activation functions".
    """
    logits, y = predict(model, data, batch_size, device)
    loss_fn = loss_fn or nn.functional.cross_entropy
    return {"loss": float(loss_fn(logits, y)), "accuracy": accuracy(logits, y)}


def train_epoch(
    model: nn.Module,
    data: Data,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
    scheduler=None,
) -> dict[str, float]:
    """One pass over shuffled ``data``: zero_grad, forward, backward, step for each batch.

    Args:
        model (nn.Module): put in training mode.
        data (Dataset | tuple): training examples.
        optimizer (Optimizer): steps once per batch.
        loss_fn (Callable): loss on ``(logits, y)``.
        batch_size (int): examples per step.
        generator (torch.Generator): decides the order of the examples.
        device (torch.device): where the batches go.
        scheduler: an LR scheduler stepped after every batch, or None.

    Returns:
        dict: mean training ``loss`` and ``accuracy`` over the epoch (each batch weighted by its
        size; accuracy 0 when the outputs are not ``(B, K)`` logits).

    >>> model = nn.Linear(2, 2)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> data = (torch.randn(8, 2), torch.randint(0, 2, (8,)))
    >>> sorted(
    ...     train_epoch(
    ...         model,
    ...         data,
    ...         opt,
    ...         nn.functional.cross_entropy,
    ...         4,
    ...         torch.Generator(),
    ...         torch.device("cpu"),
    ...     )
    ... )
    ['accuracy', 'loss']

    Introduced in the chapter "Multilayer networks and activation functions".
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"expected a torch.optim.Optimizer, got {type(optimizer).__name__}")
    model.train()
    totals = [0.0, 0, 0]
    for X, y in batches(data, batch_size, shuffle=True, generator=generator):
        _step(model, X, y, optimizer, loss_fn, device, scheduler, totals)
    return _means(totals)


def _step(model, X, y, optimizer, loss_fn, device, scheduler, totals: list) -> None:
    """One training step on the batch ``(X, y)``; adds its summed loss, the number of correct
    predictions and its size to ``totals``."""
    X, y = X.to(device), y.to(device)
    optimizer.zero_grad()
    logits = model(X)
    loss = loss_fn(logits, y)
    loss.backward()
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    totals[0] += loss.item() * len(y)
    totals[1] += (logits.argmax(1) == y).sum().item() if logits.ndim == 2 else 0
    totals[2] += len(y)


def _means(totals: list) -> dict[str, float]:
    """Mean loss and accuracy of an epoch from its ``[summed loss, correct, seen]``."""
    if totals[2] == 0:
        raise ValueError("expected at least one training example, got an empty data set")
    return {"loss": totals[0] / totals[2], "accuracy": totals[1] / totals[2]}


def fit(
    model: nn.Module,
    train_data: Data,
    val_data: Data | None = None,
    *,
    epochs: int = 5,
    lr: float = 1e-3,
    batch_size: int = 64,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler=None,
    loss_fn: Callable | None = None,
    device: torch.device | None = None,
    seed: int = 0,
    verbose: bool = True,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
) -> History:
    """Train a classifier and record its history, with a short log.

    The loop is the canonical one: ``model.train()``, move the batch to the device,
    ``zero_grad``, forward, ``backward``, ``step``; then ``model.eval()`` under ``no_grad``
    for validation. Batches are shuffled on every device with a seeded generator, so a run
    is repeatable. A ``tqdm.auto`` bar shows progress (``VISIONBOOK_PROGRESS=0`` hides it).

    With ``checkpoint``, the whole state of the run is written there atomically at the end of
    every epoch and every ``checkpoint_every`` steps: the model, the optimiser, the scheduler,
    the history, the random states (torch on the CPU and CUDA, NumPy, Python) and the position
    in the data (the epoch, the shuffling generator's state when it began and the steps done
    in it). With ``resume=True`` a run starts from that file when it exists (else from the
    start) and replays the same batches, so an interrupted run that is resumed ends with
    exactly the weights of one that never stopped. The order of a resumed epoch is drawn again
    and its finished batches skipped (a generic ``Dataset`` reads them again; tensors are only
    sliced). ``seconds`` then counts only the part of an epoch run after resuming.

    Args:
        model (nn.Module): maps ``(B, ...)`` inputs to ``(B, K)`` logits.
        train_data (Dataset | tuple): training examples.
        val_data (Dataset | tuple | None): validation examples, evaluated after each epoch.
        epochs (int): passes over the training data. Default 5.
        lr (float): Adam's learning rate when no optimizer is given. Default 1e-3.
        batch_size (int): examples per step. Default 64.
        optimizer (Optimizer | None): default ``Adam(model.parameters(), lr)``.
        scheduler: an LR scheduler stepped after every batch, or None.
        loss_fn (Callable | None): default cross-entropy.
        device (torch.device | None): default ``config.device()``; the model is moved there.
        seed (int): seed of the shuffling. Default 0.
        verbose (bool): print a line for at most ``LOG_LINES`` (6) epochs, the first, the last
            and evenly spaced ones between (the progress bar shows every epoch). Default True.
        checkpoint (str | PathLike | None): file of the run's checkpoint. Default None (none).
        checkpoint_every (int | None): also write it after every this many steps (counted over
            the whole run). Default None (at the end of each epoch only).
        resume (bool): continue from ``checkpoint`` if that file exists. Default False (a
            fresh run, which overwrites it).

    Returns:
        dict: lists ``train_loss``, ``train_accuracy``, ``val_loss``, ``val_accuracy``
        (validation lists stay empty without ``val_data``) and ``seconds`` per epoch.

    >>> h = fit(
    ...     nn.Linear(2, 2), (torch.randn(8, 2), torch.randint(0, 2, (8,))), epochs=1, verbose=False
    ... )
    >>> len(h["train_loss"])
    1

    Introduced in the chapter "Multilayer networks and activation functions"; checkpoints and
    resuming in "Training past one device".
    """
    from tqdm.auto import tqdm

    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"expected a positive integer number of epochs, got {epochs!r}")
    _check_batch_size(batch_size)
    path = _check_checkpointing(checkpoint, checkpoint_every, resume)
    device = device or config.device()
    model.to(device)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = loss_fn or nn.functional.cross_entropy
    # the offset: see config.seed_offset
    generator = torch.Generator().manual_seed(seed + config.seed_offset())
    history: History = {
        k: [] for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds")
    }
    run = {"epoch": 1, "step": 0, "steps": 0, "order": generator.get_state(), "totals": None}
    if resume and path.exists():
        run = _load_training_state(path, model, optimizer, scheduler, history, batch_size, epochs)
    save = (lambda: _save_training_state(path, model, optimizer, scheduler, history, run)) if (
        path
    ) else None  # fmt: skip
    # first, last, evenly between
    logged = {round(1 + i * (epochs - 1) / (LOG_LINES - 1)) for i in range(LOG_LINES)}
    bar = tqdm(
        range(run["epoch"], epochs + 1),
        desc="epochs",
        disable=not (verbose and config.progress_enabled()),
        leave=False,
        initial=run["epoch"] - 1,
        total=epochs,
    )
    for epoch in bar:
        start = time.perf_counter()
        generator.set_state(run["order"])  # the state this epoch's shuffle starts from
        run["totals"] = run["totals"] or [0.0, 0, 0]
        model.train()
        for step, (X, y) in enumerate(batches(train_data, batch_size, True, generator), 1):
            if step <= run["step"]:
                continue  # trained on before the checkpoint this run resumed from
            _step(model, X, y, optimizer, loss_fn, device, scheduler, run["totals"])
            run["step"], run["steps"] = step, run["steps"] + 1
            if save and checkpoint_every and run["steps"] % checkpoint_every == 0:
                save()
        train = _means(run["totals"])
        history["train_loss"].append(train["loss"])
        history["train_accuracy"].append(train["accuracy"])
        line = (
            f"epoch {epoch:>2}/{epochs}  train loss {train['loss']:.4f}  acc "
            f"{train['accuracy']:.2%}"
        )
        if val_data is not None:
            val = evaluate(model, val_data, loss_fn, device=device)
            history["val_loss"].append(val["loss"])
            history["val_accuracy"].append(val["accuracy"])
            line += f"  |  val loss {val['loss']:.4f}  acc {val['accuracy']:.2%}"
        history["seconds"].append(time.perf_counter() - start)
        run.update(epoch=epoch + 1, step=0, order=generator.get_state(), totals=None)
        if save:
            save()
        bar.set_postfix_str(f"loss {train['loss']:.3f}")
        if verbose and epoch in logged:
            bar.write(line + f"  ({history['seconds'][-1]:.1f} s)")
    bar.close()
    return history


def _check_checkpointing(checkpoint, checkpoint_every, resume) -> Path | None:
    """The checkpoint's path (or None) once ``fit``'s three checkpoint arguments agree."""
    if not isinstance(resume, bool):
        raise TypeError(f"expected resume as True or False, got {resume!r}")
    if checkpoint_every is not None:
        _expect_int(checkpoint_every, "checkpoint_every")
    if checkpoint is None:
        if resume or checkpoint_every is not None:
            raise ValueError(
                "expected a checkpoint path with resume=True or checkpoint_every, got "
                "checkpoint=None"
            )
        return None
    return _expect_path(checkpoint, "checkpoint")


def _rng_states() -> dict:
    """Every random state a training run may draw from, in types ``weights_only`` loads."""
    np_state = np.random.get_state(legacy=False)  # noqa: NPY002
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy_key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
        "numpy_rest": [np_state["state"]["pos"], np_state["has_gauss"], np_state["gauss"]],
        "python": random.getstate(),
    }


def _set_rng_states(states: dict) -> None:
    """Put back the random states that :func:`_rng_states` recorded."""
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    pos, has_gauss, gauss = states["numpy_rest"]
    key = states["numpy_key"].numpy().astype(np.uint32)
    np.random.set_state(  # noqa: NPY002
        {"bit_generator": "MT19937", "state": {"key": key, "pos": pos}, "has_gauss": has_gauss,
         "gauss": gauss}
    )  # fmt: skip
    random.setstate(states["python"])


def _plain_state(state: dict) -> dict:
    """A scheduler's state without the functions some keep in it (torch 2.2's ``OneCycleLR``
    holds its annealing method, which ``weights_only`` cannot load); loading the rest into the
    same kind of scheduler keeps the scheduler's own functions."""
    return {key: value for key, value in state.items() if not callable(value)}


def _save_training_state(path: Path, model, optimizer, scheduler, history, run) -> None:
    """Write the whole state of a ``fit`` run to ``path`` atomically (a temporary file renamed
    into place, so a crash mid-write leaves the previous checkpoint whole)."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": None if scheduler is None else _plain_state(scheduler.state_dict()),
        "history": history,
        "run": run,
        "rng": _rng_states(),
    }
    _atomic_write(path, lambda f: torch.save(state, f))


def _load_training_state(
    path: Path, model, optimizer, scheduler, history, batch_size: int, epochs: int
) -> dict:
    """Load a checkpoint of :func:`_save_training_state` into the run's objects (with
    ``torch.load(..., weights_only=True)``); return its position ``run``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    # a foreign or damaged file fails in many ways (zip, pickle, EOF)
    except Exception as err:
        raise ValueError(
            f"expected a training checkpoint written by fit, cannot read {path.name} "
            f"({type(err).__name__})"
        ) from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"expected a {CHECKPOINT_FORMAT} checkpoint, got another file: {path.name}"
        )
    if state["run"]["epoch"] > epochs + 1:
        raise ValueError(
            f"expected a checkpoint of at most {epochs} epochs, got one of "
            f"{state['run']['epoch'] - 1} in {path.name}"
        )
    done = state["run"]["totals"]
    if done is not None and state["run"]["step"] * batch_size < done[2]:
        raise ValueError(
            f"expected the checkpoint's batch size, got batch_size={batch_size} for "
            f"{done[2]} examples in {state['run']['step']} steps"
        )
    if (scheduler is None) != (state["scheduler"] is None):
        raise ValueError(
            "expected a scheduler exactly when the checkpointed run had one, got "
            f"{'none' if scheduler is None else type(scheduler).__name__}"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    for key, values in state["history"].items():
        history[key][:] = values
    _set_rng_states(state["rng"])
    return state["run"]


def fit_one_cycle(
    model: nn.Module,
    data,
    epochs: int,
    max_lr: float = 5e-3,
    batch_size: int = 64,
    seed: int = 0,
    verbose: bool = False,
) -> dict:
    """Train with :func:`fit`, Adam and a one-cycle learning-rate schedule.

    The rate warms up to ``max_lr`` and anneals to almost zero by the last step, so a short run
    ends in a settled model (BatchNorm's running statistics included) instead of mid-stride.

    Args:
        model (nn.Module): the classifier.
        data (Dataset | tuple): training examples, as ``fit`` takes them.
        epochs (int): passes over the data.
        max_lr (float): peak learning rate. Default 5e-3.
        batch_size (int): examples per step. Default 64.
        seed (int): seed of the shuffling. Default 0.
        verbose (bool): one line per epoch. Default False.

    Returns:
        dict: the history that ``fit`` returns.

    >>> h = fit_one_cycle(nn.Linear(2, 2), (torch.randn(8, 2), torch.randint(0, 2, (8,))), epochs=1)
    >>> len(h["train_loss"])
    1

    Introduced in the chapter "Modern architectures".
    """
    if not isinstance(epochs, int) or epochs < 1 or max_lr <= 0:
        raise ValueError(
            f"expected a positive integer number of epochs and max_lr > 0, got {epochs!r} "
            f"and {max_lr!r}"
        )
    steps = epochs * math.ceil(len(data[0] if isinstance(data, tuple) else data) / batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=max_lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=steps)
    return fit(
        model,
        data,
        epochs=epochs,
        optimizer=optimizer,
        scheduler=scheduler,
        batch_size=batch_size,
        seed=seed,
        verbose=verbose,
    )


def _one_cycle(fraction: float, max_lr: float) -> tuple[float, float]:
    """Learning rate and Adam's beta1 of ``OneCycleLR``'s default curve, ``fraction`` of the
    way through.

    Warm-up for the first 30%: the rate rises from ``max_lr / 25`` to ``max_lr`` while beta1
    falls from 0.95 to 0.85; then both anneal back, the rate to ``max_lr / 25 / 1e4``, on cosines.
    """
    cos = lambda start, end, p: end + (start - end) * (1 + math.cos(math.pi * p)) / 2
    low, final = max_lr / 25, max_lr / 25 / 1e4
    if fraction < 0.3:
        return cos(low, max_lr, fraction / 0.3), cos(0.95, 0.85, fraction / 0.3)
    p = min(1.0, (fraction - 0.3) / 0.7)
    return cos(max_lr, final, p), cos(0.85, 0.95, p)


def _check_timed_fit(model: nn.Module, data, seconds: float, max_lr: float, seed: int) -> None:
    _expect_module(model)
    if not isinstance(data, tuple):
        raise TypeError(f"expected data as a tuple (X, y) of tensors, got {type(data).__name__}")
    if len(_as_tensors(data)[0]) == 0:
        raise ValueError("expected at least one training example, got an empty data set")
    if _expect_number(seconds, "seconds") <= 0 or _expect_number(max_lr, "max_lr") <= 0:
        raise ValueError(f"expected seconds > 0 and max_lr > 0, got {seconds!r} and {max_lr!r}")
    _expect_int(seed, "seed", minimum=0)


def fit_for_seconds(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    seconds: float,
    max_lr: float = 5e-3,
    batch_size: int = 64,
    seed: int = 0,
    device: torch.device | None = None,
) -> dict:
    """Train for a fixed wall-clock budget with Adam and a one-cycle schedule that runs on
    the clock.

    :func:`fit_one_cycle`'s recipe, with time in place of a step count: before each step the
    learning rate (and Adam's beta1) is set to ``OneCycleLR``'s value at the fraction of the
    budget spent so far, and the loop stops at the first step that would start after
    ``seconds``. Every network thus warms up and anneals within the same time, and a faster one
    simply takes more steps. ``time.perf_counter`` starts before the first batch and counts all
    the loop does (slicing and moving batches, forward, backward, step); ``loss.item()`` waits for
    each step to finish, so on a GPU the clock counts work done rather than work queued. The
    number of steps depends on the machine and on what else runs on it.

    Args:
        model (nn.Module): the classifier; moved to ``device``.
        data (tuple): training examples ``(X, y)``, shuffled anew at every pass.
        seconds (float): the budget, positive.
        max_lr (float): peak learning rate. Default 5e-3.
        batch_size (int): examples per step. Default 64.
        seed (int): seed of the shuffling (plus ``config.seed_offset()``). Default 0.
        device (torch.device | None): where to train. Default ``config.device()``.

    Returns:
        dict: ``steps`` (int), ``epochs`` (float, passes over the data), ``seconds`` (measured)
        and ``train_loss`` (list, one value per step).

    >>> run = fit_for_seconds(
    ...     nn.Linear(2, 2), (torch.randn(8, 2), torch.randint(0, 2, (8,))), seconds=0.05
    ... )
    >>> run["steps"] > 0
    True

    Introduced in the chapter "Modern architectures".
    """
    _check_timed_fit(model, data, seconds, max_lr, seed)
    device = device or config.device()
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=max_lr / 25)
    # the order of the batches
    generator = torch.Generator().manual_seed(seed + config.seed_offset())
    losses, seen, start = [], 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for X, y in batches(data, batch_size, shuffle=True, generator=generator):
            if (elapsed := time.perf_counter() - start) >= seconds:
                break
            lr, beta1 = _one_cycle(elapsed / seconds, max_lr)
            for group in optimizer.param_groups:
                group["lr"], group["betas"] = lr, (beta1, group["betas"][1])
            optimizer.zero_grad()
            loss = F.cross_entropy(model(X.to(device)), y.to(device))
            loss.backward()
            optimizer.step()
            losses.append(loss.item())  # waits for the step to finish (on a GPU too)
            seen += len(y)
    return {
        "steps": len(losses),
        "epochs": seen / len(data[0]),
        "seconds": elapsed,
        "train_loss": losses,
    }
