"""Tests of visionbook.features: hooks that always go away, top inputs found by hand, patches."""

import pytest
import torch
from torch import nn

from visionbook.conv import receptive_fields
from visionbook.features import (
    capture,
    edges_and_gratings,
    gradient_receptive_fields,
    orientation_share,
    receptive_field_patches,
    to_unit_range,
    top_activating,
    top_activating_layers,
)


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(3, 2, 3),
        nn.Flatten(),
        nn.Linear(8, 2),
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
    with pytest.raises(
        TypeError, match="expected a non-empty mapping of names to layers, got list"
    ):
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
    with pytest.raises(
        ValueError, match="expected an integer k between 1 and the number of inputs 3, got 4"
    ):
        top_activating(net, net[0], torch.rand(3, 1, 8, 8), k=4)
    with pytest.raises(
        ValueError, match=r"expected the layer's output of shape \(N, C, h, w\), got \(3, 2\)"
    ):
        top_activating(net, net[5], torch.rand(3, 1, 8, 8), k=2)


def test_receptive_field_patches_match_the_input_a_unit_sees():
    net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3))
    rf = receptive_fields(net)[-1]
    assert (rf["rf"], rf["jump"], rf["start"]) == (8, 2, 2.5)
    images = torch.arange(2 * 12 * 12, dtype=torch.float32).view(2, 1, 12, 12)
    patches = receptive_field_patches(images, torch.tensor([[1, 2], [0, 0]]), rf)
    assert patches.shape == (2, 1, 8, 8)
    # top = 2.5 + 2 * 1 - 3.5 = 1, left = 3
    assert torch.equal(patches[0, 0], images[0, 0, 1:9, 3:11])
    assert (
        torch.equal(patches[1, 0, 1:, 1:], images[1, 0, :7, :7])
        and patches[1, 0, 0].abs().sum() == 0
    )


def test_receptive_field_patches_errors():
    with pytest.raises(
        TypeError, match="expected tensors images and positions, got list and Tensor"
    ):
        receptive_field_patches(
            [[0.0]], torch.zeros(1, 2, dtype=torch.long), {"rf": 3, "jump": 1, "start": 0.0}
        )
    with pytest.raises(
        TypeError, match="expected rf, a mapping with keys rf, jump and start, got {'rf': 3}"
    ):
        receptive_field_patches(
            torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, dtype=torch.long), {"rf": 3}
        )
    with pytest.raises(
        ValueError,
        match=(
            r"expected images \(N, C, H, W\) and positions \(N, 2\), got \(1, 4, 4\) and \(1, 2\)"
        ),
    ):
        receptive_field_patches(
            torch.zeros(1, 4, 4),
            torch.zeros(1, 2, dtype=torch.long),
            {"rf": 3, "jump": 1, "start": 0.0},
        )
    with pytest.raises(
        ValueError,
        match="expected a receptive field aligned with the pixel grid, got start 0.5 and size 3",
    ):
        receptive_field_patches(
            torch.zeros(1, 1, 4, 4),
            torch.zeros(1, 2, dtype=torch.long),
            {"rf": 3, "jump": 2, "start": 0.5},
        )


def test_to_unit_range():
    maps = torch.randn(3, 2, 5, 5)
    scaled = to_unit_range(maps)
    assert torch.allclose(scaled.flatten(-2).amin(-1), torch.zeros(3, 2)) and torch.allclose(
        scaled.flatten(-2).amax(-1), torch.ones(3, 2)
    )
    assert torch.allclose(
        scaled[1, 0], (maps[1, 0] - maps[1, 0].min()) / (maps[1, 0].max() - maps[1, 0].min())
    )
    with pytest.raises(ValueError, match=r"expected maps of shape \(\.\.\., H, W\), got \(4,\)"):
        to_unit_range(torch.zeros(4))


