"""Segmentation: a small U-Net, and the Dice and IoU scores of binary masks.

The U-Net follows Ronneberger et al. (2015) in shape (a contracting path, an expanding path,
skip connections that concatenate) but departs from the paper where the book's small images
call for it: convolutions are padded ("same"), so the output mask has the input's size and no
cropping is needed; each level has batch normalisation; there are 2-3 levels instead of 5.
Introduced in the chapter "Applications and responsible use".
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from visionbook._validate import _expect_int, _expect_number, _expect_tensor


def double_conv(c_in: int, c_out: int) -> nn.Sequential:
    """Two 3x3 convolutions (same padding), each followed by BatchNorm and ReLU: keeps H and W.

    >>> double_conv(3, 8)(torch.zeros(2, 3, 16, 16)).shape
    torch.Size([2, 8, 16, 16])

    Introduced in the chapter "Applications and responsible use".
    """
    _expect_int(c_in, "c_in")
    _expect_int(c_out, "c_out")
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
    )  # fmt: skip


class UNet(nn.Module):
    """A small U-Net: ``(B, in_channels, H, W) -> (B, out_channels, H, W)`` logits.

    With ``widths=(16, 32, 64)`` and a 48x48 input the shapes are::

        down[0]  (B, 16, 48, 48)  --------------------------- skip ---------+
        pool     (B, 16, 24, 24)                                           |
        down[1]  (B, 32, 24, 24)  --------------- skip ----------+          |
        pool     (B, 32, 12, 12)                                 |          |
        bottom   (B, 64, 12, 12)                                 |          |
        up[0]    (B, 32, 24, 24)  concat -> (B, 64, 24, 24) -> (B, 32, 24, 24)
        up[1]    (B, 16, 48, 48)  concat -> (B, 32, 48, 48) -> (B, 16, 48, 48)
        head     (B, out_channels, 48, 48)

    H and W must be divisible by ``2 ** (len(widths) - 1)``.

    Args:
        in_channels (int): image channels. Default 3.
        out_channels (int): one logit map per class (1 for foreground/background). Default 1.
        widths (sequence of int): channels per level, from the top (full resolution) down.
            Default (16, 32, 64).

    >>> UNet(widths=(8, 16))(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 1, 32, 32])

    Introduced in the chapter "Applications and responsible use".
    """

    def __init__(
        self, in_channels: int = 3, out_channels: int = 1, widths: Sequence[int] = (16, 32, 64)
    ) -> None:
        super().__init__()
        if isinstance(widths, int) or not isinstance(widths, Sequence) or len(widths) < 2:
            raise ValueError(f"expected at least two widths such as (16, 32, 64), got {widths!r}")
        sizes = [in_channels, out_channels, *widths]
        if not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in sizes):
            raise ValueError(
                f"expected positive integer channel counts, got in={in_channels!r}, "
                f"out={out_channels!r}, widths={widths!r}"
            )
        self.levels = len(widths)
        self.down = nn.ModuleList(
            [double_conv(a, b) for a, b in zip([in_channels, *widths[:-2]], widths[:-1])]
        )
        self.pool = nn.MaxPool2d(2)
        self.bottom = double_conv(widths[-2], widths[-1])
        self.upsample = nn.ModuleList(
            [nn.ConvTranspose2d(b, a, 2, stride=2) for a, b in zip(widths[-2::-1], widths[:0:-1])]
        )
        self.up = nn.ModuleList([double_conv(2 * a, a) for a in widths[-2::-1]])
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factor, c = 2 ** (self.levels - 1), self.down[0][0].in_channels
        _expect_tensor(x, "images", f"(B, {c}, H, W)")
        if x.ndim != 4 or x.shape[1] != c or x.shape[-2] % factor or x.shape[-1] % factor:
            raise ValueError(
                f"expected images (B, {c}, H, W) with H and W divisible by {factor}, got "
                f"{tuple(x.shape)}"
            )
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)  # kept for the expanding path
            x = self.pool(x)
        x = self.bottom(x)
        for upsample, block, skip in zip(self.upsample, self.up, reversed(skips)):
            # double the size, then fuse with the skip
            x = block(torch.cat([upsample(x), skip], dim=1))
        return self.head(x)


def _check_masks(pred: torch.Tensor, target: torch.Tensor) -> None:
    for name, m in (("pred", pred), ("target", target)):
        if not isinstance(m, torch.Tensor) or m.dtype != torch.bool:
            got = m.dtype if isinstance(m, torch.Tensor) else type(m).__name__
            raise TypeError(
                f"expected {name} as a bool mask tensor (threshold probabilities first), got {got}"
            )
    if pred.shape != target.shape or pred.ndim < 2:
        raise ValueError(
            "expected pred and target masks of the same shape (..., H, W), got "
            f"{tuple(pred.shape)} and {tuple(target.shape)}"
        )


def dice(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Dice score ``2 |P ∩ T| / (|P| + |T|)`` of each mask: 1 for a perfect mask, 0 for no overlap.

    Two empty masks agree perfectly (score 1).

    Args:
        pred (Tensor): bool masks ``(..., H, W)``.
        target (Tensor): bool masks of the same shape.

    Returns:
        Tensor: ``(...)`` float scores, one per mask (a 0-d tensor for a single ``(H, W)`` mask).

    >>> # 2 * 1 / (2 + 1)
    >>> round(
    ...     dice(torch.tensor([[True, True, False]]), torch.tensor([[True, False, False]])).item(),
    ...     4,
    ... )
    0.6667

    Introduced in the chapter "Applications and responsible use".
    """
    _check_masks(pred, target)
    inter = (pred & target).sum(dim=(-2, -1)).float()
    total = pred.sum(dim=(-2, -1)).float() + target.sum(dim=(-2, -1)).float()
    return torch.where(total > 0, 2 * inter / total.clamp(min=1), torch.ones_like(total))


