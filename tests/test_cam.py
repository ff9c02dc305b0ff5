"""Grad-CAM against Captum and by hand; saliency; the localisation and faithfulness metrics."""

import pytest
import torch
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn

from visionbook.cam import (
    ClassTarget,
    PerImageTarget,
    area_under,
    deletion_insertion,
    grad_cam,
    mass_in_box,
    pointing_game,
    record,
    saliency,
    smoothgrad,
    spearman,
)


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3),
    )  # fmt: skip


def test_grad_cam_matches_captum_with_relu_and_bilinear_upsampling():
    model, x = _model(), torch.rand(5, 3, 12, 12)
    for cls in range(3):
        ours = grad_cam(model, model[2], x, ClassTarget(cls))
        theirs = LayerGradCam(model, model[2]).attribute(x, target=cls, relu_attributions=True)
        theirs = LayerAttribution.interpolate(theirs, (12, 12), interpolate_mode="bilinear")[:, 0]
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)


def test_grad_cam_by_hand_for_a_linear_head():
    # Features A (1, 2, 2, 2) -> global average -> linear w: dscore/dA_k = w_k / 4 at every position,
    # so the weights are w_k / 4 and the map is relu(sum_k w_k / 4 * A_k).
    conv = nn.Conv2d(1, 2, 1, bias=False)
    conv.weight.data = torch.tensor([[[[1.0]]], [[[-1.0]]]])
    head = nn.Linear(2, 1, bias=False)
    head.weight.data = torch.tensor([[2.0, 1.0]])
    model = nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)
    x = torch.tensor([[[[1.0, -2.0], [3.0, 0.5]]]])
    expected = torch.relu(2 / 4 * x[0, 0] + 1 / 4 * (-x[0, 0]))
    torch.testing.assert_close(grad_cam(model, conv, x, ClassTarget(0), upsample=False)[0], expected)


def test_hooks_are_removed_even_when_the_block_raises():
    conv = nn.Conv2d(1, 1, 1)
    with pytest.raises(RuntimeError, match="boom"), record(conv):
        raise RuntimeError("boom")
    assert not conv._forward_hooks
    with pytest.raises(TypeError, match="nn.Module"), record("layer"):
        pass


def test_targets():
    logits = torch.tensor([[1.0, 5.0], [7.0, 2.0]])
    assert ClassTarget(0)(logits).tolist() == [1.0, 7.0]
    assert PerImageTarget(torch.tensor([1, 0]))(logits).tolist() == [5.0, 7.0]
    with pytest.raises(ValueError, match="K > 2"):
        ClassTarget(2)(logits)
    with pytest.raises(ValueError, match="N class indices"):
        PerImageTarget(torch.tensor([1]))(logits)


def test_saliency_equals_autograd_and_smoothgrad_without_noise():
    model, x = _model(), torch.rand(2, 3, 8, 8)
    x_ = x.clone().requires_grad_(True)
    model(x_)[:, 1].sum().backward()
    torch.testing.assert_close(saliency(model, x, ClassTarget(1)), x_.grad.abs().amax(1))
    torch.testing.assert_close(smoothgrad(model, x, ClassTarget(1), samples=3, sigma=0.0), saliency(model, x, ClassTarget(1)))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        saliency(model, torch.rand(3, 8, 8), ClassTarget(0))


def test_pointing_game_and_mass_in_box_on_constructed_maps():
    maps = torch.zeros(3, 8, 8)
    maps[0, 2, 3] = 1.0  # inside the box
    maps[1, 7, 7] = 1.0  # outside
    maps[2] = 1.0  # uniform: the first maximum, (0, 0), is outside
    boxes = torch.tensor([[2, 1, 5, 4]] * 3)
    assert pointing_game(maps, boxes).tolist() == [True, False, False]
    assert mass_in_box(maps, boxes).tolist() == pytest.approx([1.0, 0.0, 9 / 64])
    assert mass_in_box(-torch.ones(1, 8, 8), boxes[:1]).tolist() == [0.0]
    with pytest.raises(ValueError, match=r"maps \(N, H, W\) and boxes \(N, 4\)"):
        pointing_game(maps, boxes[:2])


def test_deletion_and_insertion_curves_end_points_and_ordering():
    # A model that reads only the top-left quadrant: deleting it first must kill the score fastest.
    class Corner(nn.Module):
        def forward(self, x):
            s = x[:, :, :4, :4].sum(dim=(1, 2, 3))
            return torch.stack([s, torch.zeros_like(s)], 1)

    x = torch.ones(1, 1, 8, 8)
    good = torch.zeros(1, 8, 8)
    good[0, :4, :4] = 1.0
    bad = 1 - good
    d_good, i_good = deletion_insertion(Corner(), x, good, torch.tensor([0]), steps=4)
    d_bad, _ = deletion_insertion(Corner(), x, bad, torch.tensor([0]), steps=4)
    p_full = torch.softmax(torch.tensor([16.0, 0.0]), 0)[0]
    assert d_good[0, 0] == pytest.approx(p_full.item()) and d_good[0, -1] == pytest.approx(0.5)
    assert i_good[0, 0] == pytest.approx(0.5) and i_good[0, -1] == pytest.approx(p_full.item())
    assert area_under(d_good) < area_under(d_bad)
    with pytest.raises(ValueError, match="expected maps of shape"):
        deletion_insertion(Corner(), x, good[0], torch.tensor([0]))
    with pytest.raises(ValueError, match="one class per image"):
        deletion_insertion(Corner(), x, good, torch.tensor([0, 1]))


def test_area_and_spearman():
    assert area_under(torch.tensor([[1.0, 1.0, 1.0]])).item() == pytest.approx(1.0)
    a = torch.rand(4, 10)
    assert spearman(a, a).tolist() == pytest.approx([1.0] * 4)
    assert spearman(a, -a).tolist() == pytest.approx([-1.0] * 4)
    with pytest.raises(ValueError, match="S >= 2"):
        area_under(torch.ones(1, 1))
    with pytest.raises(ValueError, match="same shape"):
        spearman(a, a[:2])