def test_top_activating_layers_agrees_with_top_activating_in_one_pass():
    net, x = _net(), torch.rand(30, 1, 8, 8)
    calls = []
    net[0].register_forward_hook(lambda *args: calls.append(1))
    tops = top_activating_layers(net, {"relu": net[1], "conv2": net[3]}, x, k=3, batch_size=10)
    assert len(calls) == 3  # one pass over the 30 inputs, in batches of 10
    for name, layer in (("relu", net[1]), ("conv2", net[3])):
        for ours, reference in zip(tops[name], top_activating(net, layer, x, k=3)):
            assert torch.equal(ours, reference)


def test_top_activating_layers_border_by_hand():
    # One channel; image 0 is brightest on the border, image 1 inside it.
    X = torch.zeros(2, 1, 5, 5)
    X[0, 0, 0, 2], X[0, 0, 2, 2] = 9.0, 1.0
    X[1, 0, 3, 1] = 5.0
    net = nn.Sequential(nn.Identity())
    values, indices, positions = top_activating_layers(net, {"id": net[0]}, X, k=2)["id"]
    assert values.tolist() == [[9.0, 5.0]] and positions[0].tolist() == [[0, 2], [3, 1]]
    values, indices, positions = top_activating_layers(net, {"id": net[0]}, X, k=2, border=1)["id"]
    assert values.tolist() == [[5.0, 1.0]] and indices.tolist() == [[1, 0]]
    assert positions[0].tolist() == [[3, 1], [2, 2]]  # in the coordinates of the whole map


def test_top_activating_layers_errors():
    net = _net()
    with pytest.raises(
        ValueError, match=r"expected a batch of inputs X of shape \(N, \.\.\.\), got \(4,\)"
    ):
        top_activating_layers(net, {"a": net[0]}, torch.rand(4), k=1)
    with pytest.raises(
        ValueError, match="expected a batch of inputs X of shape \\(N, \\.\\.\\.\\), got list"
    ):
        top_activating(net, net[0], [[0.0, 1.0]], k=1)
    with pytest.raises(ValueError, match="expected a non-negative integer border, got -1"):
        top_activating_layers(net, {"a": net[0]}, torch.rand(3, 1, 8, 8), k=1, border=-1)
    with pytest.raises(
        ValueError, match="expected a border that leaves units inside the 2x2 feature map, got 1"
    ):
        top_activating_layers(net, {"a": net[3]}, torch.rand(3, 1, 8, 8), k=1, border=1)
    with pytest.raises(
        ValueError, match=r"expected the layer's output of shape \(N, C, h, w\), got \(3, 2\)"
    ):
        top_activating_layers(net, {"a": net[0], "b": net[5]}, torch.rand(3, 1, 8, 8), k=1)


