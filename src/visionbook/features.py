"""What a trained CNN computes: feature maps at several depths and the inputs that excite a channel.

Feature maps are captured with forward hooks that a context manager always removes
(:func:`record`, which Grad-CAM reuses in :mod:`visionbook.cam`); the most-activating inputs of a
channel are found by one pass over a data set, and the part of each input that a unit sees is cut
out with its receptive field (:func:`visionbook.conv.receptive_fields`), as Zeiler and Fergus showed
image patches. For networks whose padding depends on the input (TensorFlow's "same"), receptive
fields are measured from input gradients instead; simple probes (edges and gratings, the share of
gradient energy along one orientation) test what a channel responds to. Introduced in the chapter
"Convolutional neural networks".
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

_EDGE_COLOURS = (
    ((0, 0, 0), (1, 1, 1)),
    ((1, 0, 0), (0, 1, 1)),
    ((0, 1, 0), (1, 0, 1)),
    ((0, 0, 1), (1, 1, 0)),
)


@dataclass
class Recording:
    """What :func:`record` captured at a layer: its output and the gradient flowing into it."""

    activations: torch.Tensor | None = None
    gradients: torch.Tensor | None = None
    handles: list = field(default_factory=list)


@contextlib.contextmanager
def record(layer: nn.Module) -> Iterator[Recording]:
    """Capture a layer's forward output and its gradient while the ``with`` block runs.

    The hooks (on the layer and on its output tensor) are removed when the block ends, whether it
    ends normally or by an exception (which is never swallowed), so call ``backward`` inside it.

    Args:
        layer (nn.Module): the layer to watch, for example the last convolutional block.

    Yields:
        Recording: ``activations`` ``(N, C, h, w)`` after the forward pass and ``gradients``
        of the same shape after ``backward``.

    >>> conv = nn.Conv2d(1, 2, 3)
    >>> with record(conv) as rec:
    ...     conv(torch.ones(1, 1, 4, 4)).sum().backward()
    >>> rec.gradients.shape, len(conv._forward_hooks)
    (torch.Size([1, 2, 2, 2]), 0)

    Introduced in the chapter "Convolutional neural networks".
    """
    if not isinstance(layer, nn.Module):
        raise TypeError(f"expected an nn.Module layer, got {type(layer).__name__}")
    rec = Recording()

    def forward_hook(module, inputs, output):
        rec.activations = output
        # removed at the end too: a hook left on the output would keep rec, and the graph, alive
        if output.requires_grad:
            rec.handles.append(output.register_hook(lambda grad: setattr(rec, "gradients", grad)))

    rec.handles.append(layer.register_forward_hook(forward_hook))
    try:
        yield rec
    finally:
        for handle in rec.handles:
            handle.remove()


@contextlib.contextmanager
def capture(layers: Mapping[str, nn.Module]) -> Iterator[dict[str, Recording]]:
    """Record the outputs of several layers during the forward passes inside a ``with`` block.

    Every hook is removed when the block ends, normally or by an exception (never swallowed).

    Args:
        layers (mapping of str to nn.Module): names of your choice and the layers to watch.

    Yields:
        dict: the same names mapped to :class:`Recording` objects; after a
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
        raise TypeError(
            f"expected a non-empty mapping of names to layers, got {type(layers).__name__}"
        )
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(record(layer)) for name, layer in layers.items()}


