"""Self-supervised and contrastive learning: features from unlabelled images, and a toy CLIP.

The NT-Xent (InfoNCE) loss of SimCLR written from scratch, with its positive-pair term alone
(which lets the embeddings collapse); a batched two-view augmentation pipeline for grey digits
and the colour shapes; a projection head and a SimCLR pre-training loop; measures of an
embedding (k-nearest-neighbour accuracy, spread per dimension, effective rank); and the parts of
a toy CLIP: shapes with generated captions, a bag-of-words text encoder, the symmetric
image-text loss and zero-shot classification. Introduced in the chapter "Self-supervised and
contrastive learning".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from visionbook import config
from visionbook._validate import _expect_int, _expect_module, _expect_number, _expect_tensor
from visionbook.shapes import SHAPES, render_masks, textured_background

# hues, degrees
COLOURS = {
    "red": 0.0,
    "yellow": 60.0,
    "green": 120.0,
    "cyan": 180.0,
    "blue": 240.0,
    "magenta": 300.0,
}
HUE_SPREAD = 15.0  # a named colour's hue varies by up to this many degrees either way


def _pair(z1: torch.Tensor, z2: torch.Tensor, what: str = "embeddings") -> None:
    """``z1`` and ``z2`` must be two ``(N, D)`` tensors of the same shape, N >= 1."""
    _expect_tensor(z1, f"{what} z1", "(N, D)", ndim=2)
    _expect_tensor(z2, f"{what} z2", "(N, D)", ndim=2)
    if z1.shape != z2.shape or len(z1) == 0:
        raise ValueError(
            f"expected {what} z1 and z2 of the same shape (N, D) with N >= 1, got "
            f"{tuple(z1.shape)} and {tuple(z2.shape)}"
        )


def _temperature(temperature: float) -> float:
    if not _expect_number(temperature, "temperature") > 0:
        raise ValueError(f"expected a positive temperature, got {temperature!r}")
    return float(temperature)


def contrastive_logits(
    z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Similarity logits of a batch of view pairs, and the index of each row's positive.

    The ``2N`` embeddings (first views, then second views) are normalised to unit length; entry
    ``(i, k)`` is their cosine similarity divided by ``temperature``, and the diagonal (an
    embedding compared with itself) is ``-inf``, so it is never a candidate. The positive of row
    ``i`` is the other view of the same image, ``i + N`` or ``i - N``. ``F.cross_entropy(logits,
    targets)`` is then the NT-Xent loss.

    Args:
        z1 (Tensor): ``(N, D)`` embeddings of the first views.
        z2 (Tensor): ``(N, D)`` embeddings of the second views (row ``i``: the same image as
            ``z1[i]``).
        temperature (float): divides the cosine similarities, positive. Default 0.5.

    Returns:
        tuple: ``logits (2N, 2N)`` and ``targets (2N,)``.

    >>> logits, targets = contrastive_logits(torch.eye(2), torch.eye(2), 1.0)
    >>> logits[0].tolist(), targets.tolist()
    ([-inf, 0.0, 1.0, 0.0], [2, 3, 0, 1])

    Introduced in the chapter "Self-supervised and contrastive learning".
    """
    _pair(z1, z2)
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = len(z1)
    logits = (z @ z.T / _temperature(temperature)).masked_fill(
        torch.eye(2 * n, dtype=torch.bool, device=z.device), -math.inf
    )
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return logits, targets


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """The NT-Xent loss of SimCLR (normalised temperature-scaled cross-entropy, an InfoNCE loss).

    For each of the ``2N`` views, minus the log of the softmax probability of its positive (the
    other view of its image) among the ``2N - 1`` other views of the batch, averaged over all
    ``2N`` views. Written from scratch with ``logsumexp``, it equals
    ``F.cross_entropy(*contrastive_logits(z1, z2, temperature))`` and is the sum of
    :func:`positive_pair_loss` and the mean log-sum-exp over each row (the negatives' term).

    Args:
        z1 (Tensor): ``(N, D)`` embeddings of the first views, any scale (they are normalised).
        z2 (Tensor): ``(N, D)`` embeddings of the second views.
        temperature (float): positive; small values sharpen the softmax. Default 0.5.

    Returns:
        Tensor: the scalar loss; at least 0, and ``log(2N - 1)`` when all views are orthogonal.

    >>> # log(3): orthogonal views
    >>> round(nt_xent(torch.eye(4)[:2], torch.eye(4)[2:], 1.0).item(), 4)
    1.0986

    Introduced in the chapter "Self-supervised and contrastive learning".
    """
    logits, targets = contrastive_logits(z1, z2, temperature)
    positives = logits[torch.arange(len(logits), device=logits.device), targets]
    return (torch.logsumexp(logits, dim=1) - positives).mean()


