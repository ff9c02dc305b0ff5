"""Explanations of a classifier's decision and measurements of how good they are.

Grad-CAM written from scratch (hooks held by a context manager that always removes them),
gradient saliency and SmoothGrad, guided backpropagation and Guided Grad-CAM, explanation
targets as small callable objects, and the metrics the interpretability chapter reports: the
pointing game, attribution mass inside the object's box, deletion/insertion curves with their
areas, and rank correlation for the cascading-randomisation sanity checks (with an edge
detector as the model-free reference). All of them work unchanged on the book's offline ImageNet
network (:mod:`visionbook.imagenet`); Grad-CAM of torchvision's ImageNet ResNet-18, the scale-up
that needs a network, closes the module. Introduced in the chapter "Interpretability".
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from visionbook import data
from visionbook._validate import _expect_int, _expect_module, _expect_number, _expect_tensor
from visionbook.features import record  # the hooks, introduced with feature maps


@dataclass(frozen=True)
class ClassTarget:
    """Explain the logit of one class: ``target(logits) -> (N,)``.

    >>> ClassTarget(1)(torch.tensor([[0.0, 2.0], [1.0, 3.0]])).tolist()
    [2.0, 3.0]

    Introduced in the chapter "Interpretability".
    """

    index: int

    def __post_init__(self) -> None:
        _expect_int(self.index, "class index", minimum=0)

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        if logits.ndim != 2 or not 0 <= self.index < logits.shape[1]:
            raise ValueError(
                f"expected logits (N, K) with K > {self.index}, got {tuple(logits.shape)}"
            )
        return logits[:, self.index]


@dataclass(frozen=True)
class PerImageTarget:
    """Explain a different class for each image, for example each image's prediction or label.

    >>> PerImageTarget(torch.tensor([1, 0]))(torch.tensor([[0.0, 2.0], [1.0, 3.0]])).tolist()
    [2.0, 1.0]

    Introduced in the chapter "Interpretability".
    """

    indices: torch.Tensor

    def __post_init__(self) -> None:
        _expect_tensor(self.indices, "indices", "(N,)", ndim=1)

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        if logits.ndim != 2 or self.indices.shape != (logits.shape[0],):
            raise ValueError(
                f"expected logits (N, K) and N class indices, got {tuple(logits.shape)} and "
                f"{tuple(self.indices.shape)}"
            )
        return logits.gather(1, self.indices.to(logits.device).view(-1, 1)).squeeze(1)


def _check_images(x: torch.Tensor) -> None:
    _expect_tensor(x, "images", "(N, C, H, W)", ndim=4)


def _check_target(target: Callable) -> None:
    if not callable(target):
        raise TypeError(
            "expected target as a callable from logits (N, K) to scores (N,), such as "
            f"ClassTarget(k), got {type(target).__name__}"
        )


def grad_cam(
    model: nn.Module,
    layer: nn.Module,
    x: torch.Tensor,
    target: Callable,
    relu: bool = True,
    upsample: bool = True,
) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al., 2017): gradient-weighted class activation maps.

    Channel weights are the spatially averaged gradients of the target score with respect to
    the layer's activations; the map is the weighted sum of the activation channels, passed
    through a ReLU (the paper; Captum's ``LayerGradCam`` applies it only with
    ``relu_attributions=True``) and upsampled bilinearly to the input size (the paper does the
    same; Captum leaves upsampling to ``LayerAttribution.interpolate``). The gradient is taken
    with ``torch.autograd.grad`` down to the layer only, so no parameter's ``.grad`` changes.

    Args:
        model (nn.Module): the classifier, ``(N, C, H, W) -> (N, K)``; it is put in eval mode.
        layer (nn.Module): a convolutional layer or block inside ``model``.
        x (Tensor): images ``(N, C, H, W)``.
        target (Callable): maps logits ``(N, K)`` to the scores to explain ``(N,)``.
        relu (bool): keep only positive evidence. Default True.
        upsample (bool): bilinear upsampling to ``(H, W)``. Default True.

    Returns:
        Tensor: maps ``(N, H, W)`` (or ``(N, h, w)`` without upsampling), detached.

    Raises:
        ValueError: ``x`` is not ``(N, C, H, W)``, or the model's forward pass never runs ``layer``.

    >>> net = nn.Sequential(
    ...     nn.Conv2d(3, 4, 3, padding=1),
    ...     nn.ReLU(),
    ...     nn.AdaptiveAvgPool2d(1),
    ...     nn.Flatten(),
    ...     nn.Linear(4, 2),
    ... )
    >>> grad_cam(net, net[1], torch.rand(2, 3, 8, 8), ClassTarget(0)).shape
    torch.Size([2, 8, 8])

    Introduced in the chapter "Interpretability".
    """
    _expect_module(model)
    _check_images(x)
    _check_target(target)
    model.eval()
    x = x.detach().clone().requires_grad_(True)
    with record(layer) as rec:
        score = target(model(x))
        if rec.activations is None:
            raise ValueError(
                "expected a layer that the model's forward pass runs, got an unused "
                f"{type(layer).__name__}"
            )
        # Backpropagate only down to the layer: nothing below it is needed, and no .grad is touched.
        (gradients,) = torch.autograd.grad(score.sum(), rec.activations)
    weights = gradients.mean(dim=(2, 3), keepdim=True)
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

    >>> saliency(
    ...     nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), torch.rand(1, 3, 2, 2), ClassTarget(1)
    ... ).shape
    torch.Size([1, 2, 2])

    Introduced in the chapter "Interpretability".
    """
    _expect_module(model)
    _check_images(x)
    _check_target(target)
    model.eval()
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(target(model(x)).sum(), x)
    return grad.abs().amax(dim=1)


def smoothgrad(
    model: nn.Module,
    x: torch.Tensor,
    target: Callable,
    samples: int = 25,
    sigma: float = 0.15,
    seed: int = 0,
) -> torch.Tensor:
    """SmoothGrad (Smilkov et al., 2017): saliency averaged over noisy copies of the input.

    Args:
        model (nn.Module): the classifier.
        x (Tensor): images ``(N, C, H, W)``.
        target (Callable): logits -> scores ``(N,)``.
        samples (int): noisy copies. Default 25.
        sigma (float): noise standard deviation as a fraction of the input's value range.
            Default 0.15.
        seed (int): seed of the noise. Default 0.

    Returns:
        Tensor: maps ``(N, H, W)``.

    >>> smoothgrad(
    ...     nn.Sequential(nn.Flatten(), nn.Linear(12, 2)),
    ...     torch.rand(1, 3, 2, 2),
    ...     ClassTarget(0),
    ...     samples=4,
    ... ).shape
    torch.Size([1, 2, 2])

    Introduced in the chapter "Interpretability".
    """
    _expect_int(samples, "samples")
    _expect_number(sigma, "sigma", low=0)
    _expect_module(model)
    _check_images(x)
    _check_target(target)
    g = torch.Generator(device="cpu").manual_seed(seed)
    scale = sigma * (x.amax() - x.amin()).item()
    total = torch.zeros(x.shape[0], *x.shape[2:], device=x.device)
    for _ in range(samples):
        noise = torch.randn(x.shape, generator=g).to(x.device) * scale
        total += saliency(model, x + noise, target)
    return total / samples


@contextlib.contextmanager
def guided_relus(model: nn.Module) -> Iterator[int]:
    """Make every ``nn.ReLU`` in ``model`` pass back only positive gradients, inside a
    ``with`` block.

    Backpropagation through a ReLU keeps the gradient where the input was positive; the
    guided rule (Springenberg et al., 2015) also zeroes the negative gradients there, so
    ``grad_in = relu(grad_out) * (input > 0)``. Captum's ``GuidedBackprop`` uses the same rule.
    The hooks are removed when the block ends, also on an exception (never swallowed).

    Args:
        model (nn.Module): a network whose ReLUs are ``nn.ReLU`` modules (``F.relu`` calls
            cannot be hooked; in-place ReLUs do not support backward hooks).

    Yields:
        int: the number of ReLU modules hooked.

    >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    >>> with guided_relus(net) as n:
    ...     n, len(net[1]._backward_hooks)
    (1, 1)
    >>> len(net[1]._backward_hooks)
    0

    Introduced in the chapter "Interpretability".
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module model, got {type(model).__name__}")
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise ValueError(
            "expected a model with nn.ReLU modules for guided backpropagation, got none"
        )
    handles = []
    try:
        for relu in relus:
            handles.append(
                relu.register_full_backward_hook(
                    lambda module, grad_in, grad_out: (F.relu(grad_in[0]),)
                )
            )
        yield len(relus)
    finally:
        for handle in handles:
            handle.remove()


