"""Building blocks of modern CNNs and small networks made of them.

VGG blocks, residual basic blocks (and their plain counterparts), dense layers, depthwise-
separable convolutions, inverted residuals (MBConv) with squeeze-and-excitation,
EfficientNet's compound scaling and ConvNeXt's block. The small builders at the end make
networks for 32x32 inputs that train in seconds on a CPU, and :func:`fit_for_seconds` trains
one for a fixed wall-clock budget. Introduced in the chapter "Modern architectures".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from visionbook._validate import _expect_int, _expect_number


def _check_channels(**channels: int) -> None:
    bad = {
        k: v for k, v in channels.items() if isinstance(v, bool) or not isinstance(v, int) or v < 1
    }
    if bad:
        raise ValueError(
            "expected positive integer channel counts, got "
            f"{', '.join(f'{k}={v!r}' for k, v in bad.items())}"
        )


def _check_widths(widths: Sequence[int], what: str) -> dict[str, int]:
    """``widths`` as ``{"what[i]": width}`` for :func:`_check_channels`, if it is a non-empty
    sequence."""
    if isinstance(widths, str) or not isinstance(widths, Sequence) or not widths:
        raise TypeError(
            f"expected {what} as a non-empty sequence of positive integers, got {widths!r}"
        )
    return {f"{what}[{i}]": w for i, w in enumerate(widths)}


def _check_stride(stride: int) -> None:
    if stride not in (1, 2):
        raise ValueError(f"expected stride 1 or 2, got {stride!r}")


def vgg_block(c_in: int, c_out: int, num_convs: int = 2, batch_norm: bool = False) -> nn.Sequential:
    """A VGG block: ``num_convs`` 3x3 convolutions (same padding) with ReLU, then 2x2 max pooling.

    Args:
        c_in (int): input channels.
        c_out (int): output channels of every convolution.
        num_convs (int): convolutions in the block, at least 1. Default 2.
        batch_norm (bool): add BatchNorm after each convolution (VGG itself had none).
            Default False.

    Returns:
        nn.Sequential: ``(B, c_in, H, W) -> (B, c_out, H // 2, W // 2)``.

    >>> vgg_block(3, 8)(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 8, 16, 16])

    Introduced in the chapter "Modern architectures".
    """
    _check_channels(c_in=c_in, c_out=c_out, num_convs=num_convs)
    layers: list[nn.Module] = []
    for i in range(num_convs):
        layers.append(
            nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1, bias=not batch_norm)
        )
        layers += [nn.BatchNorm2d(c_out), nn.ReLU()] if batch_norm else [nn.ReLU()]
    layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's "same" padding, computed from each input's size.

    The output has ``ceil(H / stride)`` rows and ``ceil(W / stride)`` columns. The padding needed
    for that is split in two, and when it is odd the extra row and column go to the bottom and
    the right. For a stride-2 convolution of an even-sized input this is asymmetric: a 3x3
    kernel gets 0 pixels on the top and left and 1 on the bottom and right, where PyTorch's
    ``padding=1`` would put 1 on every side. Weights converted from TensorFlow expect it.

    Args:
        c_in (int): input channels.
        c_out (int): output channels.
        kernel (int): kernel size k (k x k).
        stride (int): 1 or 2. Default 1.
        groups (int): as in ``nn.Conv2d``. Default 1.
        bias (bool): learn a bias. Default True.

    Returns:
        nn.Module: ``(B, c_in, H, W) -> (B, c_out, ceil(H / stride), ceil(W / stride))``.

    >>> SameConv2d(1, 1, 3, stride=2)(torch.zeros(1, 1, 7, 8)).shape
    torch.Size([1, 1, 4, 4])

    Introduced in the chapter "Modern architectures".
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        bias: bool = True,
    ):
        _check_channels(c_in=c_in, c_out=c_out)
        _expect_int(kernel, "kernel")
        _expect_int(stride, "stride")
        _expect_int(groups, "groups")
        super().__init__(c_in, c_out, kernel, stride=stride, padding=0, groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-2:], self.kernel_size, self.stride):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        return super().forward(F.pad(x, (left, right, top, bottom)))


def _conv_bn(
    c_in: int,
    c_out: int,
    kernel: int,
    stride: int,
    batch_norm: bool,
    groups: int = 1,
    tf_same: bool = False,
    eps: float = 1e-5,
) -> list[nn.Module]:
    if tf_same:
        conv: nn.Conv2d = SameConv2d(
            c_in, c_out, kernel, stride=stride, groups=groups, bias=not batch_norm
        )
    else:
        conv = nn.Conv2d(
            c_in,
            c_out,
            kernel,
            stride=stride,
            padding=kernel // 2,
            groups=groups,
            bias=not batch_norm,
        )
    return [conv, nn.BatchNorm2d(c_out, eps=eps)] if batch_norm else [conv]


class BasicBlock(nn.Module):
    """The basic block of ResNet-18/34: two 3x3 convolutions and, if ``residual``, a shortcut.

    ``out = relu(F(x) + shortcut(x))`` with ``F = conv-BN-ReLU-conv-BN``. The shortcut is the
    identity, or a strided 1x1 convolution (with BN) when the shape changes (He et al.'s
    option B). With ``residual=False`` it is the *plain* counterpart, ``out = relu(F(x))``,
    with exactly the same layers except the projection.

    Args:
        c_in (int): input channels.
        c_out (int): output channels.
        stride (int): 1, or 2 to halve H and W. Default 1.
        residual (bool): add the shortcut. Default True.
        batch_norm (bool): BatchNorm after each convolution. Default True.

    Returns:
        nn.Module: ``(B, c_in, H, W) -> (B, c_out, H / stride, W / stride)``.

    >>> BasicBlock(16, 32, stride=2)(torch.zeros(1, 16, 8, 8)).shape
    torch.Size([1, 32, 4, 4])

    Introduced in the chapter "Modern architectures".
    """

    def __init__(
        self, c_in: int, c_out: int, stride: int = 1, residual: bool = True, batch_norm: bool = True
    ):
        super().__init__()
        _check_channels(c_in=c_in, c_out=c_out)
        _check_stride(stride)
        self.residual = residual
        self.body = nn.Sequential(
            *_conv_bn(c_in, c_out, 3, stride, batch_norm),
            nn.ReLU(),
            *_conv_bn(c_out, c_out, 3, 1, batch_norm),
        )
        needs_projection = residual and (stride != 1 or c_in != c_out)
        self.shortcut = (
            nn.Sequential(*_conv_bn(c_in, c_out, 1, stride, batch_norm))
            if needs_projection
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)  # (B, c_out, H/s, W/s)
        if self.residual:
            out = out + self.shortcut(x)  # same shape: identity or strided 1x1 projection
        return torch.relu(out)


class DenseLayer(nn.Module):
    """One DenseNet layer: new features from all earlier ones, concatenated to its input.

    ``BN-ReLU-Conv1x1(bn_size * growth)-BN-ReLU-Conv3x3(growth)`` (the "bottleneck" layer
    of DenseNet-B), or ``BN-ReLU-Conv3x3(growth)`` with ``bn_size=None``.

    Args:
        c_in (int): input channels (all features so far).
        growth (int): new channels this layer adds (the growth rate k).
        bn_size (int | None): bottleneck width as a multiple of ``growth``; None for
            none. Default 4.

    Returns:
        nn.Module: ``(B, c_in, H, W) -> (B, c_in + growth, H, W)``.

    >>> DenseLayer(16, 8)(torch.zeros(1, 16, 4, 4)).shape
    torch.Size([1, 24, 4, 4])

    Introduced in the chapter "Modern architectures".
    """

    def __init__(self, c_in: int, growth: int, bn_size: int | None = 4):
        super().__init__()
        _check_channels(c_in=c_in, growth=growth, bn_size=bn_size if bn_size is not None else 1)
        mid = c_in if bn_size is None else bn_size * growth
        bottleneck = (
            []
            if bn_size is None
            else [nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, mid, 1, bias=False)]
        )
        self.body = nn.Sequential(
            *bottleneck,
            nn.BatchNorm2d(mid),
            nn.ReLU(),
            nn.Conv2d(mid, growth, 3, padding=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], dim=1)  # (B, c_in + growth, H, W)


def dense_block(c_in: int, growth: int, num_layers: int, bn_size: int | None = 4) -> nn.Sequential:
    """``num_layers`` dense layers; each sees the block input and every earlier layer's output.

    Args:
        c_in (int): input channels.
        growth (int): channels added per layer.
        num_layers (int): layers in the block.
        bn_size (int | None): see :class:`DenseLayer`. Default 4.

    Returns:
        nn.Sequential: ``(B, c_in, H, W) -> (B, c_in + num_layers * growth, H, W)``.

    >>> dense_block(8, 4, 3)(torch.zeros(1, 8, 4, 4)).shape
    torch.Size([1, 20, 4, 4])

    Introduced in the chapter "Modern architectures".
    """
    _check_channels(num_layers=num_layers)
    return nn.Sequential(
        *(DenseLayer(c_in + i * growth, growth, bn_size) for i in range(num_layers))
    )


def transition(c_in: int, c_out: int) -> nn.Sequential:
    """DenseNet's transition between blocks: ``BN-ReLU-Conv1x1-AvgPool2``, fewer channels,
    half size.

    Args:
        c_in (int): input channels.
        c_out (int): output channels (DenseNet-BC halves them).

    Returns:
        nn.Sequential: ``(B, c_in, H, W) -> (B, c_out, H // 2, W // 2)``.

    >>> transition(20, 10)(torch.zeros(1, 20, 8, 8)).shape
    torch.Size([1, 10, 4, 4])

    Introduced in the chapter "Modern architectures".
    """
    _check_channels(c_in=c_in, c_out=c_out)
    return nn.Sequential(
        nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, c_out, 1, bias=False), nn.AvgPool2d(2)
    )


def depthwise_separable(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """MobileNet's depthwise-separable convolution: a 3x3 per-channel conv, then a 1x1 mix.

    ``Conv3x3(groups=c_in)-BN-ReLU-Conv1x1-BN-ReLU``: ``9 c_in + c_in c_out`` weights instead of
    ``9 c_in c_out`` for a full 3x3 convolution.

    Args:
        c_in (int): input channels.
        c_out (int): output channels.
        stride (int): 1 or 2 (applied by the depthwise convolution). Default 1.

    Returns:
        nn.Sequential: ``(B, c_in, H, W) -> (B, c_out, H / stride, W / stride)``.

    >>> depthwise_separable(8, 16, stride=2)(torch.zeros(1, 8, 8, 8)).shape
    torch.Size([1, 16, 4, 4])

    Introduced in the chapter "Modern architectures".
    """
    _check_channels(c_in=c_in, c_out=c_out)
    _check_stride(stride)
    return nn.Sequential(
        *_conv_bn(c_in, c_in, 3, stride, True, groups=c_in),
        nn.ReLU(),
        *_conv_bn(c_in, c_out, 1, 1, True),
        nn.ReLU(),
    )


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: reweight channels by a gate computed from their global averages.

    ``s = sigmoid(W2 act(W1 avgpool(x) + b1) + b2)``, ``out = x * s`` per channel. The two
    fully connected layers are 1x1 convolutions, as in torchvision's ``SqueezeExcitation``.

    Args:
        channels (int): channels of ``x``.
        squeeze (int): width of the bottleneck.
        activation (type): the inner non-linearity. Default ``nn.SiLU`` (EfficientNet's; the
            paper used ReLU).

    Returns:
        nn.Module: ``(B, C, H, W) -> (B, C, H, W)``.

    >>> SqueezeExcite(8, 2)(torch.ones(1, 8, 3, 3)).shape
    torch.Size([1, 8, 3, 3])

    Introduced in the chapter "Modern architectures".
    """

    def __init__(self, channels: int, squeeze: int, activation: type[nn.Module] = nn.SiLU):
        super().__init__()
        _check_channels(channels=channels, squeeze=squeeze)
        self.reduce, self.act = nn.Conv2d(channels, squeeze, 1), activation()
        self.expand = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)  # squeeze: (B, C, 1, 1)
        s = torch.sigmoid(self.expand(self.act(self.reduce(s))))  # excite: gates in (0, 1)
        return x * s


