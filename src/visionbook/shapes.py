"""A synthetic, deterministic data set of coloured shapes on textured backgrounds.

Single-object images come with class labels, boxes and masks (classification, saliency
localisation, generative models); multi-object scenes with per-object boxes, labels and masks
(detection, segmentation). Everything is rendered in batches with tensor operations, so ten
thousand 32x32 images take about two CPU-seconds. Introduced in the chapter "Images as data".
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from visionbook._validate import _expect_int, _expect_number, _expect_tensor

SHAPES = ("circle", "square", "triangle", "star", "cross")
SUPERSAMPLE = 2
CHUNK = 1024  # images rendered at once
# farthest point of any shape from its centre, in radii (the square's corner: 0.82 * sqrt(2))
EXTENT = 1.16


class ShapesData(NamedTuple):
    """Single-object images: ``images (N, 3, H, W)`` in [0, 1], ``labels (N,)``,
    ``boxes (N, 4)`` as pixel ``(x0, y0, x1, y1)`` (x1, y1 exclusive), ``masks (N, H, W)`` bool."""

    images: torch.Tensor
    labels: torch.Tensor
    boxes: torch.Tensor
    masks: torch.Tensor
    classes: tuple[str, ...]


class ShapeScenes(NamedTuple):
    """Multi-object scenes: ``images (N, 3, H, W)`` and one target dict per image with
    ``boxes (K, 4)`` (x0, y0, x1, y1), ``labels (K,)`` and ``masks (K, H, W)`` of visible pixels."""

    images: torch.Tensor
    targets: list[dict[str, torch.Tensor]]
    classes: tuple[str, ...]


def _inside(kind: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Membership of local coordinates (u, v), scaled so the shape spans about [-1, 1]."""
    if kind == 0:  # circle
        return u**2 + v**2 <= 1.0
    if kind == 1:  # square
        return torch.maximum(u.abs(), v.abs()) <= 0.82
    if kind == 2:  # equilateral triangle: three half-planes
        inside = torch.ones_like(u, dtype=torch.bool)
        for k in range(3):
            a = math.pi / 2 + 2 * math.pi * k / 3
            inside &= u * math.cos(a) - v * math.sin(a) >= -0.5
        return inside
    if kind == 3:  # five-pointed star: radius varies with the angle
        r, theta = torch.sqrt(u**2 + v**2), torch.atan2(u, -v)
        phase = torch.remainder(theta, 2 * math.pi / 5) / (2 * math.pi / 5)
        return r <= 0.45 + 0.6 * (2 * (phase - 0.5).abs())
    if kind == 4:  # cross
        return ((u.abs() <= 0.3) & (v.abs() <= 0.95)) | ((v.abs() <= 0.3) & (u.abs() <= 0.95))
    raise ValueError(f"expected a shape index in 0..{len(SHAPES) - 1}, got {kind}")


def _check_geometry(
    kinds: torch.Tensor, centers: torch.Tensor, radii: torch.Tensor, angles: torch.Tensor
) -> None:
    n = len(_expect_tensor(kinds, "kinds", "(N,)", ndim=1))
    for name, t, shape in (
        ("centers", centers, (n, 2)),
        ("radii", radii, (n,)),
        ("angles", angles, (n,)),
    ):
        if _expect_tensor(t, name, str(shape)).shape != shape:
            raise ValueError(
                f"expected {name} of shape {shape} for {n} kinds, got {tuple(t.shape)}"
            )


def render_masks(
    kinds: torch.Tensor, centers: torch.Tensor, radii: torch.Tensor, angles: torch.Tensor, size: int
) -> torch.Tensor:
    """Soft masks of shapes, one per row, anti-aliased by supersampling.

    Args:
        kinds (Tensor): ``(N,)`` shape indices into ``SHAPES``.
        centers (Tensor): ``(N, 2)`` centres ``(x, y)`` in pixels.
        radii (Tensor): ``(N,)`` half-sizes in pixels.
        angles (Tensor): ``(N,)`` rotations in radians.
        size (int): image height and width.

    Returns:
        Tensor: ``(N, size, size)`` coverage in [0, 1].

    >>> render_masks(
    ...     torch.tensor([0]), torch.tensor([[8.0, 8.0]]), torch.tensor([4.0]), torch.zeros(1), 16
    ... ).shape
    torch.Size([1, 16, 16])

    Introduced in the chapter "Images as data".
    """
    _check_geometry(kinds, centers, radii, angles)
    n, s = len(kinds), _expect_int(size, "size") * SUPERSAMPLE
    grid = (torch.arange(s, dtype=torch.float32) + 0.5) / SUPERSAMPLE
    y, x = torch.meshgrid(grid, grid, indexing="ij")
    out = torch.empty(n, size, size)
    for start in range(0, n, CHUNK):  # in chunks, so that memory stays small for any n
        rows = slice(start, start + CHUNK)
        out[rows] = _render_chunk(kinds[rows], centers[rows], radii[rows], angles[rows], x, y)
    return out


