"""Faces: a small face/non-face CNN that is also a fully convolutional detector.

The classifier sees 25x25 grey windows (the size of scikit-image's ``lfw_subset``). It has no
padding and no fully connected layer: its last two layers are convolutions, so the same weights
slide over a whole photograph and give one score every ``STRIDE`` pixels, exactly the scores of
the 25x25 windows at those positions. An image pyramid handles faces of other sizes and
:func:`visionbook.boxes.nms` removes duplicate boxes. Introduced in the chapter "Applications
and responsible use".
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import nn

from visionbook._validate import _expect_module, _expect_number, _expect_tensor
from visionbook.boxes import nms

WINDOW = 25  # side of the windows the classifier was trained on, in pixels
STRIDE = 4  # two 2x2 poolings: the score map moves 4 input pixels per step
_LUMA = (0.2989, 0.587, 0.114)


def face_net(width: int = 8) -> nn.Sequential:
    """The face/non-face classifier: ``(B, 1, 25, 25) -> (B, 2)`` logits (class 1 = face).

    Every layer is a convolution or a pooling without padding, then a final ``Flatten``;
    ``model[:-1]`` is fully convolutional and maps a ``(B, 1, H, W)`` image to ``(B, 2, H', W')``
    with ``H' = (H - 25) // 4 + 1`` (see :func:`score_map`).

    Args:
        width (int): channels of the first convolution; later layers use 2x and 4x. Default 8.

    Returns:
        nn.Sequential: ``model[-3]`` is the ReLU whose ``4 * width`` outputs serve as an embedding.

    >>> face_net()(torch.zeros(2, 1, 25, 25)).shape
    torch.Size([2, 2])

    Introduced in the chapter "Applications and responsible use".
    """
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"expected a positive integer width, got {width!r}")
    c1, c2, c3 = width, 2 * width, 4 * width
    return nn.Sequential(
        nn.Conv2d(1, c1, 4), nn.ReLU(), nn.MaxPool2d(2),  # (B, c1, 22, 22) -> (B, c1, 11, 11)
        nn.Conv2d(c1, c2, 4), nn.ReLU(), nn.MaxPool2d(2),  # (B, c2, 8, 8) -> (B, c2, 4, 4)
        # (B, c3, 1, 1): a "fully connected" layer as a 4x4 convolution
        nn.Conv2d(c2, c3, 4), nn.ReLU(),
        nn.Conv2d(c3, 2, 1),  # (B, 2, 1, 1): the two logits
        nn.Flatten(),  # (B, 2)
    )  # fmt: skip


def to_grey(image: torch.Tensor) -> torch.Tensor:
    """An image ``(3, H, W)`` or ``(1, H, W)`` as one grey channel ``(1, H, W)`` (ITU-R
    BT.601 luma).

    >>> to_grey(torch.ones(3, 2, 2)).shape
    torch.Size([1, 2, 2])

    Introduced in the chapter "Applications and responsible use".
    """
    if not isinstance(image, torch.Tensor) or image.ndim != 3 or image.shape[0] not in (1, 3):
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"expected an image of shape (3, H, W) or (1, H, W), got {shape}")
    if image.shape[0] == 1:
        return image
    luma = torch.tensor(_LUMA, dtype=image.dtype, device=image.device)
    return (luma[:, None, None] * image).sum(0, keepdim=True)


@torch.no_grad()
def score_map(model: nn.Sequential, image: torch.Tensor) -> torch.Tensor:
    """Face probabilities of all 25x25 windows of ``image`` at a stride of 4, in one pass.

    Args:
        model (nn.Sequential): a :func:`face_net` (its final ``Flatten`` is skipped).
        image (Tensor): ``(1, H, W)`` grey, ``H, W >= 25``, on the model's device.

    Returns:
        Tensor: ``(H', W')`` with ``H' = (H - 25) // 4 + 1``; entry ``(i, j)`` is the probability
        that the window with top-left corner ``(x, y) = (4 j, 4 i)`` is a face.

    >>> score_map(face_net(), torch.zeros(1, 41, 29)).shape
    torch.Size([5, 2])

    Introduced in the chapter "Applications and responsible use".
    """
    if (
        not isinstance(image, torch.Tensor)
        or image.ndim != 3
        or image.shape[0] != 1
        or min(image.shape[1:]) < WINDOW
    ):
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(
            f"expected a grey image of shape (1, H, W) with H, W >= {WINDOW}, got {shape}"
        )
    _expect_module(model).eval()
    logits = model[:-1](image[None])  # (1, 2, H', W')
    return logits.softmax(1)[0, 1]


def _check_scale(scale: float) -> None:
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not scale > 0:
        raise ValueError(f"expected a positive scale, got {scale!r}")


def _check_grey(grey: torch.Tensor, size: int) -> None:
    if (
        _expect_tensor(grey, "a grey image", "(1, H, W)", ndim=3).shape[0] != 1
        or min(grey.shape[1:]) < size
    ):
        raise ValueError(
            f"expected a grey image of shape (1, H, W) with H, W >= {size}, got {tuple(grey.shape)}"
        )


def map_to_boxes(
    probs: torch.Tensor, scale: float, threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes ``(N, 4)`` (``xyxy``, in the pixels of the unscaled image) and scores ``(N,)`` of the
    windows of a score map whose probability exceeds ``threshold``.

    Args:
        probs (Tensor): ``(H', W')`` from :func:`score_map` on an image resized by ``scale``.
        scale (float): the resize factor of that image (0.5 = half size).
        threshold (float): keep windows with probability strictly above it.

    Returns:
        tuple: boxes ``(N, 4)`` and scores ``(N,)``.

    >>> map_to_boxes(torch.tensor([[0.2, 0.9]]), 0.5, 0.5)[0].tolist()
    [[8.0, 0.0, 58.0, 50.0]]

    Introduced in the chapter "Applications and responsible use".
    """
    _check_scale(scale)
    _expect_tensor(probs, "a score map", "(H', W')", ndim=2)
    rows, cols = torch.nonzero(probs > _expect_number(threshold, "threshold"), as_tuple=True)
    x0, y0 = cols.float() * STRIDE / scale, rows.float() * STRIDE / scale
    side = WINDOW / scale
    boxes = torch.stack([x0, y0, x0 + side, y0 + side], 1)
    return boxes, probs[rows, cols]


