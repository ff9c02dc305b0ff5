"""Data augmentation: batched geometric transforms, mixup, cutmix, test-time augmentation.

torchvision's ``transforms.v2`` is the library idiom (one image at a time, in a Dataset);
the functions here work on whole batches on any device, which is what lets the chapter's
experiments train several models per seed within its budget. Introduced in the chapter
"Data augmentation and generalisation".
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from visionbook._validate import _expect_int, _expect_module, _expect_number, _expect_tensor


def _check_images(X: torch.Tensor) -> None:
    _expect_tensor(X, "images", "(N, C, H, W)", ndim=4)


def _check_labels(X: torch.Tensor, y: torch.Tensor, num_classes: int) -> None:
    _check_images(X)
    _expect_int(num_classes, "num_classes")
    if not isinstance(y, torch.Tensor) or y.ndim != 1 or len(y) != len(X) or y.is_floating_point():
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"expected integer labels of shape ({len(X)},), got {shape}")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"expected labels in 0..{num_classes - 1}, got values from {y.min().item()} to "
            f"{y.max().item()}"
        )


def affine(
    X: torch.Tensor, angles: torch.Tensor, shifts: torch.Tensor, scales: torch.Tensor | None = None
) -> torch.Tensor:
    """Rotate and zoom each image about its centre and shift it, with bilinear sampling and zero
    fill.

    Agrees with ``torchvision.transforms.v2.functional.affine(image, angle, translate, scale,
    shear=0, interpolation=BILINEAR)`` applied image by image, including its sign: positive
    angles turn *clockwise* (``v2.functional.rotate`` turns the other way), but it handles a
    batch with different parameters per image in one call.

    Args:
        X (Tensor): images ``(N, C, H, W)``.
        angles (Tensor): ``(N,)`` clockwise rotations in degrees.
        shifts (Tensor): ``(N, 2)`` translations ``(dx, dy)`` in pixels (right, down).
        scales (Tensor | None): ``(N,)`` positive zoom factors (above 1 enlarges). Default None,
            no zoom.

    Returns:
        Tensor: ``(N, C, H, W)``.

    >>> X = torch.zeros(1, 1, 5, 5); X[0, 0, 2, 2] = 1
    >>> affine(X, torch.zeros(1), torch.tensor([[1.0, 0.0]]))[0, 0, 2].tolist()
    [0.0, 0.0, 0.0, 1.0, 0.0]

    Introduced in the chapter "Data augmentation and generalisation".
    """
    _check_images(X)
    n, _, h, w = X.shape
    if _expect_tensor(angles, "angles", f"({n},)").shape != (n,) or _expect_tensor(
        shifts, "shifts", f"({n}, 2)"
    ).shape != (n, 2):
        raise ValueError(
            f"expected angles ({n},) and shifts ({n}, 2), got {tuple(angles.shape)} and "
            f"{tuple(shifts.shape)}"
        )
    if scales is not None and (
        _expect_tensor(scales, "scales", f"({n},)").shape != (n,) or not bool((scales > 0).all())
    ):
        raise ValueError(f"expected positive scales of shape ({n},), got {tuple(scales.shape)}")
    a = torch.deg2rad(angles.to(X))
    cos, sin = torch.cos(a), torch.sin(a)
    # (N, 2, 2), output -> input
    inverse = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1)
    if scales is not None:
        inverse = inverse / scales.to(X).view(n, 1, 1)
    offset = -(inverse @ shifts.to(X).unsqueeze(-1)).squeeze(-1)  # (N, 2) in pixels
    # pixels -> [-1, 1] coordinates
    half = torch.tensor([w / 2, h / 2], dtype=X.dtype, device=X.device)
    # (N, 2, 3)
    theta = torch.cat([inverse * half / half[:, None], (offset / half).unsqueeze(-1)], dim=2)
    grid = F.affine_grid(theta, list(X.shape), align_corners=False)
    return F.grid_sample(X, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_affine(
    X: torch.Tensor,
    degrees: float = 10.0,
    max_shift: float = 2.0,
    scale: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A random rotation in ``[-degrees, degrees]``, shift in ``[-max_shift, max_shift]`` pixels
    and, when ``scale > 0``, zoom by a factor in ``[1 - scale, 1 + scale]``, per image.

    Randomness comes from ``generator`` (a CPU generator; the numbers move to the images'
    device) or, by default, from PyTorch's global generator on the images' device, so
    ``torch.manual_seed`` makes it repeatable.

    Args:
        X (Tensor): images ``(N, C, H, W)``.
        degrees (float): largest rotation. Default 10.
        max_shift (float): largest shift along each axis, in pixels. Default 2.
        scale (float): largest relative zoom, in or out, below 1. Default 0 (no zoom).
        generator (torch.Generator | None): the source of the random parameters. Default None.

    Returns:
        Tensor: ``(N, C, H, W)``.

    >>> random_affine(torch.rand(4, 1, 28, 28)).shape
    torch.Size([4, 1, 28, 28])

    Introduced in the chapter "Data augmentation and generalisation".
    """
    _expect_number(degrees, "degrees", low=0)
    _expect_number(max_shift, "max_shift", low=0)
    _expect_number(scale, "scale", low=0, high=0.99)
    _check_images(X)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"expected generator as a torch.Generator or None, got {generator!r}")
    n = len(X)
    options = {"generator": generator} if generator is not None else {"device": X.device}
    uniform = lambda *shape: (torch.rand(*shape, **options) * 2 - 1).to(X.device)  # in [-1, 1]
    angles, shifts = uniform(n) * degrees, uniform(n, 2) * max_shift
    return affine(X, angles, shifts, 1 + uniform(n) * scale if scale else None)