def _render_chunk(
    kinds: torch.Tensor, centers: torch.Tensor, radii: torch.Tensor, angles: torch.Tensor, x, y
) -> torch.Tensor:
    dx = (x - centers[:, 0, None, None]) / radii[:, None, None]
    dy = (y - centers[:, 1, None, None]) / radii[:, None, None]
    cos, sin = torch.cos(angles)[:, None, None], torch.sin(angles)[:, None, None]
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    hi = torch.zeros_like(u)
    for k in kinds.unique().tolist():
        rows = kinds == k
        hi[rows] = _inside(k, u[rows], v[rows]).float()
    return F.avg_pool2d(hi.unsqueeze(1), SUPERSAMPLE).squeeze(1)


def textured_background(
    n: int, size: int, generator: torch.Generator, noise: float = 0.06
) -> torch.Tensor:
    """Smooth random colour fields plus pixel noise: ``(n, 3, size, size)`` in [0, 1].

    Args:
        n (int): number of backgrounds.
        size (int): height and width in pixels.
        generator (torch.Generator): the source of randomness (the result is a function of
            its state).
        noise (float): standard deviation of the pixel noise. Default 0.06.

    Returns:
        Tensor: ``(n, 3, size, size)`` in [0, 1].

    >>> textured_background(2, 16, torch.Generator().manual_seed(0)).shape
    torch.Size([2, 3, 16, 16])

    Introduced in the chapter "Images as data".
    """
    _expect_int(n, "n")
    _expect_int(size, "size")
    _expect_number(noise, "noise", low=0)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"expected a torch.Generator, got {type(generator).__name__}")
    base = torch.rand(n, 3, 1, 1, generator=generator) * 0.5
    blobs = F.interpolate(
        torch.rand(n, 3, 4, 4, generator=generator),
        size=(size, size),
        mode="bicubic",
        align_corners=False,
    )
    grain = torch.randn(n, 3, size, size, generator=generator) * noise
    return (base + 0.25 * blobs + grain).clamp(0, 1)


def _colours(n: int, generator: torch.Generator) -> torch.Tensor:
    """Saturated, bright object colours that stand out from the darker backgrounds."""
    colour = torch.rand(n, 3, generator=generator) * 0.6
    colour[torch.arange(n), torch.randint(0, 3, (n,), generator=generator)] = 1.0
    return 0.4 + 0.6 * colour


def _boxes_from_masks(masks: torch.Tensor) -> torch.Tensor:
    rows, cols = masks.any(dim=2), masks.any(dim=1)
    idx = torch.arange(masks.shape[-1])
    x0 = torch.where(cols, idx, masks.shape[-1]).min(1).values
    x1 = torch.where(cols, idx, -1).max(1).values + 1
    y0 = torch.where(rows, idx, masks.shape[-1]).min(1).values
    y1 = torch.where(rows, idx, -1).max(1).values + 1
    return torch.stack([x0, y0, x1, y1], 1).float()


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check(n: int, size: int, classes: tuple[str, ...], seed: int) -> list[int]:
    _expect_int(seed, "seed", minimum=0)
    if not _is_int(n) or n < 1:
        raise ValueError(f"expected a positive number of images, got {n!r}")
    if not _is_int(size) or size < 16:
        raise ValueError(f"expected an image size of at least 16 pixels, got {size!r}")
    unknown = [c for c in classes if c not in SHAPES]
    if unknown or not classes or len(set(classes)) != len(classes):
        raise ValueError(f"expected distinct classes from {SHAPES}, got {tuple(classes)}")
    return [SHAPES.index(c) for c in classes]