def _ones_chain() -> nn.Sequential:
    net = nn.Sequential(
        nn.Conv2d(1, 1, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(1, 1, 3, stride=2, padding=1),
        nn.Conv2d(1, 1, 3),
    )
    for conv in (net[0], net[2], net[3]):
        nn.init.ones_(conv.weight), nn.init.zeros_(conv.bias)
    return net


def test_gradient_receptive_fields_match_the_formula():
    net = _ones_chain()
    net.train()
    rows = gradient_receptive_fields(
        net, {"a": net[0], "b": net[2], "c": net[3]}, torch.rand(1, 1, 32, 32)
    )
    assert net.training  # restored
    formula = receptive_fields(net)
    for row, ref in zip(rows, (formula[0], formula[2], formula[3])):
        assert (row["rf"], row["jump"], row["start"]) == (ref["rf"], ref["jump"], ref["start"])
        assert not row["clipped"]
    assert [r["rf"] for r in rows] == [3, 5, 9]


def test_gradient_receptive_fields_effective_by_hand():
    # Two 3x3 convolutions of ones: the gradient is the outer product of (1, 2, 3, 2, 1) with
    # itself, 81 in all; the central 3x3 holds 7 * 7 = 49, the central 1x1 holds 9.
    net = nn.Sequential(
        nn.Conv2d(1, 1, 3, padding=1, bias=False), nn.Conv2d(1, 1, 3, padding=1, bias=False)
    )
    for conv in net:
        nn.init.ones_(conv.weight)
    x = torch.rand(1, 1, 11, 11)
    assert gradient_receptive_fields(net, {"b": net[1]}, x)[0]["effective"] == 5  # 49 / 81 < 0.9
    # 49 / 81 >= 0.6
    assert gradient_receptive_fields(net, {"b": net[1]}, x, mass=0.6)[0]["effective"] == 3
    # 9 / 81 >= 0.1
    assert gradient_receptive_fields(net, {"b": net[1]}, x, mass=0.1)[0]["effective"] == 1


def test_gradient_receptive_fields_clipped_by_a_small_input():
    net = _ones_chain()
    row = gradient_receptive_fields(net, {"c": net[3]}, torch.rand(1, 1, 8, 8))[0]
    assert row["clipped"] and row["rf"] == 8


def test_gradient_receptive_fields_errors():
    net = _ones_chain()
    with pytest.raises(
        ValueError, match=r"expected one input of shape \(1, C, H, W\), got \(2, 1, 8, 8\)"
    ):
        gradient_receptive_fields(net, {"a": net[0]}, torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"expected mass in \(0, 1\], got 1.5"):
        gradient_receptive_fields(net, {"a": net[0]}, torch.rand(1, 1, 8, 8), mass=1.5)
    nn.init.zeros_(net[0].weight)
    with pytest.raises(
        ValueError,
        match="expected the centre unit to depend on the input, got a zero gradient everywhere",
    ):
        gradient_receptive_fields(net, {"a": net[0]}, torch.rand(1, 1, 8, 8))


def test_orientation_share_by_hand():
    edge = torch.zeros(1, 3, 6, 6)
    edge[..., 3:] = 1.0  # a vertical edge: every gradient horizontal
    # a ramp: gx = gy = 1 everywhere
    diagonal = (torch.arange(6.0).view(6, 1) + torch.arange(6.0)).view(1, 1, 6, 6)
    dot = torch.zeros(1, 1, 3, 3)
    # gx = [[0, 0], [1, -1]], gy = [[0, 1], [0, -1]]: J = [[2, 1], [1, 2]], eigenvalues 3 and 1
    dot[0, 0, 1, 1] = 1.0
    shares = [orientation_share(x).item() for x in (edge, diagonal, dot, torch.ones(1, 2, 4, 4))]
    assert shares == pytest.approx([1.0, 1.0, 0.75, 0.5])
    with pytest.raises(
        ValueError,
        match=r"expected images of shape \(N, C, H, W\) with H, W >= 2, got \(1, 1, 1, 5\)",
    ):
        orientation_share(torch.zeros(1, 1, 1, 5))


def test_edges_and_gratings():
    stimuli = edges_and_gratings(16, periods=(4, 8), orientations=4)
    assert stimuli.shape == (2 * 4 + 4 * 4, 3, 16, 16) and stimuli.min() >= 0 and stimuli.max() <= 1
    # period 4, angle 0: constant down each column, repeating every 4 columns
    vertical = stimuli[0, 0]
    assert torch.allclose(vertical, vertical[:1].expand(16, -1))
    assert torch.allclose(vertical[:, :-4], vertical[:, 4:], atol=1e-6)
    assert torch.equal(stimuli[0, 0], stimuli[0, 2])  # grey
    red_cyan = stimuli[8 + 4]  # second colour pair, angle 0: red left of the centre, cyan right
    assert red_cyan[:, 0, 0].tolist() == [1.0, 0.0, 0.0] and red_cyan[:, 0, -1].tolist() == [
        0.0,
        1.0,
        1.0,
    ]
    with pytest.raises(ValueError, match="expected an integer size of at least 2, got 1"):
        edges_and_gratings(1)
    with pytest.raises(
        ValueError, match="expected a positive integer number of orientations, got 0"
    ):
        edges_and_gratings(8, orientations=0)
    with pytest.raises(ValueError, match=r"expected positive grating periods, got \(4, 0\)"):
        edges_and_gratings(8, periods=(4, 0))
    with pytest.raises(
        ValueError,
        match=r"expected pairs of RGB colours in \[0, 1\], of shape \(n, 2, 3\), got \(1, 3\)",
    ):
        edges_and_gratings(8, colours=[(0, 0, 1)])
