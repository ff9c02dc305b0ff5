"""Small reference networks shared by several chapters.

Introduced in "Multilayer networks" (``mlp``) and "Convolutional neural networks" (``lenet``,
``small_cnn``).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def mlp(in_features: int, hidden: Sequence[int], num_classes: int, activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """A multilayer perceptron that flattens its input: ``(B, ...) -> (B, num_classes)``.

    Args:
        in_features (int): number of input values per example (for 28x28 images, 784).
        hidden (sequence of int): widths of the hidden layers, for example ``(128, 64)``.
        num_classes (int): number of outputs (logits).
        activation (type): the non-linearity's class. Default ``nn.ReLU``.

    Returns:
        nn.Sequential.

    >>> import torch
    >>> mlp(784, (128,), 10)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])

    Introduced in the chapter "Multilayer networks and activation functions".
    """
    widths = [in_features, *hidden]
    if any(not isinstance(w, int) or w < 1 for w in [*widths, num_classes]):
        raise ValueError(f"expected positive integer widths, got in_features={in_features}, hidden={tuple(hidden)}, num_classes={num_classes}")
    layers: list[nn.Module] = [nn.Flatten()]
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), activation()]
    layers.append(nn.Linear(widths[-1], num_classes))
    return nn.Sequential(*layers)


def lenet(num_classes: int = 10, in_channels: int = 1, width: int = 1) -> nn.Sequential:
    """A LeNet-5-style CNN for 28x28 images (ReLU and max pooling instead of the 1998 originals).

    Shapes for a ``(B, 1, 28, 28)`` input with ``width=1``: conv 6@28x28, pool 6@14x14,
    conv 16@10x10, pool 16@5x5, then 400 -> 120 -> 84 -> ``num_classes``.

    Args:
        num_classes (int): number of outputs. Default 10.
        in_channels (int): image channels. Default 1.
        width (int): multiplies the number of channels and units. Default 1.

    Returns:
        nn.Sequential: ``(B, in_channels, 28, 28) -> (B, num_classes)``.

    Introduced in the chapter "Convolutional neural networks".
    """
    if width < 1 or num_classes < 1 or in_channels < 1:
        raise ValueError(f"expected positive num_classes, in_channels and width, got {num_classes}, {in_channels}, {width}")
    c1, c2 = 6 * width, 16 * width
    return nn.Sequential(
        nn.Conv2d(in_channels, c1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # (B, c1, 14, 14)
        nn.Conv2d(c1, c2, 5), nn.ReLU(), nn.MaxPool2d(2),  # (B, c2, 5, 5)
        nn.Flatten(),
        nn.Linear(c2 * 25, 120 * width), nn.ReLU(),
        nn.Linear(120 * width, 84 * width), nn.ReLU(),
        nn.Linear(84 * width, num_classes),
    )  # fmt: skip


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """Conv 3x3 (same padding) -> BatchNorm -> ReLU -> MaxPool 2: halves H and W.

    Introduced in the chapter "Convolutional neural networks".
    """
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2))


def small_cnn(num_classes: int, in_channels: int = 3, channels: Sequence[int] = (16, 32, 64)) -> nn.Sequential:
    """A small VGG-style CNN: conv blocks, global average pooling, a linear classifier.

    Works for any input size that survives ``len(channels)`` halvings; the last conv block's
    output is the ``features`` layer (index ``-3``) that Grad-CAM and transfer learning use.

    Args:
        num_classes (int): number of outputs.
        in_channels (int): image channels. Default 3.
        channels (sequence of int): output channels of each block. Default (16, 32, 64).

    Returns:
        nn.Sequential: ``(B, in_channels, H, W) -> (B, num_classes)``.

    Introduced in the chapter "Convolutional neural networks".
    """
    if not channels or num_classes < 1:
        raise ValueError(f"expected at least one block and num_classes >= 1, got channels={tuple(channels)}, num_classes={num_classes}")
    widths = [in_channels, *channels]
    blocks = [conv_block(a, b) for a, b in zip(widths[:-1], widths[1:])]
    return nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[-1], num_classes))
