"""Tests of visionbook.blocks: shapes, hand-computed parameter counts, agreement with
torchvision."""

import pytest
import torch
from torch import nn
from torchvision.models._utils import _make_divisible
from torchvision.models.convnext import CNBlock
from torchvision.models.convnext import LayerNorm2d as TorchvisionLayerNorm2d
from torchvision.models.densenet import _DenseLayer, _Transition
from torchvision.models.efficientnet import MBConv as TorchvisionMBConv
from torchvision.models.efficientnet import MBConvConfig
from torchvision.models.resnet import BasicBlock as TorchvisionBasicBlock
from torchvision.ops import SqueezeExcitation

from visionbook.blocks import (
    BasicBlock,
    ConvNeXtBlock,
    DenseLayer,
    LayerNorm2d,
    MBConv,
    SqueezeExcite,
    compound_scaling,
    convnext_small,
    dense_block,
    densenet_small,
    depthwise_separable,
    efficientnet_small,
    mobilenet_small,
    resnet_small,
    round_channels,
    round_repeats,
    transition,
    vgg_block,
    vgg_small,
)
from visionbook.profile import count_macs, count_parameters


def copy_by_order(src: nn.Module, dst: nn.Module) -> None:
    """Copy src's parameters and buffers into dst, matching them by position (shapes must agree)."""
    src_state, dst_state = src.state_dict(), dst.state_dict()
    assert len(src_state) == len(dst_state)
    new = {}
    for (_, value), (key, target) in zip(src_state.items(), dst_state.items()):
        assert value.shape == target.shape, key
        new[key] = value
    dst.load_state_dict(new)


