"""Attention for images: gates inside CNNs, scaled dot-product and multi-head attention, and a
small ViT.

The pieces of the chapter "Attention and vision transformers": a spatial attention gate and a
small CNN with optional squeeze-and-excitation (channel) and spatial attention; scaled
dot-product attention and multi-head self-attention written out (checked against PyTorch's own
in the tests); sinusoidal positions; patch embedding; a Vision Transformer that keeps its
attention maps; and attention rollout.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from visionbook._validate import _check_positive, _expect_tensor, _positive_int
from visionbook.blocks import SqueezeExcite


def _check_images(x: torch.Tensor, channels: int | None = None) -> torch.Tensor:
    c = "C" if channels is None else channels
    if _expect_tensor(x, "images", f"(B, {c}, H, W)", ndim=4).shape[1] != (channels or x.shape[1]):
        raise ValueError(f"expected images of shape (B, {c}, H, W), got {tuple(x.shape)}")
    return x


def _check_tokens(x: torch.Tensor, dim: int) -> torch.Tensor:
    if _expect_tensor(x, "tokens", f"(B, L, {dim})", ndim=3).shape[-1] != dim:
        raise ValueError(f"expected tokens of shape (B, L, {dim}), got {tuple(x.shape)}")
    return x


# --- attention inside CNNs -------------------------------------------------------------------


class SpatialAttention(nn.Module):
    """A spatial gate (CBAM's spatial attention): one weight in (0, 1) per position, shared by
    all channels.

    The channel-wise mean and maximum at every position, ``(B, 2, H, W)``, go through a
    ``kernel x kernel`` convolution and a sigmoid; the input is multiplied by the resulting map.
    The last map is kept in ``self.map`` for plotting.

    Args:
        kernel (int): odd size of the convolution. Default 7 (the paper's).

    Returns:
        nn.Module: ``(B, C, H, W) -> (B, C, H, W)``.

    >>> SpatialAttention()(torch.ones(2, 4, 8, 8)).shape
    torch.Size([2, 4, 8, 8])

    Introduced in the chapter "Attention and vision transformers".
    """

    def __init__(self, kernel: int = 7):
        super().__init__()
        if not _positive_int(kernel) or kernel % 2 == 0:
            raise ValueError(f"expected an odd positive kernel size, got {kernel!r}")
        self.conv = nn.Conv2d(2, 1, kernel, padding=kernel // 2)
        self.map: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x)
        # (B, 2, H, W)
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
        gate = torch.sigmoid(self.conv(pooled))  # (B, 1, H, W)
        self.map = gate.detach()
        return x * gate


def attention_cnn(
    num_classes: int,
    in_channels: int = 3,
    channels: Sequence[int] = (16, 32, 64),
    se: bool = False,
    spatial: bool = False,
    reduction: int = 4,
) -> nn.Sequential:
    """A small VGG-style CNN with optional squeeze-and-excitation and spatial attention in
    every block.

    Each block is ``conv3x3-BN-ReLU``, then the gates (SE with a ReLU bottleneck of
    ``channels / reduction``, as in Hu et al.; the spatial gate of :class:`SpatialAttention`),
    then 2x2 max pooling; global average pooling and a linear layer classify. With both gates
    off it is the book's ``models.small_cnn``, layer for layer. Departs from CBAM in one way: the
    first block, at full resolution, gets no spatial gate (it would cost the most there, and its
    features are little more than edges).

    Args:
        num_classes (int): outputs.
        in_channels (int): image channels. Default 3.
        channels (sequence of int): channels of each block. Default (16, 32, 64).
        se (bool): add squeeze-and-excitation. Default False.
        spatial (bool): add the spatial gate. Default False.
        reduction (int): SE bottleneck reduction ratio r. Default 4 (the paper's 16 suits
            wider layers).

    Returns:
        nn.Sequential: ``(B, in_channels, H, W) -> (B, num_classes)``.

    >>> attention_cnn(5, se=True, spatial=True)(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 5])

    Introduced in the chapter "Attention and vision transformers".
    """
    if isinstance(channels, int) or not isinstance(channels, Sequence) or not channels:
        raise TypeError(
            f"expected channels as a non-empty sequence such as (16, 32, 64), got {channels!r}"
        )
    _check_positive(
        num_classes=num_classes,
        in_channels=in_channels,
        reduction=reduction,
        **{f"channels[{i}]": c for i, c in enumerate(channels)},
    )
    layers: list[nn.Module] = []
    for i, (c_in, c_out) in enumerate(zip([in_channels, *channels[:-1]], channels)):
        layers += [
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
        ]
        layers += (
            [SqueezeExcite(c_out, max(1, c_out // reduction), nn.ReLU)] if se and i > 0 else []
        )
        layers += [SpatialAttention()] if spatial and i > 0 else []
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(
        *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels[-1], num_classes)
    )


# --- scaled dot-product and multi-head attention ---------------------------------------------


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    shapes = [
        tuple(_expect_tensor(t, name, "(..., L, d)").shape)
        for name, t in (("q", q), ("k", k), ("v", v))
    ]
    try:
        torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
        ok = (
            min(q.ndim, k.ndim, v.ndim) >= 2
            and q.shape[-1] == k.shape[-1]
            and k.shape[-2] == v.shape[-2]
        )
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(
            "expected q (..., Lq, d), k (..., Lk, d) and v (..., Lk, dv), got "
            f"{', '.join(map(str, shapes))}"
        )


def _check_mask(mask: torch.Tensor, shape: torch.Size) -> None:
    try:
        ok = (
            torch.broadcast_shapes(
                _expect_tensor(mask, "mask", f"broadcastable to {tuple(shape)}").shape, shape
            )
            == shape
        )
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(
            f"expected a mask broadcastable to the scores' shape {tuple(shape)}, got "
            f"{tuple(mask.shape)}"
        )


def scaled_dot_product_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax(q k^T / sqrt(d) + mask) v``, returning the attention weights as well.

    Args:
        q (Tensor): ``(..., Lq, d)`` queries.
        k (Tensor): ``(..., Lk, d)`` keys.
        v (Tensor): ``(..., Lk, dv)`` values.
        mask (Tensor | None): broadcastable to ``(..., Lq, Lk)``; bool with True where a query
            may attend (as ``F.scaled_dot_product_attention``), or float added to the scores.

    Returns:
        tuple: output ``(..., Lq, dv)`` and weights ``(..., Lq, Lk)`` (rows sum to 1).

    >>> out, w = scaled_dot_product_attention(
    ...     torch.eye(2), torch.eye(2), torch.tensor([[1.0], [3.0]])
    ... )
    >>> w.sum(-1).tolist(), out.shape
    ([1.0, 1.0], torch.Size([2, 1]))

    Introduced in the chapter "Attention and vision transformers".
    """
    _check_qkv(q, k, v)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., Lq, Lk)
    if mask is not None:
        _check_mask(mask, scores.shape)
        scores = (
            scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
        )
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention, laid out like ``nn.MultiheadAttention`` so that weights can
    be copied.

    One linear layer ``qkv`` makes queries, keys and values for all heads at once (its weight is
    ``nn.MultiheadAttention``'s ``in_proj_weight``); each of the ``heads`` heads attends in a
    ``dim / heads``-dimensional subspace; the heads' outputs are concatenated and mixed by
    ``proj`` (``out_proj``). The last attention weights, ``(B, heads, L, L)``, are kept in
    ``self.weights``.

    Args:
        dim (int): token dimension, divisible by ``heads``.
        heads (int): number of heads. Default 4.

    Returns:
        nn.Module: ``(B, L, dim) -> (B, L, dim)``; ``forward(x, mask=None)`` takes the mask of
        :func:`scaled_dot_product_attention`.

    >>> MultiHeadSelfAttention(8, 2)(torch.zeros(3, 5, 8)).shape
    torch.Size([3, 5, 8])

    Introduced in the chapter "Attention and vision transformers".
    """

    def __init__(self, dim: int, heads: int = 4):
        super().__init__()
        _check_positive(dim=dim, heads=heads)
        if dim % heads:
            raise ValueError(f"expected dim divisible by heads, got dim={dim} and heads={heads}")
        self.heads = heads
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = _check_tokens(x, self.proj.in_features).shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads)  # (B, L, 3, heads, d_head)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, heads, L, d_head)
        out, self.weights = scaled_dot_product_attention(q, k, v, mask)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))  # heads side by side, then mixed

    @torch.no_grad()
    def copy_from(self, reference: nn.MultiheadAttention) -> MultiHeadSelfAttention:
        """Take the weights of a ``nn.MultiheadAttention`` of the same size (returns self)."""
        if (
            reference.embed_dim != self.proj.in_features
            or reference.num_heads != self.heads
            or reference.in_proj_weight is None
        ):
            raise ValueError(
                f"expected nn.MultiheadAttention({self.proj.in_features}, {self.heads}) with "
                f"packed projections, got ({reference.embed_dim}, {reference.num_heads})"
            )
        self.qkv.weight.copy_(reference.in_proj_weight)
        self.qkv.bias.copy_(reference.in_proj_bias)
        self.proj.weight.copy_(reference.out_proj.weight)
        self.proj.bias.copy_(reference.out_proj.bias)
        return self


# --- positions, patches, the Vision Transformer -----------------------------------------------


def sinusoidal_positions(length: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """The fixed positional encodings of Vaswani et al.: sines and cosines of geometric frequencies.

    Entry ``(p, 2i)`` is ``sin(p / base^(2i / dim))`` and ``(p, 2i + 1)`` is the cosine.

    Args:
        length (int): number of positions.
        dim (int): even embedding dimension.
        base (float): the longest wavelength is ``2 pi base``. Default 10000.

    Returns:
        Tensor: ``(length, dim)``.

    >>> # sin 1, cos 1, sin 0.01, cos 0.01
    >>> [round(x, 3) for x in sinusoidal_positions(3, 4)[1].tolist()]
    [0.841, 0.54, 0.01, 1.0]

    Introduced in the chapter "Attention and vision transformers".
    """
    _check_positive(length=length, dim=dim)
    if dim % 2:
        raise ValueError(f"expected an even dimension, got {dim}")
    position = torch.arange(length, dtype=torch.float32)[:, None]  # (L, 1)
    frequency = base ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)  # (dim / 2,)
    angles = position * frequency  # (L, dim / 2)
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)  # sin, cos interleaved


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """Cut images into non-overlapping ``patch x patch`` squares, each flattened, in reading order.

    Args:
        images (Tensor): ``(B, C, H, W)`` with H and W multiples of ``patch``.
        patch (int): side of a patch in pixels.

    Returns:
        Tensor: ``(B, (H / patch) (W / patch), C patch^2)``; each row is one patch, channel-major.

    >>> patchify(torch.arange(16.0).reshape(1, 1, 4, 4), 2)[0, 1].tolist()
    [2.0, 3.0, 6.0, 7.0]

    Introduced in the chapter "Attention and vision transformers".
    """
    if (
        _expect_tensor(images, "images", "(B, C, H, W)").ndim != 4
        or not _positive_int(patch)
        or images.shape[-1] % patch
        or images.shape[-2] % patch
    ):
        raise ValueError(
            f"expected images (B, C, H, W) with H and W multiples of the patch size {patch!r}, got "
            f"{tuple(images.shape)}"
        )
    b, c, h, w = images.shape
    x = images.reshape(b, c, h // patch, patch, w // patch, patch)  # (B, C, rows, p, cols, p)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(b, (h // patch) * (w // patch), c * patch * patch)


class PatchEmbedding(nn.Module):
    """Patches to tokens: a ``patch x patch`` convolution with stride ``patch``, which is a linear
    layer applied to every flattened patch of :func:`patchify`.

    Args:
        in_channels (int): image channels.
        dim (int): token dimension.
        patch (int): patch side in pixels.

    Returns:
        nn.Module: ``(B, C, H, W) -> (B, (H / patch) (W / patch), dim)``.

    >>> PatchEmbedding(1, 16, 7)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 16, 16])

    Introduced in the chapter "Attention and vision transformers".
    """

    def __init__(self, in_channels: int, dim: int, patch: int):
        super().__init__()
        _check_positive(in_channels=in_channels, dim=dim, patch=patch)
        self.patch = patch
        self.proj = nn.Conv2d(in_channels, dim, patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.proj.in_channels)
        # (B, dim, rows, cols) -> (B, rows * cols, dim)
        return self.proj(x).flatten(2).transpose(1, 2)


class EncoderBlock(nn.Module):
    """A pre-norm transformer encoder block: ``x + MHSA(LN(x))``, then ``x + MLP(LN(x))``.

    Args:
        dim (int): token dimension.
        heads (int): attention heads. Default 4.
        mlp_ratio (int): hidden width of the MLP as a multiple of ``dim``. Default 2 (ViT uses 4).
        dropout (float): dropout after attention and in the MLP. Default 0.

    Returns:
        nn.Module: ``(B, L, dim) -> (B, L, dim)``.

    >>> EncoderBlock(8, 2)(torch.zeros(1, 3, 8)).shape
    torch.Size([1, 3, 8])

    Introduced in the chapter "Attention and vision transformers".
    """

    def __init__(self, dim: int, heads: int = 4, mlp_ratio: int = 2, dropout: float = 0.0):
        super().__init__()
        _check_positive(dim=dim, heads=heads, mlp_ratio=mlp_ratio)
        self.norm1, self.attn = nn.LayerNorm(dim), MultiHeadSelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_ratio * dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(mlp_ratio * dim, dim),
            nn.Dropout(dropout),
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # tokens exchange information
        x = x + self.drop(self.attn(self.norm1(_check_tokens(x, self.norm1.normalized_shape[0]))))
        return x + self.mlp(self.norm2(x))  # each token is transformed on its own


class ViT(nn.Module):
    """A small Vision Transformer: patch embedding, a class token, positions, encoder blocks, a
    linear head.

    The class token is a learned vector prepended to the patch tokens; after the last block its
    (layer-normed) state is classified. Positions are learned (``positions="learned"``, as in ViT)
    or the fixed sines and cosines of :func:`sinusoidal_positions` (``"sinusoidal"``) or none.
    ``attention_maps()`` returns the weights of every block from the last forward pass.

    Args:
        image_size (int): height and width of the (square) input.
        patch (int): patch side; must divide ``image_size``.
        in_channels (int): image channels. Default 1.
        num_classes (int): outputs. Default 10.
        dim (int): token dimension. Default 64.
        depth (int): encoder blocks. Default 2.
        heads (int): attention heads per block. Default 4.
        mlp_ratio (int): MLP width multiple. Default 2.
        positions (str): ``"learned"``, ``"sinusoidal"`` or ``"none"``. Default ``"learned"``.
        dropout (float): dropout in the blocks. Default 0.

    Returns:
        nn.Module: ``(B, in_channels, image_size, image_size) -> (B, num_classes)``.

    >>> ViT(28, 7)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])

    Introduced in the chapter "Attention and vision transformers".
    """

    def __init__(
        self,
        image_size: int,
        patch: int,
        in_channels: int = 1,
        num_classes: int = 10,
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
        mlp_ratio: int = 2,
        positions: str = "learned",
        dropout: float = 0.0,
    ):
        super().__init__()
        _check_positive(image_size=image_size, patch=patch, num_classes=num_classes, depth=depth)
        if image_size % patch:
            raise ValueError(
                f"expected a patch size that divides the image size, got patch={patch} and "
                f"image_size={image_size}"
            )
        if positions not in ("learned", "sinusoidal", "none"):
            raise ValueError(
                f"expected positions 'learned', 'sinusoidal' or 'none', got {positions!r}"
            )
        self.grid = image_size // patch
        self.embed = PatchEmbedding(in_channels, dim, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        length = self.grid**2 + 1
        if positions == "learned":
            self.pos = nn.Parameter(torch.randn(1, length, dim) * 0.02)
        else:
            fixed = (
                sinusoidal_positions(length, dim)
                if positions == "sinusoidal"
                else torch.zeros(length, dim)
            )
            self.register_buffer("pos", fixed[None])
        self.blocks = nn.ModuleList(
            EncoderBlock(dim, heads, mlp_ratio, dropout) for _ in range(depth)
        )
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = self.grid * self.embed.patch
        if tuple(_check_images(x, self.embed.proj.in_channels).shape[2:]) != (size, size):
            raise ValueError(
                f"expected images of shape (B, {self.embed.proj.in_channels}, {size}, {size}), got "
                f"{tuple(x.shape)}"
            )
        tokens = self.embed(x)  # (B, N, dim)
        # (B, N + 1, dim)
        tokens = torch.cat([self.cls.expand(len(x), -1, -1), tokens], dim=1) + self.pos
        for block in self.blocks:
            tokens = block(tokens)
        return self.head(self.norm(tokens[:, 0]))  # the class token decides

    def attention_maps(self) -> list[torch.Tensor]:
        """Attention weights of every block from the last forward pass: ``depth`` tensors
        ``(B, heads, N + 1, N + 1)``."""
        maps = [block.attn.weights for block in self.blocks]
        if any(m is None for m in maps):
            raise RuntimeError("expected a forward pass before attention_maps(), got none yet")
        return maps


def attention_rollout(attentions: Sequence[torch.Tensor], residual: bool = True) -> torch.Tensor:
    """Attention rollout (Abnar and Zuidema): how much each input token flows into each
    output token.

    Heads are averaged; with ``residual`` each layer's matrix becomes ``(A + I) / 2`` (the skip
    connection carries half of each token through), rows renormalised; the layers' matrices are
    multiplied from the first to the last.

    Args:
        attentions (sequence of Tensor): per layer, ``(B, heads, L, L)`` or ``(B, L, L)`` weights.
        residual (bool): account for the skip connections. Default True.

    Returns:
        Tensor: ``(B, L, L)``; row ``i`` says how token ``i`` of the last layer mixes the inputs
        (row 0, for a ViT, is the class token: drop its first entry and reshape to the patch grid).

    >>> a = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]])
    >>> attention_rollout([a, a]).tolist()
    [[[0.25, 0.75], [0.0, 1.0]]]

    Introduced in the chapter "Attention and vision transformers".
    """
    if isinstance(attentions, torch.Tensor | str) or not isinstance(attentions, Sequence):
        raise TypeError(
            "expected a list of attention weights, one tensor per layer, got "
            f"{type(attentions).__name__}"
        )
    if not attentions:
        raise ValueError("expected at least one layer of attention weights, got none")
    result = None
    for a in attentions:
        if _expect_tensor(a, "attention weights", "(B, heads, L, L) or (B, L, L)").ndim == 4:
            a = a.mean(dim=1)  # average the heads: (B, L, L)
        if a.ndim != 3 or a.shape[-1] != a.shape[-2]:
            raise ValueError(
                f"expected attention weights (B, heads, L, L) or (B, L, L), got {tuple(a.shape)}"
            )
        if result is not None and a.shape != result.shape:
            raise ValueError(
                f"expected every layer's weights of one shape {tuple(result.shape)}, got "
                f"{tuple(a.shape)}"
            )
        if residual:
            a = (a + torch.eye(a.shape[-1], device=a.device)) / 2
            a = a / a.sum(dim=-1, keepdim=True)
        result = a if result is None else a @ result  # later layers act on earlier mixtures
    return result
