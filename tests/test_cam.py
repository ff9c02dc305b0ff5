"""Grad-CAM against Captum and by hand; saliency; the localisation and faithfulness metrics."""

import pytest
import torch
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn

from visionbook.cam import (
    ClassTarget,
    PerImageTarget,
    area_under,
    cascading_randomization,
    deletion_insertion,
    grad_cam,
    guided_backprop,
    guided_grad_cam,
    guided_relus,
    mass_in_box,
    pointing_game,
    record,
    resnet18_imagenet,
    saliency,
    smoothgrad,
    sobel_edges,
    spearman,
    top_k_grad_cams,
)


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
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
    # Features A (1, 2, 2, 2) -> global average -> linear w: dscore/dA_k = w_k / 4 at every
    # position, so the weights are w_k / 4 and the map is relu(sum_k w_k / 4 * A_k).
    conv = nn.Conv2d(1, 2, 1, bias=False)
    conv.weight.data = torch.tensor([[[[1.0]]], [[[-1.0]]]])
    head = nn.Linear(2, 1, bias=False)
    head.weight.data = torch.tensor([[2.0, 1.0]])
    model = nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)
    x = torch.tensor([[[[1.0, -2.0], [3.0, 0.5]]]])
    expected = torch.relu(2 / 4 * x[0, 0] + 1 / 4 * (-x[0, 0]))
    torch.testing.assert_close(
        grad_cam(model, conv, x, ClassTarget(0), upsample=False)[0], expected
    )


def test_grad_cam_leaves_parameter_gradients_alone_and_rejects_an_unused_layer():
    model, x = _model(), torch.rand(2, 3, 8, 8)
    grad_cam(model, model[2], x, ClassTarget(1))
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="forward pass runs, got an unused Conv2d"):
        grad_cam(model, nn.Conv2d(3, 3, 1), x, ClassTarget(0))
    assert not model[2]._forward_hooks


def test_record_leaves_no_hook_on_the_output_so_nothing_waits_for_the_garbage_collector():
    import gc
    import weakref

    conv = nn.Conv2d(1, 2, 3)
    gc.disable()
    try:
        with record(conv) as rec:
            conv(torch.ones(1, 1, 4, 4, requires_grad=True)).sum().backward()
        assert rec.gradients.shape == (1, 2, 2, 2) and not rec.activations._backward_hooks
        output = weakref.ref(rec.activations)
        del rec
        assert output() is None  # freed by reference counting: no cycle through a hook
    finally:
        gc.enable()


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
    torch.testing.assert_close(
        smoothgrad(model, x, ClassTarget(1), samples=3, sigma=0.0),
        saliency(model, x, ClassTarget(1)),
    )
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        saliency(model, torch.rand(3, 8, 8), ClassTarget(0))


def test_pointing_game_and_mass_in_box_on_constructed_maps():
    maps = torch.zeros(3, 8, 8)
    maps[0, 2, 3] = 1.0  # inside the box
    maps[1, 7, 7] = 1.0  # outside
    maps[2] = 1.0  # constant: points nowhere, even though the box holds the centre
    boxes = torch.tensor([[2, 1, 5, 4]] * 3)
    assert pointing_game(maps, boxes).tolist() == [True, False, False]
    plateau = torch.zeros(2, 8, 8)
    plateau[:, :4, :4] = 2.0  # tied maxima: their centroid is (x, y) = (2, 2)
    plateau[1, 0, 0] = 3.0  # a single maximum in the corner
    assert pointing_game(plateau, torch.tensor([[1, 1, 5, 5]] * 2)).tolist() == [True, False]
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


def test_spearman_averages_tied_ranks_like_scipy():
    from scipy.stats import spearmanr

    a = torch.tensor([[0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 5.0, 0.0]])
    b = torch.tensor([[3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]])
    assert spearman(a, b).item() == pytest.approx(spearmanr(a[0], b[0]).statistic, abs=1e-6)
    # a constant map has no ranking
    assert spearman(torch.zeros(1, 9), torch.rand(1, 9)).item() == 0.0


def test_guided_backprop_and_guided_grad_cam_match_captum():
    from captum.attr import GuidedBackprop, GuidedGradCam

    model, x = _model(1), torch.rand(4, 3, 10, 10)
    for cls in range(3):
        ours = guided_backprop(model, x, ClassTarget(cls))
        torch.testing.assert_close(
            ours, GuidedBackprop(model).attribute(x, target=cls), atol=1e-6, rtol=1e-5
        )
        ours = guided_grad_cam(model, model[2], x, ClassTarget(cls))
        theirs = GuidedGradCam(model, model[2]).attribute(
            x, target=cls, interpolate_mode="bilinear"
        )
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)
    assert not any(m._backward_hooks for m in model.modules())


