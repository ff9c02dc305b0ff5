"""Optimisers, learning-rate schedules and a learning-rate range test, written from scratch.

Each optimiser is a ``torch.optim.Optimizer`` whose whole algorithm is its ``update`` method:
a few lines that change one parameter ``p`` given its gradient ``g`` and its ``state``. Being
real optimisers, they work with ``visionbook.train.fit`` and ``torch.optim.lr_scheduler``.
The chapter "Training neural networks well" checks each against ``torch.optim``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn

from visionbook import config
from visionbook.train import Data, batches


def _check_range(name: str, value: float, low: float, high: float, high_open: bool = True) -> None:
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and low <= value
        and (value < high if high_open else value <= high)
    )
    if not ok:
        raise ValueError(
            f"expected {name} in [{low:g}, {high:g}{')' if high_open else ']'}, got {value!r}"
        )


def _check_positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"expected a positive {name}, got {value!r}")


def _check_params(params: Iterable) -> list:
    if isinstance(params, torch.Tensor | str | dict) or not isinstance(params, Iterable):
        raise TypeError(
            "expected params as an iterable of tensors (model.parameters()) or of groups, got "
            f"{type(params).__name__}"
        )
    params = list(params)
    bad = [type(p).__name__ for p in params if not isinstance(p, torch.Tensor | dict)]
    if bad:
        raise TypeError(
            "expected params as an iterable of tensors (model.parameters()) or of groups, got "
            f"items of type {bad[0]}"
        )
    return params


class UpdateRule(torch.optim.Optimizer):
    """Base class: ``step()`` adds L2 weight decay to each gradient and calls ``update``.

    Subclasses implement ``update(p, g, state, group)``, which changes the parameter ``p``
    in place (under ``no_grad``) from its gradient ``g``, its per-parameter ``state`` dict and
    the hyper-parameters in ``group`` (``group["lr"]`` and so on).

    Introduced in the chapter "Training neural networks well".
    """

    def __init__(self, params: Iterable, defaults: dict):
        if not isinstance(defaults, dict) or "lr" not in defaults:
            raise TypeError(f"expected defaults as a dict with an 'lr', got {defaults!r}")
        _check_positive("learning rate", defaults["lr"])
        params = _check_params(params)
        _check_range("weight_decay", defaults.setdefault("weight_decay", 0.0), 0.0, math.inf)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable | None = None):
        """Update every parameter that has a gradient; returns ``closure()`` if one is given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self.update(p, p.grad + group["weight_decay"] * p, self.state[p], group)
        return loss

    def update(self, p: torch.Tensor, g: torch.Tensor, state: dict, group: dict) -> None:
        raise NotImplementedError


class SGD(UpdateRule):
    """Stochastic gradient descent, optionally with (Nesterov) momentum.

    Plain: ``p -= lr g``. Momentum: ``v = mu v + g; p -= lr v`` (velocity starts at the first
    gradient). Nesterov: ``p -= lr (g + mu v)``, the step taken from where momentum is about to
    carry the parameter. These are ``torch.optim.SGD``'s conventions (no dampening), which
    fold the learning rate out of ``v``; Sutskever et al. (2013) write the same algorithms with
    it inside.

    Args:
        params (iterable): parameters or parameter groups.
        lr (float): learning rate, positive.
        momentum (float): ``mu`` in [0, 1). Default 0.
        nesterov (bool): use Nesterov's look-ahead (needs momentum > 0). Default False.
        weight_decay (float): L2 penalty added to the gradient. Default 0.

    >>> w = torch.tensor([1.0], requires_grad=True)
    >>> w.grad = torch.tensor([0.5])
    >>> _ = SGD([w], lr=0.1).step()
    >>> w
    tensor([0.9500], requires_grad=True)

    Introduced in the chapter "Training neural networks well".
    """

    def __init__(
        self,
        params: Iterable,
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ):
        _check_range("momentum", momentum, 0.0, 1.0)
        if nesterov and momentum == 0:
            raise ValueError("expected momentum > 0 with nesterov=True, got momentum=0")
        super().__init__(
            params,
            {"lr": lr, "momentum": momentum, "nesterov": nesterov, "weight_decay": weight_decay},
        )

    def update(self, p, g, state, group):
        mu = group["momentum"]
        if mu:
            v = state["velocity"] = (
                g.clone() if "velocity" not in state else mu * state["velocity"] + g
            )
            g = g + mu * v if group["nesterov"] else v
        p -= group["lr"] * g


