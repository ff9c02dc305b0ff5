"""Convolution and pooling from scratch, and the arithmetic of their sizes and receptive fields.

Cross-correlation (what deep learning calls convolution) written twice: with explicit loops
over output positions, then vectorised by unrolling windows into columns (im2col, what
``F.unfold`` does) so that the whole layer becomes one matrix product. Max and average pooling
reuse the same windows. Also: output sizes, receptive fields of a chain of layers, classic
hand-made kernels (Sobel, blur, sharpen), filtering a photograph, and translating an image.
Everything works on CPU and CUDA tensors. Introduced in the chapter "Convolution and pooling".
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from visionbook._validate import _expect_number, _expect_tensor

Pair = int | tuple[int, int]


def _pair(value: Pair, name: str, minimum: int = 1) -> tuple[int, int]:
    """``3 -> (3, 3)``; checks that both entries are integers at least ``minimum``."""
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(pair, tuple)
        or len(pair) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in pair)
    ):
        raise ValueError(
            f"expected {name} as an integer >= {minimum} or a pair of them, got {value!r}"
        )
    return pair


def conv_output_size(
    size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
    """Output length along one axis of a convolution or pooling layer.

    ``floor((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1``, the formula
    of PyTorch's ``nn.Conv2d`` documentation and of Dumoulin and Visin's guide.

    Args:
        size (int): input length (height or width), positive.
        kernel_size (int): kernel length, positive.
        stride (int): step between windows, positive. Default 1.
        padding (int): zeros added on each side, non-negative. Default 0.
        dilation (int): spacing between kernel taps, positive. Default 1.

    Returns:
        int: the output length, at least 1.

    >>> (
    ...     conv_output_size(28, 5),
    ...     conv_output_size(28, 5, padding=2),
    ...     conv_output_size(224, 7, stride=2, padding=3),
    ... )
    (24, 28, 112)

    Introduced in the chapter "Convolution and pooling".
    """
    for name, value, minimum in (
        ("size", size, 1), ("kernel_size", kernel_size, 1), ("stride", stride, 1),
        ("padding", padding, 0), ("dilation", dilation, 1),
    ):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"expected {name} to be an integer >= {minimum}, got {value!r}")
    span = dilation * (kernel_size - 1) + 1
    if size + 2 * padding < span:
        raise ValueError(
            f"expected the kernel's span {span} to fit in the padded input of length "
            f"{size + 2 * padding}"
        )
    return (size + 2 * padding - span) // stride + 1


def _check_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(
            "expected input of shape (N, C, H, W), got "
            f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}"
        )
    if not isinstance(weight, torch.Tensor) or weight.ndim != 4 or weight.shape[1] != x.shape[1]:
        got = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise ValueError(
            f"expected weight of shape (O, {x.shape[1]}, kh, kw) for an input with {x.shape[1]} "
            f"channels, got {got}"
        )
    if bias is not None and (
        not isinstance(bias, torch.Tensor) or bias.shape != (weight.shape[0],)
    ):
        got = tuple(bias.shape) if isinstance(bias, torch.Tensor) else type(bias).__name__
        raise ValueError(f"expected bias of shape ({weight.shape[0]},), got {got}")


def _conv_geometry(x, weight, bias, stride, padding, dilation) -> tuple[tuple[int, int], ...]:
    """Checked arguments of a convolution: stride, padding, dilation, kernel and output sizes as
    (h, w) pairs."""
    _check_conv(x, weight, bias)
    (sh, sw), (dh, dw) = _pair(stride, "stride"), _pair(dilation, "dilation")
    ph, pw = _pair(padding, "padding", minimum=0)
    kh, kw = weight.shape[-2:]
    ho, wo = (
        conv_output_size(x.shape[2], kh, sh, ph, dh),
        conv_output_size(x.shape[3], kw, sw, pw, dw),
    )
    return (sh, sw), (ph, pw), (dh, dw), (kh, kw), (ho, wo)


def zero_pad(x: torch.Tensor, padding: Pair, value: float = 0.0) -> torch.Tensor:
    """Surround the last two axes of ``x`` with ``padding`` rows and columns of ``value``.

    Args:
        x (Tensor): ``(..., H, W)``.
        padding (int | tuple): rows added above and below, columns left and right.
        value (float): the fill value. Default 0 (``-inf`` for max pooling).

    Returns:
        Tensor: ``(..., H + 2 * ph, W + 2 * pw)``.

    >>> zero_pad(torch.ones(1, 2), 1).tolist()
    [[0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]

    Introduced in the chapter "Convolution and pooling".
    """
    _expect_tensor(x, "x", "(..., H, W)", min_ndim=2)
    _expect_number(value, "value")
    ph, pw = _pair(padding, "padding", minimum=0)
    out = x.new_full((*x.shape[:-2], x.shape[-2] + 2 * ph, x.shape[-1] + 2 * pw), value)
    out[..., ph : ph + x.shape[-2], pw : pw + x.shape[-1]] = x
    return out


def conv2d_loops(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: Pair = 1,
    padding: Pair = 0,
    dilation: Pair = 1,
) -> torch.Tensor:
    """Cross-correlation with explicit loops over the output positions (slow, for teaching).

    Each output pixel ``(i, j)`` is, for every example and output channel, the sum over input
    channels and kernel taps of ``window * weight``, where the window starts at
    ``(i * stride, j * stride)`` of the zero-padded input and takes every ``dilation``-th pixel.

    Args:
        x (Tensor): input ``(N, C, H, W)``.
        weight (Tensor): kernels ``(O, C, kh, kw)``.
        bias (Tensor | None): ``(O,)`` added to each output channel. Default None.
        stride, padding, dilation (int | tuple): as in ``nn.Conv2d``. Defaults 1, 0, 1.

    Returns:
        Tensor: ``(N, O, Ho, Wo)``, sizes given by :func:`conv_output_size`.

    >>> conv2d_loops(torch.arange(9.0).view(1, 1, 3, 3), torch.ones(1, 1, 2, 2)).view(2, 2).tolist()
    [[8.0, 12.0], [20.0, 24.0]]

    Introduced in the chapter "Convolution and pooling".
    """
    (sh, sw), (ph, pw), (dh, dw), (kh, kw), (ho, wo) = _conv_geometry(
        x, weight, bias, stride, padding, dilation
    )
    xp = zero_pad(x, (ph, pw))
    out = x.new_zeros(x.shape[0], weight.shape[0], ho, wo)
    for i in range(ho):
        rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)  # kh rows, dh apart
        for j in range(wo):
            cols = slice(j * sw, j * sw + dw * (kw - 1) + 1, dw)  # kw columns, dw apart
            window = xp[:, :, rows, cols]  # (N, C, kh, kw)
            # (N, 1, C, kh, kw) * (O, C, kh, kw)
            out[:, :, i, j] = (window.unsqueeze(1) * weight).sum(dim=(2, 3, 4))
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def windows(
    x: torch.Tensor,
    kernel_size: Pair,
    stride: Pair = 1,
    padding: Pair = 0,
    dilation: Pair = 1,
    pad_value: float = 0.0,
) -> torch.Tensor:
    """All sliding windows of ``x``, one kernel tap at a time: ``(N, C, kh * kw, Ho, Wo)``.

    Entry ``[n, c, a * kw + b, i, j]`` is the padded input at row ``i * stride + a * dilation``
    and column ``j * stride + b * dilation``: the loop runs over the ``kh * kw`` taps (9 for a
    3x3 kernel), each taking a strided slice of the whole image, instead of over the pixels.

    Args:
        x (Tensor): ``(N, C, H, W)``.
        kernel_size, stride, padding, dilation (int | tuple): as in ``nn.Conv2d``.
        pad_value (float): fill of the padding. Default 0.

    Returns:
        Tensor: ``(N, C, kh * kw, Ho, Wo)``.

    >>> windows(torch.arange(9.0).view(1, 1, 3, 3), 2)[0, 0, :, 0, 0].tolist()
    [0.0, 1.0, 3.0, 4.0]

    Introduced in the chapter "Convolution and pooling".
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(
            "expected input of shape (N, C, H, W), got "
            f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}"
        )
    (kh, kw), (sh, sw), (dh, dw) = (
        _pair(kernel_size, "kernel_size"),
        _pair(stride, "stride"),
        _pair(dilation, "dilation"),
    )
    ph, pw = _pair(padding, "padding", minimum=0)
    ho, wo = (
        conv_output_size(x.shape[2], kh, sh, ph, dh),
        conv_output_size(x.shape[3], kw, sw, pw, dw),
    )
    xp = zero_pad(x, (ph, pw), pad_value)
    taps = [
        xp[:, :, a * dh : a * dh + sh * (ho - 1) + 1 : sh, b * dw : b * dw + sw * (wo - 1) + 1 : sw]
        for a in range(kh)
        for b in range(kw)
    ]
    return torch.stack(taps, dim=2)


def im2col(
    x: torch.Tensor, kernel_size: Pair, stride: Pair = 1, padding: Pair = 0, dilation: Pair = 1
) -> torch.Tensor:
    """Unroll every window into a column: ``(N, C * kh * kw, Ho * Wo)``, the layout of ``F.unfold``.

    Args:
        x (Tensor): ``(N, C, H, W)``.
        kernel_size, stride, padding, dilation (int | tuple): as in ``nn.Conv2d``.

    Returns:
        Tensor: ``(N, C * kh * kw, Ho * Wo)``; column ``i * Wo + j`` holds the window of output
            ``(i, j)``.

    >>> im2col(torch.arange(9.0).view(1, 1, 3, 3), 2)[0].tolist()
    [[0.0, 1.0, 3.0, 4.0], [1.0, 2.0, 4.0, 5.0], [3.0, 4.0, 6.0, 7.0], [4.0, 5.0, 7.0, 8.0]]

    Introduced in the chapter "Convolution and pooling".
    """
    w = windows(x, kernel_size, stride, padding, dilation)  # (N, C, kh * kw, Ho, Wo)
    return w.reshape(w.shape[0], w.shape[1] * w.shape[2], w.shape[3] * w.shape[4])


def conv2d_im2col(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: Pair = 1,
    padding: Pair = 0,
    dilation: Pair = 1,
) -> torch.Tensor:
    """Cross-correlation as one matrix product: ``weight (O, C*kh*kw) @ im2col(x) (N, C*kh*kw, L)``.

    Args:
        x (Tensor): input ``(N, C, H, W)``.
        weight (Tensor): kernels ``(O, C, kh, kw)``.
        bias (Tensor | None): ``(O,)``. Default None.
        stride, padding, dilation (int | tuple): as in ``nn.Conv2d``. Defaults 1, 0, 1.

    Returns:
        Tensor: ``(N, O, Ho, Wo)``, equal to ``F.conv2d`` up to rounding.

    >>> conv2d_im2col(torch.arange(9.0).view(1, 1, 3, 3), torch.ones(1, 1, 2, 2)).view(
    ...     2, 2
    ... ).tolist()
    [[8.0, 12.0], [20.0, 24.0]]

    Introduced in the chapter "Convolution and pooling".
    """
    *_, (kh, kw), (ho, wo) = _conv_geometry(x, weight, bias, stride, padding, dilation)
    # (N, O, Ho * Wo)
    out = weight.reshape(weight.shape[0], -1) @ im2col(x, (kh, kw), stride, padding, dilation)
    out = out.reshape(x.shape[0], weight.shape[0], ho, wo)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def max_pool2d(
    x: torch.Tensor, kernel_size: Pair, stride: Pair | None = None, padding: Pair = 0
) -> torch.Tensor:
    """Max pooling from scratch: the largest value of each window, channel by channel.

    Args:
        x (Tensor): ``(N, C, H, W)``.
        kernel_size (int | tuple): window size.
        stride (int | tuple | None): default ``kernel_size`` (non-overlapping windows).
        padding (int | tuple): implicit ``-inf`` border, as in ``F.max_pool2d``. Default 0.

    Returns:
        Tensor: ``(N, C, Ho, Wo)``.

    >>> max_pool2d(torch.arange(16.0).view(1, 1, 4, 4), 2).view(2, 2).tolist()
    [[5.0, 7.0], [13.0, 15.0]]

    Introduced in the chapter "Convolution and pooling".
    """
    return windows(
        x, kernel_size, kernel_size if stride is None else stride, padding, pad_value=float("-inf")
    ).amax(dim=2)


def avg_pool2d(
    x: torch.Tensor, kernel_size: Pair, stride: Pair | None = None, padding: Pair = 0
) -> torch.Tensor:
    """Average pooling from scratch: the mean of each window (zero padding counts, as in
    ``F.avg_pool2d``).

    Args:
        x (Tensor): ``(N, C, H, W)``.
        kernel_size (int | tuple): window size.
        stride (int | tuple | None): default ``kernel_size``.
        padding (int | tuple): zeros added on each side. Default 0.

    Returns:
        Tensor: ``(N, C, Ho, Wo)``.

    >>> avg_pool2d(torch.arange(16.0).view(1, 1, 4, 4), 2).view(2, 2).tolist()
    [[2.5, 4.5], [10.5, 12.5]]

    Introduced in the chapter "Convolution and pooling".
    """
    return windows(x, kernel_size, kernel_size if stride is None else stride, padding).mean(dim=2)


_POINTWISE = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Identity,
    nn.BatchNorm2d,
    nn.Dropout,
    nn.Dropout2d,
)


def _geometry(layer: nn.Module) -> tuple[int, int, int, int] | None:
    """``(kernel, stride, padding, dilation)`` along the height of a layer; None for
    pointwise layers."""
    if isinstance(layer, _POINTWISE):
        return None
    if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        first = lambda v: v[0] if isinstance(v, tuple) else v
        stride = layer.stride if layer.stride is not None else layer.kernel_size
        if isinstance(layer.padding, str):
            raise ValueError(f"expected numeric padding, got padding={layer.padding!r} in {layer}")
        return (
            first(layer.kernel_size),
            first(stride),
            first(layer.padding),
            first(getattr(layer, "dilation", 1)),
        )
    raise TypeError(
        "expected convolution, pooling or pointwise layers (a chain without Flatten or Linear), "
        f"got {type(layer).__name__}"
    )


def receptive_fields(layers: nn.Module | Iterable[nn.Module]) -> list[dict]:
    """Receptive field, jump and centre of the first unit after each layer of a chain.

    With ``k' = dilation * (kernel - 1) + 1``, a layer maps ``(r, j, s)`` to
    ``r + (k' - 1) * j``, ``j * stride`` and ``s + ((k' - 1) / 2 - padding) * j``: ``r`` is
    how many input pixels one unit sees, ``j`` how far apart (in input pixels) neighbouring
    units are, and ``s`` where the centre of unit 0's field lies in input coordinates.
    Pointwise layers (activations, batch norm, dropout) change nothing. Only the height axis
    is followed (the book's kernels are square); the model must be a chain, like ``nn.Sequential``.

    Args:
        layers (nn.Module | iterable of nn.Module): a chain; a module is read leaf by leaf.

    Returns:
        list of dict: one per leaf layer, keys ``layer``, ``type``, ``kernel``, ``stride``,
        ``padding``, ``dilation``, ``rf``, ``jump``, ``start``.

    >>> [
    ...     r["rf"]
    ...     for r in receptive_fields(
    ...         [nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3)]
    ...     )
    ... ]
    [3, 5, 6, 10]

    Introduced in the chapter "Convolution and pooling".
    """
    if isinstance(layers, nn.Module):
        named = [(name, m) for name, m in layers.named_modules() if not list(m.children())]
    else:
        named = [(str(i), m) for i, m in enumerate(layers)]
    rows, (rf, jump, start) = [], (1, 1, 0.0)
    for name, layer in named:
        if not isinstance(layer, nn.Module):
            raise TypeError(f"expected nn.Module layers, got {type(layer).__name__}")
        kernel, stride, padding, dilation = _geometry(layer) or (1, 1, 0, 1)
        span = dilation * (kernel - 1) + 1
        rf, start, jump = (
            rf + (span - 1) * jump,
            start + ((span - 1) / 2 - padding) * jump,
            jump * stride,
        )
        rows.append({"layer": name, "type": type(layer).__name__, "kernel": kernel,
                     "stride": stride, "padding": padding, "dilation": dilation,
                     "rf": rf, "jump": jump, "start": start})  # fmt: skip
    return rows


_KERNELS = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "box blur": [[1 / 9] * 3] * 3,
    "gaussian blur": [[1 / 16, 2 / 16, 1 / 16], [2 / 16, 4 / 16, 2 / 16], [1 / 16, 2 / 16, 1 / 16]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "sobel x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
}
CLASSIC_KERNELS = tuple(_KERNELS)


def classic_kernel(name: str) -> torch.Tensor:
    """A classic hand-made 3x3 kernel: one of ``CLASSIC_KERNELS``.

    Blurs average neighbours (weights sum to 1); ``sharpen`` adds the difference from the
    neighbours (sums to 1); Sobel kernels respond to horizontal (``sobel x``: vertical edges) or
    vertical intensity changes and the Laplacian to curvature (both sum to 0, so flat regions
    give 0); ``emboss`` lights the image from one corner.

    Args:
        name (str): for example ``"sobel x"``.

    Returns:
        Tensor: ``(3, 3)`` float32, a fresh copy.

    >>> classic_kernel("sobel x")[1].tolist()
    [-2.0, 0.0, 2.0]

    Introduced in the chapter "Convolution and pooling".
    """
    if name not in _KERNELS:
        raise ValueError(f"unknown kernel {name!r}; expected one of {', '.join(CLASSIC_KERNELS)}")
    return torch.tensor(_KERNELS[name], dtype=torch.float32)


def filter_image(
    image: torch.Tensor, kernel: torch.Tensor, padding_mode: str = "reflect"
) -> torch.Tensor:
    """Cross-correlate every channel of an image with the same 2-D kernel; the size is kept.

    Args:
        image (Tensor): ``(C, H, W)`` or ``(N, C, H, W)``.
        kernel (Tensor): ``(kh, kw)`` with odd sizes.
        padding_mode (str): how the border is extended, ``"reflect"``, ``"replicate"``,
            ``"circular"`` or ``"zeros"``. Default ``"reflect"`` (no dark frame).

    Returns:
        Tensor: same shape as ``image``; values are not clipped.

    >>> filter_image(torch.ones(1, 4, 4), classic_kernel("sobel x")).abs().max().item()
    0.0

    Introduced in the chapter "Convolution and pooling".
    """
    if not isinstance(image, torch.Tensor) or image.ndim not in (3, 4):
        raise ValueError(
            "expected an image (C, H, W) or a batch (N, C, H, W), got "
            f"{tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__}"
        )
    if (
        not isinstance(kernel, torch.Tensor)
        or kernel.ndim != 2
        or kernel.shape[0] % 2 == 0
        or kernel.shape[1] % 2 == 0
    ):
        raise ValueError(
            "expected a 2-D kernel with odd sizes, got "
            f"{tuple(kernel.shape) if isinstance(kernel, torch.Tensor) else type(kernel).__name__}"
        )
    if padding_mode not in ("reflect", "replicate", "circular", "zeros"):
        raise ValueError(
            "expected padding_mode 'reflect', 'replicate', 'circular' or 'zeros', got "
            f"{padding_mode!r}"
        )
    x = image.unsqueeze(0) if image.ndim == 3 else image
    ph, pw = kernel.shape[0] // 2, kernel.shape[1] // 2
    x = F.pad(x, (pw, pw, ph, ph), mode="constant" if padding_mode == "zeros" else padding_mode)
    c = x.shape[1]
    weight = kernel.to(x).expand(c, 1, *kernel.shape)  # one copy of the kernel per channel
    out = F.conv2d(x, weight, groups=c)
    return out[0] if image.ndim == 3 else out


def translate(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Shift the content of the last two axes by ``dy`` rows down and ``dx`` columns right.

    What moves out of the frame is lost; what comes in is zero (unlike ``torch.roll``,
    which wraps around).

    Args:
        x (Tensor): ``(..., H, W)``.
        dy (int): rows to move down (negative: up).
        dx (int): columns to move right (negative: left).

    Returns:
        Tensor: same shape as ``x``.

    >>> translate(torch.tensor([[1.0, 2.0, 3.0]]), 0, 1).tolist()
    [[0.0, 1.0, 2.0]]

    Introduced in the chapter "Convolution and pooling".
    """
    if not isinstance(x, torch.Tensor) or x.ndim < 2:
        raise ValueError(
            "expected a tensor (..., H, W), got "
            f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}"
        )
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (dy, dx)):
        raise TypeError(f"expected integer shifts, got dy={dy!r}, dx={dx!r}")
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    if abs(dy) < h and abs(dx) < w:
        out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = x[
            ..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
        ]
    return out
