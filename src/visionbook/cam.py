"""Explanations of a classifier's decision and measurements of how good they are.

Grad-CAM written from scratch (hooks held by a context manager that always removes them),
gradient saliency and SmoothGrad, explanation targets as small callable objects, and the
metrics the interpretability chapter reports: the pointing game, attribution mass inside the
object's box, deletion/insertion curves with their areas, and rank correlation for the
randomisation sanity checks. Introduced in the chapter "Interpretability".
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ClassTarget:
    """Explain the logit of one class: ``target(logits) -> (N,)``.

    >>> ClassTarget(1)(torch.tensor([[0.0, 2.0], [1.0, 3.0]])).tolist()
    [2.0, 3.0]

    Introduced in the chapter "Interpretability".
    """

    index: int

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        if logits.ndim != 2 or not 0 <= self.index < logits.shape[1]:
            raise ValueError(f"expected logits (N, K) with K > {self.index}, got {tuple(logits.shape)}")
        return logits[:, self.index]


@dataclass(frozen=True)
class PerImageTarget:
    """Explain a different class for each image, for example each image's prediction or label.

    >>> PerImageTarget(torch.tensor([1, 0]))(torch.tensor([[0.0, 2.0], [1.0, 3.0]])).tolist()
    [2.0, 1.0]

    Introduced in the chapter "Interpretability".
    """

    indices: torch.Tensor

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        if logits.ndim != 2 or self.indices.shape != (logits.shape[0],):
            raise ValueError(
                f"expected logits (N, K) and N class indices, got {tuple(logits.shape)} and {tuple(self.indices.shape)}"
            )
        return logits.gather(1, self.indices.to(logits.device).view(-1, 1)).squeeze(1)


@dataclass
class Recording:
    """What :func:`record` captured at a layer: its output and the gradient flowing into it."""

    activations: torch.Tensor | None = None
    gradients: torch.Tensor | None = None
    handles: list = field(default_factory=list)


@contextlib.contextmanager
def record(layer: nn.Module) -> Iterator[Recording]:
    """Capture a layer's forward output and its gradient while the ``with`` block runs.

    The hooks are removed when the block ends, whether it ends normally or by an exception
    (which is never swallowed).

    Args:
        layer (nn.Module): the layer to watch, for example the last convolutional block.

    Yields:
        Recording: ``activations`` ``(N, C, h, w)`` after the forward pass and ``gradients``
        of the same shape after ``backward``.

    >>> conv = nn.Conv2d(1, 2, 3)
    >>> with record(conv) as rec:
    ...     conv(torch.ones(1, 1, 4, 4)).sum().backward()
    >>> rec.gradients.shape, len(conv._forward_hooks)
    (torch.Size([1, 2, 2, 2]), 0)

    Introduced in the chapter "Interpretability".
    """
    if not isinstance(layer, nn.Module):
        raise TypeError(f"expected an nn.Module layer, got {type(layer).__name__}")
    rec = Recording()

    def forward_hook(module, inputs, output):
        rec.activations = output
        if output.requires_grad:
            output.register_hook(lambda grad: setattr(rec, "gradients", grad))

    rec.handles.append(layer.register_forward_hook(forward_hook))
    try:
        yield rec
    finally:
        for handle in rec.handles:
            handle.remove()


def _check_images(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(
            f"expected images of shape (N, C, H, W), got {tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}"
        )


def grad_cam(
    model: nn.Module, layer: nn.Module, x: torch.Tensor, target: Callable, relu: bool = True, upsample: bool = True
) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al., 2017): gradient-weighted class activation maps.

    Channel weights are the spatially averaged gradients of the target score with respect to
    the layer's activations; the map is the weighted sum of the activation channels, passed
    through a ReLU (the paper; Captum's ``LayerGradCam`` applies it only with
    ``relu_attributions=True``) and upsampled bilinearly to the input size (the paper does the
    same; Captum leaves upsampling to ``LayerAttribution.interpolate``).

    Args:
        model (nn.Module): the classifier, ``(N, C, H, W) -> (N, K)``; it is put in eval mode.
        layer (nn.Module): a convolutional layer or block inside ``model``.
        x (Tensor): images ``(N, C, H, W)``.
        target (Callable): maps logits ``(N, K)`` to the scores to explain ``(N,)``.
        relu (bool): keep only positive evidence. Default True.
        upsample (bool): bilinear upsampling to ``(H, W)``. Default True.

    Returns:
        Tensor: maps ``(N, H, W)`` (or ``(N, h, w)`` without upsampling), detached.

    Introduced in the chapter "Interpretability".
    """
    _check_images(x)
    model.eval()
    x = x.detach().clone().requires_grad_(True)
    with record(layer) as rec:
        score = target(model(x))
        model.zero_grad(set_to_none=True)
        score.sum().backward()
    weights = rec.gradients.mean(dim=(2, 3), keepdim=True)
    cam = (weights * rec.activations).sum(dim=1, keepdim=True)
    cam = F.relu(cam) if relu else cam
    if upsample:
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return cam[:, 0].detach()


