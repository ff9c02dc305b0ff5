"""What a trained CNN computes: feature maps at several depths and the inputs that excite a channel.

Feature maps are captured with forward hooks that a context manager always removes (built on
:func:`visionbook.cam.record`); the most-activating inputs of a channel are found by one pass
over a data set, and the part of each input that a unit sees is cut out with its receptive
field (:func:`visionbook.conv.receptive_fields`), as Zeiler and Fergus showed image patches.
Introduced in the chapter "Convolutional neural networks".
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import torch
from torch import nn

from visionbook.cam import Recording, record


@contextlib.contextmanager
def capture(layers: Mapping[str, nn.Module]) -> Iterator[dict[str, Recording]]:
    """Record the outputs of several layers during the forward passes inside a ``with`` block.

    Every hook is removed when the block ends, normally or by an exception (never swallowed).

    Args:
        layers (mapping of str to nn.Module): names of your choice and the layers to watch.

    Yields:
        dict: the same names mapped to :class:`visionbook.cam.Recording` objects; after a
        forward pass, ``recordings[name].activations`` is that layer's output, for example
        ``(N, C, h, w)`` for a convolution (the last pass's, when there are several).

    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2))
    >>> with capture({"conv": net[0], "pool": net[2]}) as maps:
    ...     _ = net(torch.zeros(2, 1, 10, 10))
    >>> maps["conv"].activations.shape, maps["pool"].activations.shape, len(net[0]._forward_hooks)
    (torch.Size([2, 4, 8, 8]), torch.Size([2, 4, 4, 4]), 0)

    Introduced in the chapter "Convolutional neural networks".
    """
    if not isinstance(layers, Mapping) or not layers:
        raise TypeError(f"expected a non-empty mapping of names to layers, got {type(layers).__name__}")
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(record(layer)) for name, layer in layers.items()}


@torch.no_grad()
def top_activating(
    model: nn.Module, layer: nn.Module, X: torch.Tensor, k: int = 9, batch_size: int = 500
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For every channel of ``layer``, the ``k`` inputs whose strongest unit in that channel is largest.

    Each input is scored, per channel, by the maximum of the channel's feature map over all
    positions; the position of that maximum is returned too, so that the patch the unit sees
    can be cut out (:func:`receptive_field_patches`).

    Args:
        model (nn.Module): the network, run in eval mode on its own device.
        layer (nn.Module): a layer of ``model`` with ``(N, C, h, w)`` outputs.
        X (Tensor): inputs ``(N, ...)``, on any device.
        k (int): inputs kept per channel, at most N. Default 9.
        batch_size (int): inputs per forward pass. Default 500.

    Returns:
        tuple: ``values (C, k)`` in decreasing order, ``indices (C, k)`` into ``X`` and
        ``positions (C, k, 2)`` (row, column in the feature map), all on the CPU.

    >>> net = nn.Sequential(nn.Identity())
    >>> top_activating(net, net[0], torch.arange(4.0).view(4, 1, 1, 1), k=2)[1].tolist()
    [[3, 2]]

    Introduced in the chapter "Convolutional neural networks".
    """
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= len(X):
        raise ValueError(f"expected an integer k between 1 and the number of inputs {len(X)}, got {k!r}")
    device = next(model.parameters(), torch.empty(0)).device
    was_training = model.training
    model.eval()
    scores, where = [], []
    with record(layer) as rec:
        for start in range(0, len(X), batch_size):
            model(X[start : start + batch_size].to(device))
            maps = rec.activations
            if maps is None or maps.ndim != 4:
                raise ValueError(
                    f"expected the layer's output of shape (N, C, h, w), got {None if maps is None else tuple(maps.shape)}"
                )
            best, flat = maps.flatten(2).max(dim=2)  # (B, C)
            scores.append(best.cpu())
            where.append(torch.stack((flat // maps.shape[3], flat % maps.shape[3]), dim=-1).cpu())  # (B, C, 2)
    model.train(was_training)
    values, indices = torch.cat(scores).T.topk(k, dim=1)  # (C, k)
    positions = torch.cat(where).permute(1, 0, 2)  # (C, N, 2)
    return values, indices, positions.gather(1, indices.unsqueeze(-1).expand(-1, -1, 2))


def receptive_field_patches(images: torch.Tensor, positions: torch.Tensor, rf: Mapping) -> torch.Tensor:
    """Cut out of each image the square that one feature-map unit sees (zeros outside the image).

    Args:
        images (Tensor): ``(N, C, H, W)``.
        positions (Tensor): ``(N, 2)`` row and column of a unit in the feature map.
        rf (mapping): the layer's row of :func:`visionbook.conv.receptive_fields`, with ``rf``,
            ``jump`` and ``start``.

    Returns:
        Tensor: ``(N, C, rf, rf)``; the unit at ``(i, j)`` sees rows from
        ``start + i * jump - (rf - 1) / 2``.

    >>> receptive_field_patches(torch.ones(1, 1, 4, 4), torch.tensor([[0, 0]]), {"rf": 3, "jump": 1, "start": 0.0})[0, 0].tolist()
    [[0.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 1.0, 1.0]]

    Introduced in the chapter "Convolutional neural networks".
    """
    if images.ndim != 4 or positions.shape != (len(images), 2):
        raise ValueError(
            f"expected images (N, C, H, W) and positions (N, 2), got {tuple(images.shape)} and {tuple(positions.shape)}"
        )
    size, jump, start = int(rf["rf"]), int(rf["jump"]), float(rf["start"])
    offset = start - (size - 1) / 2
    if offset != int(offset):
        raise ValueError(f"expected a receptive field aligned with the pixel grid, got start {start} and size {size}")
    n, c, h, w = images.shape
    padded = images.new_zeros(n, c, h + 2 * size, w + 2 * size)
    padded[:, :, size : size + h, size : size + w] = images
    tops = (positions * jump + int(offset) + size).tolist()
    return torch.stack([padded[i, :, t : t + size, l : l + size] for i, (t, l) in enumerate(tops)])


def to_unit_range(maps: torch.Tensor) -> torch.Tensor:
    """Rescale each ``(H, W)`` map on its own to ``[0, 1]`` for display (constant maps become 0).

    Args:
        maps (Tensor): ``(..., H, W)``, for example filters ``(O, C, kh, kw)`` or feature maps.

    Returns:
        Tensor: same shape, each map's minimum at 0 and maximum at 1.

    >>> to_unit_range(torch.tensor([[[-1.0, 1.0]], [[2.0, 2.0]]])).tolist()
    [[[0.0, 1.0]], [[0.0, 0.0]]]

    Introduced in the chapter "Convolutional neural networks".
    """
    if not isinstance(maps, torch.Tensor) or maps.ndim < 2:
        raise ValueError(
            f"expected maps of shape (..., H, W), got {tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__}"
        )
    flat = maps.detach().flatten(-2)
    low, high = flat.amin(-1, keepdim=True), flat.amax(-1, keepdim=True)
    return ((flat - low) / (high - low).clamp_min(1e-12)).view_as(maps)