def randomise_norms(model: nn.Module) -> None:
    """Give every BatchNorm non-trivial statistics and affine parameters, so eval mode is tested."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g))
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(n, generator=g))
            m.bias.data.copy_(torch.randn(n, generator=g))


def agree(ours: nn.Module, reference: nn.Module, x: torch.Tensor, take=lambda out: out) -> float:
    randomise_norms(reference)
    copy_by_order(reference, ours)
    ours.eval(), reference.eval()
    with torch.no_grad():
        return (take(ours(x)) - reference(x)).abs().max().item()


# --- VGG ------------------------------------------------------------------------------------


def test_vgg_block_shape_and_hand_counted_parameters():
    block = vgg_block(3, 8, num_convs=2)
    assert block(torch.zeros(2, 3, 32, 32)).shape == (2, 8, 16, 16)
    assert count_parameters(block) == (3 * 8 * 9 + 8) + (8 * 8 * 9 + 8)  # 808
    # with BatchNorm the convolutions lose their biases and each BN has a weight and a bias
    # per channel
    assert count_parameters(vgg_block(3, 8, 2, batch_norm=True)) == 3 * 8 * 9 + 8 * 8 * 9 + 2 * (
        2 * 8
    )


def test_vgg_block_macs_by_hand():
    # two convolutions at full 8x8 resolution: out pixels x out channels x (in channels x 9)
    assert count_macs(vgg_block(2, 4), (2, 8, 8)) == 8 * 8 * 4 * (2 * 9) + 8 * 8 * 4 * (4 * 9)


# --- residual blocks ------------------------------------------------------------------------


def test_basic_block_parameters_by_hand():
    # 4672, identity shortcut
    assert count_parameters(BasicBlock(16, 16)) == 2 * 16 * 16 * 9 + 2 * 2 * 16
    projection = 16 * 32 + 2 * 32
    # 14528
    assert (
        count_parameters(BasicBlock(16, 32, stride=2))
        == 16 * 32 * 9 + 32 * 32 * 9 + 2 * 2 * 32 + projection
    )
    assert (
        count_parameters(BasicBlock(16, 32, stride=2, residual=False))
        == 16 * 32 * 9 + 32 * 32 * 9 + 2 * 2 * 32
    )


def test_basic_block_matches_torchvision():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 8, 8)
    reference = TorchvisionBasicBlock(16, 16)
    assert agree(BasicBlock(16, 16), reference, x) < 1e-5
    downsample = nn.Sequential(nn.Conv2d(16, 32, 1, stride=2, bias=False), nn.BatchNorm2d(32))
    reference = TorchvisionBasicBlock(16, 32, stride=2, downsample=downsample)
    assert agree(BasicBlock(16, 32, stride=2), reference, x) < 1e-5


def test_plain_block_is_relu_of_body_and_residual_adds_input():
    torch.manual_seed(0)
    x = torch.randn(1, 8, 6, 6)
    plain, residual = BasicBlock(8, 8, residual=False).eval(), BasicBlock(8, 8).eval()
    residual.load_state_dict(plain.state_dict())
    with torch.no_grad():
        assert torch.allclose(plain(x), torch.relu(plain.body(x)))
        assert torch.allclose(residual(x), torch.relu(plain.body(x) + x))


def test_basic_block_without_batch_norm_has_biases():
    block = BasicBlock(4, 4, batch_norm=False)
    assert count_parameters(block) == 2 * (4 * 4 * 9 + 4)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in block.modules())


# --- dense connectivity ---------------------------------------------------------------------


def test_dense_layer_parameters_by_hand_and_concatenation():
    layer = DenseLayer(16, 8, bn_size=4)
    assert count_parameters(layer) == 2 * 16 + 16 * 32 + 2 * 32 + 32 * 8 * 9  # 2912
    x = torch.randn(1, 16, 5, 5)
    out = layer(x)
    assert out.shape == (1, 24, 5, 5)
    assert torch.equal(out[:, :16], x)  # the input passes through untouched
    assert count_parameters(DenseLayer(16, 8, bn_size=None)) == 2 * 16 + 16 * 8 * 9


def test_dense_layer_and_transition_match_torchvision():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 6, 6)
    assert (
        agree(DenseLayer(16, 8, 4), _DenseLayer(16, 8, 4, 0.0), x, take=lambda out: out[:, 16:])
        < 1e-5
    )
    assert agree(transition(16, 8), _Transition(16, 8), x) < 1e-5


def test_dense_block_channel_growth():
    block = dense_block(8, 4, 3)
    assert block(torch.zeros(1, 8, 4, 4)).shape == (1, 8 + 3 * 4, 4, 4)
    assert [layer.body[2].in_channels for layer in block] == [8, 12, 16]


# --- depthwise separable, squeeze-excitation, MBConv ----------------------------------------


def test_depthwise_separable_parameters_and_macs_by_hand():
    block = depthwise_separable(8, 16)
    assert count_parameters(block) == 8 * 9 + 2 * 8 + 8 * 16 + 2 * 16  # 248
    assert count_macs(block, (8, 10, 10)) == 100 * 8 * 9 + 100 * 16 * 8
    full = nn.Conv2d(8, 16, 3, padding=1, bias=False)
    # the separable version costs 1/16 + 1/9 of this
    assert count_macs(full, (8, 10, 10)) == 100 * 16 * 8 * 9


def test_squeeze_excite_matches_torchvision_and_gates():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 5, 5)
    assert count_parameters(SqueezeExcite(8, 2)) == (8 * 2 + 2) + (2 * 8 + 8)
    assert agree(SqueezeExcite(8, 2), SqueezeExcitation(8, 2, activation=nn.SiLU), x) < 1e-6
    gates = SqueezeExcite(8, 2)(x) / x
    assert torch.all((gates > 0) & (gates < 1))
    # one gate per channel
    assert torch.allclose(gates, gates[:, :, :1, :1].expand_as(gates), atol=1e-5)


def test_mbconv_parameters_by_hand():
    expand, dw, se, project = (
        16 * 64 + 2 * 64,
        64 * 9 + 2 * 64,
        (64 * 4 + 4) + (4 * 64 + 64),
        64 * 16 + 2 * 16,
    )
    assert count_parameters(MBConv(16, 16, expand_ratio=4)) == expand + dw + se + project  # 3492
    assert (
        count_parameters(MBConv(16, 16, expand_ratio=1, se_ratio=0))
        == 16 * 9 + 2 * 16 + 16 * 16 + 2 * 16
    )


@pytest.mark.parametrize(
    "c_in,c_out,expand,stride", [(16, 16, 4, 1), (16, 24, 6, 2), (16, 8, 1, 1)]
)
def test_mbconv_matches_torchvision(c_in, c_out, expand, stride):
    torch.manual_seed(0)
    x = torch.randn(2, c_in, 8, 8)
    reference = TorchvisionMBConv(
        MBConvConfig(expand, 3, stride, c_in, c_out, 1), 0.0, nn.BatchNorm2d
    )
    ours = MBConv(c_in, c_out, expand, stride)
    assert count_parameters(ours) == count_parameters(reference)
    assert agree(ours, reference, x) < 1e-5
    assert ours.residual == (stride == 1 and c_in == c_out)


# --- compound scaling -----------------------------------------------------------------------


def test_compound_scaling_values_and_cost_constraint():
    d, w, r = compound_scaling(2)
    assert (d, w, r) == pytest.approx((1.44, 1.21, 1.3225))
    d, w, r = compound_scaling(1)
    assert d * w**2 * r**2 == pytest.approx(1.92, abs=0.01)  # the paper's "about 2" per unit of phi
    assert compound_scaling(0) == (1.0, 1.0, 1.0)


def test_round_channels_matches_torchvision_make_divisible():
    for c in [3.0, 8.8, 16 * 1.1, 24 * 1.4, 40 * 0.75, 57.0, 100.5, 320 * 1.8]:
        assert round_channels(c) == _make_divisible(c, 8)
        assert round_channels(c, 4) == _make_divisible(c, 4)


def test_round_repeats():
    assert [round_repeats(n, 1.2) for n in (1, 2, 3, 4)] == [2, 3, 4, 5]
    assert round_repeats(3, 1.0) == 3


# --- small networks -------------------------------------------------------------------------


def test_small_networks_output_shapes_on_mnist_and_shapes_inputs():
    for build in (vgg_small, densenet_small, mobilenet_small, efficientnet_small):
        assert build(10, 1)(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
        assert build()(torch.zeros(2, 3, 32, 32)).shape == (2, 5)
    assert resnet_small(2, 10, 1)(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert efficientnet_small(width_mult=1.1, depth_mult=1.2)(torch.zeros(1, 3, 36, 36)).shape == (
        1,
        5,
    )


def test_resnet_small_depth_and_hand_counted_parameters():
    for n in (1, 3, 5):
        model = resnet_small(n)
        weight_layers = [
            m
            for m in model.modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and getattr(m, "kernel_size", (3,)) != (1, 1)
        ]
        assert len(weight_layers) == 6 * n + 2
    stem, stage1 = 1 * 8 * 9 + 2 * 8, 2 * (8 * 8 * 9) + 2 * 2 * 8
    stage2, stage3 = 8 * 16 * 9 + 16 * 16 * 9 + 2 * 2 * 16, 16 * 32 * 9 + 32 * 32 * 9 + 2 * 2 * 32
    plain = stem + stage1 + stage2 + stage3 + 32 * 10 + 10  # 19074
    assert count_parameters(resnet_small(1, 10, 1, width=8, residual=False)) == plain
    projections = (8 * 16 + 2 * 16) + (16 * 32 + 2 * 32)
    assert count_parameters(resnet_small(1, 10, 1, width=8)) == plain + projections


def test_stem_stride_sets_resolution():
    assert count_macs(resnet_small(1, stem_stride=1), (3, 32, 32)) > 3.9 * count_macs(
        resnet_small(1, stem_stride=2), (3, 32, 32)
    )


def test_efficientnet_scaling_grows_width_and_depth():
    base, scaled = efficientnet_small(), efficientnet_small(width_mult=1.4, depth_mult=1.2)
    count = lambda m: sum(isinstance(b, MBConv) for b in m)
    assert (count(base), count(scaled)) == (1 + 2 + 2, 2 + 3 + 3)  # ceil(1.2 n) for n = 1, 2, 2
    assert base[-1].in_features == 40 and scaled[-1].in_features == 56


# --- ConvNeXt -------------------------------------------------------------------------------


def test_layer_norm_2d_normalises_each_position_and_matches_torchvision():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 5, 5) * 3 + 1
    ours, reference = LayerNorm2d(8), TorchvisionLayerNorm2d(8, eps=1e-6)
    nn.init.normal_(reference.weight), nn.init.normal_(reference.bias)
    ours.load_state_dict(reference.state_dict())
    assert (ours(x) - reference(x)).abs().max() < 1e-5
    # weight 1, bias 0: mean 0 and variance 1 over the channels of each pixel
    unit = LayerNorm2d(8)(x)
    assert (
        unit.mean(dim=1).abs().max() < 1e-5
        and (unit.var(dim=1, unbiased=False) - 1).abs().max() < 1e-3
    )


def test_convnext_block_parameters_by_hand():
    c = 16
    depthwise, norm, expand, project, gamma = 49 * c + c, 2 * c, c * 4 * c + 4 * c, 4 * c * c + c, c
    # 2976 = 8 C^2 + 58 C
    assert count_parameters(ConvNeXtBlock(c)) == depthwise + norm + expand + project + gamma
    assert count_parameters(ConvNeXtBlock(c, layer_scale=0)) == depthwise + norm + expand + project
    # per pixel: depthwise 49 C, two 1x1s 4 C^2
    assert count_macs(ConvNeXtBlock(c), (c, 8, 8)) == 64 * (49 * c + 8 * c * c)


@pytest.mark.parametrize("channels,layer_scale", [(16, 1e-6), (24, 0.5)])
def test_convnext_block_matches_torchvision(channels, layer_scale):
    torch.manual_seed(0)
    reference, ours = (
        CNBlock(channels, layer_scale, 0.0).eval(),
        ConvNeXtBlock(channels, layer_scale=layer_scale).eval(),
    )
    with torch.no_grad():
        reference.layer_scale.normal_()  # not the tiny initial value: the branch must count
        reference.block[2].weight.normal_(), reference.block[2].bias.normal_()  # the LayerNorm too
    assert count_parameters(ours) == count_parameters(reference)
    # the same tensors in the same order; torchvision's 1x1 layers are nn.Linear, (out, in) instead
    # of (out, in, 1, 1)
    ours.load_state_dict(
        {
            k: v.reshape(t.shape)
            for (k, t), v in zip(ours.state_dict().items(), reference.state_dict().values())
        }
    )
    x = torch.randn(2, channels, 8, 8)
    with torch.no_grad():
        assert (ours(x) - reference(x)).abs().max() < 1e-5
        assert (ours(x) - x).abs().max() > 0.1  # the branch is not negligible in this test


def test_convnext_block_starts_as_the_identity_and_stochastic_depth_matches_torchvision():
    torch.manual_seed(0)
    x = torch.randn(4, 8, 6, 6)
    with torch.no_grad():
        # layer scale 1e-6: the branch is almost silent
        assert (ConvNeXtBlock(8)(x) - x).abs().max() < 1e-4
    reference, ours = CNBlock(8, 0.5, 0.5), ConvNeXtBlock(8, layer_scale=0.5, stochastic_depth=0.5)
    ours.load_state_dict(
        {
            k: v.reshape(t.shape)
            for (k, t), v in zip(ours.state_dict().items(), reference.state_dict().values())
        }
    )
    torch.manual_seed(3)
    expected = reference.train()(x)
    torch.manual_seed(3)
    assert torch.allclose(ours.train()(x), expected, atol=1e-5)  # the same samples dropped
    # no dropping in evaluation
    assert torch.allclose(ours.eval()(x), reference.eval()(x), atol=1e-5)


def test_convnext_small_shapes_and_hand_counted_parameters():
    model = convnext_small(10, 1, widths=(8, 16), depths=(1, 2))
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    block = lambda c: 8 * c * c + 58 * c
    stem, down, head = (1 * 8 * 9 + 8) + 2 * 8, 2 * 8 + (8 * 16 * 4 + 16), 2 * 16 + 16 * 10 + 10
    assert count_parameters(model) == stem + block(8) + down + 2 * block(16) + head
    assert sum(isinstance(m, ConvNeXtBlock) for m in model) == 3


# --- training for a time budget -------------------------------------------------------------


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: vgg_block(0, 8), "positive integer channel counts, got c_in=0"),
        (lambda: vgg_block(3, 8, num_convs=0), "num_convs=0"),
        (lambda: BasicBlock(8, 8, stride=3), "stride 1 or 2, got 3"),
        (lambda: DenseLayer(8, 4, bn_size=0), "bn_size=0"),
        (lambda: dense_block(8, 4, 0), "num_layers=0"),
        (lambda: transition(8, -1), "c_out=-1"),
        (lambda: depthwise_separable(8, 8, stride=0), "stride 1 or 2, got 0"),
        (lambda: SqueezeExcite(8, 0), "squeeze=0"),
        (lambda: MBConv(8, 8, se_ratio=2.0), r"se_ratio in \[0, 1\], got 2.0"),
        (lambda: MBConv(8, 8, expand_ratio=0), "expand_ratio=0"),
        (lambda: compound_scaling(-1), "phi >= 0"),
        (lambda: round_channels(0), "positive channels and divisor, got 0"),
        (lambda: round_repeats(0, 1.2), "repeats >= 1 and depth_mult > 0, got 0"),
        (lambda: resnet_small(0), "blocks_per_stage=0"),
        (lambda: resnet_small(1, stem_stride=4), "stride 1 or 2, got 4"),
        (lambda: vgg_small(widths=(8, 0)), r"widths\[1\]=0"),
        (lambda: mobilenet_small(num_classes=0), "num_classes=0"),
        (lambda: densenet_small(growth=0), "growth=0"),
        (lambda: efficientnet_small(in_channels=0), "in_channels=0"),
        (lambda: LayerNorm2d(0), "channels=0"),
        (lambda: LayerNorm2d(4, eps=0.0), "eps > 0, got 0.0"),
        (
            lambda: LayerNorm2d(4)(torch.zeros(1, 3, 2, 2)),
            r"expected a tensor \(B, 4, H, W\), got \(1, 3, 2, 2\)",
        ),
        (lambda: ConvNeXtBlock(8, kernel_size=4), "odd positive kernel_size, got 4"),
        (lambda: ConvNeXtBlock(8, layer_scale=-1.0), "layer_scale >= 0, got -1.0"),
        (lambda: ConvNeXtBlock(8, stochastic_depth=1.0), r"stochastic_depth in \[0, 1\), got 1.0"),
        (
            lambda: convnext_small(widths=(8, 16), depths=(1,)),
            "one depth per width, got 1 depths for 2 widths",
        ),
        (lambda: convnext_small(depths=(1, 0, 1)), r"depths\[1\]=0"),
    ],
)
def test_errors_name_what_was_expected_and_what_came(call, message):
    with pytest.raises(ValueError, match=message):
        call()
