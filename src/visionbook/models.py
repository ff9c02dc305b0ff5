"""Small reference networks shared by several chapters.

Introduced in "Multilayer networks" (``mlp``), "Convolutional neural networks" (``lenet``,
``small_cnn``) and "Transfer learning" (``digits_cnn``, the model zoo's digit CNN).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from visionbook._validate import _positive_int


def mlp(
    in_features: int, hidden: Sequence[int], num_classes: int, activation: type[nn.Module] = nn.ReLU
) -> nn.Sequential:
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
    if isinstance(hidden, int) or not isinstance(hidden, Sequence):
        raise TypeError(
            f"expected hidden as a sequence of widths such as (128, 64), got {hidden!r}"
        )
    widths = [in_features, *hidden]
    if any(not _positive_int(w) for w in [*widths, num_classes]):
        raise ValueError(
            f"expected positive integer widths, got in_features={in_features}, "
            f"hidden={tuple(hidden)}, num_classes={num_classes}"
        )
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

    >>> import torch
    >>> lenet()(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])

    Introduced in the chapter "Convolutional neural networks".
    """
    if not all(_positive_int(k) for k in (num_classes, in_channels, width)):
        raise ValueError(
            f"expected positive integers, got num_classes={num_classes!r}, "
            f"in_channels={in_channels!r}, width={width!r}"
        )
    c1, c2 = 6 * width, 16 * width
    return nn.Sequential(
        nn.Conv2d(in_channels, c1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # (B, c1, 14, 14)
        nn.Conv2d(c1, c2, 5), nn.ReLU(), nn.MaxPool2d(2),  # (B, c2, 5, 5)
        nn.Flatten(),
        nn.Linear(c2 * 25, 120 * width), nn.ReLU(),
        nn.Linear(120 * width, 84 * width), nn.ReLU(),
        nn.Linear(84 * width, num_classes),
    )  # fmt: skip


def conv_block(c_in: int, c_out: int, kernel_size: int = 3) -> nn.Sequential:
    """Conv (odd ``kernel_size``, same padding) -> BatchNorm -> ReLU -> MaxPool 2: halves H and W.

    Args:
        c_in (int): input channels.
        c_out (int): output channels.
        kernel_size (int): an odd kernel size, so that the padding keeps H and W. Default 3.

    Returns:
        nn.Sequential: ``(B, c_in, H, W) -> (B, c_out, H // 2, W // 2)``.

    >>> import torch
    >>> conv_block(3, 8)(torch.zeros(2, 3, 16, 16)).shape
    torch.Size([2, 8, 8, 8])

    Introduced in the chapter "Convolutional neural networks".
    """
    if not (_positive_int(c_in) and _positive_int(c_out)):
        raise ValueError(
            f"expected positive integer channel counts, got c_in={c_in!r} and c_out={c_out!r}"
        )
    if not _positive_int(kernel_size) or kernel_size % 2 == 0:
        raise ValueError(f"expected an odd positive kernel_size, got {kernel_size!r}")
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


def small_cnn(
    num_classes: int, in_channels: int = 3, channels: Sequence[int] = (16, 32, 64)
) -> nn.Sequential:
    """A small VGG-style CNN: conv blocks, global average pooling, a linear classifier.

    Works for any input size that survives ``len(channels)`` halvings. The last conv block,
    ``model[-4]``, outputs the feature maps that Grad-CAM and transfer learning use; ``model[-3]``
    pools them, ``model[-1]`` is the classifier.

    Args:
        num_classes (int): number of outputs.
        in_channels (int): image channels. Default 3.
        channels (sequence of int): output channels of each block. Default (16, 32, 64).

    Returns:
        nn.Sequential: ``(B, in_channels, H, W) -> (B, num_classes)``.

    >>> import torch
    >>> small_cnn(5)(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 5])

    Introduced in the chapter "Convolutional neural networks".
    """
    if isinstance(channels, int) or not isinstance(channels, Sequence):
        raise TypeError(f"expected channels as a sequence such as (16, 32, 64), got {channels!r}")
    if not channels or not all(_positive_int(k) for k in (num_classes, in_channels, *channels)):
        raise ValueError(
            "expected at least one block and positive integer sizes, got "
            f"num_classes={num_classes!r}, in_channels={in_channels!r}, channels={tuple(channels)}"
        )
    widths = [in_channels, *channels]
    blocks = [conv_block(a, b) for a, b in zip(widths[:-1], widths[1:])]
    return nn.Sequential(
        *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[-1], num_classes)
    )


def digits_cnn(
    num_classes: int, channels: tuple[int, int, int] = (16, 32, 64), hidden: int = 128
) -> nn.Sequential:
    """The digit CNN of the model zoo: three conv blocks, then
    ``Flatten -> Dropout -> Linear -> ReLU -> Linear``.

    The blocks are :func:`conv_block` (5x5 first, then 3x3), so a ``(B, 1, 28, 28)`` input
    becomes ``(B, channels[2], 3, 3)``; ``model[:-1]`` gives the ``(B, hidden)`` penultimate
    features (after the ReLU), ``model[:4]`` the ``(B, 9 * channels[2])`` flattened trunk.

    Args:
        num_classes (int): number of logits.
        channels (tuple of 3 int): channels of the three blocks. Default (16, 32, 64).
        hidden (int): width of the penultimate layer. Default 128.

    Returns:
        nn.Sequential: ``(B, 1, 28, 28) -> (B, num_classes)``.

    >>> import torch
    >>> digits_cnn(10)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])

    Introduced in the chapter "Transfer learning".
    """
    sizes = [num_classes, hidden, *channels] if isinstance(channels, tuple | list) else [channels]
    if len(sizes) != 5 or not all(_positive_int(k) for k in sizes):
        raise ValueError(
            f"expected 3 positive channels, hidden >= 1 and num_classes >= 1, got {channels!r}, "
            f"{hidden!r}, {num_classes!r}"
        )
    c1, c2, c3 = channels
    return nn.Sequential(
        conv_block(1, c1, 5), conv_block(c1, c2), conv_block(c2, c3),  # (B, c3, 3, 3)
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(c3 * 9, hidden), nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )  # fmt: skip
