"""A small anchor-free detector in the spirit of CenterNet ("Objects as points"), and torchvision's
Faster R-CNN.

Every object is a point: the centre of its box, marked by a peak in a heatmap with one channel per
class, at ``stride`` times lower resolution than the image. At the peak the network also reads
the box size and the sub-cell offset of the centre. :func:`encode` turns boxes into those
training targets, :func:`decode` turns (predicted) maps back into boxes; on exact targets the
round trip is exact. Introduced in the chapter "Object detection".

Departures from the paper: the Gaussian around each centre has a standard deviation set
directly from the box size (:func:`gaussian_sigma`) rather than from CenterNet's IoU-based
radius, sizes are regressed in units of cells rather than pixels, and the backbone is a few
plain convolutions instead of an hourglass or DLA network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from visionbook import data
from visionbook._validate import (
    _check_boxes,
    _expect_int,
    _expect_module,
    _expect_number,
    _expect_tensor,
    _positive_int,
)


def _check_geometry(num_classes: int, image_size: int, stride: int) -> None:
    if not all(_positive_int(v) for v in (num_classes, image_size, stride)) or image_size % stride:
        raise ValueError(
            "expected positive integers num_classes, image_size and stride with stride dividing "
            f"image_size, got num_classes={num_classes!r}, image_size={image_size!r}, "
            f"stride={stride!r}"
        )


def gaussian_sigma(wh: torch.Tensor, stride: int) -> torch.Tensor:
    """Standard deviation, in cells, of the heatmap peak of boxes of sizes ``wh``.

    ``sigma = max(0.5, sqrt(w h) / (6 stride))``: a sixth of the box's geometric mean side, so
    that the peak fades out near the box edges, and never narrower than half a cell. (CenterNet
    derives a radius from the IoU that a box shifted by it would keep; this rule is simpler and
    behaves alike for the book's small objects.)

    Args:
        wh (Tensor): ``(K, 2)`` box widths and heights in pixels.
        stride (int): pixels per heatmap cell.

    Returns:
        Tensor: ``(K,)`` standard deviations in cells.

    >>> gaussian_sigma(torch.tensor([[24.0, 24.0], [4.0, 4.0]]), 4).tolist()
    [1.0, 0.5]

    Introduced in the chapter "Object detection".
    """
    if _expect_tensor(wh, "box sizes wh", "(K, 2)", ndim=2).shape[1] != 2:
        raise ValueError(f"expected box sizes wh of shape (K, 2), got {tuple(wh.shape)}")
    return ((wh[:, 0] * wh[:, 1]).sqrt() / (6 * _expect_int(stride, "stride"))).clamp(min=0.5)


def encode(
    boxes: torch.Tensor, labels: torch.Tensor, num_classes: int, image_size: int, stride: int = 4
) -> dict:
    """Training targets of one image: class heatmaps with a Gaussian peak of 1 at each centre cell,
    and at the centre cells the box size and the centre's offset within its cell.

    A box ``(x0, y0, x1, y1)`` has its centre at ``c = ((x0 + x1) / 2, (y0 + y1) / 2)`` pixels; on
    the heatmap grid that is ``c / stride``, which falls into cell ``floor(c / stride)`` with offset
    ``c / stride - floor(c / stride)`` in [0, 1). The size is ``(w, h) / stride``. Peaks of nearby
    objects of one class are merged with an elementwise maximum, as in CenterNet.

    Args:
        boxes (Tensor): ``(K, 4)`` ``xyxy`` pixel boxes inside the image.
        labels (Tensor): ``(K,)`` class indices in ``0 .. num_classes - 1``.
        num_classes (int): heatmap channels.
        image_size (int): height and width of the (square) image in pixels.
        stride (int): pixels per cell; must divide ``image_size``. Default 4.

    Returns:
        dict: ``heatmap (num_classes, S, S)`` in [0, 1], ``size (2, S, S)``, ``offset (2, S, S)``
        and ``mask (S, S)`` bool (True at centre cells), with ``S = image_size // stride``.

    >>> t = encode(torch.tensor([[8.0, 8.0, 18.0, 14.0]]), torch.tensor([1]), 2, 32, 4)
    >>> (
    ...     t["heatmap"].shape,
    ...     t["mask"].nonzero().tolist(),
    ...     t["offset"][:, 2, 3].tolist(),
    ...     t["size"][:, 2, 3].tolist(),
    ... )
    (torch.Size([2, 8, 8]), [[2, 3]], [0.25, 0.75], [2.5, 1.5])

    Introduced in the chapter "Object detection".
    """
    _check_geometry(num_classes, image_size, stride)
    _check_boxes(boxes)
    if _expect_tensor(labels, "labels", f"({len(boxes)},)").shape != (len(boxes),) or (
        len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < num_classes
    ):
        raise ValueError(
            f"expected {len(boxes)} labels in 0..{num_classes - 1}, got {labels.tolist()}"
        )
    s = image_size // stride
    heatmap, size, offset = (
        torch.zeros(num_classes, s, s),
        torch.zeros(2, s, s),
        torch.zeros(2, s, s),
    )
    mask = torch.zeros(s, s, dtype=torch.bool)
    boxes = boxes.float().cpu()
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2 / stride  # (K, 2) in cells
    cell = centre.floor().long().clamp(0, s - 1)
    wh = boxes[:, 2:] - boxes[:, :2]
    grid = torch.arange(s, dtype=torch.float32)
    for (cx, cy), (i, j), sigma, c, box_wh in zip(
        centre, cell, gaussian_sigma(wh, stride), labels.tolist(), wh
    ):
        # (S, S), 1 at (j, i)
        peak = torch.exp(-((grid[None, :] - i) ** 2 + (grid[:, None] - j) ** 2) / (2 * sigma**2))
        heatmap[c] = torch.maximum(heatmap[c], peak)
        size[:, j, i], offset[:, j, i] = box_wh / stride, torch.stack([cx - i, cy - j])
        mask[j, i] = True
    return {"heatmap": heatmap, "size": size, "offset": offset, "mask": mask}


def _describe(targets: object) -> str:
    if isinstance(targets, list | tuple):
        return f"a list of {', '.join(sorted({type(t).__name__ for t in targets})) or 'nothing'}"
    return type(targets).__name__


def encode_batch(targets: list[dict], num_classes: int, image_size: int, stride: int = 4) -> dict:
    """:func:`encode` for every target dict (``boxes``, ``labels``) of a batch, stacked.

    Args:
        targets (list of dict): per image, ``boxes (K, 4)`` and ``labels (K,)``.
        num_classes (int): heatmap channels.
        image_size (int): height and width of the images in pixels.
        stride (int): pixels per cell. Default 4.

    Returns:
        dict: ``heatmap (N, num_classes, S, S)``, ``size (N, 2, S, S)``, ``offset (N, 2, S, S)``,
            ``mask (N, S, S)``.

    >>> encode_batch(
    ...     [{"boxes": torch.tensor([[0.0, 0, 8, 8]]), "labels": torch.tensor([0])}] * 3, 1, 16
    ... )["heatmap"].shape
    torch.Size([3, 1, 4, 4])

    Introduced in the chapter "Object detection".
    """
    if not isinstance(targets, list | tuple) or not all(
        isinstance(t, dict) and {"boxes", "labels"} <= set(t) for t in targets
    ):
        raise TypeError(
            f"expected targets as a list of dicts with boxes and labels, got {_describe(targets)}"
        )
    if not targets:
        raise ValueError("expected at least one target dict, got none")
    encoded = [encode(t["boxes"], t["labels"], num_classes, image_size, stride) for t in targets]
    return {key: torch.stack([e[key] for e in encoded]) for key in encoded[0]}


def peaks(heatmap: torch.Tensor, kernel: int = 3) -> torch.Tensor:
    """Keep only the local maxima of heatmaps (a cell equal to the max of its neighbourhood),
    zero elsewhere.

    This replaces non-maximum suppression on boxes in CenterNet: one peak, one detection.

    Args:
        heatmap (Tensor): ``(N, C, S, S)`` scores.
        kernel (int): odd neighbourhood size. Default 3.

    Returns:
        Tensor: ``(N, C, S, S)``.

    >>> peaks(torch.tensor([[[[0.25, 0.5, 0.125, 0.0, 0.75]]]])).tolist()
    [[[[0.0, 0.5, 0.0, 0.0, 0.75]]]]

    Introduced in the chapter "Object detection".
    """
    _expect_tensor(heatmap, "heatmaps", "(N, C, S, S)", ndim=4)
    if _expect_int(kernel, "kernel size") % 2 == 0:
        raise ValueError(f"expected an odd kernel size, got {kernel}")
    local_max = F.max_pool2d(heatmap, kernel, stride=1, padding=kernel // 2)
    return heatmap * (heatmap == local_max)


def decode(
    heatmap: torch.Tensor,
    size: torch.Tensor,
    offset: torch.Tensor,
    stride: int = 4,
    k: int = 20,
    threshold: float = 0.05,
) -> list[dict]:
    """Boxes from heatmap peaks: the inverse of :func:`encode`.

    The ``k`` highest local maxima over all classes and cells with a score of at least
    ``threshold`` become detections; a peak at cell ``(i, j)`` of class ``c`` with offset
    ``(ox, oy)`` and size ``(w, h)`` gives the centre ``((i + ox) stride, (j + oy) stride)`` and
    the box of size ``(w, h) stride`` around it.

    Args:
        heatmap (Tensor): ``(N, C, S, S)`` scores in [0, 1] (a network's sigmoid outputs).
        size (Tensor): ``(N, 2, S, S)`` widths and heights in cells.
        offset (Tensor): ``(N, 2, S, S)`` centre offsets within cells.
        stride (int): pixels per cell. Default 4.
        k (int): most detections per image. Default 20.
        threshold (float): lowest score kept. Default 0.05.

    Returns:
        list of dict: per image ``boxes (D, 4)`` xyxy pixels, ``scores (D,)``, ``labels (D,)``,
            best first.

    >>> t = encode(torch.tensor([[8.0, 8.0, 18.0, 14.0]]), torch.tensor([1]), 2, 32, 4)
    >>> decode(t["heatmap"][None], t["size"][None], t["offset"][None], 4, threshold=0.5)[0][
    ...     "boxes"
    ... ].tolist()
    [[8.0, 8.0, 18.0, 14.0]]

    Introduced in the chapter "Object detection".
    """
    n, c, s, _ = _expect_tensor(heatmap, "heatmaps", "(N, C, S, S)", ndim=4).shape
    _expect_int(k, "k")
    if _expect_tensor(size, "size").shape != (n, 2, s, s) or _expect_tensor(
        offset, "offset"
    ).shape != (n, 2, s, s):
        raise ValueError(
            f"expected size and offset of shape {(n, 2, s, s)}, got {tuple(size.shape)} and "
            f"{tuple(offset.shape)}"
        )
    # (N, k) over classes and cells
    scores, index = peaks(heatmap).flatten(1).topk(min(k, c * s * s))
    labels, cell = index // (s * s), index % (s * s)
    j, i = cell // s, cell % s
    results = []
    for b in range(n):
        ox, oy = offset[b, 0].flatten()[cell[b]], offset[b, 1].flatten()[cell[b]]
        w, h = size[b, 0].flatten()[cell[b]], size[b, 1].flatten()[cell[b]]
        cx, cy = (i[b] + ox) * stride, (j[b] + oy) * stride
        boxes = torch.stack(
            [cx - w * stride / 2, cy - h * stride / 2, cx + w * stride / 2, cy + h * stride / 2], 1
        )
        keep = scores[b] >= threshold
        results.append({"boxes": boxes[keep], "scores": scores[b][keep], "labels": labels[b][keep]})
    return results


def _conv(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    ]


class CenterNet(nn.Module):
    """A small fully convolutional CenterNet: a stride-4 backbone and three 1x1 heads.

    Backbone: two stride-2 3x3 convolutions, then four 3x3 convolutions at stride 4, two of them
    dilated (2 and 4) so that each output cell sees about 60 pixels, the size of the largest
    objects. Heads: ``num_classes`` heatmap logits (bias initialised to ``log(0.1 / 0.9)``, so
    every cell starts at a score of 0.1, as in CenterNet), 2 size and 2 offset channels.

    Args:
        num_classes (int): heatmap channels. Default 5.
        widths (tuple of int): channels after the first, second and later convolutions.
            Default (16, 32, 48).

    Returns:
        nn.Module: ``(B, 3, H, W)`` -> dict of ``heatmap`` logits ``(B, num_classes, H/4, W/4)``,
        ``size`` and ``offset`` ``(B, 2, H/4, W/4)``.

    >>> {k: tuple(v.shape) for k, v in CenterNet(5)(torch.zeros(1, 3, 64, 64)).items()}
    {'heatmap': (1, 5, 16, 16), 'size': (1, 2, 16, 16), 'offset': (1, 2, 16, 16)}

    Introduced in the chapter "Object detection".
    """

    stride = 4

    def __init__(self, num_classes: int = 5, widths: tuple[int, int, int] = (16, 32, 48)):
        super().__init__()
        if (
            not _positive_int(num_classes)
            or len(widths) != 3
            or not all(_positive_int(w) for w in widths)
        ):
            raise ValueError(
                f"expected a positive num_classes and three positive widths, got {num_classes!r} "
                f"and {widths!r}"
            )
        a, b, c = widths
        self.backbone = nn.Sequential(
            *_conv(3, a, 2),
            *_conv(a, b, 2),
            *_conv(b, c),
            *_conv(c, c, dilation=2),
            *_conv(c, c, dilation=4),
            *_conv(c, c),
        )
        self.heatmap, self.size, self.offset = (
            nn.Conv2d(c, num_classes, 1),
            nn.Conv2d(c, 2, 1),
            nn.Conv2d(c, 2, 1),
        )
        nn.init.constant_(self.heatmap.bias, -2.19)  # log(0.1 / 0.9)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if _expect_tensor(x, "images", "(B, 3, H, W)", ndim=4).shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(x.shape)}")
        features = self.backbone(x)  # (B, c, H/4, W/4)
        return {
            "heatmap": self.heatmap(features),
            "size": self.size(features),
            "offset": self.offset(features),
        }


def focal_loss(
    logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0
) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss on heatmaps, summed and divided by the number
    of peaks.

    At a peak (target 1): ``-(1 - p)^alpha log p``. Elsewhere: ``-(1 - y)^beta p^alpha log(1 - p)``,
    so cells near a centre (target y close to 1) are barely punished for a high score.

    Args:
        logits (Tensor): ``(N, C, S, S)`` heatmap logits.
        target (Tensor): ``(N, C, S, S)`` target heatmap from :func:`encode_batch`.
        alpha (float): focusing exponent. Default 2.
        beta (float): exponent of the penalty reduction. Default 4.

    Returns:
        Tensor: the scalar loss.

    >>> # -(1/2)^2 log(1/2)
    >>> round(focal_loss(torch.tensor([[[[0.0]]]]), torch.tensor([[[[1.0]]]])).item(), 4)
    0.1733

    Introduced in the chapter "Object detection".
    """
    if _expect_tensor(logits, "logits").shape != _expect_tensor(target, "target").shape:
        raise ValueError(
            f"expected logits and target of the same shape, got {tuple(logits.shape)} and "
            f"{tuple(target.shape)}"
        )
    p = torch.sigmoid(logits)
    log_p, log_not_p = F.logsigmoid(logits), F.logsigmoid(-logits)  # stable log p and log(1 - p)
    positive = target == 1
    pos = -((1 - p) ** alpha) * log_p
    neg = -((1 - target) ** beta) * p**alpha * log_not_p
    return torch.where(positive, pos, neg).sum() / positive.sum().clamp(min=1)


def _check_maps(maps: dict, keys: tuple[str, ...], what: str) -> None:
    if not isinstance(maps, dict) or not all(isinstance(maps.get(k), torch.Tensor) for k in keys):
        got = sorted(maps) if isinstance(maps, dict) else type(maps).__name__
        raise TypeError(f"expected {what} as a dict of tensors {', '.join(keys)}, got {got}")


def centernet_loss(
    outputs: dict, targets: dict, size_weight: float = 0.4, offset_weight: float = 1.0
) -> dict:
    """Focal loss on heatmaps plus L1 losses on size and offset at the centre cells.

    Args:
        outputs (dict): the model's ``heatmap`` logits, ``size`` and ``offset``.
        targets (dict): from :func:`encode_batch`, on the same device.
        size_weight (float): weight of the size loss. Default 0.4 (CenterNet's 0.1 for sizes in
            pixels, times the stride 4, since the sizes here are in cells).
        offset_weight (float): weight of the offset loss. Default 1.

    Returns:
        dict: ``loss`` (the total, a tensor for backward), ``heatmap``, ``size``,
            ``offset`` (floats).

    >>> t = encode_batch(
    ...     [{"boxes": torch.tensor([[0.0, 0, 8, 8]]), "labels": torch.tensor([0])}], 1, 16
    ... )
    >>> perfect = {"heatmap": (t["heatmap"] * 40 - 20), "size": t["size"], "offset": t["offset"]}
    >>> centernet_loss(perfect, t)["size"]
    0.0

    Introduced in the chapter "Object detection".
    """
    _check_maps(outputs, ("heatmap", "size", "offset"), "outputs")
    _check_maps(targets, ("heatmap", "size", "offset", "mask"), "targets")
    size_shape = targets["size"].shape
    if (
        outputs["size"].shape != size_shape
        or len(size_shape) != 4
        or targets["mask"].shape != (size_shape[0], *size_shape[2:])
    ):
        raise ValueError(
            "expected outputs and targets on one grid (N, 2, S, S) with a mask (N, S, S), got "
            f"sizes {tuple(outputs['size'].shape)} and {tuple(targets['size'].shape)} and a mask "
            f"{tuple(targets['mask'].shape)}"
        )
    mask = targets["mask"][:, None].expand_as(targets["size"])  # (N, 2, S, S)
    n = targets["mask"].sum().clamp(min=1)
    heat = focal_loss(outputs["heatmap"], targets["heatmap"])
    size = (outputs["size"] - targets["size"]).abs()[mask].sum() / n
    offset = (outputs["offset"] - targets["offset"]).abs()[mask].sum() / n
    total = heat + size_weight * size + offset_weight * offset
    return {"loss": total, "heatmap": heat.item(), "size": size.item(), "offset": offset.item()}


@torch.no_grad()
def detect(
    model: nn.Module,
    images: torch.Tensor,
    k: int = 20,
    threshold: float = 0.05,
    batch_size: int = 256,
) -> list[dict]:
    """Run a :class:`CenterNet` in eval mode and decode its outputs into boxes (on the CPU).

    Args:
        model (nn.Module): returns ``heatmap`` logits, ``size`` and ``offset``, and has a
            ``stride``.
        images (Tensor): ``(N, 3, H, W)``.
        k (int): most detections per image. Default 20.
        threshold (float): lowest score kept. Default 0.05.
        batch_size (int): images per forward pass. Default 256.

    Returns:
        list of dict: per image ``boxes (D, 4)``, ``scores (D,)``, ``labels (D,)``.

    >>> len(detect(CenterNet(5), torch.zeros(2, 3, 32, 32)))
    2

    Introduced in the chapter "Object detection".
    """
    _expect_tensor(images, "images", "(N, C, H, W)", ndim=4)
    _expect_int(k, "k")
    _expect_int(batch_size, "batch_size")
    _expect_module(model).eval()
    device = next(model.parameters()).device
    results = []
    for start in range(0, len(images), batch_size):
        out = {
            key: v.cpu() for key, v in model(images[start : start + batch_size].to(device)).items()
        }
        results += decode(
            out["heatmap"].sigmoid(), out["size"], out["offset"], model.stride, k, threshold
        )
    return results


def draw_boxes(
    ax,
    boxes: torch.Tensor,
    labels: torch.Tensor | None = None,
    scores: torch.Tensor | None = None,
    classes: tuple[str, ...] | None = None,
    color: str = "yellow",
    linestyle: str = "-",
):
    """Draw ``xyxy`` pixel boxes on a matplotlib axis showing the image, with optional captions.

    A box ``(x0, y0, x1, y1)`` with exclusive ``x1, y1`` covers pixels ``x0 .. x1 - 1``; imshow
    centres pixel ``i`` at ``i``, so the rectangle is drawn from ``x0 - 0.5`` to ``x1 - 0.5``.

    Args:
        ax (matplotlib.axes.Axes): where the image is shown.
        boxes (Tensor): ``(K, 4)``.
        labels (Tensor | None): ``(K,)`` class indices, written above each box.
        scores (Tensor | None): ``(K,)`` confidences, written after the label.
        classes (tuple of str | None): names for the labels.
        color (str): edge and caption colour. Default "yellow".
        linestyle (str): matplotlib line style. Default "-".

    Returns:
        The axis.

    >>> import matplotlib.pyplot as plt
    >>> ax = draw_boxes(
    ...     plt.figure().gca(),
    ...     torch.tensor([[1.0, 1, 5, 5]]),
    ...     torch.tensor([0]),
    ...     classes=("circle",),
    ... )
    >>> len(ax.patches)
    1

    Introduced in the chapter "Object detection".
    """
    from matplotlib.patches import Rectangle

    _check_boxes(boxes)
    for name, values in (("labels", labels), ("scores", scores)):
        if values is not None and _expect_tensor(values, name, f"({len(boxes)},)").shape != (
            len(boxes),
        ):
            raise ValueError(
                f"expected {name} of shape ({len(boxes)},), one per box, got {tuple(values.shape)}"
            )
    for i, (x0, y0, x1, y1) in enumerate(boxes.detach().cpu().tolist()):
        ax.add_patch(
            Rectangle(
                (x0 - 0.5, y0 - 0.5),
                x1 - x0,
                y1 - y0,
                fill=False,
                edgecolor=color,
                linewidth=1.5,
                linestyle=linestyle,
            )
        )
        caption = (
            [] if labels is None else [classes[int(labels[i])] if classes else str(int(labels[i]))]
        )
        caption += [] if scores is None else [f"{float(scores[i]):.2f}"]
        if caption:
            ax.text(x0 - 0.5, y0 - 1.5, " ".join(caption), color=color, fontsize=8, va="bottom")
    return ax


def _coco_architecture() -> nn.Module:
    """The network torchvision's builder makes for the COCO weights, with random weights:
    frozen BatchNorm and three trainable stages in the MobileNetV3 backbone, 91 classes and the
    320-pixel settings of ``fasterrcnn_mobilenet_v3_large_320_fpn``."""
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import mobilenet_backbone

    backbone = mobilenet_backbone(
        backbone_name="mobilenet_v3_large", weights=None, fpn=True, trainable_layers=3
    )
    anchors = AnchorGenerator(((32, 64, 128, 256, 512),) * 3, ((0.5, 1.0, 2.0),) * 3)
    return FasterRCNN(
        backbone, 91, rpn_anchor_generator=anchors, min_size=320, max_size=640,
        rpn_pre_nms_top_n_test=150, rpn_post_nms_top_n_test=150, rpn_score_thresh=0.05,
    )  # fmt: skip


def faster_rcnn(
    num_classes: int | None = None, pretrained: bool = False, timeout: float = 60.0
) -> nn.Module:
    """torchvision's Faster R-CNN with a MobileNetV3-Large FPN backbone at 320 pixels, in eval mode.

    With ``pretrained=True`` the COCO weights (91 classes) come from
    :func:`visionbook.data.pretrained`: downloaded once into ``data_home()/weights`` with a
    ``timeout`` (offline and not cached: a :class:`~visionbook.data.DataUnavailableError` before
    any network access), checked against the hash in their file name, and loaded into the same
    network torchvision's builder makes for them; without, every weight is random (and no
    network is touched), with ``num_classes`` outputs including the background class 0.

    Args:
        num_classes (int | None): classes including background; None means COCO's 91. Must be None
            or 91 when pretrained.
        pretrained (bool): load the COCO weights. Default False.
        timeout (float): socket timeout for the download, in seconds. Default 60.

    Returns:
        nn.Module: ``FasterRCNN``; in eval mode it maps a list of ``(3, H, W)`` images to a list of
        dicts with ``boxes``, ``labels``, ``scores``.

    >>> faster_rcnn(num_classes=6).roi_heads.box_predictor.cls_score.out_features
    6

    Introduced in the chapter "Object detection".
    """
    from torchvision.models.detection import (
        FasterRCNN_MobileNet_V3_Large_320_FPN_Weights as Weights,
    )
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn

    if num_classes is not None and not _positive_int(num_classes):
        raise ValueError(f"expected a positive number of classes or None, got {num_classes!r}")
    if not isinstance(pretrained, bool):
        raise TypeError(f"expected pretrained as a bool, got {pretrained!r}")
    _expect_number(timeout, "timeout", low=1e-3)
    if pretrained and num_classes not in (None, 91):
        raise ValueError(
            f"expected num_classes None or 91 with the COCO weights, got {num_classes!r}"
        )
    if not pretrained:
        return fasterrcnn_mobilenet_v3_large_320_fpn(
            weights=None, weights_backbone=None, num_classes=num_classes or 91
        ).eval()
    model = _coco_architecture()
    model.load_state_dict(data.pretrained(Weights.DEFAULT, timeout=timeout))
    return model.eval()
