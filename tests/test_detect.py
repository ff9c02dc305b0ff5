"""CenterNet targets: encode then decode recovers boxes exactly; loss by hand; model and Faster
R-CNN shapes."""

import math

import pytest
import torch

from visionbook.detect import (
    CenterNet,
    _coco_architecture,
    centernet_loss,
    decode,
    detect,
    draw_boxes,
    encode,
    encode_batch,
    faster_rcnn,
    focal_loss,
    gaussian_sigma,
    peaks,
)
from visionbook.shapes import make_scenes


def _sorted(boxes, labels):
    order = torch.argsort(boxes[:, 0] * 1000 + boxes[:, 1])
    return boxes[order], labels[order]


def test_encode_by_hand():
    # centre (13, 11) px -> (3.25, 2.75) cells: cell x 3, y 2, offset (0.25, 0.75); size (10, 6) / 4
    t = encode(torch.tensor([[8.0, 8.0, 18.0, 14.0]]), torch.tensor([1]), 2, 32, 4)
    assert t["mask"].nonzero().tolist() == [[2, 3]]
    assert t["heatmap"][1, 2, 3] == 1.0 and t["heatmap"][0].sum() == 0
    assert t["offset"][:, 2, 3].tolist() == [0.25, 0.75] and t["size"][:, 2, 3].tolist() == [
        2.5,
        1.5,
    ]
    sigma = gaussian_sigma(torch.tensor([[10.0, 6.0]]), 4).item()
    assert sigma == 0.5  # sqrt(60) / 24 < 0.5
    assert t["heatmap"][1, 2, 4].item() == pytest.approx(math.exp(-1 / (2 * sigma**2)))


def test_encode_then_decode_recovers_every_box_of_many_scenes_exactly():
    scenes = make_scenes(200, size=64, min_objects=1, max_objects=4, seed=3)
    encoded = encode_batch(scenes.targets, 5, 64, 4)
    assert encoded["heatmap"].shape == (200, 5, 16, 16)
    decoded = decode(encoded["heatmap"], encoded["size"], encoded["offset"], 4, k=20, threshold=0.5)
    for target, found in zip(scenes.targets, decoded):
        assert torch.equal(found["scores"], torch.ones(len(target["boxes"])))
        boxes, labels = _sorted(found["boxes"], found["labels"])
        true_boxes, true_labels = _sorted(target["boxes"], target["labels"])
        # exact, not approximate
        assert torch.equal(boxes, true_boxes) and torch.equal(labels, true_labels)


def test_encode_merges_peaks_of_one_class_by_maximum_and_checks_input():
    boxes = torch.tensor([[0.0, 0, 8, 8], [8.0, 0, 16, 8]])
    t = encode(boxes, torch.tensor([0, 0]), 1, 32, 4)
    assert t["heatmap"].max() == 1.0 and t["mask"].sum() == 2
    with pytest.raises(ValueError, match="labels in 0..0"):
        encode(boxes, torch.tensor([0, 1]), 1, 32, 4)
    with pytest.raises(ValueError, match="stride dividing image_size"):
        encode(boxes, torch.tensor([0, 0]), 1, 30, 4)
    with pytest.raises(ValueError, match=r"boxes of shape \(N, 4\)"):
        encode(torch.zeros(2, 3), torch.tensor([0, 0]), 1, 32, 4)


def test_peaks_and_decode_errors():
    h = torch.tensor([[[[0.2, 0.9, 0.3], [0.1, 0.4, 0.9], [0.0, 0.0, 0.1]]]])
    # ties with a neighbour both survive
    assert peaks(h).nonzero()[:, 2:].tolist() == [[0, 1], [1, 2]]
    with pytest.raises(ValueError, match=r"\(N, C, S, S\)"):
        peaks(h[0])
    with pytest.raises(ValueError, match="size and offset of shape"):
        decode(h, torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 3, 3))


def test_decode_respects_k_and_threshold():
    h = torch.zeros(1, 2, 8, 8)
    h[0, 0, 1, 1], h[0, 1, 5, 5], h[0, 0, 6, 2] = 0.9, 0.6, 0.3
    size, offset = torch.ones(1, 2, 8, 8), torch.full((1, 2, 8, 8), 0.5)
    found = decode(h, size, offset, stride=4, k=2, threshold=0.1)[0]
    assert found["scores"].tolist() == pytest.approx([0.9, 0.6]) and found["labels"].tolist() == [
        0,
        1,
    ]
    # centre (1.5, 1.5) cells = (6, 6) px, size 4 px
    assert found["boxes"][0].tolist() == [4.0, 4.0, 8.0, 8.0]
    assert len(decode(h, size, offset, 4, k=10, threshold=0.5)[0]["boxes"]) == 2