class RMSProp(UpdateRule):
    """RMSProp: divide each gradient by a running root-mean-square of its recent values.

    ``s = alpha s + (1 - alpha) g^2; p -= lr g / (sqrt(s) + eps)``, with ``s`` starting at 0
    (Tieleman and Hinton, 2012; ``torch.optim.RMSprop``'s defaults).

    Args:
        params (iterable): parameters or parameter groups.
        lr (float): learning rate. Default 1e-2.
        alpha (float): decay of the running average, in [0, 1). Default 0.99.
        eps (float): added to the denominator, non-negative. Default 1e-8.
        weight_decay (float): L2 penalty. Default 0.

    >>> w = torch.tensor([1.0], requires_grad=True)
    >>> w.grad = torch.tensor([0.5])
    >>> # s = 0.25 * 0.25, step 0.1 * 0.5 / 0.25
    >>> _ = RMSProp([w], lr=0.1, alpha=0.75, eps=0.0).step()
    >>> w
    tensor([0.8000], requires_grad=True)

    Introduced in the chapter "Training neural networks well".
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        _check_range("alpha", alpha, 0.0, 1.0)
        _check_range("eps", eps, 0.0, math.inf)
        super().__init__(
            params, {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay}
        )

    def update(self, p, g, state, group):
        a = group["alpha"]
        s = state["square_avg"] = a * state.get("square_avg", torch.zeros_like(p)) + (1 - a) * g * g
        p -= group["lr"] * g / (s.sqrt() + group["eps"])


class Adam(UpdateRule):
    """Adam: momentum on the gradient, RMSProp on its scale, both bias-corrected.

    ``m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2``; with ``m_hat = m / (1 - b1^t)`` and
    ``v_hat = v / (1 - b2^t)``: ``p -= lr m_hat / (sqrt(v_hat) + eps)`` (Kingma and Ba, 2015).

    Args:
        params (iterable): parameters or parameter groups.
        lr (float): learning rate. Default 1e-3.
        betas (tuple): ``(b1, b2)``, each in [0, 1). Default (0.9, 0.999).
        eps (float): added to the denominator, non-negative. Default 1e-8.
        weight_decay (float): L2 penalty added to the gradient (not AdamW's decoupled
            decay). Default 0.

    >>> w = torch.tensor([1.0], requires_grad=True)
    >>> w.grad = torch.tensor([-0.02])
    >>> _ = Adam([w], lr=0.1, eps=0.0).step()  # the first step is lr times the gradient's sign
    >>> w
    tensor([1.1000], requires_grad=True)

    Introduced in the chapter "Training neural networks well".
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        if not isinstance(betas, tuple) or len(betas) != 2:
            raise ValueError(f"expected betas as a tuple (b1, b2), got {betas!r}")
        _check_range("betas[0]", betas[0], 0.0, 1.0)
        _check_range("betas[1]", betas[1], 0.0, 1.0)
        _check_range("eps", eps, 0.0, math.inf)
        super().__init__(
            params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        )

    def update(self, p, g, state, group):
        (b1, b2), t = group["betas"], state.get("t", 0) + 1
        m = state["m"] = b1 * state.get("m", torch.zeros_like(p)) + (1 - b1) * g
        v = state["v"] = b2 * state.get("v", torch.zeros_like(p)) + (1 - b2) * g * g
        state["t"] = t
        p -= group["lr"] * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + group["eps"])


# ----------------------------------------------------------------------------------------
# Learning-rate schedules: the learning rate at optimiser step ``step`` (0, 1, 2, ...)
# ----------------------------------------------------------------------------------------


def _check_step(step: int, total_steps: int | None = None) -> None:
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"expected a non-negative integer step, got {step!r}")
    if total_steps is not None and (not isinstance(total_steps, int) or total_steps < 2):
        raise ValueError(f"expected an integer total_steps >= 2, got {total_steps!r}")


