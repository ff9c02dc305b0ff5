"""Diffusion models for 28x28 digits: noise schedule, forward process, denoising loss, a small
U-Net, samplers.

Images live in ``[-1, 1]`` here (``x = 2 * pixels - 1``), as in Ho et al. (2020); :func:`to_pixels`
maps samples back to ``[0, 1]`` for the book's digit classifier. Time indices follow the papers:
``t = 0`` is the data and ``t = 1 .. T`` are the noisy steps, so every tensor of a
:class:`Schedule` has ``T + 1`` entries, entry 0 meaning "no noise". The forward process, the
posterior and the DDPM and DDIM updates are written as in the papers, one formula per function; the
samplers call them in a loop. Introduced in the chapter "Diffusion models".
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from visionbook._validate import _expect_int, _expect_module, _expect_number, _expect_tensor

NUM_CLASSES = 10
PREDICTS = ("eps", "x0")


class Schedule(NamedTuple):
    """A variance schedule: ``(T + 1,)`` float64 tensors indexed by the papers' ``t``.

    ``betas[t]`` is the variance of the noise added at step ``t`` (``betas[0] = 0``),
    ``alphas = 1 - betas`` and ``alpha_bars[t]`` the product of ``alphas[1..t]``
    (``alpha_bars[0] = 1``). Build one with :func:`noise_schedule`.

    Introduced in the chapter "Diffusion models".
    """

    betas: torch.Tensor
    alphas: torch.Tensor
    alpha_bars: torch.Tensor

    @property
    def T(self) -> int:
        """The number of noising steps."""
        return len(self.betas) - 1


def noise_schedule(
    T: int = 100, beta_1: float | None = None, beta_T: float | None = None
) -> Schedule:
    """Ho et al.'s linear schedule: ``beta_t`` rises linearly from ``beta_1`` to ``beta_T``.

    The paper uses ``T = 1000`` with ``beta_1 = 1e-4`` and ``beta_T = 0.02``. For other ``T`` the
    defaults scale both by ``1000 / T``, so that the noise added in total, and with it
    ``alpha_bar_T`` (about ``4e-5``), stays about the same with fewer, larger steps.

    Args:
        T (int): number of noising steps. Default 100.
        beta_1 (float | None): the first variance; default ``0.1 / T``.
        beta_T (float | None): the last variance, below 1; default ``20 / T`` (so the defaults need
            ``T > 20``).

    Returns:
        Schedule: ``betas``, ``alphas`` and ``alpha_bars``, each ``(T + 1,)`` float64.

    >>> s = noise_schedule(1000)
    >>> (
    ...     s.T,
    ...     round(s.betas[1].item(), 6),
    ...     round(s.betas[1000].item(), 6),
    ...     f"{s.alpha_bars[1000].item():.1e}",
    ... )
    (1000, 0.0001, 0.02, '4.0e-05')

    Introduced in the chapter "Diffusion models".
    """
    T = _expect_int(T, "number of steps T", minimum=2)
    beta_1 = 0.1 / T if beta_1 is None else _expect_number(beta_1, "beta_1", low=0.0, high=0.999)
    beta_T = 20.0 / T if beta_T is None else _expect_number(beta_T, "beta_T", low=0.0, high=0.999)
    if not 0 < beta_1 <= beta_T < 1:
        raise ValueError(
            f"expected 0 < beta_1 <= beta_T < 1, got beta_1={beta_1!r} and beta_T={beta_T!r}"
        )
    betas = torch.cat(
        [
            torch.zeros(1, dtype=torch.float64),
            torch.linspace(beta_1, beta_T, T, dtype=torch.float64),
        ]
    )
    alphas = 1 - betas
    return Schedule(betas, alphas, torch.cumprod(alphas, 0))


def _check_schedule(schedule: Schedule) -> Schedule:
    if not isinstance(schedule, Schedule):
        raise TypeError(
            f"expected a diffusion.Schedule (see noise_schedule), got {type(schedule).__name__}"
        )
    return schedule


def _check_images(x: torch.Tensor, what: str = "images") -> torch.Tensor:
    _expect_tensor(x, what, "(B, 1, 28, 28)")
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        raise ValueError(f"expected {what} of shape (B, 1, 28, 28), got {tuple(x.shape)}")
    return x


def _check_steps(t: torch.Tensor, n: int, T: int, low: int = 0) -> torch.Tensor:
    """``t`` if it holds ``n`` integer steps in ``low .. T``."""
    _expect_tensor(t, "steps t", f"({n},)")
    if t.shape != (n,) or t.dtype != torch.long:
        raise ValueError(
            f"expected steps t as int64 of shape ({n},), got {t.dtype} {tuple(t.shape)}"
        )
    if n and not low <= int(t.min()) <= int(t.max()) <= T:
        raise ValueError(
            f"expected steps t in {low}..{T}, got values from {int(t.min())} to {int(t.max())}"
        )
    return t


def _step(t: int, T: int, low: int = 1, what: str = "step t") -> int:
    t = _expect_int(t, what, minimum=-(2**62))
    if not low <= t <= T:
        raise ValueError(f"expected {what} in {low}..{T}, got {t}")
    return t


def _on(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Schedule values (float64, CPU) in ``x``'s dtype, then on its device (MPS has no float64)."""
    return values.to(dtype=x.dtype).to(x.device)