def test_focal_loss_by_hand():
    logits = torch.tensor([[[[0.0, 2.0]]]])
    target = torch.tensor([[[[1.0, 0.5]]]])
    p = torch.sigmoid(logits)[0, 0, 0]
    expected = -((1 - p[0]) ** 2) * math.log(p[0]) - (1 - 0.5) ** 4 * p[1] ** 2 * math.log(1 - p[1])
    # one peak: divided by 1
    assert focal_loss(logits, target).item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        focal_loss(logits, target[..., :1])


def test_centernet_loss_is_zero_for_perfect_regression_and_model_shapes():
    scenes = make_scenes(4, seed=0)
    targets = encode_batch(scenes.targets, 5, 64, 4)
    # near-certain scores at the peaks, nowhere else
    big = torch.where(targets["heatmap"] == 1, 30.0, -30.0)
    outputs = {"heatmap": big, "size": targets["size"].clone(), "offset": targets["offset"].clone()}
    losses = centernet_loss(outputs, targets)
    assert losses["size"] == 0 and losses["offset"] == 0 and losses["heatmap"] < 1e-3
    model = CenterNet(5)
    out = model(scenes.images)
    assert out["heatmap"].shape == (4, 5, 16, 16) and out["size"].shape == (4, 2, 16, 16)
    # prior of 0.1
    assert torch.sigmoid(out["heatmap"]).mean().item() == pytest.approx(0.1, abs=0.05)
    centernet_loss(out, targets)["loss"].backward()
    assert model.backbone[0].weight.grad is not None
    with pytest.raises(ValueError, match="three positive widths"):
        CenterNet(5, (16, 32))


def test_detect_runs_in_eval_mode_and_checks_input():
    model = CenterNet(3).train()
    found = detect(model, torch.rand(3, 3, 32, 32), k=5, threshold=0.0, batch_size=2)
    assert len(found) == 3 and all(len(f["boxes"]) == 5 for f in found) and not model.training
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        detect(model, torch.rand(3, 32, 32))


def test_draw_boxes_adds_rectangles_and_captions():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    draw_boxes(
        ax,
        torch.tensor([[1.0, 2, 5, 6], [8.0, 8, 9, 9]]),
        torch.tensor([0, 1]),
        torch.tensor([0.5, 0.25]),
        ("a", "b"),
    )
    assert len(ax.patches) == 2 and [t.get_text() for t in ax.texts] == ["a 0.50", "b 0.25"]
    assert ax.patches[0].get_xy() == (0.5, 1.5) and ax.patches[0].get_width() == 4
    plt.close(fig)


