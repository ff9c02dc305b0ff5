"""The face classifier as a fully convolutional detector: score maps equal window-by-window
scores."""

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from visionbook.boxes import box_iou
from visionbook.faces import (
    STRIDE,
    WINDOW,
    detect_faces,
    embed,
    face_net,
    hard_negatives,
    map_to_boxes,
    rescale,
    score_map,
    to_grey,
    windows,
)


def _bright_square_model() -> torch.nn.Sequential:
    """A face_net(width=1) whose 'face' logit grows with the brightness of the window's centre."""
    model = face_net(width=1)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model[0].weight[0] = 1 / 16  # 4x4 mean
        model[3].weight[0, 0] = 1 / 16
        model[6].weight[0, 0] = 1 / 16  # mean of the 4x4 pooled map: the window's brightness
        model[8].weight[1, 0] = 40.0  # face logit 40 * (brightness - 0.9), non-face logit 0
        model[8].bias[1] = -36.0
    return model.eval()


def test_face_net_shapes_and_errors():
    model = face_net(width=4)
    assert model(torch.zeros(3, 1, WINDOW, WINDOW)).shape == (3, 2)
    assert model[:-2](torch.zeros(1, 1, WINDOW, WINDOW)).shape == (1, 16, 1, 1)
    with pytest.raises(ValueError, match="positive integer width"):
        face_net(width=0)