def test_guided_rule_by_hand():
    # y = sum(relu(x) * w): the plain gradient is w where x > 0; the guided one also drops
    # negative w.
    x = torch.tensor([[1.0, -1.0, 2.0, 3.0]])
    w = torch.tensor([2.0, 5.0, -3.0, 1.0])
    model = nn.Sequential(nn.ReLU())
    grad = guided_backprop(
        model, x.view(1, 1, 1, 4), lambda out: (out.view(1, 4) * w).sum(1, keepdim=True)[:, 0]
    )
    assert grad.view(4).tolist() == [2.0, 0.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="nn.ReLU modules"), guided_relus(nn.Linear(2, 2)):
        pass
    with pytest.raises(TypeError, match="nn.Module"), guided_relus(lambda t: t):
        pass
    with pytest.raises(RuntimeError, match="boom"), guided_relus(model):
        raise RuntimeError("boom")
    assert not model[0]._backward_hooks


def test_sobel_edges_by_hand():
    step = torch.zeros(1, 3, 5, 5)
    step[..., 3:] = 1.0  # a vertical edge between columns 2 and 3
    edges = sobel_edges(step)[0]
    assert edges[:, 2].tolist() == [4.0] * 5 and edges[:, 3].tolist() == [4.0] * 5
    assert edges[:, [0, 1, 4]].abs().max().item() == 0.0
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        sobel_edges(step[0])


def test_cascading_randomization_top_down_and_original_untouched():
    model = _model(2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    steps = list(cascading_randomization(model, ["7", "2", "0"], seed=3))
    assert [name for name, _ in steps] == ["7", "2", "0"]
    changed = [
        [
            not torch.equal(m.state_dict()[k], before[k])
            for k in ("7.weight", "2.weight", "0.weight")
        ]
        for _, m in steps
    ]
    assert changed == [[True, False, False], [True, True, False], [True, True, True]]
    # cumulative: earlier randomisations kept
    assert torch.equal(steps[0][1][7].weight, steps[2][1][7].weight)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    again = list(cascading_randomization(model, ["7"], seed=3))
    assert torch.equal(again[0][1][7].weight, steps[0][1][7].weight)  # seeded
    with pytest.raises(ValueError, match=r"unknown: \['9'\]"):
        list(cascading_randomization(model, ["7", "9"]))


def test_resnet18_top_k_grad_cams_with_random_weights():
    torch.manual_seed(0)
    model = resnet18_imagenet(pretrained=False)
    image = torch.rand(3, 120, 150)
    out = top_k_grad_cams(model, image, k=3)
    assert out.image.shape == (3, 224, 224) and out.maps.shape == (3, 224, 224)
    assert out.probabilities.shape == (3,) and bool(
        (out.probabilities[:-1] >= out.probabilities[1:]).all()
    )
    from torchvision.models import ResNet18_Weights

    x = ResNet18_Weights.DEFAULT.transforms()(image).unsqueeze(0)
    with torch.no_grad():
        probs = model(x).softmax(1)[0]
    assert out.classes.tolist() == probs.topk(3).indices.tolist()
    assert out.names == [
        ResNet18_Weights.DEFAULT.meta["categories"][i] for i in out.classes.tolist()
    ]
    for j, cls in enumerate(out.classes.tolist()):
        theirs = LayerGradCam(model, model.layer4).attribute(x, target=cls, relu_attributions=True)
        theirs = LayerAttribution.interpolate(theirs, (224, 224), interpolate_mode="bilinear")[0, 0]
        torch.testing.assert_close(out.maps[j], theirs, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match=r"RGB image \(3, H, W\)"):
        top_k_grad_cams(model, image[:1])
    with pytest.raises(ValueError, match="1 <= k <= 1000"):
        top_k_grad_cams(model, image, k=0)


def test_resnet18_imagenet_loads_the_weights_through_the_one_cache(tmp_path, monkeypatch):
    from torchvision.models import ResNet18_Weights

    from visionbook import data
    from visionbook.data import DataUnavailableError

    monkeypatch.setenv("VISIONBOOK_HOME", str(tmp_path))
    monkeypatch.setenv("VISIONBOOK_OFFLINE", "1")
    path = data.pretrained_path(ResNet18_Weights.DEFAULT)
    with pytest.raises(DataUnavailableError, match=f"VISIONBOOK_OFFLINE=1 .* at {path}"):
        resnet18_imagenet()
    torch.manual_seed(1)
    state = resnet18_imagenet(pretrained=False).state_dict()
    seen = []
    monkeypatch.setattr(data, "pretrained", lambda w: seen.append(w) or state)
    model = resnet18_imagenet()
    assert seen == [ResNet18_Weights.DEFAULT] and not model.training
    assert torch.equal(model.fc.weight, state["fc.weight"])
