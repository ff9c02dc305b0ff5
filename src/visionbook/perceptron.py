"""Rosenblatt's perceptron in NumPy, its margin and mistake bound, and decision-region plots.

The bias is handled by the "bias trick": every input gets a constant last feature 1, so a
weight vector ``w`` of length ``D + 1`` holds the weights and, last, the bias. Labels are
``-1`` and ``+1``. Introduced in the chapter "The perceptron".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import torch

from visionbook._validate import _as_array


def _as_2d(X: Any, what: str = "X") -> np.ndarray:
    X = _as_array(X, what)
    if X.ndim != 2:
        raise ValueError(f"expected {what} of shape (N, D), got {X.shape}")
    return X


def _as_signs(y: Any, n: int) -> np.ndarray:
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"expected labels of shape ({n},), got {y.shape}")
    if not np.isin(y, (-1, 1)).all():
        raise ValueError(f"expected labels in {{-1, +1}}, got values {np.unique(y)[:5].tolist()}")
    return y.astype(np.float64)


def _as_weights(w: Any, d: int) -> np.ndarray:
    w = _as_array(w, "weights")
    if w.shape != (d + 1,):
        raise ValueError(
            f"expected weights of shape ({d + 1},) (D weights and the bias), got {w.shape}"
        )
    return w


def augment(X: Any) -> np.ndarray:
    """Append a constant feature 1 to every input, so that the bias becomes the last weight.

    Args:
        X (array or Tensor): inputs ``(N, D)``.

    Returns:
        np.ndarray: ``(N, D + 1)``, float64.

    >>> augment([[2.0, 3.0]])
    array([[2., 3., 1.]])

    Introduced in the chapter "The perceptron".
    """
    X = _as_2d(X)
    return np.hstack([X, np.ones((len(X), 1))])


def perceptron_predict(w: Any, X: Any) -> np.ndarray:
    """Labels ``sign(w . [x, 1])`` of a perceptron, with a score of exactly 0 read as ``-1``.

    Args:
        w (array): weights ``(D + 1,)``, the bias last.
        X (array or Tensor): inputs ``(N, D)``.

    Returns:
        np.ndarray: ``(N,)`` labels in ``{-1, +1}`` (int64).

    >>> perceptron_predict([1.0, -1.0, 0.0], [[2.0, 1.0], [0.0, 3.0]])
    array([ 1, -1])

    Introduced in the chapter "The perceptron".
    """
    Xa = augment(X)
    return np.where(Xa @ _as_weights(w, Xa.shape[1] - 1) > 0, 1, -1)


class PerceptronRun(NamedTuple):
    """The result of :func:`train_perceptron`.

    ``w`` is the final weight vector ``(D + 1,)``; ``history`` holds the weights before the
    first update and after every update, ``(U + 1, D + 1)``; ``epoch_ends[e]`` is the number of
    updates made by the end of epoch ``e`` (so ``history[epoch_ends[e]]`` are the weights after
    it); ``mistakes[e]`` counts the updates of epoch ``e``; ``converged`` says whether an
    epoch went by without a mistake.
    """

    w: np.ndarray
    history: np.ndarray
    epoch_ends: list[int]
    mistakes: list[int]
    converged: bool


def train_perceptron(
    X: Any,
    y: Any,
    lr: float = 1.0,
    epochs: int = 100,
    w0: Any = None,
    shuffle: bool = True,
    seed: int = 0,
) -> PerceptronRun:
    """Rosenblatt's learning rule: for each misclassified ``x`` (``y w.[x,1] <= 0``),
    ``w += lr y [x,1]``.

    Stops after the first epoch without a mistake, or after ``epochs`` epochs.

    Args:
        X (array or Tensor): inputs ``(N, D)``.
        y (array or Tensor): labels ``(N,)`` in ``{-1, +1}``.
        lr (float): learning rate, positive. Default 1.
        epochs (int): most passes over the data. Default 100.
        w0 (array | None): starting weights ``(D + 1,)``. Default zeros.
        shuffle (bool): visit the examples in a new random order every epoch. Default True.
        seed (int): seed of that order. Default 0.

    Returns:
        PerceptronRun: final weights ``(D + 1,)``, weight history ``(U + 1, D + 1)``, per-epoch
        update counts and mistakes, and whether it converged.

    >>> run = train_perceptron([[1.0, 1.0], [-1.0, -1.0]], [1, -1], shuffle=False)
    >>> run.w, run.mistakes, run.converged
    (array([1., 1., 1.]), [1, 0], True)

    Introduced in the chapter "The perceptron".
    """
    Xa = augment(X)
    y = _as_signs(y, len(Xa))
    if not lr > 0:
        raise ValueError(f"expected a positive learning rate, got {lr!r}")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"expected a positive integer number of epochs, got {epochs!r}")
    w = np.zeros(Xa.shape[1]) if w0 is None else _as_weights(w0, Xa.shape[1] - 1).copy()
    rng = np.random.default_rng(seed)
    history, epoch_ends, mistakes = [w.copy()], [], []
    for _ in range(epochs):
        count = 0
        for i in rng.permutation(len(Xa)) if shuffle else range(len(Xa)):
            if y[i] * (Xa[i] @ w) <= 0:
                w += lr * y[i] * Xa[i]
                history.append(w.copy())
                count += 1
        mistakes.append(count)
        epoch_ends.append(len(history) - 1)
        if count == 0:
            break
    return PerceptronRun(w, np.array(history), epoch_ends, mistakes, mistakes[-1] == 0)


def geometric_margin(w: Any, X: Any, y: Any) -> float:
    """The smallest signed distance ``y_i w.[x_i, 1] / ||w||`` of the data to the hyperplane ``w``.

    Distances are measured in the augmented space ``[x, 1]``, where Novikoff's theorem is stated.
    A positive margin means that ``w`` separates the data.

    Args:
        w (array): weights ``(D + 1,)``, not all zero.
        X (array or Tensor): inputs ``(N, D)``.
        y (array or Tensor): labels ``(N,)`` in ``{-1, +1}``.

    Returns:
        float: the margin (negative if some point is on the wrong side).

    >>> geometric_margin([0.0, 1.0, 0.0], [[0.0, 2.0], [5.0, -1.0]], [1, -1])
    1.0

    Introduced in the chapter "The perceptron".
    """
    Xa = augment(X)
    w, y = _as_weights(w, Xa.shape[1] - 1), _as_signs(y, len(Xa))
    norm = np.linalg.norm(w)
    if norm == 0:
        raise ValueError("expected a non-zero weight vector, got all zeros")
    return float(np.min(y * (Xa @ w)) / norm)


def mistake_bound(w_star: Any, X: Any, y: Any) -> float:
    """Novikoff's bound ``(R / gamma)^2`` on the perceptron's mistakes (starting from ``w = 0``).

    ``R`` is the largest norm of an augmented input ``[x, 1]`` and ``gamma`` the geometric margin
    of the separating weights ``w_star``.

    Args:
        w_star (array): weights ``(D + 1,)`` that separate the data.
        X (array or Tensor): inputs ``(N, D)``.
        y (array or Tensor): labels ``(N,)`` in ``{-1, +1}``.

    Returns:
        float: the bound on the total number of updates.

    >>> # R^2 = 5, gamma = 1
    >>> round(mistake_bound([0.0, 1.0, 0.0], [[0.0, 2.0], [0.0, -1.0]], [1, -1]), 6)
    5.0

    Introduced in the chapter "The perceptron".
    """
    gamma = geometric_margin(w_star, X, y)
    if gamma <= 0:
        raise ValueError(
            f"expected weights that separate the data (positive margin), got margin {gamma:.3g}"
        )
    R = np.linalg.norm(augment(X), axis=1).max()
    return float((R / gamma) ** 2)


def margin_data(n: int, margin: float, w_star: Any, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points uniform in the square ``[-1, 1]^2``, labelled by ``w_star``, none closer than
    ``margin`` to it.

    Args:
        n (int): number of points, positive.
        margin (float): the smallest allowed distance ``|w_star.[x, 1]| / ||w_star||``, >= 0.
        w_star (array): the true separator ``(3,)``: two weights and a bias.
        seed (int): random seed. Default 0.

    Returns:
        tuple: ``X`` of shape ``(n, 2)`` and labels ``y`` of shape ``(n,)`` in ``{-1, +1}``.

    >>> X, y = margin_data(50, 0.1, [1.0, -1.0, 0.0])
    >>> X.shape, geometric_margin([1.0, -1.0, 0.0], X, y) >= 0.1
    ((50, 2), True)

    Introduced in the chapter "The perceptron".
    """
    number = isinstance(margin, int | float) and not isinstance(margin, bool)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1 or not number or not margin >= 0:
        raise ValueError(
            f"expected a positive integer n and a margin >= 0, got n={n!r}, margin={margin!r}"
        )
    w_star = _as_weights(w_star, 2)
    w_star = w_star / np.linalg.norm(w_star)
    rng, kept = np.random.default_rng(seed), []
    while sum(len(k) for k in kept) < n:
        P = rng.uniform(-1, 1, size=(4 * n, 2))
        kept.append(P[np.abs(augment(P) @ w_star) >= max(margin, 1e-12)])
    X = np.concatenate(kept)[:n]
    return X, np.where(augment(X) @ w_star > 0, 1, -1)