def _at(values: torch.Tensor, t: torch.Tensor | int, x: torch.Tensor) -> torch.Tensor:
    """``values[t]`` on ``x``'s device and dtype, shaped to broadcast over images: ``(B, 1, 1, 1)``
    or a scalar."""
    if isinstance(t, int):
        return _on(values[t], x)
    return _on(values, x)[t.to(x.device)].view(-1, 1, 1, 1)


def _like(noise: torch.Tensor | None, x: torch.Tensor, what: str = "noise") -> torch.Tensor:
    if noise is None:
        return torch.randn_like(x)
    if _expect_tensor(noise, what, str(tuple(x.shape))).shape != x.shape:
        raise ValueError(f"expected {what} of shape {tuple(x.shape)}, got {tuple(noise.shape)}")
    return noise


# --- the forward process and the denoising objective ----------------------------------------------


def q_sample(
    x0: torch.Tensor, t: torch.Tensor, schedule: Schedule, noise: torch.Tensor | None = None
) -> torch.Tensor:
    """A draw from ``q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)``, in one step.

    ``x_t = sqrt(alpha_bar_t) * x0 + sqrt(1 - alpha_bar_t) * noise``: the closed form of ``t``
    noising steps, each ``x_s = sqrt(alpha_s) x_{s-1} + sqrt(beta_s) * fresh noise``.

    Args:
        x0 (Tensor): clean images ``(B, C, H, W)`` in ``[-1, 1]``.
        t (Tensor): int64 steps ``(B,)`` in ``0 .. T`` (0 returns ``x0``).
        schedule (Schedule): the variance schedule.
        noise (Tensor | None): standard normal noise of ``x0``'s shape; drawn when None.
            Default None.

    Returns:
        Tensor: ``x_t``, ``(B, C, H, W)``.

    >>> s = noise_schedule(50)
    >>> q_sample(torch.ones(1, 1, 2, 2), torch.tensor([0]), s).tolist()  # t = 0: no noise
    [[[[1.0, 1.0], [1.0, 1.0]]]]

    Introduced in the chapter "Diffusion models".
    """
    _check_schedule(schedule)
    _expect_tensor(x0, "clean images x0", "(B, C, H, W)", ndim=4)
    _check_steps(t, len(x0), schedule.T)
    noise = _like(noise, x0)
    return (
        _at(schedule.alpha_bars.sqrt(), t, x0) * x0
        + _at((1 - schedule.alpha_bars).sqrt(), t, x0) * noise
    )


def x0_from_eps(
    x_t: torch.Tensor, eps: torch.Tensor, t: torch.Tensor | int, schedule: Schedule
) -> torch.Tensor:
    """The clean image implied by ``x_t`` and its noise:
    ``(x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)``.

    Args:
        x_t (Tensor): noisy images ``(B, C, H, W)``.
        eps (Tensor): the noise (true or predicted), same shape.
        t (Tensor | int): steps ``(B,)`` or one step for all, in ``0 .. T``.
        schedule (Schedule): the variance schedule.

    Returns:
        Tensor: ``(B, C, H, W)``; :func:`eps_from_x0` is its inverse.

    >>> s = noise_schedule(50); x0, eps = torch.rand(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    >>> torch.allclose(
    ...     x0_from_eps(q_sample(x0, torch.tensor([3, 7]), s, eps), eps, torch.tensor([3, 7]), s),
    ...     x0,
    ...     atol=1e-5,
    ... )
    True

    Introduced in the chapter "Diffusion models".
    """
    _check_schedule(schedule)
    _expect_tensor(x_t, "noisy images x_t", "(B, C, H, W)", ndim=4)
    eps = _like(_expect_tensor(eps, "noise eps", str(tuple(x_t.shape))), x_t, "noise eps")
    t = _step(t, schedule.T, low=0) if isinstance(t, int) else _check_steps(t, len(x_t), schedule.T)
    return (x_t - _at((1 - schedule.alpha_bars).sqrt(), t, x_t) * eps) / _at(
        schedule.alpha_bars.sqrt(), t, x_t
    )


