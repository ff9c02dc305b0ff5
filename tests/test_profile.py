"""visionbook.profile: parameters, multiply-accumulates (computed by hand) and time per batch."""

import pytest
import torch
from torch import nn

from visionbook.models import lenet
from visionbook.profile import count_macs, count_parameters, layer_table, time_per_batch


def _small() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10)
    )


def test_count_parameters():
    assert count_parameters(nn.Linear(3, 2)) == 3 * 2 + 2
    model = lenet()
    assert count_parameters(model) == 61_706
    model[0].requires_grad_(False)  # freeze the first convolution: 1*6*25 + 6 = 156 parameters
    assert count_parameters(model, trainable_only=True) == 61_706 - 156
    assert count_parameters(model) == 61_706


def test_count_parameters_needs_a_module():
    with pytest.raises(TypeError, match="expected an nn.Module, got list"):
        count_parameters([nn.Linear(2, 2)])


def test_layer_table_rows_by_hand():
    rows = layer_table(_small(), (1, 6, 6))
    assert [(r["layer"], r["type"], r["output"]) for r in rows] == [
        ("0", "Conv2d", (4, 6, 6)),
        ("1", "ReLU", (4, 6, 6)),
        ("2", "Flatten", (144,)),
        ("3", "Linear", (10,)),
    ]
    conv, relu, flatten, linear = rows
    # conv: 4 filters of 1x3x3 plus 4 biases; each of the 4*6*6 = 144 outputs takes 3*3*1 = 9 MACs
    assert (conv["params"], conv["macs"]) == (4 * 9 + 4, 144 * 9)
    assert (relu["params"], relu["macs"], flatten["macs"]) == (0, 0, 0)
    # linear: 144 -> 10, each of the 10 outputs takes 144 MACs
    assert (linear["params"], linear["macs"]) == (144 * 10 + 10, 10 * 144)
    assert count_macs(_small(), (1, 6, 6)) == 144 * 9 + 10 * 144


def test_macs_of_strided_and_grouped_convolutions():
    # stride 2 on 8x8 with padding 1: 4x4 outputs per channel; each takes 3*3*(4/2) MACs with
    # 2 groups
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
    assert count_macs(conv, (4, 8, 8)) == (6 * 4 * 4) * (3 * 3 * 2)


def test_macs_of_a_linear_layer_on_a_sequence():
    # (T, F) = (4, 5) -> (4, 3): 12 outputs, 5 MACs each
    assert count_macs(nn.Linear(5, 3), (4, 5)) == 4 * 3 * 5


def test_lenet_macs():
    # conv1 6*28*28 outputs * 25, conv2 16*10*10 * 150, then 400*120 + 120*84 + 84*10
    expected = 6 * 28 * 28 * 25 + 16 * 10 * 10 * 150 + 400 * 120 + 120 * 84 + 84 * 10
    assert count_macs(lenet(), (1, 28, 28)) == expected == 416_520


def test_layer_table_leaves_the_model_as_it_was():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.Dropout(0.5))
    model.train()
    running_mean = model[1].running_mean.clone()
    layer_table(model, (3,))
    assert model.training and all(m.training for m in model)
    # ran in eval mode: no statistics updated
    assert torch.equal(model[1].running_mean, running_mean)
    assert all(not m._forward_hooks for m in model.modules())


def test_layer_table_wrong_input_shape_for_the_model():
    model = lenet()
    model.train()
    with pytest.raises(
        ValueError,
        match=(
            r"the model cannot take an input of shape \(1, 32, 32\) \(with a batch: "
            r"\(1, 1, 32, 32\)\)"
        ),
    ):
        layer_table(model, (1, 32, 32))
    assert model.training and all(not m._forward_hooks for m in model.modules())


@pytest.mark.parametrize(
    "shape", [[1, 28, 28], (), (0, 28, 28), (1, 28.0, 28), (1, True, 28), None]
)
def test_bad_input_shape(shape):
    message = "expected input_shape as a tuple of positive ints without the batch, such as"
    with pytest.raises(ValueError, match=message):
        layer_table(lenet(), shape)
    with pytest.raises(ValueError, match=message):
        count_macs(lenet(), shape)
    with pytest.raises(ValueError, match=message):
        time_per_batch(lenet(), shape)


def test_time_per_batch():
    model = _small()
    model.train()
    seconds = time_per_batch(model, (1, 6, 6), batch_size=4, repeats=3)
    assert isinstance(seconds, float) and 0 < seconds < 5
    assert model.training  # the mode is restored


@pytest.mark.parametrize(("batch_size", "repeats"), [(0, 3), (4, 0), (2.5, 3), (4, -1)])
def test_time_per_batch_bad_counts(batch_size, repeats):
    with pytest.raises(ValueError, match="expected positive integer repeats and batch_size, got"):
        time_per_batch(_small(), (1, 6, 6), batch_size=batch_size, repeats=repeats)