def test_score_map_equals_classifier_on_every_window():
    torch.manual_seed(0)
    model = face_net().eval()
    image = torch.rand(1, 57, 46)
    probs = score_map(model, image)
    assert probs.shape == ((57 - WINDOW) // STRIDE + 1, (46 - WINDOW) // STRIDE + 1)
    for i in range(probs.shape[0]):
        for j in range(probs.shape[1]):
            crop = image[:, STRIDE * i : STRIDE * i + WINDOW, STRIDE * j : STRIDE * j + WINDOW]
            expected = model(crop[None]).softmax(1)[0, 1]
            torch.testing.assert_close(probs[i, j], expected, atol=1e-6, rtol=0)
    with torch.no_grad():
        batched = model(windows(image)).softmax(1)[:, 1]  # windows come in the score map's order
    torch.testing.assert_close(batched, probs.flatten(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("size", range(25, 45))
def test_score_map_size_formula(size):
    assert score_map(face_net(), torch.zeros(1, size, 30)).shape == ((size - 25) // 4 + 1, 2)


def test_score_map_and_windows_reject_bad_images():
    with pytest.raises(ValueError, match=r"grey image of shape \(1, H, W\) with H, W >= 25"):
        score_map(face_net(), torch.zeros(3, 30, 30))
    with pytest.raises(ValueError, match="H, W >= 25"):
        score_map(face_net(), torch.zeros(1, 24, 30))
    assert windows(torch.zeros(1, 33, 29)).shape == (6, 1, 25, 25)


def test_map_to_boxes_hand_case():
    probs = torch.tensor([[0.2, 0.9], [0.7, 0.4]])
    boxes, scores = map_to_boxes(probs, 0.5, 0.5)
    # windows at (x, y) = (4, 0) and (0, 4) of the half-size image: double everything
    assert boxes.tolist() == [[8.0, 0.0, 58.0, 50.0], [0.0, 8.0, 50.0, 58.0]]
    assert scores.tolist() == pytest.approx([0.9, 0.7])
    with pytest.raises(ValueError, match="positive scale"):
        map_to_boxes(probs, 0.0, 0.5)


def test_to_grey_matches_torchvision_and_rejects_bad_shapes():
    image = torch.rand(3, 10, 12)
    torch.testing.assert_close(to_grey(image), TF.rgb_to_grayscale(image), atol=1e-6, rtol=0)
    assert to_grey(image[:1]) is not None and torch.equal(to_grey(image[:1]), image[:1])
    with pytest.raises(ValueError, match=r"\(3, H, W\) or \(1, H, W\)"):
        to_grey(torch.rand(2, 10, 12))


def test_rescale_shape_and_error():
    assert rescale(torch.zeros(1, 100, 80), 0.25).shape == (1, 25, 20)
    with pytest.raises(ValueError, match="positive scale"):
        rescale(torch.zeros(1, 10, 10), -1.0)


def test_detect_faces_maps_windows_back_to_the_photo():
    model = _bright_square_model()
    image = torch.zeros(3, 200, 240)
    # a 50x50 "face" at x 96..146, y 48..98: a 25x25 window at half size
    image[:, 48:98, 96:146] = 1.0
    boxes, scores = detect_faces(model, image, [0.5], threshold=0.5, iou_threshold=0.3)
    assert boxes.tolist() == [[96.0, 48.0, 146.0, 98.0]]
    boxes, scores = detect_faces(model, image, [1.0, 0.5, 0.25], threshold=0.5, iou_threshold=0.3)
    assert scores.tolist() == sorted(scores.tolist(), reverse=True)
    overlap = box_iou(boxes, torch.tensor([[96.0, 48.0, 146.0, 98.0]]))[:, 0]
    # only windows on the square fire, at any scale
    assert len(boxes) >= 1 and bool((overlap > 0.1).all())
    empty_boxes, _ = detect_faces(model, torch.zeros(3, 200, 240), [1.0, 0.5])
    assert len(empty_boxes) == 0
    with pytest.raises(ValueError, match="non-empty list of positive scales"):
        detect_faces(model, image, [])


def test_hard_negatives_returns_the_windows_above_threshold():
    model = _bright_square_model()
    image = torch.zeros(1, 45, 45)
    image[:, 8:37, 8:37] = 1.0
    found = hard_negatives(model, image, [1.0])
    expected = (score_map(model, image) > 0.5).sum().item()
    assert expected > 0 and found.shape == (expected, 1, 25, 25)
    assert hard_negatives(model, torch.zeros(1, 45, 45), [1.0]).shape == (0, 1, 25, 25)
    # too small: the scale is skipped
    assert hard_negatives(model, image, [0.1]).shape == (0, 1, 25, 25)


def test_embed_gives_unit_vectors_and_checks_shape():
    torch.manual_seed(0)
    e = embed(face_net(width=4), torch.rand(5, 1, 25, 25))
    assert e.shape == (5, 16)
    torch.testing.assert_close(e.norm(dim=1), torch.ones(5))
    with pytest.raises(ValueError, match=r"windows of shape \(B, 1, 25, 25\)"):
        embed(face_net(), torch.rand(5, 1, 24, 24))


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda: windows(torch.zeros(33, 29)),
            ValueError,
            r"expected a grey image of shape \(1, H, W\).*, got \(33, 29\)",
        ),
        (
            lambda: windows(torch.zeros(1, 10, 10)),
            ValueError,
            r"with H, W >= 25, got \(1, 10, 10\)",
        ),
        (lambda: rescale([[0.0]], 0.5), TypeError, "expected a grey image as a tensor"),
        (
            lambda: rescale(torch.zeros(1, 8, 8), "0.5"),
            ValueError,
            "expected a positive scale, got '0.5'",
        ),
        (
            lambda: map_to_boxes(torch.zeros(2, 2), 0.5, "0.5"),
            TypeError,
            "expected a number for threshold, got '0.5'",
        ),
        (
            lambda: map_to_boxes(torch.zeros(4), 0.5, 0.5),
            ValueError,
            r"expected a score map of shape \(H', W'\), got \(4,\)",
        ),
        (
            lambda: detect_faces(face_net(), torch.zeros(1, 30, 30), 1.0),
            TypeError,
            "expected a non-empty list of positive scales, got 1.0",
        ),
        (
            lambda: detect_faces(face_net(), torch.zeros(1, 30, 30), [1.0], iou_threshold=2),
            ValueError,
            r"expected iou_threshold in \[0, 1\], got 2",
        ),
        (
            lambda: score_map("net", torch.zeros(1, 30, 30)),
            TypeError,
            "expected model as an nn.Module, got str",
        ),
    ],
)
def test_new_bad_input_messages(call, error, message):
    with pytest.raises(error, match=message):
        call()
