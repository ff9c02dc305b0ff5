"""visionbook.models: output shapes and parameter counts checked by hand."""

import pytest
import torch
from torch import nn

from visionbook.models import conv_block, digits_cnn, lenet, mlp, small_cnn


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_mlp_shapes_and_parameters():
    model = mlp(784, (128, 64), 10)
    assert model(torch.zeros(5, 1, 28, 28)).shape == (5, 10)
    # (784*128 + 128) + (128*64 + 64) + (64*10 + 10) = 100,480 + 8,256 + 650
    assert _params(model) == 109_386


def test_mlp_without_hidden_layers_is_logistic_regression():
    model = mlp(64, (), 10)
    assert [type(m) for m in model] == [nn.Flatten, nn.Linear]
    assert _params(model) == 64 * 10 + 10


def test_mlp_uses_the_activation_given():
    model = mlp(4, [3, 3], 2, activation=nn.Tanh)
    assert [type(m).__name__ for m in model] == [
        "Flatten",
        "Linear",
        "Tanh",
        "Linear",
        "Tanh",
        "Linear",
    ]


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((0, (8,), 10), ValueError, "expected positive integer widths, got in_features=0"),
        ((784, (8, 0), 10), ValueError, r"hidden=\(8, 0\)"),
        ((784, (8,), 0), ValueError, "num_classes=0"),
        ((784, (8.5,), 10), ValueError, "expected positive integer widths"),
        ((784, 128, 10), TypeError, "expected hidden as a sequence of widths such as"),
    ],
)
def test_mlp_bad_arguments(args, error, message):
    with pytest.raises(error, match=message):
        mlp(*args)


def test_lenet_shapes():
    model = lenet()
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    # conv with padding 2 keeps 28x28, pool halves
    assert model[:3](torch.zeros(1, 1, 28, 28)).shape == (1, 6, 14, 14)
    # 5x5 conv: 14 -> 10, pool -> 5
    assert model[:6](torch.zeros(1, 1, 28, 28)).shape == (1, 16, 5, 5)
    assert lenet(num_classes=4, in_channels=3)(torch.zeros(2, 3, 28, 28)).shape == (2, 4)


def test_lenet_has_the_classic_parameter_count():
    # conv1  1 -> 6, 5x5:   1*6*25 + 6     =    156
    # conv2  6 -> 16, 5x5:  6*16*25 + 16   =  2,416
    # fc1    400 -> 120:    400*120 + 120  = 48,120
    # fc2    120 -> 84:     120*84 + 84    = 10,164
    # fc3    84 -> 10:      84*10 + 10     =    850
    #                                 total = 61,706
    assert _params(lenet(num_classes=10, width=1)) == 61_706
    # three input channels add 2*6*25 = 300 weights to conv1
    assert _params(lenet(in_channels=3)) == 62_006


def test_lenet_width_multiplies_channels_and_units():
    # width 2: conv 1->12 (312), conv 12->32 (9,632), 800->240 (192,240), 240->168 (40,488),
    # 168->10 (1,690)
    assert _params(lenet(width=2)) == 312 + 9_632 + 192_240 + 40_488 + 1_690
    assert lenet(width=2)(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


@pytest.mark.parametrize(
    "kwargs",
    [{"num_classes": 0}, {"in_channels": 0}, {"width": 0}, {"width": 1.5}, {"num_classes": True}],
)
def test_lenet_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="expected positive integers, got num_classes="):
        lenet(**kwargs)


def test_conv_block_halves_the_image():
    block = conv_block(3, 8)
    assert block(torch.zeros(2, 3, 16, 12)).shape == (2, 8, 8, 6)
    # no conv bias (BatchNorm has one), BatchNorm's weight and bias
    assert _params(block) == 3 * 8 * 9 + 2 * 8


def test_small_cnn_shapes_and_parameters():
    model = small_cnn(5)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 5)
    # global average pooling: any size that survives 3 halvings
    assert model(torch.zeros(2, 3, 64, 48)).shape == (2, 5)
    assert model[-4](model[:-4](torch.zeros(1, 3, 32, 32))).shape == (1, 64, 4, 4)
    # blocks 3->16, 16->32, 32->64 (3x3 conv without bias + BatchNorm) and a 64->5 linear layer
    assert _params(model) == (3 * 16 * 9 + 32) + (16 * 32 * 9 + 64) + (32 * 64 * 9 + 128) + (
        64 * 5 + 5
    )


def test_small_cnn_features_layer_is_the_last_conv_block():
    model = small_cnn(10, in_channels=1, channels=(8, 16))
    assert isinstance(model[-3], nn.AdaptiveAvgPool2d) and isinstance(model[-4], nn.Sequential)
    assert isinstance(model[-4][0], nn.Conv2d) and model[-4][0].out_channels == 16
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"num_classes": 0}, ValueError),
        ({"num_classes": 3, "channels": ()}, ValueError),
        ({"num_classes": 3, "channels": (8, -1)}, ValueError),
        ({"num_classes": 3, "in_channels": 0}, ValueError),
        ({"num_classes": 3, "channels": 16}, TypeError),
    ],
)
def test_small_cnn_bad_arguments(kwargs, error):
    with pytest.raises(error, match="expected"):
        small_cnn(**kwargs)


def test_conv_block_bad_arguments():
    with pytest.raises(
        ValueError, match="expected positive integer channel counts, got c_in='3' and c_out=8"
    ):
        conv_block("3", 8)


def test_conv_block_kernel_size_keeps_the_size_before_pooling():
    block = conv_block(1, 4, kernel_size=5)
    assert block[0].kernel_size == (5, 5) and block[0].padding == (2, 2)
    assert block(torch.zeros(2, 1, 28, 28)).shape == (2, 4, 14, 14)
    for bad in (4, 0, 2.0):
        with pytest.raises(ValueError, match=f"expected an odd positive kernel_size, got {bad!r}"):
            conv_block(1, 4, kernel_size=bad)


def test_digits_cnn_shapes_trunk_and_parameter_count():
    model = digits_cnn(5, (8, 16, 32), 64)
    x = torch.zeros(3, 1, 28, 28)
    assert model(x).shape == (3, 5)
    assert model[:3](x).shape == (3, 32, 3, 3) and model[:4](x).shape == (3, 288)
    assert model[:-1](x).shape == (3, 64) and isinstance(model[-2], nn.ReLU)
    # convs without bias + BatchNorm (2 per channel), then 288 -> 64 -> 5
    convs = 1 * 8 * 25 + 8 * 16 * 9 + 16 * 32 * 9
    expected = convs + 2 * (8 + 16 + 32) + (288 * 64 + 64) + (64 * 5 + 5)
    assert sum(p.numel() for p in model.parameters()) == expected


@pytest.mark.parametrize(
    "args, got",
    [((10, (8, 16)), r"\(8, 16\)"), ((10, 16), "16"), ((0,), r"\(16, 32, 64\), 128, 0")],
)
def test_digits_cnn_bad_arguments(args, got):
    with pytest.raises(
        ValueError,
        match=f"expected 3 positive channels, hidden >= 1 and num_classes >= 1, got {got}",
    ):
        digits_cnn(*args)