def eps_from_x0(
    x_t: torch.Tensor, x0: torch.Tensor, t: torch.Tensor | int, schedule: Schedule
) -> torch.Tensor:
    """The noise implied by ``x_t`` and a clean image:
    ``(x_t - sqrt(alpha_bar_t) x0) / sqrt(1 - alpha_bar_t)``.

    Args:
        x_t (Tensor): noisy images ``(B, C, H, W)``.
        x0 (Tensor): clean images (true or predicted), same shape.
        t (Tensor | int): steps ``(B,)`` or one step for all, in ``1 .. T`` (at 0 there is
            no noise).
        schedule (Schedule): the variance schedule.

    Returns:
        Tensor: ``(B, C, H, W)``; the inverse of :func:`x0_from_eps`.

    >>> s = noise_schedule(50); x0, eps = torch.rand(1, 1, 4, 4), torch.randn(1, 1, 4, 4)
    >>> torch.allclose(
    ...     eps_from_x0(q_sample(x0, torch.tensor([5]), s, eps), x0, 5, s), eps, atol=1e-5
    ... )
    True

    Introduced in the chapter "Diffusion models".
    """
    _check_schedule(schedule)
    _expect_tensor(x_t, "noisy images x_t", "(B, C, H, W)", ndim=4)
    x0 = _like(_expect_tensor(x0, "clean images x0", str(tuple(x_t.shape))), x_t, "clean images x0")
    t = _step(t, schedule.T) if isinstance(t, int) else _check_steps(t, len(x_t), schedule.T, low=1)
    return (x_t - _at(schedule.alpha_bars.sqrt(), t, x_t) * x0) / _at(
        (1 - schedule.alpha_bars).sqrt(), t, x_t
    )