class TrainAugment(nn.Module):
    """Apply a batch augmentation in training mode only; in eval mode the input passes unchanged.

    Put it in front of a network (``nn.Sequential(TrainAugment(fn), net)``): the book's
    ``fit`` then trains on augmented batches, on whatever device the model is, while
    ``evaluate`` and ``predict`` (eval mode) see the real images.

    Args:
        fn (Callable): maps a batch ``(N, C, H, W)`` to an augmented batch of the same shape.

    Returns:
        nn.Module: ``(N, C, H, W) -> (N, C, H, W)``.

    >>> aug = TrainAugment(lambda X: X + 1).eval()
    >>> aug(torch.zeros(1, 1, 2, 2)).sum().item()
    0.0

    Introduced in the chapter "Data augmentation and generalisation".
    """

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        if not callable(fn):
            raise TypeError(f"expected a callable batch augmentation, got {type(fn).__name__}")
        self.fn = fn

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.fn(X) if self.training else X


class TransformDataset(Dataset):
    """Images and labels with a per-image transform applied on every access (the torchvision idiom).

    Args:
        X (Tensor): images ``(N, C, H, W)``.
        y (Tensor): labels ``(N,)``.
        transform (Callable | None): applied to each ``(C, H, W)`` image, for example a
            ``transforms.v2.Compose``. Default None (no change).

    Returns:
        Dataset: item ``i`` is ``(transform(X[i]), y[i])``.

    >>> len(TransformDataset(torch.zeros(3, 1, 4, 4), torch.zeros(3)))
    3

    Introduced in the chapter "Data augmentation and generalisation".
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor, transform: Callable | None = None):
        _check_images(X)
        if transform is not None and not callable(transform):
            raise TypeError(
                f"expected a callable transform or None, got {type(transform).__name__}"
            )
        if len(_expect_tensor(y, "labels", f"({len(X)},)")) != len(X):
            raise ValueError(
                f"expected one label per image, got {len(y)} labels for {len(X)} images"
            )
        self.X, self.y, self.transform = X, y, transform

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.X[i]
        return (self.transform(x) if self.transform is not None else x), self.y[i]


def _beta(alpha: float) -> float:
    if alpha <= 0:
        raise ValueError(f"expected alpha > 0, got {alpha}")
    return float(torch.distributions.Beta(alpha, alpha).sample())


def mixup(
    X: torch.Tensor, y: torch.Tensor, num_classes: int, alpha: float = 1.0, lam: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup (Zhang et al., 2018): blend each image and its one-hot label with its batch
    neighbour's.

    ``X' = lam X + (1 - lam) X_prev`` and ``Y' = lam Y + (1 - lam) Y_prev``, where ``X_prev`` is
    the batch rolled by one (image ``i`` is paired with ``i - 1``), as torchvision's
    ``v2.MixUp`` does; one ``lam ~ Beta(alpha, alpha)`` per batch (global generator).

    Args:
        X (Tensor): images ``(N, C, H, W)``.
        y (Tensor): integer labels ``(N,)``.
        num_classes (int): number of classes K.
        alpha (float): Beta parameter. Default 1.0 (lam uniform in [0, 1]).
        lam (float | None): use this mixing weight instead of sampling one. Default None.

    Returns:
        tuple: images ``(N, C, H, W)`` and soft labels ``(N, K)``.

    >>> X, Y = mixup(torch.tensor([0.0, 1.0]).view(2, 1, 1, 1), torch.tensor([0, 1]), 2, lam=0.75)
    >>> X.flatten().tolist(), Y.tolist()
    ([0.25, 0.75], [[0.75, 0.25], [0.25, 0.75]])

    Introduced in the chapter "Data augmentation and generalisation".
    """
    _check_labels(X, y, num_classes)
    lam = _beta(alpha) if lam is None else _expect_number(lam, "lam", 0, 1)
    Y = F.one_hot(y, num_classes).to(X.dtype)
    return lam * X + (1 - lam) * X.roll(1, 0), lam * Y + (1 - lam) * Y.roll(1, 0)