def iou(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Intersection over union (Jaccard index) ``|P ∩ T| / |P ∪ T|`` of each mask; 1 for two
    empty masks.

    Args:
        pred (Tensor): bool masks ``(..., H, W)``.
        target (Tensor): bool masks of the same shape.

    Returns:
        Tensor: ``(...)`` float scores.

    >>> iou(torch.tensor([[True, True, False]]), torch.tensor([[True, False, False]])).item()
    0.5

    Introduced in the chapter "Applications and responsible use".
    """
    _check_masks(pred, target)
    inter = (pred & target).sum(dim=(-2, -1)).float()
    union = (pred | target).sum(dim=(-2, -1)).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """``1 - `` a differentiable Dice score of sigmoid probabilities, averaged over the batch.

    Args:
        logits (Tensor): ``(B, 1, H, W)`` or ``(B, H, W)`` raw scores.
        target (Tensor): same shape, 0/1 (bool or float).
        eps (float): smoothing added to numerator and denominator. Default 1.

    Returns:
        Tensor: a scalar in ``[0, 1)``.

    >>> round(soft_dice_loss(torch.full((1, 4, 4), 20.0), torch.ones(1, 4, 4)).item(), 4)
    0.0

    Introduced in the chapter "Applications and responsible use".
    """
    if (
        _expect_tensor(logits, "logits", "(B, 1, H, W) or (B, H, W)", ndim=(3, 4)).shape
        != _expect_tensor(target, "target").shape
    ):
        raise ValueError(
            f"expected logits and target of the same shape, got {tuple(logits.shape)} and "
            f"{tuple(target.shape)}"
        )
    _expect_number(eps, "eps", low=0)
    p, t = torch.sigmoid(logits).flatten(1), target.float().flatten(1)
    return (1 - (2 * (p * t).sum(1) + eps) / (p.sum(1) + t.sum(1) + eps)).mean()
