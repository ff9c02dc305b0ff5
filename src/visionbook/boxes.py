"""Boxes for object detection: formats, IoU, non-maximum suppression and average precision.

Boxes are float tensors ``(N, 4)``; ``xyxy`` is ``(x0, y0, x1, y1)`` (the book's default, as in
``torchvision.ops``), ``cxcywh`` is centre and size, ``xywh`` is corner and size. Introduced in
the chapter "Object detection".
"""

from __future__ import annotations

import torch

from visionbook._validate import _check_boxes, _expect_int, _expect_number, _expect_tensor

FORMATS = ("xyxy", "xywh", "cxcywh")


def _check_scores(scores: torch.Tensor, n: int) -> None:
    if _expect_tensor(scores, "scores", f"({n},)").shape != (n,):
        raise ValueError(f"expected one score per box, shape ({n},), got {tuple(scores.shape)}")


def box_convert(boxes: torch.Tensor, src: str, dst: str) -> torch.Tensor:
    """Convert boxes between ``"xyxy"``, ``"xywh"`` and ``"cxcywh"``.

    >>> box_convert(torch.tensor([[0.0, 0.0, 4.0, 2.0]]), "xyxy", "cxcywh").tolist()
    [[2.0, 1.0, 4.0, 2.0]]

    Introduced in the chapter "Object detection".
    """
    _check_boxes(boxes)
    if src not in FORMATS or dst not in FORMATS:
        raise ValueError(f"expected formats from {FORMATS}, got {src!r} and {dst!r}")
    a, b, c, d = boxes.unbind(1)
    if src == "xywh":
        a, b, c, d = a, b, a + c, b + d
    elif src == "cxcywh":
        a, b, c, d = a - c / 2, b - d / 2, a + c / 2, b + d / 2
    if dst == "xywh":
        return torch.stack([a, b, c - a, d - b], 1)
    if dst == "cxcywh":
        return torch.stack([(a + c) / 2, (b + d) / 2, c - a, d - b], 1)
    return torch.stack([a, b, c, d], 1)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Areas ``(N,)`` of ``xyxy`` boxes.

    >>> box_area(torch.tensor([[0.0, 0.0, 4.0, 2.0]])).tolist()
    [8.0]

    Introduced in the chapter "Object detection".
    """
    _check_boxes(boxes)
    return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Intersection over union of every pair of ``xyxy`` boxes: ``(N, M)``.

    >>> box_iou(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([[1.0, 0.0, 3.0, 2.0]])).tolist()
    [[0.3333333432674408]]

    Introduced in the chapter "Object detection".
    """
    _check_boxes(a, "a")
    _check_boxes(b, "b")
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=2)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return inter / union.clamp(min=1e-12)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression: keep the best box, drop boxes overlapping it by more
    than ``iou_threshold``, repeat. Same contract as ``torchvision.ops.nms``.

    Args:
        boxes (Tensor): ``(N, 4)`` ``xyxy``.
        scores (Tensor): ``(N,)``.
        iou_threshold (float): boxes with IoU strictly above it are suppressed.

    Returns:
        Tensor: int64 indices of the kept boxes, by decreasing score.

    >>> nms(
    ...     torch.tensor([[0.0, 0, 2, 2], [0.1, 0, 2, 2], [5, 5, 6, 6]]),
    ...     torch.tensor([0.9, 0.8, 0.7]),
    ...     0.5,
    ... ).tolist()
    [0, 2]

    Introduced in the chapter "Object detection".
    """
    _check_boxes(boxes)
    _check_scores(scores, len(boxes))
    _expect_number(iou_threshold, "iou_threshold", 0, 1)
    order = scores.argsort(descending=True)
    iou = box_iou(boxes, boxes)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool, device=boxes.device)
    keep = []
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return torch.tensor(keep, dtype=torch.long, device=boxes.device)


def match_detections(
    pred_boxes: torch.Tensor,
    scores: torch.Tensor,
    true_boxes: torch.Tensor,
    iou_threshold: float = 0.5,
) -> torch.Tensor:
    """Mark each detection of one image and one class as a true positive or not (PASCAL VOC rule).

    Detections are visited by decreasing score; each takes the unmatched ground-truth box it
    overlaps most if that IoU is at least ``iou_threshold``; a second detection of an already
    matched object is a false positive.

    Returns:
        Tensor: ``(N,)`` bool, in the order of the input detections.

    Introduced in the chapter "Object detection".
    """
    _check_boxes(pred_boxes, "pred_boxes")
    _check_boxes(true_boxes, "true_boxes")
    _check_scores(scores, len(pred_boxes))
    _expect_number(iou_threshold, "iou_threshold", 0, 1)
    hits = torch.zeros(len(pred_boxes), dtype=torch.bool)
    if len(pred_boxes) == 0 or len(true_boxes) == 0:
        return hits
    iou = box_iou(pred_boxes, true_boxes).cpu()
    taken = torch.zeros(len(true_boxes), dtype=torch.bool)
    for i in scores.argsort(descending=True).tolist():
        candidates = iou[i].masked_fill(taken, -1.0)
        j = int(candidates.argmax())
        if candidates[j] >= iou_threshold:
            hits[i], taken[j] = True, True
    return hits


def average_precision(
    scores: torch.Tensor, hits: torch.Tensor, num_true: int
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Average precision: the area under the precision-recall curve with precision made
    monotone (all-point interpolation, PASCAL VOC 2010 onwards).

    Args:
        scores (Tensor): ``(N,)`` confidence of every detection of one class, over all images.
        hits (Tensor): ``(N,)`` bool, true positive or not (see :func:`match_detections`).
        num_true (int): number of ground-truth objects of the class.

    Returns:
        tuple: AP (float), precision ``(N,)`` and recall ``(N,)`` by decreasing score.

    >>> average_precision(torch.tensor([0.9, 0.8]), torch.tensor([True, False]), 2)[0]
    0.5

    Introduced in the chapter "Object detection".
    """
    _expect_tensor(scores, "scores", "(N,)")
    _expect_tensor(hits, "hits", "(N,)")
    _expect_int(num_true, "num_true", minimum=0)
    if scores.shape != hits.shape or scores.ndim != 1:
        raise ValueError(
            "expected scores and hits of the same shape (N,) and num_true >= 0, got "
            f"{tuple(scores.shape)}, {tuple(hits.shape)}, {num_true}"
        )
    if num_true == 0:
        return float("nan"), torch.empty(0), torch.empty(0)
    tp = hits[scores.argsort(descending=True)].float().cpu()
    tp_cum, fp_cum = tp.cumsum(0), (1 - tp).cumsum(0)
    precision = tp_cum / (tp_cum + fp_cum).clamp(min=1)
    recall = tp_cum / num_true
    envelope = precision.flip(0).cummax(0).values.flip(0)
    steps = torch.diff(recall, prepend=torch.zeros(1))
    return float((steps * envelope).sum()), precision, recall