def rescale(grey: torch.Tensor, scale: float) -> torch.Tensor:
    """Resize a ``(1, H, W)`` image by ``scale`` (bilinear, antialiased): one level of a pyramid.

    >>> rescale(torch.zeros(1, 100, 80), 0.5).shape
    torch.Size([1, 50, 40])

    Introduced in the chapter "Applications and responsible use".
    """
    _check_scale(scale)
    _check_grey(grey, 1)
    return F.interpolate(
        grey[None], scale_factor=scale, mode="bilinear", antialias=True, align_corners=False
    )[0]


def windows(grey: torch.Tensor) -> torch.Tensor:
    """All 25x25 windows of a ``(1, H, W)`` image at a stride of 4, in the order of
    :func:`score_map`.

    Returns:
        Tensor: ``(H' * W', 1, 25, 25)``, a view of ``grey`` where it can be (no copy).

    >>> windows(torch.zeros(1, 33, 29)).shape
    torch.Size([6, 1, 25, 25])

    Introduced in the chapter "Applications and responsible use".
    """
    _check_grey(grey, WINDOW)
    patches = grey.unfold(1, WINDOW, STRIDE).unfold(2, WINDOW, STRIDE)  # (1, H', W', 25, 25)
    return patches.reshape(-1, 1, WINDOW, WINDOW)


def _levels(image: torch.Tensor, scales: list[float], device: torch.device):
    """Yield ``(scale, resized grey image)`` for the scales at which a 25x25 window fits."""
    if not isinstance(scales, list | tuple):
        raise TypeError(f"expected a non-empty list of positive scales, got {scales!r}")
    if not scales:
        raise ValueError("expected a non-empty list of positive scales, got []")
    for s in scales:
        _check_scale(s)
    grey = to_grey(image).to(device)
    for s in scales:
        if min(round(grey.shape[1] * s), round(grey.shape[2] * s)) >= WINDOW:
            yield s, rescale(grey, s)