def guided_backprop(model: nn.Module, x: torch.Tensor, target: Callable) -> torch.Tensor:
    """Guided backpropagation: the input gradient with every ReLU passing back positive
    gradients only.

    Args:
        model (nn.Module): the classifier (put in eval mode), with ``nn.ReLU`` modules.
        x (Tensor): images ``(N, C, H, W)``.
        target (Callable): logits ``(N, K)`` -> scores ``(N,)``.

    Returns:
        Tensor: ``(N, C, H, W)``, the same as Captum's ``GuidedBackprop``.

    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> guided_backprop(net, torch.rand(5, 1, 2, 2), ClassTarget(0)).shape
    torch.Size([5, 1, 2, 2])

    Introduced in the chapter "Interpretability".
    """
    _expect_module(model)
    _check_images(x)
    _check_target(target)
    model.eval()
    x = x.detach().clone().requires_grad_(True)
    with guided_relus(model):
        (grad,) = torch.autograd.grad(target(model(x)).sum(), x)
    return grad


def guided_grad_cam(
    model: nn.Module, layer: nn.Module, x: torch.Tensor, target: Callable
) -> torch.Tensor:
    """Guided Grad-CAM (Selvaraju et al., 2017): guided backpropagation times the upsampled
    Grad-CAM map.

    The paper upsamples Grad-CAM bilinearly, as here; Captum's ``GuidedGradCam`` defaults to
    ``interpolate_mode="nearest"`` and matches this function with ``"bilinear"``.

    Args:
        model (nn.Module): the classifier.
        layer (nn.Module): the layer whose Grad-CAM weights the guided gradients.
        x (Tensor): images ``(N, C, H, W)``.
        target (Callable): logits ``(N, K)`` -> scores ``(N,)``.

    Returns:
        Tensor: ``(N, C, H, W)``.

    >>> net = nn.Sequential(
    ...     nn.Conv2d(3, 4, 3, padding=1),
    ...     nn.ReLU(),
    ...     nn.AdaptiveAvgPool2d(1),
    ...     nn.Flatten(),
    ...     nn.Linear(4, 2),
    ... )
    >>> guided_grad_cam(net, net[1], torch.rand(2, 3, 8, 8), ClassTarget(1)).shape
    torch.Size([2, 3, 8, 8])

    Introduced in the chapter "Interpretability".
    """
    return guided_backprop(model, x, target) * grad_cam(model, layer, x, target)[:, None]


