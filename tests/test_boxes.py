"""Box formats, IoU and NMS against torchvision.ops; AP and mAP on cases with known answers."""

import pytest
import torch
import torchvision.ops as ops

from visionbook import boxes
from visionbook.boxes import (
    average_precision,
    box_area,
    box_convert,
    box_iou,
    match_detections,
    mean_average_precision,
    nms,
)


def _random_boxes(n, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 50
    wh = torch.rand(n, 2, generator=g) * 20 + 1
    return torch.cat([xy, xy + wh], 1)


@pytest.mark.parametrize("fmt", ["xywh", "cxcywh"])
def test_box_convert_matches_torchvision_and_round_trips(fmt):
    boxes = _random_boxes(20, 0)
    torch.testing.assert_close(box_convert(boxes, "xyxy", fmt), ops.box_convert(boxes, "xyxy", fmt))
    torch.testing.assert_close(box_convert(box_convert(boxes, "xyxy", fmt), fmt, "xyxy"), boxes)
    with pytest.raises(ValueError, match="expected formats"):
        box_convert(boxes, "xyxy", "yolo")


def test_box_iou_matches_torchvision_and_a_hand_case():
    a, b = _random_boxes(30, 1), _random_boxes(17, 2)
    torch.testing.assert_close(box_iou(a, b), ops.box_iou(a, b))
    # 2x2 squares overlapping in a 1x2 strip: 2 / (4 + 4 - 2)
    assert box_iou(
        torch.tensor([[0.0, 0, 2, 2]]), torch.tensor([[1.0, 0, 3, 2]])
    ).item() == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match=r"a of shape \(N, 4\)"):
        box_iou(torch.zeros(3), b)


@pytest.mark.parametrize("seed", range(5))
def test_nms_matches_torchvision_on_random_boxes(seed):
    boxes = _random_boxes(200, seed)
    scores = torch.rand(200, generator=torch.Generator().manual_seed(seed + 10))
    for threshold in (0.3, 0.5, 0.7):
        assert nms(boxes, scores, threshold).tolist() == ops.nms(boxes, scores, threshold).tolist()
    with pytest.raises(ValueError, match="one score per box"):
        nms(boxes, scores[:5], 0.5)


def test_matching_counts_a_duplicate_detection_as_false_positive():
    true = torch.tensor([[0.0, 0, 10, 10], [20.0, 20, 30, 30]])
    pred = torch.tensor(
        [[0.0, 0, 10, 10], [1.0, 1, 10, 10], [50.0, 50, 60, 60], [20.0, 20, 30, 31]]
    )
    hits = match_detections(pred, torch.tensor([0.9, 0.8, 0.7, 0.6]), true)
    assert hits.tolist() == [True, False, False, True]


def test_average_precision_known_answers():
    # ranked hits T, F, T with 2 objects: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    # interpolated: AP = 1/2 * 1 + 1/2 * 2/3 = 5/6
    ap, precision, recall = average_precision(
        torch.tensor([0.9, 0.8, 0.7]), torch.tensor([True, False, True]), 2
    )
    assert ap == pytest.approx(5 / 6)
    assert precision.tolist() == pytest.approx([1.0, 0.5, 2 / 3])
    assert recall.tolist() == pytest.approx([0.5, 0.5, 1.0])
    assert average_precision(torch.tensor([0.5]), torch.tensor([True]), 1)[0] == pytest.approx(1.0)
    assert average_precision(torch.tensor([0.5]), torch.tensor([False]), 3)[0] == 0.0
    with pytest.raises(ValueError, match="same shape"):
        average_precision(torch.tensor([0.5]), torch.tensor([True, False]), 1)