def is_linearly_separable(X: Any, y: Any) -> bool:
    """Whether a hyperplane separates the two classes, decided exactly by a linear program.

    Looks for ``w`` with ``y_i w.[x_i, 1] >= 1`` for every ``i`` (scipy's HiGHS solver); such a
    ``w`` exists exactly when the data are strictly linearly separable.

    Args:
        X (array or Tensor): inputs ``(N, D)``.
        y (array or Tensor): labels ``(N,)`` in ``{-1, +1}``.

    Returns:
        bool.

    >>> is_linearly_separable([[0, 0], [1, 1], [0, 1], [1, 0]], [-1, -1, 1, 1])  # XOR
    False

    Introduced in the chapter "The perceptron".
    """
    from scipy.optimize import linprog

    Xa = augment(X)
    y = _as_signs(y, len(Xa))
    result = linprog(
        np.zeros(Xa.shape[1]),
        A_ub=-(y[:, None] * Xa),
        b_ub=-np.ones(len(Xa)),
        bounds=(None, None),
        method="highs",
    )
    if result.status not in (0, 2):
        raise RuntimeError(f"the linear program did not finish: {result.message}")
    return result.status == 0


def plot_decision_boundary(
    predict: Callable[[np.ndarray], Any],
    X: Any,
    y: Any,
    ax=None,
    resolution: int = 150,
    pad: float = 0.3,
    title: str | None = None,
):
    """Colour the plane by a classifier's predictions and draw the labelled points on top.

    Args:
        predict (callable): maps points ``(M, 2)`` (a NumPy array) to labels ``(M,)``.
        X (array or Tensor): the points ``(N, 2)``.
        y (array or Tensor): their labels ``(N,)`` (any integers, for example 0/1 or -1/+1).
        ax (matplotlib Axes | None): where to draw. Default: a new figure.
        resolution (int): grid points per axis. Default 150.
        pad (float): margin around the data. Default 0.3.
        title (str | None): the axes title.

    Returns:
        matplotlib Axes.

    >>> ax = plot_decision_boundary(lambda P: P[:, 0] > 0, [[-1.0, 0.0], [1.0, 0.0]], [0, 1])

    Introduced in the chapter "The perceptron"; used again in "Multilayer networks and activation
    functions".
    """
    if not callable(predict):
        raise TypeError(
            f"expected predict as a callable on points (M, 2), got {type(predict).__name__}"
        )
    X = _as_2d(X)
    y = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
    if X.shape[1] != 2 or y.shape != (len(X),):
        raise ValueError(f"expected 2-D points (N, 2) and labels (N,), got {X.shape} and {y.shape}")
    (x0, y0), (x1, y1) = X.min(0) - pad, X.max(0) + pad
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    Z = np.asarray(predict(np.c_[gx.ravel(), gy.ravel()]), dtype=np.float64).reshape(gx.shape)
    classes = np.unique(np.concatenate([y.astype(np.float64), np.unique(Z)]))
    ax = ax or plt.subplots(figsize=(4, 4))[1]
    levels = np.concatenate(
        [[classes[0] - 0.5], (classes[1:] + classes[:-1]) / 2, [classes[-1] + 0.5]]
    )
    ax.contourf(gx, gy, Z, levels=levels, cmap="coolwarm", alpha=0.25)
    ax.scatter(
        X[:, 0],
        X[:, 1],
        c=y,
        cmap="coolwarm",
        vmin=classes.min(),
        vmax=classes.max(),
        s=14,
        edgecolors="k",
        linewidths=0.4,
    )
    ax.set(xlim=(x0, x1), ylim=(y0, y1), xlabel="$x_1$", ylabel="$x_2$", title=title)
    return ax
