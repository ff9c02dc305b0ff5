"""Activation functions with their derivatives, a stable softmax and cross-entropy, gradient norms.

Everything is written from scratch with elementary tensor operations, so that the chapter can
check it against PyTorch (``torch.sigmoid``, ``F.gelu``, ``F.cross_entropy``, autograd).
Introduced in the chapter "Multilayer networks and activation functions"; ``sigmoid`` first
appears in "The perceptron".
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from visionbook._validate import _expect_module, _expect_number, _expect_tensor


def _tensor(x: torch.Tensor, what: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor for {what}, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"expected a floating-point tensor for {what}, got dtype {x.dtype}")
    return x


def _dim(z: torch.Tensor, dim: int) -> int:
    if (
        isinstance(dim, bool)
        or not isinstance(dim, int)
        or not -max(z.ndim, 1) <= dim < max(z.ndim, 1)
    ):
        raise ValueError(
            f"expected an integer dim in [{-max(z.ndim, 1)}, {max(z.ndim, 1)}) for z of shape "
            f"{tuple(z.shape)}, got {dim!r}"
        )
    return dim


def step(x: torch.Tensor) -> torch.Tensor:
    """The threshold unit of the perceptron: 1 where ``x > 0``, else 0.

    >>> step(torch.tensor([-1.0, 0.0, 2.0]))
    tensor([0., 0., 1.])

    Introduced in the chapter "Multilayer networks and activation functions".
    """
    return (_tensor(x) > 0).to(x.dtype)


def step_grad(x: torch.Tensor) -> torch.Tensor:
    """Derivative of :func:`step`: 0 everywhere except at 0, where it does not exist (0
    is returned).

    >>> step_grad(torch.tensor([-1.0, 2.0]))
    tensor([0., 0.])

    Introduced in the chapter "Multilayer networks and activation functions".
    """
    return torch.zeros_like(_tensor(x))


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """The logistic function ``1 / (1 + exp(-x))``, computed without overflow for large ``|x|``.

    Uses ``e = exp(-|x|)``, which never overflows: ``1 / (1 + e)`` for ``x >= 0`` and
    ``e / (1 + e)`` otherwise.

    Args:
        x (Tensor): any shape, floating point.

    Returns:
        Tensor: same shape, values in [0, 1].

    >>> sigmoid(torch.tensor([-1000.0, 0.0, 1000.0]))
    tensor([0.0000, 0.5000, 1.0000])

    Introduced in the chapter "The perceptron".
    """
    # exp(-|x|), with autograd's slope right at 0
    e = torch.exp(torch.where(_tensor(x) >= 0, -x, x))
    return torch.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_grad(x: torch.Tensor) -> torch.Tensor:
    """Derivative of the sigmoid, ``s (1 - s)``; at most 1/4, reached at 0.

    >>> sigmoid_grad(torch.tensor([0.0]))
    tensor([0.2500])

    Introduced in the chapter "Multilayer networks and activation functions".
    """
    s = sigmoid(x)
    return s * (1 - s)


def tanh(x: torch.Tensor) -> torch.Tensor:
    """Hyperbolic tangent, written as a rescaled sigmoid: ``2 sigmoid(2x) - 1``.

    >>> tanh(torch.tensor([0.0, 1000.0]))
    tensor([0., 1.])

    Introduced in the chapter "Multilayer networks and activation functions".
    """
    return 2 * sigmoid(2 * _tensor(x)) - 1


def tanh_grad(x: torch.Tensor) -> torch.Tensor:
    """Derivative of tanh, ``1 - tanh(x)^2``; at most 1, reached at 0.

    >>> tanh_grad(torch.tensor([0.0]))
    tensor([1.])

    Introduced in the chapter "Multilayer networks and activation functions".
    """
    return 1 - tanh(x) ** 2


def relu(x: torch.Tensor) -> torch.Tensor:
    """Rectified linear unit, ``max(x, 0)``.

    >>> relu(torch.tensor([-2.0, 3.0]))
    tensor([0., 3.])

    Introduced in the chapter "Multilayer networks and activation functions".
    """
    return torch.where(_tensor(x) > 0, x, torch.zeros_like(x))


def relu_grad(x: torch.Tensor) -> torch.Tensor:
    """Derivative of ReLU: 1 for ``x > 0``, else 0 (PyTorch's convention at 0 too).

    >>> relu_grad(torch.tensor([-2.0, 0.0, 3.0]))
    tensor([0., 0., 1.])

    Introduced in the chapter "Multilayer networks and activation functions".
    """
    return (_tensor(x) > 0).to(x.dtype)


def leaky_relu(x: torch.Tensor, slope: float = 0.01) -> torch.Tensor:
    """Leaky ReLU: ``x`` for ``x > 0``, ``slope * x`` otherwise (``F.leaky_relu``'s default slope).

    >>> leaky_relu(torch.tensor([-2.0, 3.0]), slope=0.1)
    tensor([-0.2000,  3.0000])

    Introduced in the chapter "Multilayer networks and activation functions".
    """
    return torch.where(_tensor(x) > 0, x, _expect_number(slope, "slope") * x)


def leaky_relu_grad(x: torch.Tensor, slope: float = 0.01) -> torch.Tensor:
    """Derivative of leaky ReLU: 1 for ``x > 0``, else ``slope``.

    >>> leaky_relu_grad(torch.tensor([-2.0, 3.0]), slope=0.1)
    tensor([0.1000, 1.0000])

    Introduced in the chapter "Multilayer networks and activation functions".
    """
    return torch.where(
        _tensor(x) > 0, torch.ones_like(x), torch.full_like(x, _expect_number(slope, "slope"))
    )


def _normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1 + torch.erf(x / math.sqrt(2)))


def gelu(x: torch.Tensor) -> torch.Tensor:
    """Gaussian error linear unit, ``x Phi(x)`` with ``Phi`` the standard normal CDF (exact, not
    tanh-approximated).

    >>> gelu(torch.tensor([0.0, 1.0]))
    tensor([0.0000, 0.8413])

    Introduced in the chapter "Multilayer networks and activation functions".
    """
    return _tensor(x) * _normal_cdf(x)


def gelu_grad(x: torch.Tensor) -> torch.Tensor:
    """Derivative of GELU, ``Phi(x) + x phi(x)`` with ``phi`` the standard normal density.

    >>> gelu_grad(torch.tensor([0.0]))
    tensor([0.5000])

    Introduced in the chapter "Multilayer networks and activation functions".
    """
    density = torch.exp(-0.5 * _tensor(x) ** 2) / math.sqrt(2 * math.pi)
    return _normal_cdf(x) + x * density


ACTIVATIONS: dict[
    str, tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]
] = {
    "step": (step, step_grad),
    "sigmoid": (sigmoid, sigmoid_grad),
    "tanh": (tanh, tanh_grad),
    "ReLU": (relu, relu_grad),
    "leaky ReLU": (leaky_relu, leaky_relu_grad),
    "GELU": (gelu, gelu_grad),
}
"""Name -> (function, derivative) for the six activations of the chapter, in the order it draws
them."""


def logsumexp(z: torch.Tensor, dim: int = -1, keepdim: bool = False) -> torch.Tensor:
    """``log(sum(exp(z)))`` along ``dim``, computed as ``m + log(sum(exp(z - m)))`` with
    ``m = max(z)``.

    Subtracting the maximum makes every exponent at most 0, so nothing overflows, and the
    largest term is exactly 1, so the logarithm never sees 0.

    Args:
        z (Tensor): scores, for example logits ``(N, K)``.
        dim (int): the dimension to reduce. Default -1.
        keepdim (bool): keep ``dim`` with size 1. Default False.

    Returns:
        Tensor: ``z``'s shape without ``dim`` (or with size 1 there).

    >>> # 1000 + log 2; naively inf
    >>> logsumexp(torch.tensor([1000.0, 1000.0], dtype=torch.float64)).item()
    1000.6931471805599

    Introduced in the chapter "Multilayer networks and activation functions".
    """
    m = _tensor(z, "z").amax(dim=_dim(z, dim), keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))  # a row of -inf stays -inf, not nan
    out = m + torch.log(torch.exp(z - m).sum(dim=dim, keepdim=True))
    return out if keepdim else out.squeeze(dim)


def log_softmax(z: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Logarithm of the softmax, ``z - logsumexp(z)``: finite even where the softmax underflows
    to 0.

    >>> log_softmax(torch.tensor([0.0, 0.0]))
    tensor([-0.6931, -0.6931])

    Introduced in the chapter "Multilayer networks and activation functions".
    """
    return _tensor(z, "z") - logsumexp(z, dim=dim, keepdim=True)


def softmax(z: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax ``exp(z_k) / sum_j exp(z_j)`` along ``dim``, stable for any finite scores.

    Args:
        z (Tensor): scores, for example logits ``(N, K)``.
        dim (int): the dimension that sums to 1. Default -1.

    Returns:
        Tensor: same shape as ``z``, non-negative, summing to 1 along ``dim``.

    >>> softmax(torch.tensor([1000.0, 1000.0]))
    tensor([0.5000, 0.5000])

    Introduced in the chapter "Multilayer networks and activation functions".
    """
    return torch.exp(log_softmax(z, dim=dim))


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy ``-log softmax(logits)[y]`` over a batch, as ``F.cross_entropy``
    computes it.

    Args:
        logits (Tensor): scores ``(N, K)``.
        y (Tensor): integer class labels ``(N,)`` in ``0..K-1``.

    Returns:
        Tensor: a scalar, the mean loss.

    >>> cross_entropy(torch.zeros(2, 4), torch.tensor([0, 3]))  # uniform guess: log 4
    tensor(1.3863)

    Introduced in the chapter "Multilayer networks and activation functions".
    """
    _tensor(logits, "logits")
    if logits.ndim != 2 or not isinstance(y, torch.Tensor) or y.shape != (len(logits),):
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(
            f"expected logits (N, K) and labels (N,), got {tuple(logits.shape)} and {shape}"
        )
    if y.is_floating_point() or y.dtype == torch.bool:
        raise TypeError(f"expected integer class labels, got dtype {y.dtype}")
    if len(y) and (y.min() < 0 or y.max() >= logits.shape[1]):
        raise ValueError(
            f"expected labels in 0..{logits.shape[1] - 1}, got values from {y.min().item()} to "
            f"{y.max().item()}"
        )
    return -log_softmax(logits, dim=1).gather(1, y[:, None].long()).mean()


def layer_grad_norms(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, loss_fn: Callable | None = None
) -> list[float]:
    """Norm of the loss gradient with respect to each layer's weights, first layer first.

    Runs one forward and backward pass on ``(X, y)`` (the model's gradients are overwritten) and
    reads the gradient of every ``nn.Linear`` and ``nn.Conv2d`` weight, in the order the model
    registers them.

    Args:
        model (nn.Module): the network, with at least one linear or convolutional layer.
        X (Tensor): a batch of inputs, on the model's device.
        y (Tensor): its labels.
        loss_fn (Callable | None): loss on ``(model(X), y)``. Default ``F.cross_entropy``.

    Returns:
        list of float: one Frobenius norm per layer.

    >>> norms = layer_grad_norms(
    ...     nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)),
    ...     torch.randn(5, 3),
    ...     torch.zeros(5).long(),
    ... )
    >>> len(norms)
    2

    Introduced in the chapter "Multilayer networks and activation functions".
    """
    layers = [m for m in _expect_module(model).modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    if not layers:
        raise ValueError(
            "expected a model with nn.Linear or nn.Conv2d layers, got none in "
            f"{type(model).__name__}"
        )
    if _expect_tensor(y, "labels y").shape[:1] != _expect_tensor(X, "inputs X").shape[:1]:
        raise ValueError(
            f"expected one label per input, got X of shape {tuple(X.shape)} and y of shape "
            f"{tuple(y.shape)}"
        )
    model.zero_grad(set_to_none=True)
    (loss_fn or nn.functional.cross_entropy)(model(X), y).backward()
    return [layer.weight.grad.norm().item() for layer in layers]