def test_mean_average_precision_on_a_constructed_data_set():
    targets = [
        {
            "boxes": torch.tensor([[0.0, 0, 10, 10], [20.0, 20, 30, 30]]),
            "labels": torch.tensor([0, 1]),
        },
        {"boxes": torch.tensor([[5.0, 5, 15, 15]]), "labels": torch.tensor([0])},
    ]
    predictions = [
        # class 0: a perfect hit; class 1: a miss ranked above the hit
        {"boxes": torch.tensor([[0.0, 0, 10, 10], [40.0, 40, 50, 50], [20.0, 20, 30, 30]]),
         "scores": torch.tensor([0.9, 0.8, 0.7]), "labels": torch.tensor([0, 1, 1])},
        {"boxes": torch.tensor([[5.0, 5, 15, 15]]), "scores": torch.tensor([0.6]),
         "labels": torch.tensor([0])},
    ]  # fmt: skip
    result = mean_average_precision(predictions, targets, num_classes=3)
    assert result["ap"][0] == pytest.approx(1.0)  # both class-0 objects found, no false positives
    assert result["ap"][1] == pytest.approx(0.5)  # precision 1/2 when its only object is found
    assert result["ap"][2] != result["ap"][2]  # no objects of class 2: NaN, left out of the mean
    assert result["map"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="one prediction dict per target"):
        mean_average_precision(predictions[:1], targets, 3)


def test_box_area_and_shape_errors():
    # inverted box: area 0
    assert box_area(torch.tensor([[0.0, 0, 4, 2], [3.0, 3, 1, 1]])).tolist() == [8.0, 0.0]
    with pytest.raises(ValueError, match=r"boxes of shape \(N, 4\)"):
        box_area(torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"boxes of shape \(N, 4\), got list"):
        box_convert([[0, 0, 1, 1]], "xyxy", "xywh")


def test_matching_edge_cases_and_errors():
    none = torch.zeros(0, 4)
    assert match_detections(none, torch.zeros(0), torch.tensor([[0.0, 0, 1, 1]])).tolist() == []
    assert match_detections(torch.tensor([[0.0, 0, 1, 1]]), torch.tensor([0.5]), none).tolist() == [
        False
    ]
    # IoU exactly at the threshold counts: 2x2 vs 2x1 inside it -> 1/2
    half = match_detections(
        torch.tensor([[0.0, 0, 2, 1]]), torch.tensor([0.5]), torch.tensor([[0.0, 0, 2, 2]])
    )
    assert half.tolist() == [True]
    with pytest.raises(ValueError, match=r"true_boxes of shape \(N, 4\)"):
        match_detections(none, torch.zeros(0), torch.zeros(3))


def test_average_precision_without_objects_and_map_errors():
    ap, precision, recall = average_precision(torch.tensor([0.9]), torch.tensor([False]), 0)
    assert ap != ap and len(precision) == 0 and len(recall) == 0  # NaN: undefined without objects
    # a miss ranked first halves precision at full recall: P = 1/2 at R = 1
    assert average_precision(torch.tensor([0.9, 0.8]), torch.tensor([False, True]), 1)[
        0
    ] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="one prediction dict per target dict"):
        mean_average_precision([], [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0)}], 1)


def test_new_bad_input_messages():
    b = torch.tensor([[0.0, 0, 2, 2], [1.0, 1, 3, 3]])
    with pytest.raises(TypeError, match=r"expected scores as a tensor of shape \(2,\), got list"):
        boxes.nms(b, [0.9, 0.8], 0.5)
    with pytest.raises(TypeError, match="expected a number for iou_threshold, got '0.5'"):
        boxes.nms(b, torch.ones(2), "0.5")
    with pytest.raises(ValueError, match=r"expected one score per box, shape \(2,\), got \(3,\)"):
        boxes.match_detections(b, torch.ones(3), b)
    with pytest.raises(TypeError, match="expected an integer num_true, got '2'"):
        boxes.average_precision(torch.ones(2), torch.ones(2).bool(), "2")
    with pytest.raises(
        TypeError,
        match="expected predictions as a list of dicts with tensors boxes, scores, labels, got str",
    ):
        boxes.mean_average_precision("p", [], 2)
    with pytest.raises(
        ValueError,
        match=(
            r"expected targets as a list of dicts with tensors boxes, labels, got an item "
            r"with \['boxes'\]"
        ),
    ):
        boxes.mean_average_precision([], [{"boxes": b}], 2)
    with pytest.raises(
        ValueError, match=r"expected predictions' boxes of shape \(N, 4\), got \(3,\)"
    ):
        boxes.mean_average_precision(
            [{"boxes": torch.ones(3), "scores": torch.ones(3), "labels": torch.ones(3)}], [], 2
        )
