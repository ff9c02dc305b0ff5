"""Calibration: reliability diagrams, expected calibration error and temperature scaling.

A classifier is calibrated when, among the predictions it makes with confidence ``p``, a
fraction ``p`` is right. The confidence here is the top-class probability (the "top-label"
calibration of Guo et al., 2017). Bins are ``(lo, hi]`` of equal width, the first one closed
at 0, as in Naeini et al. (2015), Guo et al. (2017) and scikit-learn's ``calibration_curve``.
Introduced in the chapter "Applications and responsible use".
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from visionbook._validate import _expect_int, _expect_tensor


class Reliability(NamedTuple):
    """Per-bin statistics of a reliability diagram, each ``(n_bins,)`` (NaN in empty bins).

    ``edges`` are the ``n_bins + 1`` bin edges from 0 to 1; ``confidence`` and ``accuracy`` the mean
    top-class probability and the fraction of correct predictions in each bin; ``counts`` the
    number of predictions in each bin.
    """

    edges: torch.Tensor
    confidence: torch.Tensor
    accuracy: torch.Tensor
    counts: torch.Tensor


def _check(probs: torch.Tensor, labels: torch.Tensor, n_bins: int) -> None:
    if not isinstance(probs, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise TypeError(
            f"expected probs and labels as tensors, got {type(probs).__name__} and "
            f"{type(labels).__name__}"
        )
    if probs.ndim != 2 or labels.shape != (probs.shape[0],) or probs.shape[0] == 0:
        raise ValueError(
            f"expected probs (N, K) and labels (N,) with N > 0, got {tuple(probs.shape)} and "
            f"{tuple(labels.shape)}"
        )
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"expected a positive integer n_bins, got {n_bins!r}")
    ones = torch.ones(len(probs), dtype=probs.dtype, device=probs.device)
    if probs.min() < 0 or not torch.allclose(probs.sum(1), ones, atol=1e-4):
        raise ValueError(
            "expected probabilities: non-negative rows that sum to 1 (apply softmax to "
            "logits first)"
        )


def reliability(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> Reliability:
    """Bin predictions by confidence and measure, in each bin, mean confidence and accuracy.

    Args:
        probs (Tensor): ``(N, K)`` class probabilities (softmax of the logits).
        labels (Tensor): ``(N,)`` true classes.
        n_bins (int): number of equal-width bins on ``[0, 1]``. Default 15.

    Returns:
        Reliability: ``edges (n_bins + 1,)``, ``confidence``, ``accuracy``, ``counts``
        ``(n_bins,)``, on the CPU.

    >>> r = reliability(torch.tensor([[0.9, 0.1], [0.3, 0.7]]), torch.tensor([0, 0]), n_bins=2)
    >>> r.counts.tolist(), r.accuracy.tolist()
    ([0, 2], [nan, 0.5])

    Introduced in the chapter "Applications and responsible use".
    """
    _check(probs, labels, n_bins)
    confidence, predicted = probs.detach().double().cpu().max(1)
    correct = (predicted == labels.cpu()).double()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    bins = torch.bucketize(confidence, edges[1:-1])  # bin i holds (edges[i], edges[i + 1]]
    counts = torch.bincount(bins, minlength=n_bins)
    sums = torch.zeros(n_bins, dtype=torch.float64)
    mean_conf = sums.index_add(0, bins, confidence) / counts  # 0 / 0 = NaN for an empty bin
    mean_acc = sums.index_add(0, bins, correct) / counts
    return Reliability(edges, mean_conf, mean_acc, counts)


def expected_calibration_error(
    probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15
) -> float:
    """ECE: the gap ``|accuracy - confidence|`` of each bin, weighted by the fraction of predictions
    in it.

    Args:
        probs (Tensor): ``(N, K)`` class probabilities.
        labels (Tensor): ``(N,)`` true classes.
        n_bins (int): equal-width confidence bins. Default 15.

    Returns:
        float: ECE in ``[0, 1]``; 0 for a perfectly calibrated classifier (on these bins).

    >>> round(
    ...     expected_calibration_error(
    ...         torch.tensor([[0.9, 0.1], [0.3, 0.7]]), torch.tensor([0, 0]), n_bins=2
    ...     ),
    ...     4,
    ... )
    0.3

    Introduced in the chapter "Applications and responsible use".
    """
    r = reliability(probs, labels, n_bins)
    full = r.counts > 0
    weights = r.counts[full].double() / r.counts.sum()
    return float((weights * (r.accuracy[full] - r.confidence[full]).abs()).sum())


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, max_iter: int = 100) -> float:
    """Temperature scaling: the ``T > 0`` that minimises the NLL of ``softmax(logits / T)``.

    Fit it on a validation split, never on the test split. Dividing by ``T`` changes no argmax,
    so accuracy stays the same; ``T > 1`` softens overconfident predictions. ``T`` is optimised
    as ``log T`` with L-BFGS.

    Args:
        logits (Tensor): ``(N, K)`` validation logits (no gradient needed).
        labels (Tensor): ``(N,)`` validation labels.
        max_iter (int): L-BFGS iterations. Default 100.

    Returns:
        float: the temperature.

    >>> logits = torch.tensor([[4.0, 0.0], [4.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    >>> # 3 of 4 right: softmax(4 / T) = 0.75
    >>> round(fit_temperature(logits, torch.tensor([0, 0, 1, 1])), 3)
    3.641

    Introduced in the chapter "Applications and responsible use".
    """
    _expect_tensor(logits, "logits", "(N, K)")
    if logits.ndim != 2 or _expect_tensor(labels, "labels", "(N,)").shape != (logits.shape[0],):
        raise ValueError(
            f"expected logits (N, K) and labels (N,), got {tuple(logits.shape)} and "
            f"{tuple(labels.shape)}"
        )
    _expect_int(max_iter, "max_iter")
    logits, labels = logits.detach().double().cpu(), labels.cpu()
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp())


def plot_reliability(r: Reliability, ax=None, title: str | None = None):
    """Draw a reliability diagram: accuracy per confidence bin as bars, the diagonal of perfect
    calibration.

    Args:
        r (Reliability): from :func:`reliability`.
        ax (matplotlib Axes | None): where to draw; a new figure when None.
        title (str | None): axes title.

    Returns:
        matplotlib.axes.Axes.

    >>> ax = plot_reliability(reliability(torch.tensor([[0.8, 0.2]]), torch.tensor([0])))

    Introduced in the chapter "Applications and responsible use".
    """
    import matplotlib.pyplot as plt

    if not isinstance(r, Reliability):
        raise TypeError(f"expected a Reliability from reliability(), got {type(r).__name__}")
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    width = float(r.edges[1] - r.edges[0])
    centres = (r.edges[:-1] + width / 2).numpy()
    full = (r.counts > 0).numpy()
    ax.bar(
        centres[full],
        r.accuracy.numpy()[full],
        width=width,
        edgecolor="black",
        label="accuracy in bin",
    )
    gap_bottom = r.accuracy.numpy()[full]
    gap = r.confidence.numpy()[full] - gap_bottom
    ax.bar(
        centres[full],
        gap,
        bottom=gap_bottom,
        width=width,
        color="red",
        alpha=0.3,
        edgecolor="red",
        label="gap to confidence",
    )
    ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="confidence (top-class probability)",
        ylabel="accuracy",
        title=title,
    )
    ax.legend(loc="upper left", fontsize=8)
    return ax