def test_faster_rcnn_with_random_weights_train_and_eval_outputs():
    torch.manual_seed(0)
    model = faster_rcnn(num_classes=6)
    assert not model.training and model.roi_heads.box_predictor.bbox_pred.out_features == 24
    scene = make_scenes(1, seed=0)
    image, target = scene.images[0], scene.targets[0]
    model.train()
    losses = model([image], [{"boxes": target["boxes"], "labels": target["labels"] + 1}])
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    model.eval()
    with torch.no_grad():
        (out,) = model([image])
    assert set(out) == {"boxes", "labels", "scores"} and out["boxes"].shape[1] == 4
    with pytest.raises(ValueError, match="positive number of classes"):
        faster_rcnn(num_classes=0)
    with pytest.raises(ValueError, match="None or 91 with the COCO weights"):
        faster_rcnn(num_classes=6, pretrained=True)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda: gaussian_sigma(torch.ones(2, 3), 4),
            ValueError,
            r"expected box sizes wh of shape \(K, 2\), got \(2, 3\)",
        ),
        (
            lambda: gaussian_sigma(torch.ones(2, 2), "4"),
            TypeError,
            "expected an integer stride, got '4'",
        ),
        (
            lambda: encode(torch.zeros(1, 4), [0], 2, 32),
            TypeError,
            r"expected labels as a tensor of shape \(1,\), got list",
        ),
        (
            lambda: encode_batch("targets", 1, 16),
            TypeError,
            "expected targets as a list of dicts with boxes and labels, got str",
        ),
        (
            lambda: encode_batch([{"boxes": torch.zeros(1, 4)}], 1, 16),
            TypeError,
            "expected targets as a list of dicts with boxes and labels, got a list of dict",
        ),
        (
            lambda: encode_batch([], 1, 16),
            ValueError,
            "expected at least one target dict, got none",
        ),
        (
            lambda: peaks(torch.zeros(1, 1, 4, 4), kernel=2),
            ValueError,
            "expected an odd kernel size, got 2",
        ),
        (
            lambda: decode([[0.0]], torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4)),
            TypeError,
            "expected heatmaps as a tensor",
        ),
        (
            lambda: CenterNet(2, (4, 4, 4))(torch.zeros(1, 1, 32, 32)),
            ValueError,
            r"expected images of shape \(B, 3, H, W\), got \(1, 1, 32, 32\)",
        ),
        (lambda: focal_loss([[0.0]], torch.zeros(1)), TypeError, "expected logits as a tensor"),
        (
            lambda: centernet_loss("outputs", {}),
            TypeError,
            "expected outputs as a dict of tensors heatmap, size, offset, got str",
        ),
        (
            lambda: centernet_loss(
                {k: torch.zeros(1, 2, 8, 8) for k in ("heatmap", "size", "offset")}, _one_target()
            ),
            ValueError,
            r"expected outputs and targets on one grid \(N, 2, S, S\) with a mask \(N, S, S\)",
        ),
        (
            lambda: detect(CenterNet(2, (4, 4, 4)), [[0.0]]),
            TypeError,
            "expected images as a tensor",
        ),
        (
            lambda: detect("net", torch.zeros(1, 3, 32, 32)),
            TypeError,
            "expected model as an nn.Module, got str",
        ),
        (
            lambda: draw_boxes(None, torch.zeros(2, 4), torch.tensor([0])),
            ValueError,
            r"expected labels of shape \(2,\), one per box, got \(1,\)",
        ),
        (
            lambda: faster_rcnn(pretrained="yes"),
            TypeError,
            "expected pretrained as a bool, got 'yes'",
        ),
        (lambda: faster_rcnn(timeout="60"), TypeError, "expected a number for timeout, got '60'"),
    ],
)
def test_new_bad_input_messages(call, error, message):
    with pytest.raises(error, match=message):
        call()


def _one_target() -> dict:
    return encode_batch(
        [{"boxes": torch.tensor([[0.0, 0, 8, 8]]), "labels": torch.tensor([0])}], 1, 16
    )


def test_coco_weights_come_from_the_one_weights_cache_into_torchvisions_network(
    monkeypatch, tmp_path
):
    from torchvision.models.detection import (
        FasterRCNN_MobileNet_V3_Large_320_FPN_Weights as Weights,
    )
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn

    from visionbook import data
    from visionbook.data import DataUnavailableError

    monkeypatch.setenv("VISIONBOOK_HOME", str(tmp_path))
    cached = data.pretrained_path(Weights.DEFAULT)
    assert cached.parent == tmp_path / "weights"
    with pytest.raises(
        DataUnavailableError, match=rf"VISIONBOOK_OFFLINE=1 .* put the file from .* at {cached}"
    ):
        faster_rcnn(pretrained=True)
    torch.manual_seed(0)
    state = _coco_architecture().state_dict()  # frozen BatchNorm: no batch counters
    seen = []
    monkeypatch.setattr(data, "pretrained", lambda w, timeout: seen.append((w, timeout)) or state)
    ours = faster_rcnn(pretrained=True, timeout=5.0)
    assert seen == [(Weights.DEFAULT, 5.0)] and not ours.training
    # the network torchvision's builder makes for these weights, given the same state dict
    monkeypatch.setattr(Weights, "get_state_dict", lambda self, **kwargs: ours.state_dict())
    theirs = fasterrcnn_mobilenet_v3_large_320_fpn(weights=Weights.DEFAULT).eval()
    assert repr(ours) == repr(theirs)
    trainable = lambda m: [n for n, p in m.named_parameters() if p.requires_grad]
    assert trainable(ours) == trainable(theirs) and not any(
        "backbone.body.0." in n for n in trainable(ours)
    )
    x = torch.rand(1, 3, 64, 80)
    with torch.no_grad():
        for name, feature in ours.backbone(x).items():
            torch.testing.assert_close(feature, theirs.backbone(x)[name], rtol=0, atol=0)