def top_activating(
    model: nn.Module, layer: nn.Module, X: torch.Tensor, k: int = 9, batch_size: int = 500
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For every channel of ``layer``, the ``k`` inputs whose strongest unit in that channel
    is largest.

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
    return top_activating_layers(model, {"layer": layer}, X, k=k, batch_size=batch_size)["layer"]


@torch.no_grad()
def top_activating_layers(
    model: nn.Module,
    layers: Mapping[str, nn.Module],
    X: torch.Tensor,
    k: int = 9,
    batch_size: int = 500,
    border: int = 0,
) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """:func:`top_activating` for several layers at once, with one pass of ``model`` over ``X``.

    Args:
        model (nn.Module): the network, run in eval mode on its own device (a prefix such as
            ``model[:7]`` is enough when the deepest layer watched is inside it).
        layers (mapping of str to nn.Module): names of your choice and layers of ``model`` with
            ``(N, C, h, w)`` outputs.
        X (Tensor): inputs ``(N, ...)``, on any device.
        k (int): inputs kept per channel, at most N. Default 9.
        batch_size (int): inputs per forward pass. Default 500.
        border (int): units this close to the edge of a feature map are not considered, for
            example 1 to keep away from the zero padding, whose artificial edges can excite
            a channel more than anything in the images. Default 0.

    Returns:
        dict: each name mapped to the triple of :func:`top_activating`: ``values (C, k)``,
        ``indices (C, k)`` and ``positions (C, k, 2)``, on the CPU.

    >>> net = nn.Sequential(nn.Identity(), nn.MaxPool2d(2))
    >>> tops = top_activating_layers(
    ...     net, {"in": net[0], "pool": net[1]}, torch.arange(8.0).view(2, 1, 2, 2), k=1
    ... )
    >>> tops["in"][2].tolist(), tops["pool"][0].tolist()
    ([[[1, 1]]], [[7.0]])

    Introduced in the chapter "Convolutional neural networks".
    """
    if not isinstance(X, torch.Tensor) or X.ndim < 2:
        raise ValueError(
            "expected a batch of inputs X of shape (N, ...), got "
            f"{tuple(X.shape) if isinstance(X, torch.Tensor) else type(X).__name__}"
        )
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= len(X):
        raise ValueError(
            f"expected an integer k between 1 and the number of inputs {len(X)}, got {k!r}"
        )
    if isinstance(border, bool) or not isinstance(border, int) or border < 0:
        raise ValueError(f"expected a non-negative integer border, got {border!r}")
    device = next(model.parameters(), torch.empty(0)).device
    was_training = model.training
    model.eval()
    scores: dict[str, list] = {name: [] for name in layers}
    where: dict[str, list] = {name: [] for name in layers}
    try:
        with capture(layers) as maps:
            for start in range(0, len(X), batch_size):
                model(X[start : start + batch_size].to(device))
                for name, rec in maps.items():
                    inner = _inner(_check_maps(rec.activations), border)
                    best, flat = inner.flatten(2).max(dim=2)  # (B, C)
                    scores[name].append(best.cpu())
                    rows, cols = flat // inner.shape[3] + border, flat % inner.shape[3] + border
                    where[name].append(torch.stack((rows, cols), dim=-1).cpu())  # (B, C, 2)
    finally:
        model.train(was_training)
    tops = {}
    for name in layers:
        values, indices = torch.cat(scores[name]).T.topk(k, dim=1)  # (C, k)
        positions = torch.cat(where[name]).permute(1, 0, 2)  # (C, N, 2)
        tops[name] = values, indices, positions.gather(1, indices.unsqueeze(-1).expand(-1, -1, 2))
    return tops


def _inner(maps: torch.Tensor, border: int) -> torch.Tensor:
    h, w = maps.shape[-2:]
    if 2 * border >= min(h, w):
        raise ValueError(
            f"expected a border that leaves units inside the {h}x{w} feature map, got {border}"
        )
    return maps[..., border : h - border, border : w - border]


def _check_maps(maps: torch.Tensor | None) -> torch.Tensor:
    if maps is None or maps.ndim != 4:
        raise ValueError(
            "expected the layer's output of shape (N, C, h, w), got "
            f"{None if maps is None else tuple(maps.shape)}"
        )
    return maps


def gradient_receptive_fields(
    model: nn.Module, layers: Mapping[str, nn.Module], x: torch.Tensor, mass: float = 0.9
) -> list[dict]:
    """Measure which input pixels the centre unit of each layer depends on, from the input gradient.

    The input is copied once per layer; for copy ``b``, the centre unit of layer ``b`` (summed
    over channels) is differentiated with respect to its input, all in one backward pass. The
    pixels with a nonzero gradient are the unit's receptive field as the network really
    computes it, "same" padding, strides and residual paths included. An exact zero (a ReLU
    that is off, a zero weight) can only hide pixels, so compare with the formula of
    :func:`visionbook.conv.receptive_fields` where it applies. A field that reaches the border
    of the input is cut by it (``clipped``): the true field is at least that large. The
    *effective* receptive field of Luo et al. (2016) is where most of the gradient lies; here,
    more simply, the side of the smallest square around the field's centre that holds ``mass``
    of the absolute gradient.

    Args:
        model (nn.Module): a network that treats the images of a batch independently (eval mode
            is set for the measurement), on its own device.
        layers (mapping of str to nn.Module): names and layers of ``model`` with ``(N, C, h, w)``
            outputs; the input's size should be a multiple of each layer's total stride.
        x (Tensor): one input ``(1, C, H, W)``.
        mass (float): share of the gradient inside the effective field, in (0, 1]. Default 0.9.

    Returns:
        list of dict: one per layer, in order, with ``layer``, ``rf`` (rows of the field),
        ``jump`` (input rows between neighbouring units, ``H // h``), ``start`` (the centre row
        of unit 0's field, so that :func:`receptive_field_patches` can use the row),
        ``effective`` (odd side in pixels) and ``clipped``.

    >>> net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, stride=2, padding=1))
    >>> [
    ...     (r["rf"], r["jump"], r["start"])
    ...     for r in gradient_receptive_fields(
    ...         net, {"a": net[0], "b": net[1]}, torch.rand(1, 1, 16, 16)
    ...     )
    ... ]
    [(3, 1, 0.0), (5, 2, 0.0)]

    Introduced in the chapter "Convolutional neural networks".
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or len(x) != 1:
        raise ValueError(
            "expected one input of shape (1, C, H, W), got "
            f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}"
        )
    if not 0 < mass <= 1:
        raise ValueError(f"expected mass in (0, 1], got {mass!r}")
    device = next(model.parameters(), torch.empty(0)).device
    xb = x.detach().to(device).repeat(len(layers), 1, 1, 1).requires_grad_()
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad(), capture(layers) as maps:
            model(xb)
            centres = [_check_maps(rec.activations) for rec in maps.values()]
            shapes = [tuple(a.shape[-2:]) for a in centres]
            total = sum(
                a[b, :, h // 2, w // 2].sum() for b, (a, (h, w)) in enumerate(zip(centres, shapes))
            )
            (grad,) = torch.autograd.grad(total, xb)
    finally:
        model.train(was_training)
    return [
        {"layer": name, **_field(grad[b].abs().sum(0).cpu(), shapes[b], mass)}
        for b, name in enumerate(layers)
    ]


def _field(g: torch.Tensor, shape: tuple[int, int], mass: float) -> dict:
    """Extent, grid and effective size of one unit's field from its absolute input gradient
    ``g`` (H, W)."""
    rows, cols = torch.nonzero(g.sum(1)).flatten(), torch.nonzero(g.sum(0)).flatten()
    if len(rows) == 0:
        raise ValueError(
            "expected the centre unit to depend on the input, got a zero gradient everywhere"
        )
    (top, bottom), (left, right) = (int(rows[0]), int(rows[-1])), (int(cols[0]), int(cols[-1]))
    height, width = g.shape
    jump = height // shape[0]
    cy, cx = (top + bottom) // 2, (left + right) // 2
    r = 0
    while g[max(cy - r, 0) : cy + r + 1, max(cx - r, 0) : cx + r + 1].sum() < mass * g.sum() * (
        1 - 1e-6
    ):
        r += 1
    clipped = top == 0 or left == 0 or bottom == height - 1 or right == width - 1
    return {"rf": bottom - top + 1, "jump": jump,
            "start": (top + bottom) / 2 - jump * (shape[0] // 2),
            "effective": 2 * r + 1, "clipped": clipped}  # fmt: skip


def receptive_field_patches(
    images: torch.Tensor, positions: torch.Tensor, rf: Mapping
) -> torch.Tensor:
    """Cut out of each image the square that one feature-map unit sees (zeros outside the image).

    Args:
        images (Tensor): ``(N, C, H, W)``.
        positions (Tensor): ``(N, 2)`` row and column of a unit in the feature map.
        rf (mapping): the layer's row of :func:`visionbook.conv.receptive_fields`, with ``rf``,
            ``jump`` and ``start``.

    Returns:
        Tensor: ``(N, C, rf, rf)``; the unit at ``(i, j)`` sees rows from
        ``start + i * jump - (rf - 1) / 2``.

    >>> receptive_field_patches(
    ...     torch.ones(1, 1, 4, 4), torch.tensor([[0, 0]]), {"rf": 3, "jump": 1, "start": 0.0}
    ... )[0, 0].tolist()
    [[0.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 1.0, 1.0]]

    Introduced in the chapter "Convolutional neural networks".
    """
    if not isinstance(images, torch.Tensor) or not isinstance(positions, torch.Tensor):
        raise TypeError(
            f"expected tensors images and positions, got {type(images).__name__} and "
            f"{type(positions).__name__}"
        )
    if not isinstance(rf, Mapping) or not {"rf", "jump", "start"} <= set(rf):
        raise TypeError(f"expected rf, a mapping with keys rf, jump and start, got {rf!r}")
    if images.ndim != 4 or positions.shape != (len(images), 2):
        raise ValueError(
            f"expected images (N, C, H, W) and positions (N, 2), got {tuple(images.shape)} and "
            f"{tuple(positions.shape)}"
        )
    size, jump, start = int(rf["rf"]), int(rf["jump"]), float(rf["start"])
    offset = start - (size - 1) / 2
    if offset != int(offset):
        raise ValueError(
            f"expected a receptive field aligned with the pixel grid, got start {start} "
            f"and size {size}"
        )
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
            "expected maps of shape (..., H, W), got "
            f"{tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__}"
        )
    flat = maps.detach().flatten(-2)
    low, high = flat.amin(-1, keepdim=True), flat.amax(-1, keepdim=True)
    return ((flat - low) / (high - low).clamp_min(1e-12)).view_as(maps)


def orientation_share(images: torch.Tensor) -> torch.Tensor:
    """How much of each image's gradient energy lies along one orientation, from 0.5 to 1.

    With forward differences ``gx``, ``gy`` summed over all pixels and channels into the
    structure tensor ``J = [[sum gx^2, sum gx gy], [sum gx gy, sum gy^2]]``, the share is
    ``l1 / (l1 + l2)`` for its eigenvalues ``l1 >= l2``: 1 when every gradient is parallel
    (a single straight edge, stripes), 0.5 when no orientation is preferred (a round blob,
    isotropic texture). An image without any gradient counts as 0.5.

    Args:
        images (Tensor): ``(N, C, H, W)`` with H and W at least 2.

    Returns:
        Tensor: ``(N,)`` shares in [0.5, 1].

    >>> stripes = torch.tensor([[0.0, 1.0, 0.0, 1.0]]).repeat(4, 1)
    >>> orientation_share(torch.stack([stripes, stripes.T]).unsqueeze(1)).tolist()
    [1.0, 1.0]

    Introduced in the chapter "Convolutional neural networks".
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or min(images.shape[-2:]) < 2:
        raise ValueError(
            "expected images of shape (N, C, H, W) with H, W >= 2, got "
            f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}"
        )
    x = images.detach().double()
    # (N, C, H-1, W-1)
    gx, gy = (x[..., :-1, 1:] - x[..., :-1, :-1]), (x[..., 1:, :-1] - x[..., :-1, :-1])
    jxx, jyy, jxy = (gx * gx).sum((1, 2, 3)), (gy * gy).sum((1, 2, 3)), (gx * gy).sum((1, 2, 3))
    energy = jxx + jyy
    largest = energy / 2 + torch.sqrt(((jxx - jyy) / 2) ** 2 + jxy**2)
    return torch.where(energy > 0, largest / energy.clamp_min(1e-300), 0.5).float()