def saliency(model: nn.Module, x: torch.Tensor, target: Callable) -> torch.Tensor:
    """Gradient saliency (Simonyan et al., 2014): ``max_c |d score / d x_c|`` per pixel.

    Args:
        model (nn.Module): the classifier (put in eval mode).
        x (Tensor): images ``(N, C, H, W)``.
        target (Callable): logits ``(N, K)`` -> scores ``(N,)``.

    Returns:
        Tensor: maps ``(N, H, W)``.

    Introduced in the chapter "Interpretability".
    """
    _check_images(x)
    model.eval()
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(target(model(x)).sum(), x)
    return grad.abs().amax(dim=1)


def smoothgrad(
    model: nn.Module, x: torch.Tensor, target: Callable, samples: int = 25, sigma: float = 0.15, seed: int = 0
) -> torch.Tensor:
    """SmoothGrad (Smilkov et al., 2017): saliency averaged over noisy copies of the input.

    Args:
        model (nn.Module): the classifier.
        x (Tensor): images ``(N, C, H, W)``.
        target (Callable): logits -> scores ``(N,)``.
        samples (int): noisy copies. Default 25.
        sigma (float): noise standard deviation as a fraction of the input's value range. Default 0.15.
        seed (int): seed of the noise. Default 0.

    Returns:
        Tensor: maps ``(N, H, W)``.

    Introduced in the chapter "Interpretability".
    """
    if samples < 1 or sigma < 0:
        raise ValueError(f"expected samples >= 1 and sigma >= 0, got {samples} and {sigma}")
    _check_images(x)
    g = torch.Generator(device="cpu").manual_seed(seed)
    scale = sigma * (x.amax() - x.amin()).item()
    total = torch.zeros(x.shape[0], *x.shape[2:], device=x.device)
    for _ in range(samples):
        noise = torch.randn(x.shape, generator=g).to(x.device) * scale
        total += saliency(model, x + noise, target)
    return total / samples


def _check_maps_boxes(maps: torch.Tensor, boxes: torch.Tensor) -> None:
    if maps.ndim != 3 or boxes.shape != (maps.shape[0], 4):
        raise ValueError(f"expected maps (N, H, W) and boxes (N, 4), got {tuple(maps.shape)} and {tuple(boxes.shape)}")