def sobel_edges(images: torch.Tensor) -> torch.Tensor:
    """Edge strength of images: the Sobel gradient magnitude of their channel mean.

    The reference "explanation" of the sanity checks (Adebayo et al., 2018): a map that depends
    on the image only, never on the model.

    Args:
        images (Tensor): ``(N, C, H, W)``.

    Returns:
        Tensor: ``(N, H, W)``, zero on flat regions.

    >>> sobel_edges(torch.ones(1, 3, 5, 5)).abs().max().item()
    0.0

    Introduced in the chapter "Interpretability".
    """
    _check_images(images)
    gx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=images.device)
    kernels = torch.stack([gx, gx.T]).unsqueeze(1)
    grey = F.pad(images.mean(1, keepdim=True), (1, 1, 1, 1), mode="replicate")
    return F.conv2d(grey, kernels).norm(dim=1)


def cascading_randomization(
    model: nn.Module, names: Sequence[str], seed: int = 0
) -> Iterator[tuple[str, nn.Module]]:
    """Copies of ``model`` with more and more layers re-initialised, from the top down (Adebayo
    et al., 2018).

    Step ``k`` re-initialises the layers ``names[:k + 1]`` (every submodule's own
    ``reset_parameters``: fresh random weights for convolutions and linear layers, and
    BatchNorm back to its initial state, identity statistics included). ``model`` itself is
    never changed.

    Args:
        model (nn.Module): the trained network.
        names (sequence of str): names from ``model.named_modules()``, top layer first, e.g.
            ``["5", "2", "1", "0"]``.
        seed (int): seed of the new weights. Default 0.

    Yields:
        tuple: the last name re-initialised and the randomised copy (in eval mode).

    >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    >>> [name for name, _ in cascading_randomization(net, ["2", "0"])]
    ['2', '0']

    Introduced in the chapter "Interpretability".
    """
    modules = dict(_expect_module(model).named_modules())
    missing = [n for n in names if n not in modules]
    if isinstance(names, str) or not names or missing:
        raise ValueError(
            f"expected layer names from model.named_modules(), got {names!r} (unknown: {missing})"
        )
    current = copy.deepcopy(model).eval()
    for step, name in enumerate(names):
        current = copy.deepcopy(current)
        with torch.random.fork_rng():
            torch.manual_seed(seed + step)
            for module in dict(current.named_modules())[name].modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        yield name, current