def edges_and_gratings(
    size: int = 224,
    periods: Sequence[float] = (8, 16, 32, 64),
    orientations: int = 8,
    colours: Sequence = _EDGE_COLOURS,
) -> torch.Tensor:
    """Simple stimuli for probing a network: grey sine gratings and two-colour straight edges.

    Gratings: for every period (in pixels) and ``orientations`` angles over half a turn,
    ``0.5 + 0.5 cos(2 pi d / period)`` with ``d`` the signed distance along the angle from the
    image centre. Edges: for every pair of RGB colours and ``orientations`` angles over a full
    turn (so both polarities), a straight boundary through the centre with the first colour on
    one side and the second on the other.

    Args:
        size (int): side in pixels. Default 224.
        periods (sequence of float): grating periods in pixels. Default (8, 16, 32, 64).
        orientations (int): angles per grating period and per colour pair. Default 8.
        colours (sequence): pairs of RGB triples in [0, 1]. Default black/white, red/cyan,
            green/magenta and blue/yellow.

    Returns:
        Tensor: ``(len(periods) * orientations + len(colours) * orientations, 3, size, size)``
        in [0, 1], gratings first.

    >>> x = edges_and_gratings(4, periods=(4,), orientations=2, colours=[((0, 0, 0), (1, 1, 1))])
    >>> # the two edges: black left of the centre, then right
    >>> x.shape, x[2, 0, 0].tolist(), x[3, 0, 0].tolist()
    (torch.Size([4, 3, 4, 4]), [0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0])

    Introduced in the chapter "Convolutional neural networks".
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 2:
        raise ValueError(f"expected an integer size of at least 2, got {size!r}")
    if isinstance(orientations, bool) or not isinstance(orientations, int) or orientations < 1:
        raise ValueError(
            f"expected a positive integer number of orientations, got {orientations!r}"
        )
    if any(p <= 0 for p in periods):
        raise ValueError(f"expected positive grating periods, got {tuple(periods)}")
    rgb = torch.as_tensor(colours, dtype=torch.float32)
    if rgb.ndim != 3 or rgb.shape[1:] != (2, 3) or rgb.min() < 0 or rgb.max() > 1:
        raise ValueError(
            f"expected pairs of RGB colours in [0, 1], of shape (n, 2, 3), got {tuple(rgb.shape)}"
        )
    yy, xx = torch.meshgrid(
        torch.arange(size) - (size - 1) / 2, torch.arange(size) - (size - 1) / 2, indexing="ij"
    )
    # (size, size) signed distance
    along = lambda angle: xx * math.cos(angle) + yy * math.sin(angle)
    gratings = [
        0.5 + 0.5 * torch.cos(2 * math.pi * along(math.pi * k / orientations) / p)
        for p in periods
        for k in range(orientations)
    ]
    grey = torch.stack(gratings).unsqueeze(1).expand(-1, 3, -1, -1)
    # (O, size, size)
    sides = torch.stack(
        [(along(2 * math.pi * k / orientations) < 0).float() for k in range(orientations)]
    )
    edges = rgb[:, None, 0, :, None, None] * sides[None, :, None] + rgb[
        :, None, 1, :, None, None
    ] * (1 - sides[None, :, None])
    return torch.cat([grey, edges.flatten(0, 1)]).clamp(0, 1)