class MBConv(nn.Module):
    """EfficientNet's inverted residual: expand 1x1, depthwise kxk, squeeze-excite, project 1x1.

    ``Conv1x1(c_in -> t c_in)-BN-act, Conv kxk depthwise-BN-act, SE, Conv1x1(-> c_out)-BN``
    (no activation after the projection: the "linear bottleneck"), plus the input when the
    shape is unchanged. Departs from the paper in one way: no stochastic depth. The options
    after ``se_ratio`` build the blocks of EfficientNet-Lite (``se_ratio=0``, ``nn.ReLU6``,
    kernels of 3 and 5, TensorFlow's padding and BatchNorm epsilon), whose ImageNet weights
    :mod:`visionbook.imagenet` loads.

    Args:
        c_in (int): input channels.
        c_out (int): output channels.
        expand_ratio (int): t, the expansion of the hidden layer; 1 skips the expansion. Default 4.
        stride (int): 1 or 2. Default 1.
        se_ratio (float): SE bottleneck as a fraction of ``c_in``; 0 for no SE. Default 0.25.
        kernel_size (int): odd size of the depthwise kernel. Default 3.
        activation (type): the non-linearity. Default ``nn.SiLU`` (EfficientNet's).
        tf_same (bool): TensorFlow's "same" padding (:class:`SameConv2d`). Default False.
        bn_eps (float): BatchNorm's epsilon (TensorFlow's models use 1e-3). Default 1e-5.

    Returns:
        nn.Module: ``(B, c_in, H, W) -> (B, c_out, H / stride, W / stride)``.

    >>> MBConv(16, 16)(torch.zeros(2, 16, 8, 8)).shape
    torch.Size([2, 16, 8, 8])
    >>> MBConv(16, 24, 6, 2, se_ratio=0, kernel_size=5, activation=nn.ReLU6, tf_same=True)(
    ...     torch.zeros(1, 16, 8, 8)
    ... ).shape
    torch.Size([1, 24, 4, 4])

    Introduced in the chapter "Modern architectures".
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        expand_ratio: int = 4,
        stride: int = 1,
        se_ratio: float = 0.25,
        kernel_size: int = 3,
        activation: type[nn.Module] = nn.SiLU,
        tf_same: bool = False,
        bn_eps: float = 1e-5,
    ):
        super().__init__()
        _check_channels(c_in=c_in, c_out=c_out, expand_ratio=expand_ratio)
        _check_stride(stride)
        if not 0 <= se_ratio <= 1:
            raise ValueError(f"expected se_ratio in [0, 1], got {se_ratio!r}")
        if (
            isinstance(kernel_size, bool)
            or not isinstance(kernel_size, int)
            or kernel_size < 1
            or kernel_size % 2 == 0
        ):
            raise ValueError(f"expected an odd positive kernel_size, got {kernel_size!r}")
        hidden = c_in * expand_ratio
        conv = {"batch_norm": True, "tf_same": tf_same, "eps": bn_eps}
        layers: list[nn.Module] = (
            [*_conv_bn(c_in, hidden, 1, 1, **conv), activation()] if expand_ratio != 1 else []
        )
        layers += [
            *_conv_bn(hidden, hidden, kernel_size, stride, groups=hidden, **conv),
            activation(),
        ]
        if se_ratio > 0:
            layers.append(SqueezeExcite(hidden, max(1, int(c_in * se_ratio))))
        self.body = nn.Sequential(*layers, *_conv_bn(hidden, c_out, 1, 1, **conv))
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)  # (B, c_out, H/s, W/s)
        return out + x if self.residual else out


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels at each position of a ``(B, C, H, W)`` tensor, as in ConvNeXt.

    Each pixel's ``C`` values are normalised to mean 0 and variance 1, then scaled and shifted
    per channel: no statistics over the batch or the image, so training and evaluation agree.
    Equal to ``nn.LayerNorm(C)`` applied to the channels-last tensor (torchvision's
    ``LayerNorm2d``).

    Args:
        channels (int): C.
        eps (float): added to the variance. Default 1e-6 (ConvNeXt's).

    Returns:
        nn.Module: ``(B, C, H, W) -> (B, C, H, W)``.

    >>> LayerNorm2d(4)(torch.randn(2, 4, 3, 3)).mean(dim=1).abs().max() < 1e-5
    tensor(True)

    Introduced in the chapter "Modern architectures".
    """

    def __init__(self, channels: int, eps: float = 1e-6):
        _check_channels(channels=channels)
        if _expect_number(eps, "eps") <= 0:
            raise ValueError(f"expected eps > 0, got {eps!r}")
        super().__init__(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.normalized_shape[0]:
            raise ValueError(
                f"expected a tensor (B, {self.normalized_shape[0]}, H, W), got {tuple(x.shape)}"
            )
        x = F.layer_norm(
            x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps
        )
        return x.permute(0, 3, 1, 2)  # back to (B, C, H, W)


class ConvNeXtBlock(nn.Module):
    """ConvNeXt's block: depthwise 7x7, LayerNorm, 1x1 expansion x4 with GELU, 1x1 projection,
    layer scale.

    ``out = x + gamma * F(x)`` with ``F = DWConv7x7-LN-Conv1x1(4C)-GELU-Conv1x1(C)``: one
    normalisation and one activation per block, an inverted bottleneck whose wide layer is a
    cheap 1x1, and a learned per-channel ``gamma`` (layer scale) that starts tiny, so that every
    block starts close to the identity. Departs from torchvision's ``CNBlock`` only in form:
    the two 1x1 layers are ``nn.Conv2d`` on ``(B, C, H, W)`` where torchvision permutes to
    channels-last and uses ``nn.Linear`` (the same arithmetic); stochastic depth is available
    and off by default.

    Args:
        channels (int): C, in and out.
        expansion (int): width of the hidden layer as a multiple of C. Default 4.
        kernel_size (int): odd size of the depthwise kernel. Default 7.
        layer_scale (float): initial value of every ``gamma``; 0 for no layer scale. Default 1e-6.
        stochastic_depth (float): probability in [0, 1) of skipping the residual branch of a
            sample in training (torchvision's "row" mode). Default 0.0.

    Returns:
        nn.Module: ``(B, C, H, W) -> (B, C, H, W)``.

    >>> ConvNeXtBlock(16)(torch.zeros(2, 16, 8, 8)).shape
    torch.Size([2, 16, 8, 8])

    Introduced in the chapter "Modern architectures".
    """

    def __init__(
        self,
        channels: int,
        expansion: int = 4,
        kernel_size: int = 7,
        layer_scale: float = 1e-6,
        stochastic_depth: float = 0.0,
    ):
        super().__init__()
        _check_channels(channels=channels, expansion=expansion)
        if (
            isinstance(kernel_size, bool)
            or not isinstance(kernel_size, int)
            or kernel_size < 1
            or kernel_size % 2 == 0
        ):
            raise ValueError(f"expected an odd positive kernel_size, got {kernel_size!r}")
        _expect_number(layer_scale, "layer_scale", low=0)
        if not 0 <= _expect_number(stochastic_depth, "stochastic_depth") < 1:
            raise ValueError(f"expected stochastic_depth in [0, 1), got {stochastic_depth!r}")
        hidden = expansion * channels
        self.body = nn.Sequential(
            # depthwise
            nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels),
            LayerNorm2d(channels),
            nn.Conv2d(channels, hidden, 1),  # inverted bottleneck: expand
            nn.GELU(),
            nn.Conv2d(hidden, channels, 1),  # project back
        )
        self.gamma = (
            nn.Parameter(torch.full((channels, 1, 1), float(layer_scale)))
            if layer_scale > 0
            else None
        )
        self.stochastic_depth, self.residual = stochastic_depth, True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)  # (B, C, H, W)
        if self.gamma is not None:
            out = self.gamma * out  # layer scale: one learned factor per channel
        if self.stochastic_depth > 0:
            from torchvision.ops import stochastic_depth

            out = stochastic_depth(out, self.stochastic_depth, "row", self.training)
        return x + out


