"""U-Net shapes; Dice and IoU on hand-counted masks and against scikit-learn's F1 and
Jaccard scores."""

import pytest
import torch
from sklearn.metrics import f1_score, jaccard_score

from visionbook.segmentation import UNet, dice, double_conv, iou, soft_dice_loss


def test_double_conv_keeps_the_size():
    assert double_conv(3, 8)(torch.zeros(2, 3, 10, 12)).shape == (2, 8, 10, 12)


@pytest.mark.parametrize("widths, size", [((8, 16), 32), ((8, 16, 32), 48), ((4, 8, 16, 32), 16)])
def test_unet_output_has_the_input_size(widths, size):
    model = UNet(in_channels=3, out_channels=2, widths=widths)
    assert model(torch.zeros(2, 3, size, size)).shape == (2, 2, size, size)


def test_unet_skip_connections_carry_fine_detail():
    # With the expanding path's input zeroed, the output still depends on the input through
    # the skips.
    torch.manual_seed(0)
    model = UNet(widths=(4, 8)).eval()
    model.bottom = torch.nn.Conv2d(4, 8, 1)
    with torch.no_grad():
        model.bottom.weight.zero_()
        model.bottom.bias.zero_()
        a, b = model(torch.zeros(1, 3, 16, 16)), model(torch.ones(1, 3, 16, 16))
    assert not torch.allclose(a, b)


def test_unet_errors():
    with pytest.raises(ValueError, match="divisible by 4"):
        UNet(widths=(4, 8, 16))(torch.zeros(1, 3, 30, 30))
    with pytest.raises(ValueError, match="at least two widths"):
        UNet(widths=(8,))
    with pytest.raises(ValueError, match="positive integer channel counts"):
        UNet(in_channels=0)


def test_dice_and_iou_hand_counted():
    pred = torch.zeros(4, 4, dtype=torch.bool)
    true = torch.zeros(4, 4, dtype=torch.bool)
    pred[:2, :2] = True  # 4 pixels
    true[:2, :3] = True  # 6 pixels, 4 shared
    assert dice(pred, true).item() == pytest.approx(2 * 4 / (4 + 6))
    assert iou(pred, true).item() == pytest.approx(4 / 6)
    empty = torch.zeros(4, 4, dtype=torch.bool)
    assert dice(empty, empty).item() == 1.0 and iou(empty, empty).item() == 1.0
    assert dice(pred, empty).item() == 0.0 and iou(pred, empty).item() == 0.0


def test_dice_is_pixel_f1_and_iou_is_jaccard_per_mask():
    g = torch.Generator().manual_seed(0)
    pred, true = torch.rand(5, 12, 12, generator=g) > 0.5, torch.rand(5, 12, 12, generator=g) > 0.4
    d, j = dice(pred, true), iou(pred, true)
    assert d.shape == (5,)
    for k in range(5):
        assert d[k].item() == pytest.approx(
            f1_score(true[k].flatten(), pred[k].flatten()), abs=1e-6
        )
        assert j[k].item() == pytest.approx(
            jaccard_score(true[k].flatten(), pred[k].flatten()), abs=1e-6
        )
    torch.testing.assert_close(d, 2 * j / (1 + j))  # the identity that links the two scores


def test_mask_errors():
    with pytest.raises(TypeError, match="bool mask tensor"):
        dice(torch.zeros(3, 3), torch.zeros(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="same shape"):
        iou(torch.zeros(3, 3, dtype=torch.bool), torch.zeros(3, 4, dtype=torch.bool))


def test_soft_dice_loss_hand_case_and_error():
    target = torch.tensor([[[1.0, 0.0]]])
    logits = torch.tensor([[[0.0, 0.0]]])  # probabilities 0.5 and 0.5
    expected = 1 - (2 * 0.5 + 1) / (1.0 + 1.0 + 1)
    assert soft_dice_loss(logits, target).item() == pytest.approx(expected)
    assert soft_dice_loss(
        torch.full((2, 3, 3), -30.0), torch.zeros(2, 3, 3)
    ).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        soft_dice_loss(torch.zeros(1, 2, 2), torch.zeros(1, 3, 3))


def test_new_bad_input_messages():
    with pytest.raises(TypeError, match="expected an integer c_in, got '3'"):
        double_conv("3", 8)
    with pytest.raises(
        ValueError,
        match=r"expected images \(B, 3, H, W\) with H and W divisible by 2, got \(2, 1, 16, 16\)",
    ):
        UNet(widths=(4, 8))(torch.zeros(2, 1, 16, 16))
    with pytest.raises(TypeError, match="expected images as a tensor"):
        UNet(widths=(4, 8))([[0.0]])
    with pytest.raises(
        ValueError, match=r"expected logits of shape \(B, 1, H, W\) or \(B, H, W\), got \(4,\)"
    ):
        soft_dice_loss(torch.zeros(4), torch.zeros(4))
    with pytest.raises(TypeError, match="expected a number for eps, got 'a'"):
        soft_dice_loss(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2), eps="a")