def hard_negatives(
    model: nn.Sequential, image: torch.Tensor, scales: list[float], threshold: float = 0.5
) -> torch.Tensor:
    """The windows of a photograph *without faces* that the model still calls faces.

    Args:
        model (nn.Sequential): a :func:`face_net`.
        image (Tensor): ``(3, H, W)`` or ``(1, H, W)``, known to contain no face.
        scales (list of float): the pyramid, as in :func:`detect_faces`.
        threshold (float): face probability above which a window is a false positive. Default 0.5.

    Returns:
        Tensor: ``(N, 1, 25, 25)`` windows on the CPU, to be added to the training set as non-faces.

    >>> hard_negatives(face_net(), torch.rand(1, 40, 40), [1.0]).shape[1:]
    torch.Size([1, 25, 25])

    Introduced in the chapter "Applications and responsible use".
    """
    device = next(_expect_module(model).parameters()).device
    _expect_number(threshold, "threshold")
    found = [torch.empty(0, 1, WINDOW, WINDOW)]
    for _, level in _levels(image, scales, device):
        probs = score_map(model, level).flatten()
        found.append(windows(level)[probs > threshold].cpu())
    return torch.cat(found)


def detect_faces(
    model: nn.Sequential,
    image: torch.Tensor,
    scales: list[float],
    threshold: float = 0.5,
    iou_threshold: float = 0.3,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Detect faces in a photograph: score maps over an image pyramid, threshold, then NMS.

    Args:
        model (nn.Sequential): a trained :func:`face_net`.
        image (Tensor): ``(3, H, W)`` or ``(1, H, W)`` in ``[0, 1]``.
        scales (list of float): resize factors of the pyramid; a face of about ``25 / s`` pixels
            is seen at scale ``s``. Scales that make the image smaller than 25 pixels are skipped.
        threshold (float): face probability a window must exceed. Default 0.5.
        iou_threshold (float): NMS suppresses boxes overlapping a better one by more. Default 0.3.

    Returns:
        tuple: boxes ``(N, 4)`` (``xyxy`` in the pixels of ``image``) and scores ``(N,)``, on the
        CPU, by decreasing score.

    >>> boxes, scores = detect_faces(face_net(), torch.rand(3, 60, 60), [1.0, 0.5])
    >>> boxes.shape[1]
    4

    Introduced in the chapter "Applications and responsible use".
    """
    _expect_number(threshold, "threshold")
    _expect_number(iou_threshold, "iou_threshold", 0, 1)
    boxes, scores = [torch.empty(0, 4)], [torch.empty(0)]
    for s, level in _levels(image, scales, next(_expect_module(model).parameters()).device):
        b, p = map_to_boxes(score_map(model, level).cpu(), s, threshold)
        boxes.append(b)
        scores.append(p)
    boxes, scores = torch.cat(boxes), torch.cat(scores)
    keep = nms(boxes, scores, iou_threshold)
    return boxes[keep], scores[keep]


@torch.no_grad()
def embed(model: nn.Sequential, windows: torch.Tensor) -> torch.Tensor:
    """The penultimate activations of a :func:`face_net`, L2-normalised: ``(B, 4 * width)``.

    A classifier trained to tell faces from non-faces was never asked to tell people apart;
    its embedding is a teaching device, not a face recognition system.

    Args:
        model (nn.Sequential): a :func:`face_net`.
        windows (Tensor): ``(B, 1, 25, 25)`` on the model's device.

    Returns:
        Tensor: ``(B, D)`` unit vectors.

    >>> embed(face_net(width=4), torch.rand(3, 1, 25, 25)).shape
    torch.Size([3, 16])

    Introduced in the chapter "Applications and responsible use".
    """
    if (
        not isinstance(windows, torch.Tensor)
        or windows.ndim != 4
        or tuple(windows.shape[1:]) != (1, WINDOW, WINDOW)
    ):
        shape = (
            tuple(windows.shape) if isinstance(windows, torch.Tensor) else type(windows).__name__
        )
        raise ValueError(f"expected windows of shape (B, 1, {WINDOW}, {WINDOW}), got {shape}")
    model.eval()
    return F.normalize(model[:-2](windows).flatten(1), dim=1)