def positive_pair_loss(
    z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5
) -> torch.Tensor:
    """The positive-pair term of NT-Xent alone: minus the mean cosine similarity of the two views,
    over ``temperature``.

    Pulls the two views of each image together and nothing pushes different images apart, so a
    network can minimise it by mapping every image to the same point (collapse). Shown in the
    chapter as what happens without negatives.

    Args:
        z1 (Tensor): ``(N, D)`` embeddings of the first views.
        z2 (Tensor): ``(N, D)`` embeddings of the second views.
        temperature (float): positive. Default 0.5.

    Returns:
        Tensor: the scalar loss, at least ``-1 / temperature`` (reached when the views agree).

    >>> round(positive_pair_loss(torch.ones(3, 2), torch.ones(3, 2), 0.5).item(), 4)
    -2.0

    Introduced in the chapter "Self-supervised and contrastive learning".
    """
    _pair(z1, z2)
    return -F.cosine_similarity(z1, z2, dim=1).mean() / _temperature(temperature)


def _crop_and_turn(
    X: torch.Tensor, crop_scale: tuple[float, float], degrees: float
) -> torch.Tensor:
    """A random crop (area fraction in ``crop_scale``, aspect ratio 3/4 to 4/3 where the crop fits)
    resized back, and a rotation."""
    n = len(X)
    u = torch.rand(n, 5, device=X.device)
    area = crop_scale[0] + (crop_scale[1] - crop_scale[0]) * u[:, 0]
    # width and height <= 1
    low, high = area.log().clamp(min=math.log(3 / 4)), (-area.log()).clamp(max=math.log(4 / 3))
    ratio = torch.exp(low + (high - low) * u[:, 1])
    # fractions of the width and height, w * h = area
    w, h = (area * ratio).sqrt(), (area / ratio).sqrt()
    # the crop stays inside the image
    cx, cy = (u[:, 2] * 2 - 1) * (1 - w), (u[:, 3] * 2 - 1) * (1 - h)
    angle = (u[:, 4] * 2 - 1) * math.radians(degrees)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [torch.stack([w * cos, -h * sin, cx], 1), torch.stack([w * sin, h * cos, cy], 1)], 1
    )
    grid = F.affine_grid(theta, list(X.shape), align_corners=False)
    return F.grid_sample(X, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _jitter(X: torch.Tensor, strength: float, grey: float) -> torch.Tensor:
    """Random contrast and brightness per image; for colour images also a gain per channel and
    random greyscale."""
    n, c = X.shape[:2]
    factors = 1 + (torch.rand(n, 2 + c, 1, 1, device=X.device) * 2 - 1) * strength
    mean = X.mean(dim=(1, 2, 3), keepdim=True)
    X = ((X - mean) * factors[:, :1] + mean) * factors[:, 1:2]
    if c == 3:
        X = X * factors[:, 2:]
        luma = (X * torch.tensor([0.299, 0.587, 0.114], device=X.device).view(1, 3, 1, 1)).sum(
            1, keepdim=True
        )
        X = torch.where(torch.rand(n, 1, 1, 1, device=X.device) < grey, luma.expand_as(X), X)
    return X


def _erase(X: torch.Tensor, p: float) -> torch.Tensor:
    """With probability ``p`` per image, set a random rectangle of 5% to 20% of the image
    to zero."""
    n, _, height, width = X.shape
    u = torch.rand(n, 4, device=X.device)
    h = ((0.05 + 0.15 * u[:, 0]).sqrt() * height).round()
    w = ((0.05 + 0.15 * u[:, 1]).sqrt() * width).round()
    top, left = (u[:, 2] * (height - h)).floor(), (u[:, 3] * (width - w)).floor()
    rows, cols = torch.arange(height, device=X.device), torch.arange(width, device=X.device)
    inside_r = (rows >= top[:, None]) & (rows < (top + h)[:, None])
    inside_c = (cols >= left[:, None]) & (cols < (left + w)[:, None])
    hole = inside_r[:, :, None] & inside_c[:, None, :] & (torch.rand(n, 1, 1, device=X.device) < p)
    return X.masked_fill(hole[:, None], 0.0)


def simclr_augment(
    X: torch.Tensor,
    crop_scale: tuple[float, float] = (0.6, 1.0),
    degrees: float = 25.0,
    jitter: float = 0.4,
    grey: float = 0.2,
    erase: float = 0.25,
    noise: float = 0.05,
) -> torch.Tensor:
    """One random SimCLR-style view of every image of a batch: crop and turn, colour, erase, noise.

    Each image gets its own random resized crop (area fraction in ``crop_scale``, aspect ratio
    3/4 to 4/3 as far as the crop fits in the image, resized back to the full size) and rotation
    (zero fill), random contrast and
    brightness (for colour images also a gain per channel, and greyscale with probability
    ``grey``), with probability ``erase`` a blanked rectangle, and Gaussian pixel noise; values are
    clipped to [0, 1]. Departs from SimCLR's ImageNet recipe: no horizontal flips (they change
    digits), rotations instead, and noise instead of blur for 28x28 images. Randomness comes from
    PyTorch's generator on the images' device, so ``torch.manual_seed`` makes it repeatable.

    Args:
        X (Tensor): images ``(N, C, H, W)`` in [0, 1], with 1 or 3 channels.
        crop_scale (tuple of 2 float): smallest and largest area fraction of the crop, in (0, 1].
            Default (0.6, 1.0).
        degrees (float): largest rotation either way, in degrees. Default 25.
        jitter (float): largest relative change of contrast, brightness and channel gains, in
            [0, 1). Default 0.4.
        grey (float): probability of greyscale for colour images. Default 0.2.
        erase (float): probability of a blanked rectangle. Default 0.25.
        noise (float): standard deviation of the pixel noise. Default 0.05.

    Returns:
        Tensor: ``(N, C, H, W)`` in [0, 1], on ``X``'s device.

    >>> simclr_augment(torch.rand(4, 1, 28, 28)).shape
    torch.Size([4, 1, 28, 28])

    Introduced in the chapter "Self-supervised and contrastive learning".
    """
    _expect_tensor(X, "images", "(N, C, H, W)", ndim=4)
    if X.shape[1] not in (1, 3) or not X.is_floating_point():
        raise ValueError(
            f"expected float images (N, C, H, W) with 1 or 3 channels, got {tuple(X.shape)} "
            f"of {X.dtype}"
        )
    if not isinstance(crop_scale, tuple | list) or len(crop_scale) != 2:
        raise TypeError(f"expected crop_scale as a pair (smallest, largest), got {crop_scale!r}")
    low, high = (_expect_number(s, "crop_scale", 0, 1) for s in crop_scale)
    if not 0 < low <= high:
        raise ValueError(f"expected 0 < crop_scale[0] <= crop_scale[1] <= 1, got {crop_scale!r}")
    _expect_number(degrees, "degrees", low=0)
    _expect_number(jitter, "jitter", 0, 0.99)
    _expect_number(grey, "grey", 0, 1)
    _expect_number(erase, "erase", 0, 1)
    _expect_number(noise, "noise", low=0)
    X = _jitter(_crop_and_turn(X, (low, high), degrees), jitter, grey)
    X = _erase(X, erase) + noise * torch.randn_like(X)
    return X.clamp(0, 1)


def two_views(X: torch.Tensor, **settings: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent random views of every image, for a contrastive loss.

    Args:
        X (Tensor): images ``(N, C, H, W)`` in [0, 1].
        **settings: passed to :func:`simclr_augment` (for example ``crop_scale=(0.4, 1.0)``).

    Returns:
        tuple: two ``(N, C, H, W)`` tensors; row ``i`` of both comes from image ``i``.

    >>> v1, v2 = two_views(torch.rand(3, 1, 28, 28))
    >>> v1.shape == v2.shape, bool((v1 != v2).any())
    (True, True)

    Introduced in the chapter "Self-supervised and contrastive learning".
    """
    return simclr_augment(X, **settings), simclr_augment(X, **settings)


def projection_head(in_features: int, hidden: int = 128, out_features: int = 32) -> nn.Sequential:
    """SimCLR's projection head: ``Linear -> ReLU -> Linear``, applied to the backbone's features.

    The contrastive loss is computed on its output; the features used afterwards (for a probe)
    are the backbone's, before the head, which keep information that the loss teaches the head
    to throw away.

    Args:
        in_features (int): width of the backbone's features.
        hidden (int): width of the hidden layer. Default 128.
        out_features (int): width of the embedding the loss sees. Default 32.

    Returns:
        nn.Sequential: ``(B, in_features) -> (B, out_features)``.

    >>> projection_head(288)(torch.zeros(2, 288)).shape
    torch.Size([2, 32])

    Introduced in the chapter "Self-supervised and contrastive learning".
    """
    for name, value in (
        ("in_features", in_features),
        ("hidden", hidden),
        ("out_features", out_features),
    ):
        _expect_int(value, name)
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, out_features))


def simclr_pretrain(
    model: nn.Module,
    X: torch.Tensor,
    steps: int,
    batch_size: int = 256,
    lr: float = 2e-3,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nt_xent,
    augment: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] = two_views,
    seed: int = 0,
    every: int = 0,
    callback: Callable[[int], dict] | None = None,
) -> list[dict]:
    """Pre-train ``model`` (backbone, then projection head) on unlabelled images, SimCLR style.

    Each step draws ``batch_size`` images (without replacement within the step), makes two
    views of each with ``augment``, embeds both with ``model`` in train mode and takes an Adam
    step on ``loss_fn(z1, z2)``. Departs from SimCLR in the optimiser (Adam with a constant
    rate, not LARS with a cosine schedule) and in scale (hundreds of images per batch, not
    thousands).

    Args:
        model (nn.Module): maps ``(B, C, H, W)`` images to ``(B, D)`` embeddings.
        X (Tensor): ``(N, C, H, W)`` unlabelled images, on any device (batches move to the model's).
        steps (int): optimiser steps, positive.
        batch_size (int): images per step (each gives two views). Default 256.
        lr (float): Adam's learning rate. Default 2e-3.
        loss_fn (Callable): ``(z1, z2) -> scalar``. Default :func:`nt_xent` at temperature 0.5.
        augment (Callable): ``images -> (views1, views2)``. Default :func:`two_views`.
        seed (int): seed of the batches and the views (plus ``config.seed_offset()``). Default 0.
        every (int): call ``callback`` after every ``every`` steps (and before the first); 0
            never. Default 0.
        callback (Callable | None): ``step -> dict`` of measurements, recorded with the step.
            Default None.

    Returns:
        list of dict: ``{"step", "loss"}`` per step, merged with the callback's dict where it ran
        (at step 0 with ``loss`` NaN).

    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    >>> len(
    ...     simclr_pretrain(
    ...         net, torch.rand(8, 1, 2, 2), 3, batch_size=4, augment=lambda X: (X, X + 0.1)
    ...     )
    ... )
    3

    Introduced in the chapter "Self-supervised and contrastive learning".
    """
    _expect_module(model)
    _expect_tensor(X, "images X", "(N, C, H, W)", ndim=4)
    _expect_int(steps, "steps")
    _expect_int(batch_size, "batch_size", minimum=2)
    _expect_int(every, "every", minimum=0)
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=_expect_number(lr, "lr", low=0))
    # the offset: see config.seed_offset
    seed = _expect_int(seed, "seed", minimum=0) + config.seed_offset()
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the views
    history = [{"step": 0, "loss": math.nan, **callback(0)}] if every and callback else []
    for step in range(1, steps + 1):
        model.train()
        xb = X[torch.randperm(len(X), generator=g)[:batch_size].to(X.device)].to(device)
        v1, v2 = augment(xb)
        loss = loss_fn(model(v1), model(v2))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append({"step": step, "loss": loss.item()})
        if every and callback and step % every == 0:
            history[-1].update(callback(step))
    model.eval()
    return history


def knn_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    k: int = 10,
) -> float:
    """Accuracy of a k-nearest-neighbour classifier on embeddings, by cosine similarity.

    Every test example takes the majority label of its ``k`` most similar training examples
    (ties go to the smaller label). No training: it measures how well the embedding alone puts
    same-class images near each other, so it can be computed cheaply during pre-training.

    Args:
        train_features (Tensor): ``(N, D)`` embeddings of labelled examples.
        train_labels (Tensor): ``(N,)`` integer labels.
        test_features (Tensor): ``(M, D)`` embeddings to classify.
        test_labels (Tensor): ``(M,)`` their labels.
        k (int): neighbours that vote, at most N. Default 10.

    Returns:
        float: the fraction of test examples classified correctly.

    >>> f = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> knn_accuracy(
    ...     f,
    ...     torch.tensor([0, 0, 1, 1]),
    ...     torch.tensor([[1.0, 0.2], [0.2, 1.0]]),
    ...     torch.tensor([0, 1]),
    ...     k=2,
    ... )
    1.0

    Introduced in the chapter "Self-supervised and contrastive learning".
    """
    _expect_tensor(train_features, "train_features", "(N, D)", ndim=2)
    _expect_tensor(test_features, "test_features", "(M, D)", ndim=2)
    _expect_tensor(train_labels, "train_labels", "(N,)", ndim=1)
    _expect_tensor(test_labels, "test_labels", "(M,)", ndim=1)
    if len(train_labels) != len(train_features) or len(test_labels) != len(test_features):
        raise ValueError(
            f"expected one label per example, got {len(train_labels)} labels for "
            f"{len(train_features)} training examples and {len(test_labels)} for "
            f"{len(test_features)} test examples"
        )
    if train_features.shape[1] != test_features.shape[1]:
        raise ValueError(
            f"expected features of the same width, got {train_features.shape[1]} and "
            f"{test_features.shape[1]}"
        )
    if not 1 <= _expect_int(k, "k") <= len(train_features):
        raise ValueError(
            f"expected k of at most {len(train_features)} (the training examples), got {k}"
        )
    sim = F.normalize(test_features.float(), dim=1) @ F.normalize(train_features.float(), dim=1).T
    neighbours = train_labels.to(sim.device)[sim.topk(k, dim=1).indices]  # (M, k)
    votes = F.one_hot(neighbours, int(train_labels.max()) + 1).sum(1)
    return (votes.argmax(1).cpu() == test_labels.cpu()).float().mean().item()


def embedding_std(Z: torch.Tensor) -> float:
    """Spread of embeddings on the unit sphere: the mean over dimensions of the standard deviation
    of ``Z / |Z|``.

    Collapsed embeddings (every image at one point) give 0; embeddings spread evenly over the
    sphere in ``D`` dimensions give about ``1 / sqrt(D)`` (the measure of SimSiam, Chen and
    He, 2021).

    Args:
        Z (Tensor): ``(N, D)`` embeddings, N >= 2.

    Returns:
        float: between 0 and 1.

    >>> embedding_std(torch.ones(5, 3))
    0.0

    Introduced in the chapter "Self-supervised and contrastive learning".
    """
    _expect_tensor(Z, "embeddings Z", "(N, D)", ndim=2)
    if len(Z) < 2:
        raise ValueError(f"expected at least 2 embeddings (N, D), got {tuple(Z.shape)}")
    return F.normalize(Z.double(), dim=1).std(dim=0).mean().item()


def effective_rank(Z: torch.Tensor) -> float:
    """How many dimensions embeddings really use: the exponential of the entropy of their normalised
    singular values.

    The embeddings are centred; with singular values ``s``, ``p = s / s.sum()`` and the result is
    ``exp(-sum(p log p))`` (Roy and Vetterli, 2007; RankMe, Garrido et al., 2023). It is 1 when all
    the variation lies along one direction, ``D`` when it is spread equally over ``D``, and 0 for
    fully collapsed embeddings (no variation at all).

    Args:
        Z (Tensor): ``(N, D)`` embeddings, N >= 2.

    Returns:
        float: between 0 and ``min(N, D)``.

    >>> round(effective_rank(torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])), 6)
    2.0

    Introduced in the chapter "Self-supervised and contrastive learning".
    """
    _expect_tensor(Z, "embeddings Z", "(N, D)", ndim=2)
    if len(Z) < 2:
        raise ValueError(f"expected at least 2 embeddings (N, D), got {tuple(Z.shape)}")
    Z = Z.double()
    s = torch.linalg.svdvals(Z - Z.mean(0))
    if s.sum() <= 1e-12 * max(1.0, Z.abs().max().item()):
        return 0.0
    p = s / s.sum()
    p = p[p > 0]
    return torch.exp(-(p * p.log()).sum()).item()


# --- a toy CLIP: shapes with captions -------------------------------------------------------------


class CaptionedShapes(NamedTuple):
    """Shapes with captions: ``images (N, 3, H, W)`` in [0, 1], ``captions`` (N strings such as
    "a red circle"), ``shapes (N,)`` indices into ``SHAPES`` and ``colours (N,)`` indices into
    ``COLOURS``."""

    images: torch.Tensor
    captions: list[str]
    shapes: torch.Tensor
    colours: torch.Tensor


def _hsv_to_rgb(hue: torch.Tensor, saturation: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """``(N, 3)`` RGB colours from hues in degrees and saturations and values in [0, 1]."""
    k = (torch.tensor([5.0, 3.0, 1.0]) + hue[:, None] / 60) % 6
    return value[:, None] * (1 - saturation[:, None] * (torch.minimum(k, 4 - k).clamp(0, 1)))


def caption(colour: str, shape: str) -> str:
    """The caption of a shape of a colour, for example
    ``caption("red", "circle") == "a red circle"``.

    >>> caption("blue", "star")
    'a blue star'

    Introduced in the chapter "Self-supervised and contrastive learning".
    """
    if colour not in COLOURS or shape not in SHAPES:
        raise ValueError(
            f"expected a colour from {tuple(COLOURS)} and a shape from {SHAPES}, got {colour!r} "
            f"and {shape!r}"
        )
    return f"a {colour} {shape}"


def captioned_shapes(
    n: int, pairs: Sequence[tuple[str, str]], size: int = 32, seed: int = 0
) -> CaptionedShapes:
    """Images of one shape each, in a named colour, with the caption that says both.

    The ``(colour, shape)`` pairs are used in turn (balanced), then shuffled. A colour name is a
    range of hues (``COLOURS[name]`` plus or minus ``HUE_SPREAD`` degrees) with random saturation
    and brightness; position and rotation vary as in :func:`visionbook.shapes.make_shapes`. The
    shapes are larger (radius 28% to 40% of the image) and the textured background darker (half
    as bright) than there, so that a small network learns the five shapes in a few seconds.

    Args:
        n (int): number of images.
        pairs (sequence of (str, str)): the combinations to draw, colours from ``COLOURS``, shapes
            from ``SHAPES``.
        size (int): height and width, at least 16. Default 32.
        seed (int): the data are a pure function of the arguments. Default 0.

    Returns:
        CaptionedShapes: ``images (n, 3, size, size)``, ``captions`` (n strings), ``shapes (n,)``,
            ``colours (n,)``.

    >>> sorted(set(captioned_shapes(4, [("red", "circle"), ("blue", "star")]).captions))
    ['a blue star', 'a red circle']

    Introduced in the chapter "Self-supervised and contrastive learning".
    """
    _expect_int(n, "n")
    _expect_int(seed, "seed", minimum=0)
    if _expect_int(size, "size") < 16:
        raise ValueError(f"expected an image size of at least 16 pixels, got {size}")
    if isinstance(pairs, str) or not isinstance(pairs, Sequence) or not pairs:
        raise TypeError(f"expected pairs as a non-empty sequence of (colour, shape), got {pairs!r}")
    for pair in pairs:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise TypeError(f"expected pairs as (colour, shape) tuples, got {pair!r}")
        caption(*pair)
    g = torch.Generator().manual_seed(seed)
    which = (torch.arange(n) % len(pairs))[torch.randperm(n, generator=g)]
    colours = torch.tensor([list(COLOURS).index(pairs[i][0]) for i in which.tolist()])
    shapes = torch.tensor([SHAPES.index(pairs[i][1]) for i in which.tolist()])
    radii = size * (0.28 + 0.12 * torch.rand(n, generator=g))
    centers = radii[:, None] + 1 + torch.rand(n, 2, generator=g) * (size - 2 * radii[:, None] - 2)
    cover = render_masks(shapes, centers, radii, torch.rand(n, generator=g) * 2 * math.pi, size)[
        :, None
    ]
    hue = (
        torch.tensor(list(COLOURS.values()))[colours]
        + (torch.rand(n, generator=g) * 2 - 1) * HUE_SPREAD
    )
    rgb = _hsv_to_rgb(
        hue, 0.6 + 0.4 * torch.rand(n, generator=g), 0.75 + 0.25 * torch.rand(n, generator=g)
    )
    images = 0.5 * textured_background(n, size, g) * (1 - cover) + rgb[:, :, None, None] * cover
    captions = [
        caption(list(COLOURS)[c], SHAPES[s]) for c, s in zip(colours.tolist(), shapes.tolist())
    ]
    return CaptionedShapes(images.clamp(0, 1), captions, shapes, colours)


class BagOfWords(nn.Module):
    """A tiny text encoder: the mean of learned word vectors, then a linear map.

    Word order is ignored ("a red star" and "a star red" are the same text), which is enough for
    captions of a colour and a shape; CLIP's text encoder is a transformer over the words.

    Args:
        vocabulary (sequence of str): the known words; any other word is an error.
        dim (int): size of the word vectors. Default 32.
        out_features (int): size of the text embedding. Default 32.

    Returns:
        nn.Module: a list of ``B`` captions -> ``(B, out_features)`` embeddings.

    >>> BagOfWords(["a", "red", "star"])(["a red star", "a star"]).shape
    torch.Size([2, 32])

    Introduced in the chapter "Self-supervised and contrastive learning".
    """

    def __init__(self, vocabulary: Sequence[str], dim: int = 32, out_features: int = 32):
        super().__init__()
        if isinstance(vocabulary, str) or not isinstance(vocabulary, Sequence) or not vocabulary:
            raise TypeError(
                f"expected the vocabulary as a non-empty sequence of words, got {vocabulary!r}"
            )
        if not all(isinstance(w, str) and w and " " not in w for w in vocabulary) or len(
            set(vocabulary)
        ) != len(vocabulary):
            raise ValueError(f"expected distinct single words, got {list(vocabulary)}")
        self.index = {w: i for i, w in enumerate(vocabulary)}
        self.words = nn.EmbeddingBag(len(vocabulary), _expect_int(dim, "dim"), mode="mean")
        self.out = nn.Linear(dim, _expect_int(out_features, "out_features"))

    def forward(self, captions: Sequence[str]) -> torch.Tensor:
        """Embed ``B`` captions: ``(B, out_features)``."""
        if (
            isinstance(captions, str)
            or not isinstance(captions, Sequence)
            or not all(isinstance(c, str) for c in captions)
        ):
            raise TypeError(f"expected a list of caption strings, got {type(captions).__name__}")
        unknown = sorted({w for c in captions for w in c.split() if w not in self.index})
        if unknown or any(not c.split() for c in captions):
            raise ValueError(
                f"expected captions of known words, got unknown words {unknown} or an empty caption"
            )
        ids = [self.index[w] for c in captions for w in c.split()]
        offsets = torch.tensor([0, *[len(c.split()) for c in captions][:-1]]).cumsum(0)
        device = self.out.weight.device
        return self.out(self.words(torch.tensor(ids, device=device), offsets.to(device)))


def clip_loss(
    image_embeddings: torch.Tensor, text_embeddings: torch.Tensor, temperature: float = 0.1
) -> torch.Tensor:
    """CLIP's symmetric contrastive loss over a batch of matching image-text pairs.

    Both sets of embeddings are normalised; ``logits[i, j]`` is the cosine similarity of image
    ``i`` and text ``j`` over ``temperature``. The loss is the mean of the cross-entropy that picks
    each image's own text among the ``N`` texts (rows) and each text's own image among the ``N``
    images (columns): NT-Xent's InfoNCE, with the negatives taken from the other modality.
    CLIP learns the temperature; here it is fixed.

    Args:
        image_embeddings (Tensor): ``(N, D)``.
        text_embeddings (Tensor): ``(N, D)``; row ``i`` describes image ``i``.
        temperature (float): positive. Default 0.1.

    Returns:
        Tensor: the scalar loss; ``log N`` when all similarities are equal.

    >>> round(clip_loss(torch.ones(4, 2), torch.ones(4, 2)).item(), 4)  # log(4)
    1.3863

    Introduced in the chapter "Self-supervised and contrastive learning".
    """
    _pair(image_embeddings, text_embeddings, "image and text embeddings")
    logits = (
        F.normalize(image_embeddings, dim=1)
        @ F.normalize(text_embeddings, dim=1).T
        / _temperature(temperature)
    )
    targets = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def _turn_and_flip(X: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Each image turned by a random multiple of 90 degrees and mirrored with probability 1/2."""
    turns = torch.randint(4, (len(X),), generator=g).to(X.device)
    turned = torch.stack([X.rot90(k, (2, 3)) for k in range(4)])[
        turns, torch.arange(len(X), device=X.device)
    ]
    mirror = (torch.rand(len(X), generator=g) < 0.5).to(X.device)[:, None, None, None]
    return torch.where(mirror, turned.flip(3), turned)


def clip_pretrain(
    image_encoder: nn.Module,
    text_encoder: nn.Module,
    data: CaptionedShapes,
    steps: int,
    lr: float = 3e-3,
    temperature: float = 0.1,
    seed: int = 0,
) -> list[float]:
    """Train an image encoder and a text encoder together with :func:`clip_loss` on
    captioned images.

    Each step draws one image of every distinct caption in ``data``, so that no caption is twice
    in a batch (two identical captions would be each other's negatives; among CLIP's 400 million
    web captions that is rare), turns and mirrors each image at random (a shape's caption does not
    depend on its orientation), and takes an Adam step on both encoders.

    Args:
        image_encoder (nn.Module): ``(B, 3, H, W)`` images -> ``(B, D)`` embeddings.
        text_encoder (nn.Module): a list of ``B`` captions -> ``(B, D)`` embeddings, for example
            :class:`BagOfWords`.
        data (CaptionedShapes): the training images and their captions, from
            :func:`captioned_shapes`.
        steps (int): optimiser steps, positive.
        lr (float): Adam's learning rate. Default 3e-3.
        temperature (float): of :func:`clip_loss`. Default 0.1.
        seed (int): seed of the batches and the turns (plus ``config.seed_offset()``). Default 0.

    Returns:
        list of float: the loss of every step.

    >>> d = captioned_shapes(4, [("red", "circle"), ("blue", "star")])
    >>> image_encoder = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 8))
    >>> len(
    ...     clip_pretrain(
    ...         image_encoder, BagOfWords(["a", "red", "blue", "circle", "star"], 8, 8), d, 2
    ...     )
    ... )
    2

    Introduced in the chapter "Self-supervised and contrastive learning".
    """
    _expect_module(image_encoder, "image_encoder")
    _expect_module(text_encoder, "text_encoder")
    if not isinstance(data, CaptionedShapes):
        raise TypeError(
            f"expected data as CaptionedShapes (from captioned_shapes), got {type(data).__name__}"
        )
    _expect_int(steps, "steps")
    params = [*image_encoder.parameters(), *text_encoder.parameters()]
    optimizer = torch.optim.Adam(params, lr=_expect_number(lr, "lr", low=0))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    g = torch.Generator().manual_seed(_expect_int(seed, "seed", minimum=0) + config.seed_offset())
    texts = sorted(set(data.captions))
    rows = [torch.tensor([i for i, c in enumerate(data.captions) if c == text]) for text in texts]
    device, losses = next(image_encoder.parameters()).device, []
    for _ in range(steps):
        image_encoder.train()
        text_encoder.train()
        idx = torch.stack([r[torch.randint(len(r), (1,), generator=g)][0] for r in rows])
        images = _turn_and_flip(data.images[idx].to(device), g)
        loss = clip_loss(image_encoder(images), text_encoder(texts), temperature)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    image_encoder.eval()
    text_encoder.eval()
    return losses


def zero_shot_predict(
    image_embeddings: torch.Tensor, class_embeddings: torch.Tensor
) -> torch.Tensor:
    """Zero-shot classification: each image gets the class whose text embedding is most
    similar (cosine).

    Args:
        image_embeddings (Tensor): ``(N, D)``.
        class_embeddings (Tensor): ``(K, D)``, one embedded caption per class.

    Returns:
        Tensor: ``(N,)`` class indices in ``0 .. K - 1``.

    >>> zero_shot_predict(torch.tensor([[1.0, 0.1], [0.0, 2.0]]), torch.eye(2)).tolist()
    [0, 1]

    Introduced in the chapter "Self-supervised and contrastive learning".
    """
    _expect_tensor(image_embeddings, "image_embeddings", "(N, D)", ndim=2)
    _expect_tensor(class_embeddings, "class_embeddings", "(K, D)", ndim=2)
    if image_embeddings.shape[1] != class_embeddings.shape[1] or len(class_embeddings) == 0:
        raise ValueError(
            f"expected embeddings of the same width, got images {tuple(image_embeddings.shape)} "
            f"and classes {tuple(class_embeddings.shape)}"
        )
    return (F.normalize(image_embeddings, dim=1) @ F.normalize(class_embeddings, dim=1).T).argmax(1)
