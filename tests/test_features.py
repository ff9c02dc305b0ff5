"""Tests of visionbook.features: hooks that always go away, top inputs found by hand, patches."""

import pytest
import torch
from torch import nn

from visionbook.conv import receptive_fields
from visionbook.features import capture, receptive_field_patches, to_unit_range, top_activating


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(8, 2)
    )


def test_capture_records_the_same_tensors_as_a_manual_forward():
    net, x = _net(), torch.rand(2, 1, 8, 8)
    with capture({"relu": net[1], "conv2": net[3]}) as maps:
        out = net(x)
    assert torch.equal(maps["relu"].activations, net[1](net[0](x)))
    assert torch.equal(maps["conv2"].activations, net[:4](x))
    assert torch.equal(out, net(x))
    assert all(len(m._forward_hooks) == 0 for m in net)


def test_capture_removes_its_hooks_and_keeps_the_exception():
    net = _net()
    with pytest.raises(RuntimeError, match="boom"), capture({"a": net[0], "b": net[3]}):
        raise RuntimeError("boom")
    assert all(len(m._forward_hooks) == 0 for m in net)


def test_capture_errors():
    with pytest.raises(TypeError, match="expected a non-empty mapping of names to layers, got list"):
        with capture([nn.ReLU()]):
            pass
    with pytest.raises(TypeError, match="expected an nn.Module layer, got str"):
        with capture({"a": "conv1"}):
            pass


def test_top_activating_by_hand():
    # An identity "network": the feature map is the image; each image has one bright pixel.
    X = torch.zeros(5, 2, 4, 4)
    bright = [(0, 1, 2, 0.5), (1, 3, 3, 0.9), (2, 0, 1, 0.1), (3, 2, 0, 0.7), (4, 1, 1, 0.3)]
    for n, i, j, v in bright:
        X[n, 0, i, j] = v
        X[n, 1, j, i] = 1.0 - v
    net = nn.Sequential(nn.Identity())
    values, indices, positions = top_activating(net, net[0], X, k=3, batch_size=2)
    assert indices.tolist() == [[1, 3, 0], [2, 4, 0]]
    assert torch.allclose(values, torch.tensor([[0.9, 0.7, 0.5], [0.9, 0.7, 0.5]]))
    assert positions[0].tolist() == [[3, 3], [2, 0], [1, 2]]
    assert positions[1].tolist() == [[1, 0], [1, 1], [2, 1]]


def test_top_activating_agrees_with_a_full_forward_and_restores_training_mode():
    net, x = _net(), torch.rand(30, 1, 8, 8)
    net.train()
    values, indices, positions = top_activating(net, net[3], x, k=4, batch_size=7)
    assert net.training
    maps = net[:4](x)  # (30, 2, 2, 2)
    best = maps.flatten(2).amax(2)  # (30, 2)
    ref_values, ref_indices = best.T.topk(4, dim=1)
    assert torch.equal(indices, ref_indices) and torch.allclose(values, ref_values)
    for c in range(2):
        for v, n, (i, j) in zip(values[c], indices[c], positions[c]):
            assert maps[n, c, i, j] == v


def test_top_activating_errors():
    net = _net()
    with pytest.raises(ValueError, match="expected an integer k between 1 and the number of inputs 3, got 4"):
        top_activating(net, net[0], torch.rand(3, 1, 8, 8), k=4)
    with pytest.raises(ValueError, match=r"expected the layer's output of shape \(N, C, h, w\), got \(3, 2\)"):
        top_activating(net, net[5], torch.rand(3, 1, 8, 8), k=2)


def test_receptive_field_patches_match_the_input_a_unit_sees():
    net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3))
    rf = receptive_fields(net)[-1]
    assert (rf["rf"], rf["jump"], rf["start"]) == (8, 2, 2.5)
    images = torch.arange(2 * 12 * 12, dtype=torch.float32).view(2, 1, 12, 12)
    patches = receptive_field_patches(images, torch.tensor([[1, 2], [0, 0]]), rf)
    assert patches.shape == (2, 1, 8, 8)
    assert torch.equal(patches[0, 0], images[0, 0, 1:9, 3:11])  # top = 2.5 + 2 * 1 - 3.5 = 1, left = 3
    assert torch.equal(patches[1, 0, 1:, 1:], images[1, 0, :7, :7]) and patches[1, 0, 0].abs().sum() == 0


def test_receptive_field_patches_errors():
    with pytest.raises(ValueError, match=r"expected images \(N, C, H, W\) and positions \(N, 2\), got \(1, 4, 4\) and \(1, 2\)"):
        receptive_field_patches(torch.zeros(1, 4, 4), torch.zeros(1, 2, dtype=torch.long), {"rf": 3, "jump": 1, "start": 0.0})
    with pytest.raises(ValueError, match="expected a receptive field aligned with the pixel grid, got start 0.5 and size 3"):
        receptive_field_patches(torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, dtype=torch.long), {"rf": 3, "jump": 2, "start": 0.5})


def test_to_unit_range():
    maps = torch.randn(3, 2, 5, 5)
    scaled = to_unit_range(maps)
    assert torch.allclose(scaled.flatten(-2).amin(-1), torch.zeros(3, 2)) and torch.allclose(
        scaled.flatten(-2).amax(-1), torch.ones(3, 2)
    )
    assert torch.allclose(scaled[1, 0], (maps[1, 0] - maps[1, 0].min()) / (maps[1, 0].max() - maps[1, 0].min()))
    with pytest.raises(ValueError, match=r"expected maps of shape \(\.\.\., H, W\), got \(4,\)"):
        to_unit_range(torch.zeros(4))