def make_shapes(
    n: int, size: int = 32, classes: tuple[str, ...] = SHAPES, seed: int = 0, noise: float = 0.06
) -> ShapesData:
    """Images of one shape each, random in colour, size, position and rotation.

    Classes are balanced (cycled, then shuffled). The object is drawn over a textured
    background; its box is the tight box of its mask.

    Args:
        n (int): number of images.
        size (int): height and width in pixels, at least 16. Default 32.
        classes (tuple[str, ...]): which of ``SHAPES`` to draw; labels index this tuple.
        seed (int): the data set is a pure function of its arguments. Default 0.
        noise (float): standard deviation of the pixel noise. Default 0.06.

    Returns:
        ShapesData: ``images (n, 3, size, size)``, ``labels (n,)``, ``boxes (n, 4)``,
            ``masks (n, size, size)``.

    >>> make_shapes(10, seed=1).images.shape
    torch.Size([10, 3, 32, 32])

    Introduced in the chapter "Images as data".
    """
    kinds_of = torch.tensor(_check(n, size, tuple(classes), seed))
    g = torch.Generator().manual_seed(seed)
    labels = (torch.arange(n) % len(classes))[torch.randperm(n, generator=g)]
    radii = size * (0.18 + 0.17 * torch.rand(n, generator=g))
    margin = radii + 1.0
    centers = margin[:, None] + torch.rand(n, 2, generator=g) * (size - 2 * margin[:, None])
    angles = torch.rand(n, generator=g) * 2 * math.pi
    cover = render_masks(kinds_of[labels], centers, radii, angles, size)
    background = textured_background(n, size, g, noise)
    colour = _colours(n, g)[:, :, None, None]
    images = background * (1 - cover[:, None]) + colour * cover[:, None]
    masks = cover >= 0.5
    return ShapesData(images.clamp(0, 1), labels, _boxes_from_masks(masks), masks, tuple(classes))


def _place(
    count: int, size: int, g: torch.Generator, tries: int = 50
) -> list[tuple[float, float, float]]:
    """Centres and radii (x, y, r) of up to ``count`` objects of one scene.

    Each object lies inside the circle of radius ``EXTENT * r`` around its centre; these circles
    stay inside the image and at least one pixel apart, so objects never touch or get clipped.
    """
    placed: list[tuple[float, float, float]] = []
    for _ in range(count * tries):
        r = size * (0.08 + 0.1 * torch.rand(1, generator=g).item())
        reach = EXTENT * r + 1
        x, y = (reach + torch.rand(2, generator=g) * (size - 2 * reach)).tolist()
        if all(
            (x - px) ** 2 + (y - py) ** 2 > (EXTENT * (r + pr) + 1) ** 2 for px, py, pr in placed
        ):
            placed.append((x, y, r))
        if len(placed) == count:
            break
    return placed


def make_scenes(
    n: int,
    size: int = 64,
    min_objects: int = 1,
    max_objects: int = 4,
    classes: tuple[str, ...] = SHAPES,
    seed: int = 0,
) -> ShapeScenes:
    """Scenes of several non-overlapping shapes with boxes, labels and instance masks.

    Args:
        n (int): number of scenes.
        size (int): height and width, at least 16. Default 64.
        min_objects (int): fewest objects per scene, at least 1. Default 1.
        max_objects (int): most objects per scene. Default 4.
        classes (tuple[str, ...]): which of ``SHAPES`` to draw.
        seed (int): the scenes are a pure function of the arguments. Default 0.

    Returns:
        ShapeScenes: ``images (n, 3, size, size)`` and a list of ``n`` target dicts.

    >>> len(make_scenes(4, seed=1).targets)
    4

    Introduced in the chapter "Images as data".
    """
    kinds_of = torch.tensor(_check(n, size, tuple(classes), seed))
    if (
        not all(_is_int(k) for k in (min_objects, max_objects))
        or not 1 <= min_objects <= max_objects
    ):
        raise ValueError(
            f"expected integers 1 <= min_objects <= max_objects, got {min_objects!r} and "
            f"{max_objects!r}"
        )
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(min_objects, max_objects + 1, (n,), generator=g).tolist()
    layouts = [_place(c, size, g) for c in counts]
    if min(len(layout) for layout in layouts) < min_objects:
        raise ValueError(
            f"could not fit {min_objects} non-overlapping objects into a {size}x{size} scene; use "
            "a larger size or fewer objects"
        )
    flat = torch.tensor([obj for layout in layouts for obj in layout])
    m = len(flat)
    labels = torch.randint(0, len(classes), (m,), generator=g)
    cover = render_masks(
        kinds_of[labels], flat[:, :2], flat[:, 2], torch.rand(m, generator=g) * 2 * math.pi, size
    )
    colour = _colours(m, g)
    images = textured_background(n, size, g)
    boxes = _boxes_from_masks(cover >= 0.5)
    targets, start = [], 0
    for i, layout in enumerate(layouts):
        rows = slice(start, start + len(layout))
        for c, col in zip(cover[rows], colour[rows]):
            images[i] = images[i] * (1 - c) + col[:, None, None] * c
        targets.append({"boxes": boxes[rows], "labels": labels[rows], "masks": cover[rows] >= 0.5})
        start += len(layout)
    return ShapeScenes(images.clamp(0, 1), targets, tuple(classes))