def step_schedule(step: int, base_lr: float, step_size: int, gamma: float = 0.1) -> float:
    """Step decay: ``base_lr * gamma ** (step // step_size)`` (as
    ``torch.optim.lr_scheduler.StepLR``).

    >>> [step_schedule(s, 1.0, 2, 0.5) for s in range(5)]
    [1.0, 1.0, 0.5, 0.5, 0.25]

    Introduced in the chapter "Training neural networks well".
    """
    _check_step(step)
    if not isinstance(step_size, int) or step_size < 1:
        raise ValueError(f"expected a positive integer step_size, got {step_size!r}")
    _check_positive("base_lr", base_lr)
    _check_positive("gamma", gamma)
    return base_lr * gamma ** (step // step_size)


def cosine_schedule(step: int, total_steps: int, base_lr: float, min_lr: float = 0.0) -> float:
    """Cosine annealing from ``base_lr`` at step 0 to ``min_lr`` at ``total_steps`` (Loshchilov
    and Hutter).

    ``min_lr + (base_lr - min_lr) (1 + cos(pi step / total_steps)) / 2``, as
    ``CosineAnnealingLR(T_max=total_steps, eta_min=min_lr)`` for ``step <= total_steps``
    (one half-period, without SGDR's warm restarts).

    >>> cosine_schedule(5, 10, 1.0)
    0.5

    Introduced in the chapter "Training neural networks well".
    """
    _check_step(step, total_steps)
    _check_positive("base_lr", base_lr)
    _check_range("min_lr", min_lr, 0.0, base_lr, high_open=False)
    return (
        min_lr
        + (base_lr - min_lr) * (1 + math.cos(math.pi * min(step, total_steps) / total_steps)) / 2
    )


def one_cycle_schedule(
    step: int,
    total_steps: int,
    max_lr: float,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> float:
    """One cycle (Smith and Topin): cosine warm-up to ``max_lr``, then cosine annealing far below
    the start.

    Starts at ``max_lr / div_factor``, reaches ``max_lr`` at step ``pct_start * total_steps - 1``
    and ends at ``max_lr / (div_factor * final_div_factor)`` at step ``total_steps - 1``: the
    conventions of ``torch.optim.lr_scheduler.OneCycleLR`` (two phases, cosine annealing).

    >>> [
    ...     round(
    ...         one_cycle_schedule(s, 10, 1.0, pct_start=0.5, div_factor=10, final_div_factor=1), 3
    ...     )
    ...     for s in (0, 4, 9)
    ... ]
    [0.1, 1.0, 0.1]

    Introduced in the chapter "Training neural networks well".
    """
    _check_step(step, total_steps)
    _check_range("pct_start", pct_start, 0.0, 1.0)
    for name, value in (
        ("max_lr", max_lr),
        ("div_factor", div_factor),
        ("final_div_factor", final_div_factor),
    ):
        _check_positive(name, value)
    start, peak_step = max_lr / div_factor, pct_start * total_steps - 1
    if not 0 < peak_step < total_steps - 1:
        raise ValueError(
            f"expected 1 < pct_start * total_steps < total_steps, got pct_start={pct_start} with "
            f"total_steps={total_steps}"
        )
    end = start / final_div_factor
    if step <= peak_step:
        lo, hi, frac = start, max_lr, step / peak_step
    else:
        lo, hi, frac = max_lr, end, (step - peak_step) / (total_steps - 1 - peak_step)
    return hi + (lo - hi) * (1 + math.cos(math.pi * min(frac, 1.0))) / 2


# ----------------------------------------------------------------------------------------
# The learning-rate range test, and a training diagnostic
# ----------------------------------------------------------------------------------------


def _endless_batches(
    data: Data, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    while True:
        yield from batches(data, batch_size, shuffle=True, generator=generator)


def lr_range_test(
    model: nn.Module,
    data: Data,
    *,
    lr_min: float = 1e-5,
    lr_max: float = 10.0,
    num_steps: int = 100,
    batch_size: int = 64,
    optimizer_fn: Callable | None = None,
    loss_fn: Callable | None = None,
    device: torch.device | None = None,
    seed: int = 0,
    smoothing: float = 0.1,
) -> dict[str, list[float]]:
    """Train with a learning rate growing exponentially from ``lr_min`` to ``lr_max``, recording the
    loss (Smith, 2017).

    One mini-batch per learning rate. The loss is smoothed by a bias-corrected exponential
    moving average; the test stops early once it exceeds four times its minimum (diverged).
    The model's weights are restored afterwards, so the test leaves it untouched.

    Args:
        model (nn.Module): the classifier.
        data (Dataset | tuple): training examples.
        lr_min (float): first learning rate. Default 1e-5.
        lr_max (float): last learning rate. Default 10.
        num_steps (int): number of learning rates (and of mini-batches). Default 100.
        batch_size (int): examples per step. Default 64.
        optimizer_fn (Callable | None): ``params -> optimizer``; its lr is overwritten at each
            step. Default ``SGD(params, lr_min, momentum=0.9)``.
        loss_fn (Callable | None): default cross-entropy.
        device (torch.device | None): default ``config.device()``.
        seed (int): seed of the batch order. Default 0.
        smoothing (float): weight of the newest loss in the moving average. Default 0.1.

    Returns:
        dict: ``lrs`` and smoothed ``losses``, lists of equal length (up to ``num_steps``).

    >>> data = (torch.randn(64, 4), torch.randint(0, 2, (64,)))
    >>> result = lr_range_test(
    ...     nn.Linear(4, 2), data, lr_max=0.1, num_steps=5, device=torch.device("cpu")
    ... )
    >>> [f"{lr:.0e}" for lr in result["lrs"]]
    ['1e-05', '1e-04', '1e-03', '1e-02', '1e-01']

    Introduced in the chapter "Training neural networks well".
    """
    if not 0 < lr_min < lr_max or not isinstance(num_steps, int) or num_steps < 2:
        raise ValueError(
            f"expected 0 < lr_min < lr_max and an integer num_steps >= 2, got {lr_min}, "
            f"{lr_max}, {num_steps}"
        )
    device = device or config.device()
    saved = copy.deepcopy(model.state_dict())
    model.to(device).train()
    optimizer = (optimizer_fn or (lambda ps: SGD(ps, lr_min, momentum=0.9)))(model.parameters())
    loss_fn = loss_fn or nn.functional.cross_entropy
    stream = _endless_batches(data, batch_size, torch.Generator().manual_seed(seed))
    result, avg = {"lrs": [], "losses": []}, 0.0
    for k in range(num_steps):
        lr = lr_min * (lr_max / lr_min) ** (k / (num_steps - 1))
        loss = _one_step(model, optimizer, loss_fn, next(stream), lr, device)
        avg = smoothing * loss + (1 - smoothing) * avg
        result["lrs"].append(lr)
        result["losses"].append(avg / (1 - (1 - smoothing) ** (k + 1)))
        if not math.isfinite(loss) or result["losses"][-1] > 4 * min(result["losses"]):
            break
    model.load_state_dict(saved)
    return result


def _one_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable,
    batch,
    lr: float,
    device: torch.device,
) -> float:
    for group in optimizer.param_groups:
        group["lr"] = lr
    X, y = (t.to(device) for t in batch)
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def suggest_lr(result: dict[str, list[float]]) -> float:
    """A learning rate from a range test: one tenth of the one where the smoothed loss was lowest.

    Smith (2017) suggests a rate somewhat below where the loss stops falling; a factor of ten
    below the minimum is a common, conservative reading of the curve.

    >>> suggest_lr({"lrs": [0.01, 0.1, 1.0], "losses": [2.0, 1.0, 5.0]})
    0.01

    Introduced in the chapter "Training neural networks well".
    """
    if not isinstance(result, dict):
        raise TypeError(f"expected the dict returned by lr_range_test, got {type(result).__name__}")
    lrs, losses = result.get("lrs", []), result.get("losses", [])
    if not lrs or len(lrs) != len(losses):
        raise ValueError(
            "expected a range-test result with equal, non-empty 'lrs' and 'losses', got "
            f"{len(lrs)} and {len(losses)}"
        )
    return lrs[min(range(len(losses)), key=losses.__getitem__)] / 10


def gradient_norm(parameters: Iterable[torch.Tensor]) -> float:
    """The L2 norm of all gradients together, ``sqrt(sum ||p.grad||^2)`` (parameters without one
    are skipped).

    >>> w = torch.zeros(2, requires_grad=True)
    >>> w.grad = torch.tensor([3.0, 4.0])
    >>> gradient_norm([w])
    5.0

    Introduced in the chapter "Training neural networks well".
    """
    grads = [p.grad.detach().flatten() for p in _check_params(parameters) if p.grad is not None]
    if not grads:
        raise ValueError("expected parameters with gradients; call loss.backward() first")
    return torch.cat(grads).norm().item()