def posterior(
    x0: torch.Tensor, x_t: torch.Tensor, t: int, schedule: Schedule
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of ``q(x_{t-1} | x_t, x_0)``, the step back when the clean image is known.

    ``mean = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) * x0
    + sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * x_t`` and
    ``variance = beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * beta_t``
    (Ho et al. 2020, eq. 6-7).

    Args:
        x0 (Tensor): clean images ``(B, C, H, W)`` (true or predicted).
        x_t (Tensor): noisy images at step ``t``, same shape.
        t (int): the step, ``1 .. T``.
        schedule (Schedule): the variance schedule.

    Returns:
        tuple: the mean ``(B, C, H, W)`` and the variance, a 0-dimensional tensor (the same for
            every pixel).

    >>> s = noise_schedule(50); x = torch.randn(1, 1, 2, 2)
    >>> mean, var = posterior(x, x, 1, s)  # at t = 1 the step back lands on x0 exactly
    >>> torch.allclose(mean, x), var.item()
    (True, 0.0)

    Introduced in the chapter "Diffusion models".
    """
    _check_schedule(schedule)
    _expect_tensor(x_t, "noisy images x_t", "(B, C, H, W)", ndim=4)
    x0 = _like(_expect_tensor(x0, "clean images x0", str(tuple(x_t.shape))), x_t, "clean images x0")
    t = _step(t, schedule.T)
    b, a, ab = schedule.betas, schedule.alphas, schedule.alpha_bars
    coef_x0 = ab[t - 1].sqrt() * b[t] / (1 - ab[t])
    coef_xt = a[t].sqrt() * (1 - ab[t - 1]) / (1 - ab[t])
    variance = (1 - ab[t - 1]) / (1 - ab[t]) * b[t]
    return _on(coef_x0, x_t) * x0 + _on(coef_xt, x_t) * x_t, _on(variance, x_t)


def _predicts(model: nn.Module) -> str:
    predicts = getattr(_expect_module(model), "predicts", "eps")
    if predicts not in PREDICTS:
        raise ValueError(f"expected model.predicts to be one of {PREDICTS}, got {predicts!r}")
    return predicts


def denoising_loss(
    model: nn.Module,
    x0: torch.Tensor,
    schedule: Schedule,
    y: torch.Tensor | None = None,
    p_uncond: float = 0.0,
    t: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """The denoising objective: noise ``x0`` to a random step ``t``, ask the model to undo it, take
    the MSE.

    A model with ``predicts = "eps"`` (the default) is asked for the noise, Ho et al.'s simplified
    loss ``||eps - eps_theta(x_t, t)||^2``; one with ``predicts = "x0"`` for the clean image,
    ``||x0 - x0_theta(x_t, t)||^2``, which equals the noise loss weighted by
    ``(1 - alpha_bar_t) / alpha_bar_t`` for each image. With labels, each label is replaced by the
    "no label" class ``model.num_classes`` with probability ``p_uncond``, so that one model learns
    to generate with and without the label (classifier-free guidance, Ho and Salimans 2022).

    Args:
        model (nn.Module): called as ``model(x_t, t, y)``; see :class:`UNet`.
        x0 (Tensor): clean images ``(B, C, H, W)`` in ``[-1, 1]``.
        schedule (Schedule): the variance schedule.
        y (Tensor | None): int64 labels ``(B,)``; None trains without labels. Default None.
        p_uncond (float): probability of dropping each label. Default 0.
        t (Tensor | None): int64 steps ``(B,)`` in ``1 .. T``; drawn uniformly when None.
            Default None.
        noise (Tensor | None): the noise; drawn when None. Default None.

    Returns:
        Tensor: the scalar loss, averaged over images and pixels.

    >>> s = noise_schedule(50); x0 = torch.rand(2, 1, 28, 28)
    >>> round(
    ...     denoising_loss(
    ...         UNet(), x0, s, t=torch.tensor([3, 9]), noise=torch.zeros_like(x0)
    ...     ).item(),
    ...     6,
    ... ) >= 0
    True

    Introduced in the chapter "Diffusion models".
    """
    predicts = _predicts(model)
    _check_schedule(schedule)
    _expect_tensor(x0, "clean images x0", "(B, C, H, W)", ndim=4)
    p_uncond = _expect_number(p_uncond, "p_uncond", low=0.0, high=1.0)
    t = (
        torch.randint(1, schedule.T + 1, (len(x0),), device=x0.device)
        if t is None
        else _check_steps(t, len(x0), schedule.T, 1)
    )
    noise = _like(noise, x0)
    if y is not None:
        _check_labels(y, len(x0), getattr(model, "num_classes", NUM_CLASSES))
        drop = torch.rand(len(y), device=y.device) < p_uncond
        y = torch.where(drop, torch.full_like(y, getattr(model, "num_classes", NUM_CLASSES)), y)
    out = model(q_sample(x0, t, schedule, noise), t, y)
    return F.mse_loss(out, noise if predicts == "eps" else x0)


def _check_labels(y: torch.Tensor, n: int, num_classes: int) -> torch.Tensor:
    """``y`` if it holds ``n`` int64 labels in ``0 .. num_classes`` (the last one meaning "no
    label")."""
    _expect_tensor(y, "labels y", f"({n},)")
    if y.shape != (n,) or y.dtype != torch.long:
        raise ValueError(
            f"expected labels y as int64 of shape ({n},), got {y.dtype} {tuple(y.shape)}"
        )
    if n and not 0 <= int(y.min()) <= int(y.max()) <= num_classes:
        raise ValueError(
            f"expected labels in 0..{num_classes} ({num_classes}: no label), got {int(y.min())} to "
            f"{int(y.max())}"
        )
    return y


# --- the network ----------------------------------------------------------------------------------


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sines and cosines of ``t`` at ``dim / 2`` geometrically spaced frequencies: how the network
    reads the step.

    ``[sin(t w_0), ..., sin(t w_{k-1}), cos(t w_0), ..., cos(t w_{k-1})]`` with
    ``w_i = max_period ** (-i / k)`` and ``k = dim / 2``, as in Ho et al. (2020), who took it from
    the Transformer (Vaswani et al. 2017): nearby steps get similar vectors, distant ones different.

    Args:
        t (Tensor): steps ``(B,)``, integer or float.
        dim (int): the embedding's length, even.
        max_period (float): the longest period. Default 10000.

    Returns:
        Tensor: ``(B, dim)`` float32.

    >>> timestep_embedding(torch.tensor([0]), 4).tolist()  # sin 0 = 0, cos 0 = 1
    [[0.0, 0.0, 1.0, 1.0]]

    Introduced in the chapter "Diffusion models".
    """
    if _expect_tensor(t, "steps t", "(B,)").ndim != 1:
        raise ValueError(f"expected steps t of shape (B,), got {tuple(t.shape)}")
    dim = _expect_int(dim, "embedding size dim", minimum=2)
    if dim % 2:
        raise ValueError(f"expected an even embedding size dim, got {dim}")
    max_period = _expect_number(max_period, "max_period", low=1.0)
    k = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(k, device=t.device, dtype=torch.float32) / k
    )
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResBlock(nn.Module):
    """A residual block that also reads the time (and label) embedding.

    ``h = conv(SiLU(GN(x))) + Linear(emb)`` (the embedding becomes one shift per channel), then
    ``out = conv(SiLU(GN(h))) + skip(x)``, where ``skip`` is a 1x1 convolution when the channels
    change and the identity otherwise. GN is group normalisation with up to 8 groups.

    Args:
        c_in (int): input channels.
        c_out (int): output channels.
        emb_dim (int): length of the embedding.

    ``forward(x, emb)``: ``(B, c_in, H, W)`` and ``(B, emb_dim)`` to ``(B, c_out, H, W)``.

    >>> ResBlock(4, 8, 6)(torch.randn(2, 4, 5, 5), torch.randn(2, 6)).shape
    torch.Size([2, 8, 5, 5])

    Introduced in the chapter "Diffusion models".
    """

    def __init__(self, c_in: int, c_out: int, emb_dim: int):
        super().__init__()
        c_in, c_out = _expect_int(c_in, "c_in"), _expect_int(c_out, "c_out")
        self.emb_dim = _expect_int(emb_dim, "emb_dim")
        self.norm1, self.conv1 = (
            nn.GroupNorm(math.gcd(8, c_in), c_in),
            nn.Conv2d(c_in, c_out, 3, padding=1),
        )
        self.emb = nn.Linear(self.emb_dim, c_out)
        self.norm2, self.conv2 = (
            nn.GroupNorm(math.gcd(8, c_out), c_out),
            nn.Conv2d(c_out, c_out, 3, padding=1),
        )
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        c_in = self.conv1.in_channels
        if _expect_tensor(x, "features x", f"(B, {c_in}, H, W)").ndim != 4 or x.shape[1] != c_in:
            raise ValueError(
                f"expected features x of shape (B, {c_in}, H, W), got {tuple(x.shape)}"
            )
        if _expect_tensor(emb, "embedding emb", f"({len(x)}, {self.emb_dim})").shape != (
            len(x),
            self.emb_dim,
        ):
            raise ValueError(
                f"expected embedding emb of shape ({len(x)}, {self.emb_dim}), got "
                f"{tuple(emb.shape)}"
            )
        h = self.conv1(F.silu(self.norm1(x))) + self.emb(emb)[:, :, None, None]
        return self.conv2(F.silu(self.norm2(h))) + self.skip(x)


class UNet(nn.Module):
    """A two-level U-Net for 28x28 images that reads the step ``t`` and, optionally, the
    digit ``y``.

    The image is rearranged losslessly into ``4 x 14 x 14`` (each 2x2 patch becomes 4 channels,
    ``PixelUnshuffle``), so the network works at 14x14 and 7x7 and costs about a quarter of one
    that convolves at 28x28; ``PixelShuffle`` puts the output back to ``1 x 28 x 28``:

    ``stem (c1 x 14 x 14) -> down: ResBlock -> conv stride 2 (c2 x 7 x 7) -> middle: ResBlock ->
    transposed conv (c1 x 14 x 14) -> concatenate the down path's output -> up: ResBlock -> head``.

    Every ResBlock adds the embedding ``MLP(timestep_embedding(t)) + label_embedding(y)``; label
    ``num_classes`` means "no label" and is used when ``y`` is None. Ronneberger et al.'s U-Net has
    four levels and no embeddings; Ho et al.'s has four levels, attention and about 36 M weights.

    Args:
        channels (tuple of 2 int): channels at 14x14 and at 7x7. Default (16, 32).
        emb_dim (int): length of the time and label embeddings. Default 64.
        num_classes (int): number of labels, besides "no label". Default 10.
        predicts (str): what the output means: ``"x0"``, the clean image, or ``"eps"``, the noise.
            Default ``"x0"``.

    ``forward(x, t, y=None)``: images ``(B, 1, 28, 28)``, int64 steps ``(B,)`` and labels ``(B,)``
    (or None) to a prediction ``(B, 1, 28, 28)``.

    >>> UNet()(torch.randn(2, 1, 28, 28), torch.tensor([1, 50]), torch.tensor([3, 10])).shape
    torch.Size([2, 1, 28, 28])

    Introduced in the chapter "Diffusion models".
    """

    def __init__(
        self,
        channels: tuple[int, int] = (16, 32),
        emb_dim: int = 64,
        num_classes: int = NUM_CLASSES,
        predicts: str = "x0",
    ):
        super().__init__()
        if not isinstance(channels, tuple | list) or len(channels) != 2:
            raise TypeError(
                "expected channels as a pair of positive integers such as (16, 32), got "
                f"{channels!r}"
            )
        c1, c2 = (_expect_int(c, "number of channels") for c in channels)
        emb_dim = _expect_int(emb_dim, "emb_dim", minimum=2)
        if emb_dim % 2:
            raise ValueError(f"expected an even emb_dim, got {emb_dim}")
        self.num_classes = _expect_int(num_classes, "num_classes")
        if predicts not in PREDICTS:
            raise ValueError(f"expected predicts to be one of {PREDICTS}, got {predicts!r}")
        self.predicts, self.emb_dim = predicts, emb_dim
        self.time_mlp = nn.Sequential(
            nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        self.label_emb = nn.Embedding(self.num_classes + 1, emb_dim)  # row num_classes: "no label"
        # (B, c1, 14, 14)
        self.stem = nn.Sequential(nn.PixelUnshuffle(2), nn.Conv2d(4, c1, 3, padding=1))
        self.down = ResBlock(c1, c1, emb_dim)  # (B, c1, 14, 14), kept for the skip connection
        self.pool = nn.Conv2d(c1, c2, 3, stride=2, padding=1)  # (B, c2, 7, 7)
        self.middle = ResBlock(c2, c2, emb_dim)  # (B, c2, 7, 7)
        self.unpool = nn.ConvTranspose2d(c2, c1, 2, stride=2)  # (B, c1, 14, 14)
        self.up = ResBlock(2 * c1, c1, emb_dim)  # after concatenating the skip: (B, c1, 14, 14)
        self.head = nn.Sequential(
            nn.GroupNorm(math.gcd(8, c1), c1),
            nn.SiLU(),
            nn.Conv2d(c1, 4, 3, padding=1),
            nn.PixelShuffle(2),
        )

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        _check_images(x)
        t = _check_steps(t, len(x), 10**9)
        y = (
            torch.full_like(t, self.num_classes)
            if y is None
            else _check_labels(y, len(x), self.num_classes)
        )
        # (B, emb_dim)
        emb = self.time_mlp(timestep_embedding(t, self.emb_dim).to(x.dtype)) + self.label_emb(y)
        skip = self.down(self.stem(x), emb)
        h = self.middle(self.pool(skip), emb)
        h = self.up(torch.cat([self.unpool(h), skip], dim=1), emb)
        return self.head(h)


# --- sampling -------------------------------------------------------------------------------------


def predict_noise(
    model: nn.Module,
    x_t: torch.Tensor,
    t: int,
    schedule: Schedule,
    y: torch.Tensor | None = None,
    guidance: float = 1.0,
) -> torch.Tensor:
    """The model's estimate of the noise in ``x_t``, with classifier-free guidance when labels
    are given.

    A model that predicts ``x0`` has each output converted with :func:`eps_from_x0`. With labels
    ``y`` and ``guidance = w``:
    ``eps = eps(x_t, no label) + w * (eps(x_t, y) - eps(x_t, no label))``, both predictions in one
    batch; ``w = 1`` is the plain conditional model (one pass), ``w = 0`` the unconditional one,
    ``w > 1`` pushes further towards what distinguishes the label. Ho and Salimans (2022) write
    ``(1 + w') eps(y) - w' eps(none)``: their ``w'`` is ``w - 1`` here.

    Args:
        model (nn.Module): called as ``model(x_t, t, y)``, with a ``predicts`` attribute (default
            ``"eps"``).
        x_t (Tensor): noisy images ``(B, 1, 28, 28)``.
        t (int): the step, ``1 .. T``.
        schedule (Schedule): the variance schedule.
        y (Tensor | None): int64 labels ``(B,)``; None: no label. Default None.
        guidance (float): the guidance scale ``w >= 0``. Default 1.

    Returns:
        Tensor: ``(B, 1, 28, 28)``.

    >>> predict_noise(
    ...     UNet(),
    ...     torch.zeros(2, 1, 28, 28),
    ...     10,
    ...     noise_schedule(50),
    ...     torch.tensor([3, 7]),
    ...     guidance=2.0,
    ... ).shape
    torch.Size([2, 1, 28, 28])

    Introduced in the chapter "Diffusion models".
    """
    predicts = _predicts(model)
    _check_schedule(schedule)
    _check_images(x_t, "noisy images x_t")
    t = _step(t, schedule.T)
    guidance = _expect_number(guidance, "guidance", low=0.0)
    steps = torch.full((len(x_t),), t, dtype=torch.long, device=x_t.device)
    if y is not None:
        _check_labels(y, len(x_t), getattr(model, "num_classes", NUM_CLASSES))
    as_eps = (
        (lambda out: out) if predicts == "eps" else (lambda out: eps_from_x0(x_t, out, t, schedule))
    )
    if y is None or guidance in (0.0, 1.0):  # one pass: without the label, or with it
        return as_eps(model(x_t, steps, None if guidance == 0.0 else y))
    none = torch.full_like(y, model.num_classes)
    cond, uncond = model(
        torch.cat([x_t, x_t]), torch.cat([steps, steps]), torch.cat([y, none])
    ).chunk(2)
    # in noise space, as in the paper
    return as_eps(uncond) + guidance * (as_eps(cond) - as_eps(uncond))


def ddpm_step(
    x_t: torch.Tensor,
    eps: torch.Tensor,
    t: int,
    schedule: Schedule,
    noise: torch.Tensor | None = None,
    clip: bool = False,
) -> torch.Tensor:
    """One step of DDPM's ancestral sampler: a draw from ``p(x_{t-1} | x_t)`` given the
    predicted noise.

    The mean is the posterior mean with the predicted clean image ``x0 = x0_from_eps(x_t, eps)``,
    which equals Ho et al.'s ``(x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t)``; the
    variance is the posterior's ``beta_tilde_t`` (Ho et al. report that ``beta_t`` works about as
    well). ``clip`` first clamps the predicted ``x0`` to ``[-1, 1]``, as Ho et al.'s code does.

    Args:
        x_t (Tensor): images at step ``t``, ``(B, C, H, W)``.
        eps (Tensor): predicted noise, same shape.
        t (int): the step, ``1 .. T``.
        schedule (Schedule): the variance schedule.
        noise (Tensor | None): the fresh standard normal noise; drawn when None. Default None.
        clip (bool): clamp the predicted clean image to ``[-1, 1]``. Default False.

    Returns:
        Tensor: ``x_{t-1}``, ``(B, C, H, W)``.

    >>> s, x = noise_schedule(50), torch.ones(1, 1, 2, 2)
    >>> # t = 1: no noise, x0 itself
    >>> torch.allclose(ddpm_step(x, torch.zeros_like(x), 1, s), x / s.alpha_bars[1].sqrt())
    True

    Introduced in the chapter "Diffusion models".
    """
    if not isinstance(clip, bool):
        raise TypeError(f"expected clip as a bool, got {clip!r}")
    x0 = x0_from_eps(x_t, eps, _step(t, _check_schedule(schedule).T), schedule)
    mean, variance = posterior(x0.clamp(-1, 1) if clip else x0, x_t, t, schedule)
    return mean + variance.sqrt() * _like(noise, x_t)


def ddim_step(
    x_t: torch.Tensor,
    eps: torch.Tensor,
    t: int,
    s: int,
    schedule: Schedule,
    eta: float = 0.0,
    noise: torch.Tensor | None = None,
    clip: bool = False,
) -> torch.Tensor:
    """One DDIM update from step ``t`` down to any earlier step ``s`` (Song et al. 2021, eq. 12).

    ``x_s = sqrt(alpha_bar_s) x0 + sqrt(1 - alpha_bar_s - sigma^2) eps + sigma * noise`` with the
    predicted ``x0 = x0_from_eps(x_t, eps)`` and
    ``sigma = eta * sqrt((1 - alpha_bar_s) / (1 - alpha_bar_t) * (1 - alpha_bar_t / alpha_bar_s))``.
    ``eta = 0`` is deterministic; ``eta = 1`` with ``s = t - 1`` is the DDPM step. With ``clip``
    the predicted ``x0`` is clamped to ``[-1, 1]`` and ``eps`` recomputed from it.

    Args:
        x_t (Tensor): images at step ``t``, ``(B, C, H, W)``.
        eps (Tensor): predicted noise, same shape.
        t (int): the current step, ``1 .. T``.
        s (int): the next step, ``0 .. t - 1``.
        schedule (Schedule): the variance schedule.
        eta (float): how much fresh noise, ``0 .. 1``. Default 0.
        noise (Tensor | None): the fresh noise when ``eta > 0``; drawn when None. Default None.
        clip (bool): clamp the predicted clean image. Default False.

    Returns:
        Tensor: ``x_s``, ``(B, C, H, W)``.

    >>> s, x, eps = noise_schedule(50), torch.randn(1, 1, 2, 2), torch.randn(1, 1, 2, 2)
    >>> # down to s = 0: the guess of x0
    >>> torch.allclose(ddim_step(x, eps, 10, 0, s), x0_from_eps(x, eps, 10, s))
    True

    Introduced in the chapter "Diffusion models".
    """
    t = _step(t, _check_schedule(schedule).T)
    s = _step(s, t - 1, low=0, what=f"next step s (below t = {t})")
    eta = _expect_number(eta, "eta", low=0.0, high=1.0)
    if not isinstance(clip, bool):
        raise TypeError(f"expected clip as a bool, got {clip!r}")
    x0 = x0_from_eps(x_t, eps, t, schedule)
    if clip:
        x0 = x0.clamp(-1, 1)
        eps = eps_from_x0(x_t, x0, t, schedule)
    ab_t, ab_s = schedule.alpha_bars[t], schedule.alpha_bars[s]
    sigma = eta * ((1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s)).sqrt()
    noise = None if noise is None else _like(noise, x_t)
    x_s = _on(ab_s.sqrt(), x_t) * x0 + _on((1 - ab_s - sigma**2).clamp(min=0).sqrt(), x_t) * eps
    return x_s + _on(sigma, x_t) * _like(noise, x_t) if eta > 0 else x_s


def ddim_times(T: int, steps: int) -> list[int]:
    """``steps + 1`` evenly spaced steps from ``T`` down to 0: the path of a DDIM sampler.

    >>> ddim_times(100, 4)
    [100, 75, 50, 25, 0]

    Introduced in the chapter "Diffusion models".
    """
    T = _expect_int(T, "number of steps T", minimum=1)
    steps = _expect_int(steps, "number of sampling steps")
    if steps > T:
        raise ValueError(f"expected at most T = {T} sampling steps, got {steps}")
    return [round(T - k * T / steps) for k in range(steps + 1)]


def _noise(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    if generator is None:
        return torch.randn_like(x)
    return torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)


def _check_generator(generator: torch.Generator | None) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"expected a torch.Generator or None, got {type(generator).__name__}")


@torch.no_grad()
def ddpm_sample(
    model: nn.Module,
    x_T: torch.Tensor,
    schedule: Schedule,
    y: torch.Tensor | None = None,
    guidance: float = 1.0,
    generator: torch.Generator | None = None,
    clip: bool = True,
) -> torch.Tensor:
    """DDPM's ancestral sampler (Ho et al. 2020, algorithm 2): ``T`` steps of :func:`ddpm_step`
    from noise.

    Args:
        model (nn.Module): the denoiser, in eval mode.
        x_T (Tensor): the starting noise ``(B, 1, 28, 28)``, standard normal.
        schedule (Schedule): the variance schedule.
        y (Tensor | None): int64 labels ``(B,)``; None: unconditional. Default None.
        guidance (float): classifier-free guidance scale, see :func:`predict_noise`. Default 1.
        generator (torch.Generator | None): a CPU generator for the noise of each step.
            Default None.
        clip (bool): clamp each predicted clean image to ``[-1, 1]``. Default True.

    Returns:
        Tensor: samples ``(B, 1, 28, 28)`` clamped to ``[-1, 1]``.

    >>> ddpm_sample(UNet().eval(), torch.randn(2, 1, 28, 28), noise_schedule(30)).shape
    torch.Size([2, 1, 28, 28])

    Introduced in the chapter "Diffusion models".
    """
    _check_images(x_T, "starting noise x_T")
    _check_generator(generator)
    x = x_T
    for t in range(_check_schedule(schedule).T, 0, -1):
        eps = predict_noise(model, x, t, schedule, y, guidance)
        x = ddpm_step(x, eps, t, schedule, _noise(x, generator), clip)
    return x.clamp(-1, 1)


@torch.no_grad()
def ddim_sample(
    model: nn.Module,
    x_T: torch.Tensor,
    schedule: Schedule,
    steps: int,
    y: torch.Tensor | None = None,
    guidance: float = 1.0,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    clip: bool = True,
) -> torch.Tensor:
    """DDIM sampling (Song et al. 2021): :func:`ddim_step` along ``ddim_times(T, steps)``.

    With ``eta = 0`` the map from ``x_T`` to the sample is deterministic; ``steps`` can be far
    fewer than ``T``. With ``eta = 1`` and ``steps = T`` it is DDPM's sampler.

    Args:
        model (nn.Module): the denoiser, in eval mode.
        x_T (Tensor): the starting noise ``(B, 1, 28, 28)``.
        schedule (Schedule): the variance schedule.
        steps (int): number of network evaluations (twice as many with guidance), ``1 .. T``.
        y (Tensor | None): int64 labels ``(B,)``; None: unconditional. Default None.
        guidance (float): classifier-free guidance scale. Default 1.
        eta (float): fresh noise per step, 0 (deterministic) to 1. Default 0.
        generator (torch.Generator | None): a CPU generator for that noise. Default None.
        clip (bool): clamp each predicted clean image to ``[-1, 1]``. Default True.

    Returns:
        Tensor: samples ``(B, 1, 28, 28)`` clamped to ``[-1, 1]``.

    >>> ddim_sample(
    ...     UNet().eval(),
    ...     torch.randn(2, 1, 28, 28),
    ...     noise_schedule(50),
    ...     5,
    ...     y=torch.tensor([1, 2]),
    ...     guidance=3.0,
    ... ).shape
    torch.Size([2, 1, 28, 28])

    Introduced in the chapter "Diffusion models".
    """
    _check_images(x_T, "starting noise x_T")
    _check_generator(generator)
    times = ddim_times(_check_schedule(schedule).T, steps)
    eta = _expect_number(eta, "eta", low=0.0, high=1.0)
    x = x_T
    for t, s in zip(times[:-1], times[1:]):
        eps = predict_noise(model, x, t, schedule, y, guidance)
        x = ddim_step(x, eps, t, s, schedule, eta, _noise(x, generator) if eta > 0 else None, clip)
    return x.clamp(-1, 1)


def to_pixels(x: torch.Tensor) -> torch.Tensor:
    """Images from ``[-1, 1]`` to ``[0, 1]`` (clamped), on the CPU: what the digit classifier reads.

    >>> to_pixels(torch.tensor([-1.0, 0.0, 2.0])).tolist()
    [0.0, 0.5, 1.0]

    Introduced in the chapter "Diffusion models".
    """
    return ((_expect_tensor(x, "images x").detach().cpu() + 1) / 2).clamp(0, 1)