def _check_maps_boxes(maps: torch.Tensor, boxes: torch.Tensor) -> None:
    _expect_tensor(maps, "maps", "(N, H, W)")
    _expect_tensor(boxes, "boxes", "(N, 4)")
    if maps.ndim != 3 or boxes.shape != (maps.shape[0], 4):
        raise ValueError(
            f"expected maps (N, H, W) and boxes (N, 4), got {tuple(maps.shape)} and "
            f"{tuple(boxes.shape)}"
        )


def _box_masks(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Boolean masks ``(N, H, W)`` of pixel boxes ``(x0, y0, x1, y1)`` with exclusive x1, y1."""
    ys = torch.arange(height, device=boxes.device).view(1, -1, 1)
    xs = torch.arange(width, device=boxes.device).view(1, 1, -1)
    b = boxes.view(-1, 4, 1, 1)
    return (xs >= b[:, 0]) & (xs < b[:, 2]) & (ys >= b[:, 1]) & (ys < b[:, 3])


def pointing_game(maps: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Hits of the pointing game (Zhang et al., 2018): is each map's maximum inside its box?

    Where several pixels share the maximum (a plateau, as bilinear upsampling makes along the
    borders of a coarse map), the point is the centroid of their pixel centres, not the first
    one in memory order, which would favour the top-left corner. A constant map points
    nowhere and misses.

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
    top = maps == maps.flatten(1).amax(1).view(-1, 1, 1)
    ys = torch.arange(maps.shape[1], device=maps.device).view(1, -1, 1) + 0.5
    xs = torch.arange(maps.shape[2], device=maps.device).view(1, 1, -1) + 0.5
    count = top.flatten(1).sum(1)
    y, x = (top * ys).flatten(1).sum(1) / count, (top * xs).flatten(1).sum(1) / count
    inside = (x >= boxes[:, 0]) & (x < boxes[:, 2]) & (y >= boxes[:, 1]) & (y < boxes[:, 3])
    return inside & (count < maps[0].numel())


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

    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    >>> deletion, insertion = deletion_insertion(
    ...     net, torch.rand(3, 1, 4, 4), torch.rand(3, 4, 4), torch.tensor([0, 1, 0]), steps=4
    ... )
    >>> deletion.shape, bool(torch.allclose(deletion[:, 0], insertion[:, -1]))
    (torch.Size([3, 5]), True)

    Introduced in the chapter "Interpretability".
    """
    _expect_module(model)
    _check_images(x)
    _expect_tensor(maps, "maps", str((x.shape[0], *x.shape[2:])))
    if maps.shape != (x.shape[0], *x.shape[2:]):
        raise ValueError(
            f"expected maps of shape {(x.shape[0], *x.shape[2:])}, got {tuple(maps.shape)}"
        )
    _expect_tensor(classes, "classes", f"({x.shape[0]},)")
    if classes.shape != (x.shape[0],):
        raise ValueError(
            f"expected one class per image, shape ({x.shape[0]},), got {tuple(classes.shape)}"
        )
    _expect_int(steps, "steps")
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
        for curve, image in (
            (deletion, torch.where(keep, base, x)),
            (insertion, torch.where(keep, x, base)),
        ):
            curve.append(model(image).softmax(1).gather(1, cls.view(-1, 1)).squeeze(1))
    return torch.stack(deletion, 1), torch.stack(insertion, 1)


def area_under(curve: torch.Tensor) -> torch.Tensor:
    """Area under curves sampled at evenly spaced points of [0, 1] (trapezoidal rule).

    >>> area_under(torch.tensor([[0.0, 0.5, 1.0]])).tolist()
    [0.5]

    Introduced in the chapter "Interpretability".
    """
    _expect_tensor(curve, "curves", "(N, S)")
    if curve.ndim != 2 or curve.shape[1] < 2:
        raise ValueError(f"expected curves (N, S) with S >= 2 samples, got {tuple(curve.shape)}")
    return torch.trapezoid(curve, dx=1.0 / (curve.shape[1] - 1), dim=1)


def _mid_ranks(t: torch.Tensor) -> torch.Tensor:
    """Ranks 0, 1, ... of each row of ``t`` flattened to ``(N, M)``; ties get their mean rank."""
    flat = t.detach().flatten(1).float().contiguous()
    ordered = flat.sort(dim=1).values
    below = torch.searchsorted(ordered, flat, right=False)
    up_to = torch.searchsorted(ordered, flat, right=True)
    return (below + up_to - 1).float() / 2


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation between paired maps, one value per row ``(N,)``.

    Tied values share the mean of their ranks, as in ``scipy.stats.spearmanr``, so a constant
    map (for example a Grad-CAM map that the ReLU set to zero) correlates 0 with anything.

    Args:
        a (Tensor): maps ``(N, ...)``.
        b (Tensor): maps of the same shape.

    Returns:
        Tensor: ``(N,)`` correlations in [-1, 1].

    >>> round(
    ...     spearman(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[10.0, 20.0, 30.0]])).item(), 6
    ... )
    1.0

    Introduced in the chapter "Interpretability".
    """
    _expect_tensor(a, "a", "(N, ...)")
    _expect_tensor(b, "b", "(N, ...)")
    if a.shape != b.shape or a.ndim < 2:
        raise ValueError(
            f"expected two batches of maps of the same shape (N, ...), got {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )
    ra, rb = _mid_ranks(a), _mid_ranks(b)
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    return (ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1)).clamp(min=1e-12)


# --- Scale-up: Grad-CAM of torchvision's ImageNet ResNet-18 ---------------------------------------
# (its weights need a network, VISIONBOOK_FULL=1)


class TopCams(NamedTuple):
    """The top classes of one photograph and their Grad-CAM maps (see :func:`top_k_grad_cams`)."""

    image: torch.Tensor
    probabilities: torch.Tensor
    classes: torch.Tensor
    names: list[str]
    maps: torch.Tensor


def resnet18_imagenet(pretrained: bool = True) -> nn.Module:
    """torchvision's ResNet-18 (He et al., 2016), with its ImageNet weights.

    The weights come from :func:`visionbook.data.pretrained`: fetched once into
    ``data_home()/weights`` (timeout, atomic write, fails fast offline), checked against the
    SHA-256 prefix in their file name and loaded with ``weights_only=True``.

    Args:
        pretrained (bool): load ``ResNet18_Weights.DEFAULT``; False gives random weights
            (``weights=None``), for tests. Default True.

    Returns:
        nn.Module: the network in eval mode, ``(N, 3, 224, 224) -> (N, 1000)``.

    >>> resnet18_imagenet(pretrained=False).fc.out_features
    1000

    Introduced in the chapter "Interpretability".
    """
    from torchvision.models import ResNet18_Weights, resnet18

    if not isinstance(pretrained, bool):
        raise TypeError(f"expected pretrained as True or False, got {pretrained!r}")
    model = resnet18(weights=None)
    if pretrained:
        model.load_state_dict(data.pretrained(ResNet18_Weights.DEFAULT))
    return model.eval()


def top_k_grad_cams(
    model: nn.Module, image: torch.Tensor, k: int = 5, layer: nn.Module | None = None
) -> TopCams:
    """The ``k`` most probable ImageNet classes of a photograph and one Grad-CAM map for each.

    The photograph is prepared as ``ResNet18_Weights.DEFAULT.transforms()`` does (resize to 256,
    centre crop 224, ImageNet normalisation); the ``k`` maps come from one batched backward pass.

    Args:
        model (nn.Module): an ImageNet classifier, ``(N, 3, 224, 224) -> (N, 1000)``, on any device.
        image (Tensor): ``(3, H, W)`` in [0, 1], for example
            ``visionbook.data.sample_image("cat")``.
        k (int): how many classes. Default 5.
        layer (nn.Module | None): the Grad-CAM layer. Default ``model.layer4`` (7x7).

    Returns:
        TopCams: ``image`` the crop ``(3, 224, 224)`` in [0, 1] for display, ``probabilities (k,)``
        in decreasing order, ``classes (k,)``, their ``names`` and ``maps (k, 224, 224)``.

    >>> top = top_k_grad_cams(resnet18_imagenet(pretrained=False), torch.rand(3, 100, 120), k=2)
    >>> top.maps.shape, len(top.names)
    (torch.Size([2, 224, 224]), 2)

    Introduced in the chapter "Interpretability".
    """
    from torchvision.models import ResNet18_Weights

    weights = ResNet18_Weights.DEFAULT
    if not isinstance(image, torch.Tensor) or image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(
            f"expected one RGB image (3, H, W), got {tuple(getattr(image, 'shape', ()))}"
        )
    if (
        isinstance(k, bool)
        or not isinstance(k, int)
        or not 1 <= k <= len(weights.meta["categories"])
    ):
        raise ValueError(f"expected 1 <= k <= 1000, got {k!r}")
    device = next(model.parameters()).device
    x = weights.transforms()(image).unsqueeze(0).to(device)
    model.eval()
    with torch.no_grad():
        probabilities = model(x).softmax(1)[0]
    top = probabilities.topk(k)
    maps = grad_cam(
        model, layer or model.layer4, x.expand(k, -1, -1, -1), PerImageTarget(top.indices)
    )
    mean, std = (
        torch.tensor(v, device=device).view(3, 1, 1)
        for v in (weights.transforms().mean, weights.transforms().std)
    )
    names = [weights.meta["categories"][i] for i in top.indices.tolist()]
    return TopCams((x[0] * std + mean).clamp(0, 1), top.values, top.indices, names, maps)