def cutmix_box(
    lam: float, height: int, width: int, center: tuple[int, int]
) -> tuple[int, int, int, int]:
    """The patch of CutMix: sides ``sqrt(1 - lam)`` times the image's, centred at
    ``center``, clipped.

    Half-sides are rounded down to whole pixels, as torchvision does.

    Args:
        lam (float): the mixing weight in [0, 1]; the patch covers about ``1 - lam`` of the image.
        height (int): image height H.
        width (int): image width W.
        center (tuple): ``(cx, cy)`` pixel centre of the patch.

    Returns:
        tuple: ``(x0, y0, x1, y1)`` with ``0 <= x0 <= x1 <= W`` and ``0 <= y0 <= y1 <= H``.

    >>> cutmix_box(0.75, 10, 10, (5, 5))
    (3, 3, 7, 7)

    Introduced in the chapter "Data augmentation and generalisation".
    """
    _expect_number(lam, "lam", 0, 1)
    _expect_int(height, "height")
    _expect_int(width, "width")
    if (
        not isinstance(center, Sequence)
        or len(center) != 2
        or not all(isinstance(c, numbers.Integral) for c in center)
    ):
        raise TypeError(f"expected center as a pair of integers (cx, cy), got {center!r}")
    half = 0.5 * math.sqrt(1 - lam)
    hw, hh = int(half * width), int(half * height)
    cx, cy = center
    return max(cx - hw, 0), max(cy - hh, 0), min(cx + hw, width), min(cy + hh, height)


def cutmix(
    X: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    alpha: float = 1.0,
    lam: float | None = None,
    center: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int, int, int]]:
    """CutMix (Yun et al., 2019): paste a patch of each image's batch neighbour; mix labels by area.

    The patch comes from :func:`cutmix_box`; its centre is uniform over the image unless given.
    The label weight is the fraction of the image left untouched, ``1 - patch area / (H W)``.
    Pairing and sampling follow torchvision's ``v2.CutMix`` (image ``i`` takes from ``i - 1``).

    Args:
        X (Tensor): images ``(N, C, H, W)``.
        y (Tensor): integer labels ``(N,)``.
        num_classes (int): number of classes K.
        alpha (float): Beta parameter of ``lam``. Default 1.0.
        lam (float | None): use this weight instead of sampling one. Default None.
        center (tuple | None): ``(cx, cy)`` of the patch instead of a random one. Default None.

    Returns:
        tuple: images ``(N, C, H, W)``, soft labels ``(N, K)`` and the box ``(x0, y0, x1, y1)``.

    >>> X, Y, box = cutmix(
    ...     torch.tensor([0.0, 1.0]).view(2, 1, 1, 1).expand(2, 1, 4, 4),
    ...     torch.tensor([0, 1]),
    ...     2,
    ...     lam=0.75,
    ...     center=(2, 2),
    ... )
    >>> box, Y[0].tolist()
    ((1, 1, 3, 3), [0.75, 0.25])

    Introduced in the chapter "Data augmentation and generalisation".
    """
    _check_labels(X, y, num_classes)
    h, w = X.shape[-2:]
    lam = _beta(alpha) if lam is None else lam
    if center is None:
        center = (int(torch.randint(w, (1,))), int(torch.randint(h, (1,))))
    x0, y0, x1, y1 = cutmix_box(lam, h, w, center)
    out = X.clone()
    out[..., y0:y1, x0:x1] = X.roll(1, 0)[..., y0:y1, x0:x1]
    kept = 1 - (x1 - x0) * (y1 - y0) / (h * w)
    Y = F.one_hot(y, num_classes).to(X.dtype)
    return out, kept * Y + (1 - kept) * Y.roll(1, 0), (x0, y0, x1, y1)


