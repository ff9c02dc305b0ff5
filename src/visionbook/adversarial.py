"""Adversarial examples: the fast gradient sign method (FGSM) and projected gradient descent (PGD).

Images are in ``[0, 1]`` and ``epsilon`` is in the same units: ``epsilon = 0.1`` lets every
pixel move by at most a tenth of the range from black to white (25.5 grey levels of 255). The
perturbed images are clipped back to ``[0, 1]``, so where a pixel is already at 0 or 1 its
change can be smaller than ``epsilon``. Untargeted attacks only: they push the loss of the
true class up. Introduced in the chapter "Applications and responsible use".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from visionbook._validate import _expect_int, _expect_module, _expect_tensor


def _check(images: torch.Tensor, labels: torch.Tensor, epsilon: float | None = None) -> None:
    _expect_tensor(images, "images", "(N, C, H, W)", ndim=4)
    _expect_tensor(labels, "labels", f"({images.shape[0]},)")
    if labels.shape != (images.shape[0],):
        raise ValueError(
            f"expected labels of shape ({images.shape[0]},), got {tuple(labels.shape)}"
        )
    if epsilon is None:
        return
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)):
        raise TypeError(
            "expected epsilon as a number in [0, 1] (pixel units of [0, 1] images), "
            f"got {epsilon!r}"
        )
    if not 0 <= epsilon <= 1:
        raise ValueError(
            f"expected epsilon in [0, 1] (pixel units of [0, 1] images), got {epsilon!r}"
        )


def input_gradient(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The gradient of the cross-entropy loss with respect to the input pixels: ``(N, C, H, W)``.

    The model is put in eval mode (no dropout, fixed BatchNorm statistics) and its parameters'
    gradients are left untouched.

    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    >>> input_gradient(model, torch.rand(3, 1, 2, 2), torch.tensor([0, 1, 0])).shape
    torch.Size([3, 1, 2, 2])

    Introduced in the chapter "Applications and responsible use".
    """
    _expect_module(model)
    _check(images, labels)
    model.eval()
    x = images.detach().clone().requires_grad_(True)
    # sum: each image's gradient is its own loss's
    loss = F.cross_entropy(model(x), labels, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def fgsm(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, epsilon: float
) -> torch.Tensor:
    """Fast gradient sign method (Goodfellow et al., 2015):
    ``clip(x + epsilon * sign(grad_x loss), 0, 1)``.

    Args:
        model (nn.Module): a classifier returning ``(N, K)`` logits.
        images (Tensor): ``(N, C, H, W)`` in ``[0, 1]``, on the model's device.
        labels (Tensor): ``(N,)`` true classes.
        epsilon (float): the largest change of any pixel, in ``[0, 1]``.

    Returns:
        Tensor: adversarial images ``(N, C, H, W)`` in ``[0, 1]``, detached.

    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    >>> x = torch.full((1, 1, 2, 2), 0.5)
    >>> (fgsm(model, x, torch.tensor([0]), 0.1) - x).abs().max().item() <= 0.1 + 1e-7
    True

    Introduced in the chapter "Applications and responsible use".
    """
    _check(images, labels, epsilon)
    grad = input_gradient(model, images, labels)
    return (images + epsilon * grad.sign()).clamp(0, 1).detach()


def pgd(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    epsilon: float,
    step_size: float | None = None,
    steps: int = 10,
) -> torch.Tensor:
    """Projected gradient descent (Madry et al., 2018): repeated small FGSM steps, each followed by
    a projection back into the L-infinity ball of radius ``epsilon`` around the images and into
    ``[0, 1]``.

    Departs from the paper in one way: it starts at the clean images, not at a random point of
    the ball, so that the result is deterministic.

    Args:
        model (nn.Module): a classifier returning ``(N, K)`` logits.
        images (Tensor): ``(N, C, H, W)`` in ``[0, 1]``.
        labels (Tensor): ``(N,)`` true classes.
        epsilon (float): radius of the ball, in pixel units of ``[0, 1]``.
        step_size (float | None): size of each signed step. Default ``2.5 * epsilon / steps``.
        steps (int): number of steps. Default 10.

    Returns:
        Tensor: adversarial images ``(N, C, H, W)`` with ``|x_adv - x| <= epsilon`` everywhere.

    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    >>> x = torch.full((1, 1, 2, 2), 0.5)
    >>> (pgd(model, x, torch.tensor([0]), 0.1) - x).abs().max().item() <= 0.1 + 1e-7
    True

    Introduced in the chapter "Applications and responsible use".
    """
    _check(images, labels, epsilon)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"expected a positive integer number of steps, got {steps!r}")
    step_size = 2.5 * epsilon / steps if step_size is None else step_size
    x = images.detach().clone()
    for _ in range(steps):
        x = x + step_size * input_gradient(model, x, labels).sign()
        x = torch.min(torch.max(x, images - epsilon), images + epsilon).clamp(0, 1)  # project
    return x.detach()


@torch.no_grad()
def accuracy_under(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500
) -> float:
    """Accuracy of ``model`` on a batch of (perturbed) images, computed in chunks.

    >>> accuracy_under(
    ...     nn.Sequential(nn.Flatten(), nn.Linear(4, 2)),
    ...     torch.zeros(2, 1, 2, 2),
    ...     torch.tensor([0, 1]),
    ... )
    0.5

    Introduced in the chapter "Applications and responsible use".
    """
    _expect_module(model)
    _check(images, labels)
    _expect_int(batch_size, "batch_size")
    model.eval()
    correct = sum(
        (model(x).argmax(1) == y).sum().item()
        for x, y in zip(images.split(batch_size), labels.split(batch_size))
    )
    return correct / len(labels)