def _check_dicts(items: list[dict], keys: tuple[str, ...], what: str) -> None:
    wanted = f"a list of dicts with tensors {', '.join(keys)}"
    if not isinstance(items, list | tuple):
        raise TypeError(f"expected {what} as {wanted}, got {type(items).__name__}")
    for item in items:
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), torch.Tensor) for k in keys
        ):
            raise ValueError(
                f"expected {what} as {wanted}, got an item with "
                f"{sorted(item) if isinstance(item, dict) else item!r}"
            )
        _check_boxes(item["boxes"], f"{what}' boxes")


def mean_average_precision(
    predictions: list[dict], targets: list[dict], num_classes: int, iou_threshold: float = 0.5
) -> dict:
    """Per-class AP and their mean over a data set, at one IoU threshold.

    Args:
        predictions (list of dict): per image, ``boxes (N, 4)``, ``scores (N,)``, ``labels (N,)``.
        targets (list of dict): per image, ``boxes (M, 4)`` and ``labels (M,)``.
        num_classes (int): classes are ``0 .. num_classes - 1``.
        iou_threshold (float): IoU needed for a match. Default 0.5.

    Returns:
        dict: ``"ap"`` a list of per-class AP (NaN for a class with no objects) and ``"map"``
        their mean over classes that have objects.

    Introduced in the chapter "Object detection".
    """
    _check_dicts(predictions, ("boxes", "scores", "labels"), "predictions")
    _check_dicts(targets, ("boxes", "labels"), "targets")
    _expect_int(num_classes, "num_classes")
    if len(predictions) != len(targets):
        raise ValueError(
            f"expected one prediction dict per target dict, got {len(predictions)} and "
            f"{len(targets)}"
        )
    aps = []
    for c in range(num_classes):
        scores, hits, num_true = [], [], 0
        for pred, true in zip(predictions, targets):
            p, t = pred["labels"] == c, true["labels"] == c
            num_true += int(t.sum())
            scores.append(pred["scores"][p].cpu())
            hits.append(
                match_detections(
                    pred["boxes"][p], pred["scores"][p], true["boxes"][t], iou_threshold
                )
            )
        aps.append(average_precision(torch.cat(scores), torch.cat(hits), num_true)[0])
    valid = [a for a in aps if a == a]
    return {"ap": aps, "map": sum(valid) / len(valid) if valid else float("nan")}