@torch.no_grad()
def tta_predict(
    model: nn.Module,
    X: torch.Tensor,
    views: Sequence[Callable[[torch.Tensor], torch.Tensor]],
    batch_size: int = 500,
) -> torch.Tensor:
    """Test-time augmentation: average the model's class probabilities over several views of
    each image.

    Args:
        model (nn.Module): a classifier (put in eval mode here).
        X (Tensor): images ``(N, C, H, W)`` on any device.
        views (sequence of Callable): deterministic batch transforms; include ``lambda X: X`` to
            keep the original image among the views.
        batch_size (int): images per forward pass. Default 500.

    Returns:
        Tensor: ``(N, K)`` mean probabilities, on the CPU.

    >>> tta_predict(nn.Flatten(), torch.zeros(2, 1, 1, 3), [lambda X: X]).tolist()[0]
    [0.3333333432674408, 0.3333333432674408, 0.3333333432674408]

    Introduced in the chapter "Data augmentation and generalisation".
    """
    _check_images(X)
    if not isinstance(views, Sequence) or not all(callable(v) for v in views):
        raise TypeError(f"expected views as a list of callables, got {type(views).__name__}")
    if not views:
        raise ValueError("expected at least one view, got none")
    p = next(_expect_module(model).parameters(), None)
    device = p.device if p is not None else X.device
    model.eval()
    out = []
    for batch in X.split(batch_size):
        batch = batch.to(device)
        out.append(torch.stack([model(view(batch)).softmax(1) for view in views]).mean(0).cpu())
    return torch.cat(out)


def balanced_subset(y: torch.Tensor, per_class: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``per_class`` random examples of every class: a small, balanced training set.

    Args:
        y (Tensor): labels ``(N,)``.
        per_class (int): examples to take of each class.
        seed (int): which examples. Default 0.

    Returns:
        Tensor: ``(K * per_class,)`` int64 indices into ``y``, grouped by class.

    >>> balanced_subset(torch.tensor([0, 1, 0, 1, 0]), 2).shape
    torch.Size([4])

    Introduced in the chapter "Data augmentation and generalisation".
    """
    if _expect_tensor(y, "labels", "(N,)", ndim=1).is_floating_point():
        raise TypeError(f"expected integer labels, got dtype {y.dtype}")
    _expect_int(per_class, "per_class")
    g = torch.Generator().manual_seed(seed)
    parts = []
    for c in y.unique().tolist():
        members = torch.nonzero(y == c).flatten()
        if len(members) < per_class:
            raise ValueError(
                f"expected at least {per_class} examples of class {c}, got {len(members)}"
            )
        parts.append(members[torch.randperm(len(members), generator=g)[:per_class]])
    return torch.cat(parts)


def seeds_by_settings(
    run: Callable[[str, int], dict[str, float]], settings: Sequence[str], seeds: Sequence[int]
) -> dict[str, dict[str, np.ndarray]]:
    """Run an experiment for every setting and seed and collect its metrics.

    Args:
        run (Callable): ``run(setting, seed)`` returns a dict of metrics (floats).
        settings (sequence of str): the conditions compared, for example ``("none", "augmented")``.
        seeds (sequence of int): the repetitions; every setting gets the same seeds (paired).

    Returns:
        dict: ``results[setting][metric]`` is an array ``(len(seeds),)``.

    >>> r = seeds_by_settings(lambda s, k: {"acc": k + (s == "b")}, ["a", "b"], [0, 1])
    >>> r["b"]["acc"].tolist()
    [1.0, 2.0]

    Introduced in the chapter "Data augmentation and generalisation".
    """
    if not callable(run):
        raise TypeError(f"expected run as a callable run(setting, seed), got {type(run).__name__}")
    if (
        isinstance(settings, str)
        or isinstance(seeds, str)
        or not all(isinstance(k, numbers.Integral) for k in seeds)
    ):
        raise TypeError(
            "expected settings as a list of names and seeds as a list of integers, got "
            f"{settings!r} and {seeds!r}"
        )
    if not settings or not seeds:
        raise ValueError(
            f"expected at least one setting and one seed, got {len(settings)} and {len(seeds)}"
        )
    results: dict[str, dict[str, list[float]]] = {}
    for setting in settings:
        for seed in seeds:
            for metric, value in run(setting, seed).items():
                results.setdefault(setting, {}).setdefault(metric, []).append(float(value))
    return {s: {m: np.array(v) for m, v in metrics.items()} for s, metrics in results.items()}