def compound_scaling(
    phi: float, alpha: float = 1.2, beta: float = 1.1, gamma: float = 1.15
) -> tuple[float, float, float]:
    """EfficientNet's compound scaling: depth, width and resolution multipliers for coefficient phi.

    Depth grows as ``alpha**phi``, width as ``beta**phi``, resolution as ``gamma**phi``; with
    ``alpha * beta**2 * gamma**2 ~ 2`` the cost (MACs) roughly doubles per unit of phi. The
    defaults are the paper's grid-searched constants.

    Args:
        phi (float): the compound coefficient, at least 0.
        alpha (float): depth base. Default 1.2.
        beta (float): width base. Default 1.1.
        gamma (float): resolution base. Default 1.15.

    Returns:
        tuple: ``(depth_mult, width_mult, resolution_mult)``.

    >>> [round(m, 4) for m in compound_scaling(1)]
    [1.2, 1.1, 1.15]

    Introduced in the chapter "Modern architectures".
    """
    for name, value in (("phi", phi), ("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        _expect_number(value, name)
    if phi < 0 or min(alpha, beta, gamma) < 1:
        raise ValueError(
            f"expected phi >= 0 and bases >= 1, got phi={phi}, alpha={alpha}, beta={beta}, "
            f"gamma={gamma}"
        )
    return alpha**phi, beta**phi, gamma**phi


def round_channels(channels: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of ``divisor``, never more than 10% down.

    The rule of torchvision's EfficientNet and MobileNet builders (``_make_divisible``).

    Args:
        channels (float): the scaled count, for example ``16 * width_mult``.
        divisor (int): the multiple to round to. Default 8.

    Returns:
        int: a positive multiple of ``divisor``.

    >>> round_channels(16 * 1.1), round_channels(40 * 1.4)
    (16, 56)

    Introduced in the chapter "Modern architectures".
    """
    _expect_number(channels, "channels")
    _expect_int(divisor, "divisor")
    if channels <= 0 or divisor < 1:
        raise ValueError(f"expected positive channels and divisor, got {channels} and {divisor}")
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


def round_repeats(repeats: int, depth_mult: float) -> int:
    """Number of layers of a stage after depth scaling: ``ceil(repeats * depth_mult)``.

    Args:
        repeats (int): layers of the unscaled stage, at least 1.
        depth_mult (float): the depth multiplier, positive.

    Returns:
        int: the scaled number of layers.

    >>> round_repeats(2, 1.2)
    3

    Introduced in the chapter "Modern architectures".
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int):
        raise TypeError(f"expected an integer repeats, got {repeats!r}")
    _expect_number(depth_mult, "depth_mult")
    if repeats < 1 or depth_mult <= 0:
        raise ValueError(
            f"expected repeats >= 1 and depth_mult > 0, got {repeats} and {depth_mult}"
        )
    return math.ceil(repeats * depth_mult)


def _stem(
    in_channels: int, c: int, stride: int, batch_norm: bool = True, act: type[nn.Module] = nn.ReLU
) -> list[nn.Module]:
    _check_stride(stride)
    return [*_conv_bn(in_channels, c, 3, stride, batch_norm), act()]


def _head(channels: int, num_classes: int) -> list[nn.Module]:
    return [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]


def resnet_small(
    blocks_per_stage: int,
    num_classes: int = 5,
    in_channels: int = 3,
    width: int = 16,
    residual: bool = True,
    batch_norm: bool = True,
    stem_stride: int = 2,
) -> nn.Sequential:
    """He et al.'s CIFAR ResNet: a 3x3 stem, three stages of basic blocks (width, 2 width, 4 width).

    Depth ``6 * blocks_per_stage + 2`` weight layers (for example 1 -> 8, 3 -> 20, 5 -> 32).
    With ``residual=False`` it is the plain network of the same depth. Departs from the paper
    by a stride-2 stem by default (the paper's is stride 1), which makes it four times cheaper.

    Args:
        blocks_per_stage (int): basic blocks per stage (the paper's n).
        num_classes (int): outputs. Default 5.
        in_channels (int): image channels. Default 3.
        width (int): channels of the first stage. Default 16.
        residual (bool): shortcuts on. Default True.
        batch_norm (bool): BatchNorm on. Default True.
        stem_stride (int): stride of the first convolution, 1 or 2. Default 2.

    Returns:
        nn.Sequential: ``(B, in_channels, H, W) -> (B, num_classes)``.

    >>> resnet_small(1)(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 5])

    Introduced in the chapter "Modern architectures".
    """
    _check_channels(
        blocks_per_stage=blocks_per_stage,
        num_classes=num_classes,
        in_channels=in_channels,
        width=width,
    )
    layers, c = _stem(in_channels, width, stem_stride, batch_norm), width
    for stage in range(3):
        for i in range(blocks_per_stage):
            stride = 2 if stage > 0 and i == 0 else 1
            layers.append(BasicBlock(c, width * 2**stage, stride, residual, batch_norm))
            c = width * 2**stage
    return nn.Sequential(*layers, *_head(c, num_classes))


def vgg_small(
    num_classes: int = 5,
    in_channels: int = 3,
    widths: Sequence[int] = (16, 32, 64),
    stem_stride: int = 2,
) -> nn.Sequential:
    """VGG in miniature: a stem, then VGG blocks of two 3x3 convs (with BN), global pooling, a
    linear layer.

    Departs from VGG: BatchNorm (the 2014 network had none), a strided stem, and global average
    pooling instead of three large fully connected layers.

    Args:
        num_classes (int): outputs. Default 5.
        in_channels (int): image channels. Default 3.
        widths (sequence of int): channels of the stem, then of each VGG block.
            Default (16, 32, 64).
        stem_stride (int): stride of the stem convolution, 1 or 2. Default 2.

    Returns:
        nn.Sequential: ``(B, in_channels, H, W) -> (B, num_classes)``.

    >>> vgg_small()(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 5])

    Introduced in the chapter "Modern architectures".
    """
    _check_channels(
        num_classes=num_classes, in_channels=in_channels, **_check_widths(widths, "widths")
    )
    chans = list(widths)
    blocks = (vgg_block(a, b, 2, batch_norm=True) for a, b in zip(chans[:-1], chans[1:]))
    return nn.Sequential(
        *_stem(in_channels, chans[0], stem_stride), *blocks, *_head(chans[-1], num_classes)
    )


def densenet_small(
    num_classes: int = 5,
    in_channels: int = 3,
    growth: int = 12,
    layers: Sequence[int] = (4, 4, 4),
    stem_stride: int = 2,
) -> nn.Sequential:
    """DenseNet-BC in miniature: a stem, dense blocks joined by transitions that halve the channels.

    Args:
        num_classes (int): outputs. Default 5.
        in_channels (int): image channels. Default 3.
        growth (int): growth rate k; the stem has 2k channels. Default 12.
        layers (sequence of int): dense layers in each block. Default (4, 4, 4).
        stem_stride (int): stride of the stem convolution, 1 or 2. Default 2.

    Returns:
        nn.Sequential: ``(B, in_channels, H, W) -> (B, num_classes)``.

    >>> densenet_small()(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 5])

    Introduced in the chapter "Modern architectures".
    """
    _check_channels(
        num_classes=num_classes,
        in_channels=in_channels,
        growth=growth,
        **_check_widths(layers, "layers"),
    )
    c = 2 * growth
    modules = _stem(in_channels, c, stem_stride)
    for i, n in enumerate(layers):
        modules.append(dense_block(c, growth, n))
        c += n * growth
        if i < len(layers) - 1:
            modules.append(transition(c, c // 2))
            c //= 2
    return nn.Sequential(*modules, nn.BatchNorm2d(c), nn.ReLU(), *_head(c, num_classes))


def mobilenet_small(
    num_classes: int = 5,
    in_channels: int = 3,
    widths: Sequence[int] = (32, 64, 64, 128, 128),
    stem_stride: int = 2,
) -> nn.Sequential:
    """MobileNet (v1) in miniature: a full 3x3 stem, then depthwise-separable convolutions.

    Each entry of ``widths`` is one depthwise-separable layer; a layer that changes the number
    of channels (after the first) also halves H and W, as in the paper.

    Args:
        num_classes (int): outputs. Default 5.
        in_channels (int): image channels. Default 3.
        widths (sequence of int): output channels of each layer. Default (32, 64, 64, 128, 128).
        stem_stride (int): stride of the stem convolution, 1 or 2. Default 2.

    Returns:
        nn.Sequential: ``(B, in_channels, H, W) -> (B, num_classes)``.

    >>> mobilenet_small()(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 5])

    Introduced in the chapter "Modern architectures".
    """
    _check_channels(
        num_classes=num_classes, in_channels=in_channels, **_check_widths(widths, "widths")
    )
    c = max(1, widths[0] // 2)
    modules = _stem(in_channels, c, stem_stride)
    for i, w in enumerate(widths):
        modules.append(depthwise_separable(c, w, stride=2 if i > 0 and w != c else 1))
        c = w
    return nn.Sequential(*modules, *_head(c, num_classes))


# (expand ratio, channels, repeats, stride) of each stage after the stem: EfficientNet-B0's
# pattern, shrunk for small images
EFFICIENT_STAGES = ((1, 16, 1, 1), (4, 24, 2, 2), (4, 40, 2, 2))


def efficientnet_small(
    num_classes: int = 5,
    in_channels: int = 3,
    width_mult: float = 1.0,
    depth_mult: float = 1.0,
    stem_stride: int = 2,
) -> nn.Sequential:
    """EfficientNet in miniature: a stem and stages of MBConv blocks, scaled in width and depth.

    Stage channels are ``round_channels(c * width_mult)``, repeats ``round_repeats(n, depth_mult)``
    (see :data:`EFFICIENT_STAGES`); resolution, the third compound-scaling axis, is the input's.

    Args:
        num_classes (int): outputs. Default 5.
        in_channels (int): image channels. Default 3.
        width_mult (float): channel multiplier (beta ** phi). Default 1.0.
        depth_mult (float): layer multiplier (alpha ** phi). Default 1.0.
        stem_stride (int): stride of the stem convolution, 1 or 2. Default 2.

    Returns:
        nn.Sequential: ``(B, in_channels, H, W) -> (B, num_classes)``.

    >>> efficientnet_small()(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 5])

    Introduced in the chapter "Modern architectures".
    """
    _check_channels(num_classes=num_classes, in_channels=in_channels)
    if (
        _expect_number(width_mult, "width_mult") <= 0
        or _expect_number(depth_mult, "depth_mult") <= 0
    ):
        raise ValueError(
            f"expected width_mult > 0 and depth_mult > 0, got {width_mult!r} and {depth_mult!r}"
        )
    c = round_channels(16 * width_mult)
    modules = _stem(in_channels, c, stem_stride, act=nn.SiLU)
    for expand, channels, repeats, stride in EFFICIENT_STAGES:
        out = round_channels(channels * width_mult)
        for i in range(round_repeats(repeats, depth_mult)):
            modules.append(MBConv(c, out, expand, stride if i == 0 else 1))
            c = out
    return nn.Sequential(*modules, *_head(c, num_classes))


def convnext_small(
    num_classes: int = 5,
    in_channels: int = 3,
    widths: Sequence[int] = (16, 32, 64),
    depths: Sequence[int] = (1, 1, 1),
    stem_stride: int = 2,
) -> nn.Sequential:
    """ConvNeXt in miniature: a stem, then stages of ConvNeXt blocks joined by LayerNorm and a 2x2
    stride-2 conv.

    Stage ``i`` has ``depths[i]`` blocks of ``widths[i]`` channels; between stages ConvNeXt's
    downsampling layer (``LayerNorm2d``, then a 2x2 convolution with stride 2) halves H and W
    and changes the width; the head is global average pooling, LayerNorm and a linear layer.
    Departs from ConvNeXt by its stem: a 3x3 convolution with stride ``stem_stride`` (then
    LayerNorm), like this module's other small networks, instead of a 4x4 "patchify" convolution
    with stride 4, which would leave a 28x28 digit only 7x7 positions.

    Args:
        num_classes (int): outputs. Default 5.
        in_channels (int): image channels. Default 3.
        widths (sequence of int): channels of each stage. Default (16, 32, 64).
        depths (sequence of int): blocks in each stage, one per width. Default (1, 1, 1).
        stem_stride (int): stride of the stem convolution, 1 or 2. Default 2.

    Returns:
        nn.Sequential: ``(B, in_channels, H, W) -> (B, num_classes)``.

    >>> convnext_small()(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 5])

    Introduced in the chapter "Modern architectures".
    """
    _check_channels(
        num_classes=num_classes, in_channels=in_channels, **_check_widths(widths, "widths")
    )
    _check_channels(**_check_widths(depths, "depths"))
    if len(widths) != len(depths):
        raise ValueError(
            f"expected one depth per width, got {len(depths)} depths for {len(widths)} widths"
        )
    _check_stride(stem_stride)
    modules: list[nn.Module] = [
        nn.Conv2d(in_channels, widths[0], 3, stride=stem_stride, padding=1),
        LayerNorm2d(widths[0]),
    ]
    for i, (width, depth) in enumerate(zip(widths, depths)):
        if i > 0:  # ConvNeXt's separate downsampling layer
            modules += [LayerNorm2d(widths[i - 1]), nn.Conv2d(widths[i - 1], width, 2, stride=2)]
        modules += [ConvNeXtBlock(width) for _ in range(depth)]
    return nn.Sequential(
        *modules,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.LayerNorm(widths[-1]),
        nn.Linear(widths[-1], num_classes),
    )