def _box_masks(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Boolean masks ``(N, H, W)`` of pixel boxes ``(x0, y0, x1, y1)`` with exclusive x1, y1."""
    ys = torch.arange(height, device=boxes.device).view(1, -1, 1)
    xs = torch.arange(width, device=boxes.device).view(1, 1, -1)
    b = boxes.view(-1, 4, 1, 1)
    return (xs >= b[:, 0]) & (xs < b[:, 2]) & (ys >= b[:, 1]) & (ys < b[:, 3])


def pointing_game(maps: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Hits of the pointing game (Zhang et al., 2018): is each map's maximum inside its box?

    Ties are broken by the first maximum in row-major order.

    Args:
        maps (Tensor): ``(N, H, W)``.
        boxes (Tensor): ``(N, 4)`` pixel boxes ``(x0, y0, x1, y1)``, x1 and y1 exclusive.

    Returns:
        Tensor: ``(N,)`` bool.

    >>> m = torch.zeros(1, 4, 4); m[0, 1, 2] = 1.0
    >>> pointing_game(m, torch.tensor([[2, 0, 4, 2]])).tolist()
    [True]

    Introduced in the chapter "Interpretability".
    """
    _check_maps_boxes(maps, boxes)
    flat = maps.flatten(1).argmax(1)
    y, x = flat // maps.shape[2], flat % maps.shape[2]
    return (x >= boxes[:, 0]) & (x < boxes[:, 2]) & (y >= boxes[:, 1]) & (y < boxes[:, 3])


def mass_in_box(maps: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Fraction of each map's positive attribution that lies inside its box, in [0, 1].

    A map with no positive attribution scores 0.

    >>> mass_in_box(torch.ones(1, 4, 4), torch.tensor([[0, 0, 2, 2]])).tolist()
    [0.25]

    Introduced in the chapter "Interpretability".
    """
    _check_maps_boxes(maps, boxes)
    positive = maps.clamp(min=0)
    inside = (positive * _box_masks(boxes, *maps.shape[1:])).flatten(1).sum(1)
    total = positive.flatten(1).sum(1)
    return torch.where(total > 0, inside / total.clamp(min=1e-12), torch.zeros_like(total))


@torch.no_grad()
def deletion_insertion(
    model: nn.Module,
    x: torch.Tensor,
    maps: torch.Tensor,
    classes: torch.Tensor,
    steps: int = 16,
    baseline: torch.Tensor | float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Deletion and insertion curves (Petsiuk et al., 2018) of the target's softmax probability.

    Deletion replaces the most important pixels first by the baseline and watches the
    probability fall (lower area is better); insertion starts from the baseline and puts the
    most important pixels back first (higher area is better).

    Args:
        model (nn.Module): the classifier.
        x (Tensor): images ``(N, C, H, W)``.
        maps (Tensor): importance ``(N, H, W)``.
        classes (Tensor): ``(N,)`` the explained class of each image; the curves follow its
            softmax probability.
        steps (int): fractions 0, 1/steps, ..., 1 of the pixels. Default 16.
        baseline (Tensor | float): what removed pixels become. Default 0 (black).

    Returns:
        tuple: deletion and insertion curves, each ``(N, steps + 1)``.

    Introduced in the chapter "Interpretability".
    """
    _check_images(x)
    if maps.shape != (x.shape[0], *x.shape[2:]):
        raise ValueError(f"expected maps of shape {(x.shape[0], *x.shape[2:])}, got {tuple(maps.shape)}")
    if classes.shape != (x.shape[0],) or steps < 1:
        raise ValueError(
            f"expected one class per image, shape ({x.shape[0]},), and steps >= 1; got {tuple(classes.shape)} and {steps}"
        )
    model.eval()
    n, pixels = x.shape[0], maps[0].numel()
    order = maps.flatten(1).argsort(dim=1, descending=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(pixels, device=order.device).expand(n, -1))
    base = torch.as_tensor(baseline, dtype=x.dtype, device=x.device).expand_as(x)
    cls = classes.to(x.device).long()
    deletion, insertion = [], []
    for k in range(steps + 1):
        keep = (rank < round(k * pixels / steps)).view(n, 1, *x.shape[2:])
        for curve, image in ((deletion, torch.where(keep, base, x)), (insertion, torch.where(keep, x, base))):
            curve.append(model(image).softmax(1).gather(1, cls.view(-1, 1)).squeeze(1))
    return torch.stack(deletion, 1), torch.stack(insertion, 1)


def area_under(curve: torch.Tensor) -> torch.Tensor:
    """Area under curves sampled at evenly spaced points of [0, 1] (trapezoidal rule).

    >>> area_under(torch.tensor([[0.0, 0.5, 1.0]])).tolist()
    [0.5]

    Introduced in the chapter "Interpretability".
    """
    if curve.ndim != 2 or curve.shape[1] < 2:
        raise ValueError(f"expected curves (N, S) with S >= 2 samples, got {tuple(curve.shape)}")
    return torch.trapezoid(curve, dx=1.0 / (curve.shape[1] - 1), dim=1)


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation between paired maps, one value per row ``(N,)``.

    Ranks are computed without tie correction (ties get distinct ranks in index order).

    >>> round(spearman(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[10.0, 20.0, 30.0]])).item(), 6)
    1.0

    Introduced in the chapter "Interpretability".
    """
    if a.shape != b.shape or a.ndim < 2:
        raise ValueError(f"expected two batches of maps of the same shape (N, ...), got {tuple(a.shape)} and {tuple(b.shape)}")

    def ranks(t: torch.Tensor) -> torch.Tensor:
        return t.flatten(1).argsort(1).argsort(1).float()

    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    return (ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1)).clamp(min=1e-12)
