"""Generative models for 28x28 digits: DCGAN and conditional GAN, a VAE, and how to measure them.

Builders return small networks sized to train in seconds on a CPU; the training steps of the
discriminator and the generator are separate functions, as in the chapter's loop; the metrics
judge generated images with a digit classifier (class histogram, entropy, confidence, and a
Fréchet distance in its feature space). Introduced in the chapter "Generative models".
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from visionbook._validate import _as_array, _check_positive, _expect_int, _expect_tensor

NUM_CLASSES = 10


def _check_optimizer(opt: torch.optim.Optimizer, what: str) -> None:
    if not isinstance(opt, torch.optim.Optimizer):
        raise TypeError(f"expected {what} as a torch.optim.Optimizer, got {type(opt).__name__}")


def _check_images(x: torch.Tensor, what: str = "images") -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected {what} of shape (N, 1, 28, 28), got {shape}")


# --- networks ---------------------------------------------------------------------------------


def dcgan_generator(z_dim: int = 64, channels: int = 64, cond_dim: int = 0) -> nn.Sequential:
    """A DCGAN generator for 28x28 images: a linear layer, then two transposed convolutions.

    Batch normalisation and ReLU inside, a sigmoid at the end so that images lie in ``[0, 1]``
    (the DCGAN paper uses tanh and images in ``[-1, 1]``; the book's classifier wants ``[0, 1]``).

    Args:
        z_dim (int): length of the noise vector. Default 64.
        channels (int): channels of the 7x7 feature map; the 14x14 map has half. Default 64.
        cond_dim (int): extra inputs concatenated to the noise (10 for a one-hot digit in the
            conditional GAN). Default 0.

    Returns:
        nn.Sequential: ``(B, z_dim + cond_dim) -> (B, 1, 28, 28)``.

    >>> dcgan_generator(16, 8)(torch.randn(2, 16)).shape
    torch.Size([2, 1, 28, 28])

    Introduced in the chapter "Generative models".
    """
    _check_positive(z_dim=z_dim, channels=channels)
    if isinstance(cond_dim, bool) or not isinstance(cond_dim, int) or cond_dim < 0:
        raise ValueError(f"expected a non-negative integer cond_dim, got {cond_dim!r}")
    c = channels
    return nn.Sequential(
        nn.Linear(z_dim + cond_dim, c * 7 * 7, bias=False),  # (B, c*49)
        nn.Unflatten(1, (c, 7, 7)), nn.BatchNorm2d(c), nn.ReLU(),  # (B, c, 7, 7)
        nn.ConvTranspose2d(c, c // 2, 4, stride=2, padding=1, bias=False),  # (B, c/2, 14, 14)
        nn.BatchNorm2d(c // 2), nn.ReLU(),
        nn.ConvTranspose2d(c // 2, 1, 4, stride=2, padding=1),  # (B, 1, 28, 28)
        nn.Sigmoid(),  # pixel values in [0, 1]
    )  # fmt: skip


def dcgan_discriminator(channels: int = 32, in_channels: int = 1) -> nn.Sequential:
    """A DCGAN discriminator for 28x28 images: two strided convolutions and a linear logit.

    LeakyReLU(0.2) inside, batch normalisation after the second convolution, no sigmoid: it
    returns a logit, and ``sigmoid(logit)`` is the probability ``D(x)`` that ``x`` is real.

    Args:
        channels (int): channels of the 14x14 map; the 7x7 map has twice as many. Default 32.
        in_channels (int): image channels. Default 1.

    Returns:
        nn.Sequential: ``(B, in_channels, 28, 28) -> (B, 1)`` logits; ``[:-1]`` gives the
        ``(B, 2 * channels * 49)`` features that the last linear layer reads.

    >>> dcgan_discriminator(8)(torch.rand(2, 1, 28, 28)).shape
    torch.Size([2, 1])

    Introduced in the chapter "Generative models".
    """
    _check_positive(channels=channels, in_channels=in_channels)
    c = channels
    return nn.Sequential(
        nn.Conv2d(in_channels, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # (B, c, 14, 14)
        nn.Conv2d(c, 2 * c, 4, stride=2, padding=1, bias=False),  # (B, 2c, 7, 7)
        nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2),
        nn.Flatten(),  # (B, 2c * 49)
        nn.Linear(2 * c * 49, 1),  # (B, 1) logit
    )  # fmt: skip


def mlp_generator(z_dim: int = 64, hidden: int = 256) -> nn.Sequential:
    """A fully connected generator in the style of the first GAN paper: one hidden layer, no
    batch norm.

    Args:
        z_dim (int): length of the noise vector. Default 64.
        hidden (int): width of the hidden layer. Default 256.

    Returns:
        nn.Sequential: ``(B, z_dim) -> (B, 1, 28, 28)`` with values in ``[0, 1]``.

    >>> mlp_generator(8, 16)(torch.randn(3, 8)).shape
    torch.Size([3, 1, 28, 28])

    Introduced in the chapter "Generative models".
    """
    _check_positive(z_dim=z_dim, hidden=hidden)
    return nn.Sequential(
        nn.Linear(z_dim, hidden), nn.LeakyReLU(0.2),  # (B, hidden)
        nn.Linear(hidden, 784), nn.Sigmoid(),  # (B, 784) in [0, 1]
        nn.Unflatten(1, (1, 28, 28)),  # (B, 1, 28, 28)
    )  # fmt: skip


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al. 2016): features saying how alike a batch's
    samples are.

    Each sample's features ``f_i`` (length A) are projected by a learned tensor ``T`` to
    ``num_kernels`` rows ``M_i`` of length ``kernel_dim``; for every row ``b``,
    ``o_i[b] = sum over j != i of exp(-||M_i[b] - M_j[b]||_1)`` counts near-duplicates of sample
    ``i`` in the batch. The output is ``[f_i, o_i]``. A collapsed batch, whose samples are all
    alike, has large ``o`` and is easy to reject. (The paper sums over all ``j``, itself
    included, which only adds 1.)

    Args:
        in_features (int): A, the length of the incoming features.
        num_kernels (int): B, the number of closeness features added. Default 16.
        kernel_dim (int): C, the length of each projected row. Default 8.

    ``forward``: ``(N, in_features) -> (N, in_features + num_kernels)``.

    >>> MinibatchDiscrimination(5, 3, 2)(torch.randn(4, 5)).shape
    torch.Size([4, 8])

    Introduced in the chapter "Generative models".
    """

    def __init__(self, in_features: int, num_kernels: int = 16, kernel_dim: int = 8):
        super().__init__()
        _check_positive(in_features=in_features, num_kernels=num_kernels, kernel_dim=kernel_dim)
        self.num_kernels, self.kernel_dim = num_kernels, kernel_dim
        self.T = nn.Parameter(0.1 * torch.randn(in_features, num_kernels * kernel_dim))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        if (
            _expect_tensor(f, "features", f"(N, {self.T.shape[0]})").ndim != 2
            or f.shape[1] != self.T.shape[0]
        ):
            raise ValueError(
                f"expected features of shape (N, {self.T.shape[0]}), got {tuple(f.shape)}"
            )
        M = (f @ self.T).view(len(f), self.num_kernels, self.kernel_dim)  # (N, B, C)
        l1 = (M[:, None] - M[None]).abs().sum(-1)  # (N, N, B): distances between all pairs
        o = torch.exp(-l1).sum(1) - 1  # (N, B), without the sample itself
        return torch.cat([f, o], dim=1)


def mlp_discriminator(hidden: int = 256, minibatch_kernels: int = 0) -> nn.Sequential:
    """A fully connected discriminator, optionally with a :class:`MinibatchDiscrimination` layer.

    Args:
        hidden (int): width of the hidden layer. Default 256.
        minibatch_kernels (int): number of minibatch features (0: none). Default 0.

    Returns:
        nn.Sequential: ``(B, 1, 28, 28) -> (B, 1)`` logits.

    >>> mlp_discriminator(16, minibatch_kernels=4)(torch.rand(3, 1, 28, 28)).shape
    torch.Size([3, 1])

    Introduced in the chapter "Generative models".
    """
    _check_positive(hidden=hidden)
    if (
        isinstance(minibatch_kernels, bool)
        or not isinstance(minibatch_kernels, int)
        or minibatch_kernels < 0
    ):
        raise ValueError(
            f"expected a non-negative integer minibatch_kernels, got {minibatch_kernels!r}"
        )
    extra = [MinibatchDiscrimination(hidden, minibatch_kernels)] if minibatch_kernels else []
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, hidden), nn.LeakyReLU(0.2),  # (B, hidden)
        *extra,  # (B, hidden + minibatch_kernels)
        nn.Linear(hidden + minibatch_kernels, 1),  # (B, 1) logit
    )  # fmt: skip


def one_hot(y: torch.Tensor, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """Labels ``(B,)`` as float one-hot rows ``(B, num_classes)``.

    >>> one_hot(torch.tensor([2]), 4).tolist()
    [[0.0, 0.0, 1.0, 0.0]]

    Introduced in the chapter "Generative models".
    """
    if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.dtype != torch.long:
        raise ValueError(
            f"expected int64 labels of shape (B,), got {getattr(y, 'dtype', type(y).__name__)} "
            f"{tuple(getattr(y, 'shape', ()))}"
        )
    if len(y) and not 0 <= int(y.min()) <= int(y.max()) < _expect_int(num_classes, "num_classes"):
        raise ValueError(
            f"expected labels in 0..{num_classes - 1}, got values from {int(y.min())} to "
            f"{int(y.max())}"
        )
    return F.one_hot(y, num_classes).float()


class ConditionalGenerator(nn.Module):
    """A generator told which digit to draw: the one-hot label is appended to the noise.

    ``forward(z, y)``: noise ``(B, z_dim)`` and labels ``(B,)`` to images ``(B, 1, 28, 28)``,
    as in Mirza and Osindero (2014) with a DCGAN body.

    >>> ConditionalGenerator(16, 8)(torch.randn(3, 16), torch.tensor([0, 1, 9])).shape
    torch.Size([3, 1, 28, 28])

    Introduced in the chapter "Generative models".
    """

    def __init__(self, z_dim: int = 64, channels: int = 64, num_classes: int = NUM_CLASSES):
        super().__init__()
        _check_positive(num_classes=num_classes)
        self.z_dim, self.num_classes = z_dim, num_classes
        self.net = dcgan_generator(z_dim, channels, cond_dim=num_classes)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if _expect_tensor(z, "codes z", f"(B, {self.z_dim})", ndim=2).shape[1] != self.z_dim:
            raise ValueError(f"expected codes z of shape (B, {self.z_dim}), got {tuple(z.shape)}")
        if _expect_tensor(y, "labels", f"({len(z)},)").shape != (len(z),):
            raise ValueError(
                f"expected one label per code, shape ({len(z)},), got {tuple(y.shape)}"
            )
        return self.net(torch.cat([z, one_hot(y, self.num_classes)], dim=1))


class ConditionalDiscriminator(nn.Module):
    """A discriminator that judges an (image, label) pair, with a projection (Miyato and
    Koyama 2018).

    The DCGAN trunk turns the image into features ``h`` ``(B, F)``; the logit is
    ``w . h + b + e_y . h``, where ``e_y`` is a learned embedding of the label. The label term
    rewards features that fit the claimed digit. Mirza and Osindero (2014) instead concatenate
    the label to the input; in the chapter's budget the projection learned the condition much
    faster.

    ``forward(x, y)``: images ``(B, 1, 28, 28)`` and labels ``(B,)`` to logits ``(B, 1)``.

    >>> ConditionalDiscriminator(8)(torch.rand(3, 1, 28, 28), torch.tensor([0, 1, 9])).shape
    torch.Size([3, 1])

    Introduced in the chapter "Generative models".
    """

    def __init__(self, channels: int = 32, num_classes: int = NUM_CLASSES):
        super().__init__()
        _check_positive(num_classes=num_classes)
        net = dcgan_discriminator(channels)
        self.trunk, self.head = net[:-1], net[-1]  # (B, F) features, then the unconditional logit
        self.embed = nn.Embedding(num_classes, self.head.in_features)  # (num_classes, F)
        nn.init.zeros_(self.embed.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _check_images(x)
        if _expect_tensor(y, "labels", f"({len(x)},)").ndim != 1 or len(y) != len(x):
            raise ValueError(
                f"expected one label per image, shape ({len(x)},), got {tuple(y.shape)}"
            )
        h = self.trunk(x)
        return self.head(h) + (self.embed(y) * h).sum(dim=1, keepdim=True)


# --- the adversarial game ------------------------------------------------------------------------


def d_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, real_target: float = 1.0
) -> torch.Tensor:
    """The discriminator's loss: ``-mean log D(x) - mean log(1 - D(G(z)))`` from logits.

    Args:
        real_logits (Tensor): ``(B, 1)`` logits of real images.
        fake_logits (Tensor): ``(B, 1)`` logits of generated images.
        real_target (float): target for real images; 0.9 gives one-sided label smoothing
            (Salimans et al. 2016). Default 1.0.

    Returns:
        Tensor: a scalar.

    >>> round(d_loss(torch.zeros(2, 1), torch.zeros(2, 1)).item(), 4)  # D = 1/2 everywhere: 2 log 2
    1.3863

    Introduced in the chapter "Generative models".
    """
    if (
        isinstance(real_target, bool)
        or not isinstance(real_target, int | float)
        or not 0.0 < real_target <= 1.0
    ):
        raise ValueError(f"expected a real_target in (0, 1], got {real_target!r}")
    _expect_tensor(real_logits, "real_logits")
    _expect_tensor(fake_logits, "fake_logits")
    real = F.binary_cross_entropy_with_logits(
        real_logits, torch.full_like(real_logits, real_target)
    )
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def g_loss(fake_logits: torch.Tensor, non_saturating: bool = True) -> torch.Tensor:
    """The generator's loss from the logits of its images.

    Non-saturating (default): ``-mean log D(G(z))``. Saturating, the minimax form of
    Goodfellow et al. (2014): ``mean log(1 - D(G(z)))``, whose gradient vanishes when the
    discriminator rejects the samples confidently.

    Args:
        fake_logits (Tensor): ``(B, 1)`` discriminator logits of generated images.
        non_saturating (bool): which of the two losses. Default True.

    Returns:
        Tensor: a scalar.

    >>> (
    ...     round(g_loss(torch.zeros(1, 1)).item(), 4),
    ...     round(g_loss(torch.zeros(1, 1), False).item(), 4),
    ... )
    (0.6931, -0.6931)

    Introduced in the chapter "Generative models".
    """
    _expect_tensor(fake_logits, "fake_logits")
    if non_saturating:
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def _judge(D: nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    if y is not None and _expect_tensor(y, "labels", f"({len(x)},)").shape != (len(x),):
        raise ValueError(f"expected one label per image, shape ({len(x)},), got {tuple(y.shape)}")
    return D(x) if y is None else D(x, y)


def d_step(
    D: nn.Module,
    opt_D: torch.optim.Optimizer,
    x: torch.Tensor,
    fake: torch.Tensor,
    y: torch.Tensor | None = None,
    real_target: float = 1.0,
) -> dict[str, float]:
    """One discriminator update: real images pushed towards 1, generated ones towards 0.

    The generated batch is detached, so no gradient reaches the generator and only the
    discriminator's weights change. As in the PyTorch DCGAN example, the real and the
    generated batch pass through ``D`` separately, so batch normalisation in ``D`` sees one
    kind of image at a time.

    Args:
        D (nn.Module): the discriminator (logits); ``D(x, y)`` when ``y`` is given.
        opt_D (Optimizer): the discriminator's optimiser.
        x (Tensor): real images ``(B, 1, 28, 28)``.
        fake (Tensor): generated images ``(B, 1, 28, 28)``, for example ``G(z)``.
        y (Tensor | None): labels ``(B,)`` of a conditional GAN, shared by the real images and
            the ones generated for them. Default None.
        real_target (float): see :func:`d_loss`. Default 1.0.

    Returns:
        dict: ``loss_D``, ``D_x`` (mean D on real images) and ``D_G_z`` (mean D on fakes), floats.

    Introduced in the chapter "Generative models".
    """
    _check_images(x, "real images")
    _check_images(fake, "generated images")
    _check_optimizer(opt_D, "opt_D")
    real_logits, fake_logits = _judge(D, x, y), _judge(D, fake.detach(), y)
    loss = d_loss(real_logits, fake_logits, real_target)
    opt_D.zero_grad()
    loss.backward()
    opt_D.step()
    return {
        "loss_D": loss.item(),
        "D_x": torch.sigmoid(real_logits).mean().item(),
        "D_G_z": torch.sigmoid(fake_logits).mean().item(),
    }


def g_step(
    G: nn.Module,
    D: nn.Module,
    opt_G: torch.optim.Optimizer,
    fake: torch.Tensor,
    y: torch.Tensor | None = None,
    non_saturating: bool = True,
) -> dict[str, float]:
    """One generator update: make the (just updated) discriminator call generated images real.

    ``fake`` must still be attached to ``G``'s graph (``fake = G(z)``, not detached): the
    loss is backpropagated through ``D`` into ``G``, but only ``opt_G`` steps, so the
    discriminator's weights stay as they are (its stale gradients are cleared by the next
    :func:`d_step`). Reusing the batch of the discriminator step, as the PyTorch DCGAN example
    does, saves one forward pass of the generator.

    Args:
        G (nn.Module): the generator that produced ``fake``.
        D (nn.Module): the discriminator.
        opt_G (Optimizer): the generator's optimiser.
        fake (Tensor): generated images ``(B, 1, 28, 28)`` with ``requires_grad``.
        y (Tensor | None): labels ``(B,)`` for a conditional GAN. Default None.
        non_saturating (bool): see :func:`g_loss`. Default True.

    Returns:
        dict: ``loss_G`` and ``grad_G``, the L2 norm of the generator's gradient, floats.

    Introduced in the chapter "Generative models".
    """
    _check_images(fake, "generated images")
    _check_optimizer(opt_G, "opt_G")
    if not fake.requires_grad:
        raise ValueError(
            "expected generated images attached to the generator's graph (requires_grad=True), got "
            "a detached tensor"
        )
    loss = g_loss(_judge(D, fake, y), non_saturating)
    opt_G.zero_grad()
    loss.backward()
    grad = torch.sqrt(sum((p.grad**2).sum() for p in G.parameters() if p.grad is not None))
    opt_G.step()
    return {"loss_G": loss.item(), "grad_G": grad.item()}


# --- the variational autoencoder ----------------------------------------------------------------


class VAE(nn.Module):
    """A fully connected variational autoencoder for 28x28 images (Kingma and Welling 2014).

    The encoder maps an image to the mean and log-variance of a Gaussian ``q(z | x)``; the
    decoder maps a code ``z`` to the logits of 784 Bernoulli pixels. ``forward(x)`` returns
    ``(recon_logits, mu, logvar)`` with shapes ``(B, 1, 28, 28)``, ``(B, z_dim)``, ``(B, z_dim)``.

    Args:
        z_dim (int): size of the code. Default 16.
        hidden (int): width of the hidden layer of encoder and decoder. Default 256.

    >>> [t.shape[1] for t in VAE(2, 32)(torch.rand(5, 1, 28, 28))]
    [1, 2, 2]

    Introduced in the chapter "Generative models".
    """

    def __init__(self, z_dim: int = 16, hidden: int = 256):
        super().__init__()
        _check_positive(z_dim=z_dim, hidden=hidden)
        self.z_dim = z_dim
        self.encoder = nn.Sequential(
            nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 2 * z_dim)
        )
        self.decoder = nn.Sequential(
            nn.Linear(z_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 784),
            nn.Unflatten(1, (1, 28, 28)),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of ``q(z | x)``, each ``(B, z_dim)``."""
        _check_images(x)
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 1, 28, 28)`` in ``[0, 1]``: the Bernoulli means for codes ``(B, z_dim)``."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"expected codes of shape (B, {self.z_dim}), got {tuple(z.shape)}")
        return torch.sigmoid(self.decoder(z))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar) if self.training else mu
        return self.decoder(z), mu, logvar


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None
) -> torch.Tensor:
    """A sample ``z = mu + sigma * eps`` with ``eps ~ N(0, I)``, differentiable in ``mu`` and
    ``logvar``.

    Args:
        mu (Tensor): means ``(B, z_dim)``.
        logvar (Tensor): log-variances ``(B, z_dim)``.
        eps (Tensor | None): the standard normal noise; drawn when None. Default None.

    Returns:
        Tensor: ``(B, z_dim)``.

    >>> reparameterize(torch.zeros(1, 2), torch.zeros(1, 2), torch.ones(1, 2)).tolist()
    [[1.0, 1.0]]

    Introduced in the chapter "Generative models".
    """
    if (
        _expect_tensor(mu, "mu", "(B, z_dim)").shape
        != _expect_tensor(logvar, "logvar", "(B, z_dim)").shape
    ):
        raise ValueError(
            f"expected mu and logvar of the same shape, got {tuple(mu.shape)} and "
            f"{tuple(logvar.shape)}"
        )
    if eps is not None and _expect_tensor(eps, "eps", "(B, z_dim)").shape != mu.shape:
        raise ValueError(
            f"expected noise eps of mu's shape {tuple(mu.shape)}, got {tuple(eps.shape)}"
        )
    eps = torch.randn_like(mu) if eps is None else eps
    return mu + torch.exp(0.5 * logvar) * eps


def vae_loss(
    x: torch.Tensor, recon_logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The negative ELBO per image: Bernoulli reconstruction loss plus ``KL(q(z|x) || N(0, I))``.

    ``KL = -1/2 * sum(1 + logvar - mu^2 - exp(logvar))`` in closed form for Gaussians.

    Args:
        x (Tensor): images ``(B, 1, 28, 28)`` in ``[0, 1]``.
        recon_logits (Tensor): decoder logits, same shape.
        mu, logvar (Tensor): ``(B, z_dim)`` from the encoder.

    Returns:
        dict: scalars ``loss`` (= ``recon + kl``), ``recon`` and ``kl``, each averaged over the
        batch and summed over pixels or code dimensions (nats per image).

    >>> round(
    ...     vae_loss(
    ...         torch.ones(1, 1, 28, 28),
    ...         torch.zeros(1, 1, 28, 28),
    ...         torch.zeros(1, 2),
    ...         torch.zeros(1, 2),
    ...     )["loss"].item(),
    ...     2,
    ... )
    543.43

    Introduced in the chapter "Generative models".
    """
    _check_images(x)
    if _expect_tensor(recon_logits, "recon_logits").shape != x.shape:
        raise ValueError(
            f"expected recon_logits of the images' shape {tuple(x.shape)}, got "
            f"{tuple(recon_logits.shape)}"
        )
    codes = [_expect_tensor(t, name, "(B, z_dim)") for name, t in (("mu", mu), ("logvar", logvar))]
    if codes[0].shape != codes[1].shape or codes[0].ndim != 2 or len(codes[0]) != len(x):
        raise ValueError(
            f"expected mu and logvar of shape ({len(x)}, z_dim), got {tuple(mu.shape)} and "
            f"{tuple(logvar.shape)}"
        )
    recon = F.binary_cross_entropy_with_logits(recon_logits, x, reduction="sum") / len(x)
    kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum() / len(x)
    return {"loss": recon + kl, "recon": recon, "kl": kl}


# --- measuring generated images with a classifier ------------------------------------------------


@torch.no_grad()
def classifier_outputs(
    clf: nn.Sequential, images: torch.Tensor, batch_size: int = 500
) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier's penultimate features and logits for ``images``, in eval mode, on the CPU.

    Args:
        clf (nn.Sequential): a classifier whose last module maps features to logits
            (``clf[:-1]`` gives the features).
        images (Tensor): ``(N, 1, 28, 28)`` in ``[0, 1]``.
        batch_size (int): images per forward pass. Default 500.

    Returns:
        tuple: features ``(N, F)`` and logits ``(N, K)``, float32 CPU tensors.

    >>> f, logits = classifier_outputs(
    ...     nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), torch.rand(3, 1, 28, 28)
    ... )
    >>> tuple(f.shape), tuple(logits.shape)
    ((3, 784), (3, 10))

    Introduced in the chapter "Generative models".
    """
    if not isinstance(clf, nn.Sequential) or len(clf) < 2:
        raise TypeError(
            "expected an nn.Sequential classifier with a last linear layer, got "
            f"{type(clf).__name__}"
        )
    _check_images(images)
    _expect_int(batch_size, "batch_size")
    clf.eval()
    device = next(clf.parameters()).device
    feats, logits = [], []
    for start in range(0, len(images), batch_size):
        f = clf[:-1](images[start : start + batch_size].to(device))
        feats.append(f.cpu())
        logits.append(clf[-1](f).cpu())
    return torch.cat(feats), torch.cat(logits)


def class_histogram(logits: torch.Tensor, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """The fraction of samples the classifier assigns to each class: ``(num_classes,)``, sums to 1.

    >>> class_histogram(torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [3.0, 1.0]]), 2).tolist()
    [0.75, 0.25]

    Introduced in the chapter "Generative models".
    """
    if (
        _expect_tensor(logits, "logits").ndim != 2
        or len(logits) == 0
        or logits.shape[1] != num_classes
    ):
        raise ValueError(
            f"expected logits of shape (N, {num_classes}) with N >= 1, got {tuple(logits.shape)}"
        )
    counts = torch.bincount(logits.argmax(1).cpu(), minlength=num_classes)
    return (counts.double() / len(logits)).numpy()


def entropy(p: np.ndarray | torch.Tensor) -> float:
    """Shannon entropy ``-sum p log p`` in nats of a probability vector (``0 log 0 = 0``).

    The uniform distribution over 10 classes has the most, ``log 10 = 2.303``; a generator that
    draws one digit only has 0.

    >>> round(entropy(np.full(10, 0.1)), 4), entropy([1.0, 0.0])
    (2.3026, 0.0)

    Introduced in the chapter "Generative models".
    """
    p = _as_array(p, "p")
    if p.ndim != 1 or (p < 0).any() or abs(p.sum() - 1.0) > 1e-6:
        raise ValueError(
            f"expected a probability vector (non-negative, summing to 1), got shape {p.shape} "
            f"summing to {p.sum():.4g}"
        )
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum()) + 0.0


def mean_confidence(logits: torch.Tensor) -> float:
    """The classifier's mean confidence: the average over samples of the largest softmax
    probability.

    >>> round(mean_confidence(torch.tensor([[0.0, 0.0], [10.0, -10.0]])), 3)
    0.75

    Introduced in the chapter "Generative models".
    """
    if _expect_tensor(logits, "logits").ndim != 2 or len(logits) == 0:
        raise ValueError(f"expected logits of shape (N, K) with N >= 1, got {tuple(logits.shape)}")
    return logits.softmax(1).max(1).values.mean().item()


def gaussian_stats(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(F,)`` and covariance ``(F, F)`` (unbiased) of features ``(N, F)``, in float64.

    >>> mu, cov = gaussian_stats(np.array([[0.0, 0.0], [2.0, 2.0]]))
    >>> mu.tolist(), cov.tolist()
    ([1.0, 1.0], [[2.0, 2.0], [2.0, 2.0]])

    Introduced in the chapter "Generative models".
    """
    f = _as_array(features, "features")
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"expected features of shape (N, F) with N >= 2, got {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix, by
    eigen-decomposition."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """The Fréchet distance between two Gaussians, as in FID (Heusel et al. 2017).

    ``d^2 = ||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1 C2)^{1/2})``. The trace of the matrix square
    root is computed as ``tr((C1^{1/2} C2 C1^{1/2})^{1/2})`` (same eigenvalues, but symmetric),
    with symmetric eigen-decompositions instead of ``scipy.linalg.sqrtm``; tiny negative
    eigenvalues from rounding are clipped to 0. This is the squared distance, as FID reports it.

    Args:
        mu1, mu2 (ndarray): means ``(F,)``.
        cov1, cov2 (ndarray): covariances ``(F, F)``, symmetric positive semi-definite.

    Returns:
        float: the (squared) Fréchet distance, >= 0.

    >>> # 2 + 2 * (1 + 4 - 2 * 2)
    >>> frechet_distance(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2))
    4.0

    Introduced in the chapter "Generative models".
    """
    mu1, mu2, cov1, cov2 = (
        _as_array(a, name)
        for a, name in ((mu1, "mu1"), (mu2, "mu2"), (cov1, "cov1"), (cov2, "cov2"))
    )
    d = mu1.shape[0] if mu1.ndim == 1 else -1
    if mu1.ndim != 1 or mu2.shape != (d,) or cov1.shape != (d, d) or cov2.shape != (d, d):
        raise ValueError(
            f"expected means (F,) and covariances (F, F) of one size F, got {mu1.shape}, "
            f"{cov1.shape}, {mu2.shape}, {cov2.shape}"
        )
    s1 = _sqrt_psd(cov1)
    eig = np.linalg.eigvalsh(s1 @ cov2 @ s1)
    tr_sqrt = np.sqrt(np.clip(eig, 0, None)).sum()
    value = float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * tr_sqrt)
    return max(value, 0.0)


def frechet_distance_features(
    f1: torch.Tensor | np.ndarray, f2: torch.Tensor | np.ndarray
) -> float:
    """The Fréchet distance between Gaussians fitted to two sets of features ``(N1, F)`` and
    ``(N2, F)``.

    >>> rng = np.random.default_rng(0); f = rng.normal(size=(200, 3))
    >>> frechet_distance_features(f, f) < 1e-9
    True

    Introduced in the chapter "Generative models".
    """
    return frechet_distance(*gaussian_stats(f1), *gaussian_stats(f2))


def sample_report(
    clf: nn.Sequential, images: torch.Tensor, reference_features: torch.Tensor
) -> dict[str, object]:
    """Judge a set of images with a classifier: class histogram, its entropy, confidence and
    Fréchet distance.

    Args:
        clf (nn.Sequential): the digit classifier (see :func:`classifier_outputs`).
        images (Tensor): ``(N, 1, 28, 28)`` in ``[0, 1]``, real or generated.
        reference_features (Tensor): ``(M, F)`` classifier features of real reference images.

    Returns:
        dict: ``histogram`` (ndarray ``(10,)``), ``entropy`` (nats), ``confidence`` and
        ``frechet`` (to the reference), plus ``labels``, the predicted classes ``(N,)``.

    Introduced in the chapter "Generative models".
    """
    feats, logits = classifier_outputs(clf, images)
    hist = class_histogram(logits)
    return {
        "histogram": hist,
        "entropy": entropy(hist),
        "confidence": mean_confidence(logits),
        "frechet": frechet_distance_features(feats, reference_features),
        "labels": logits.argmax(1),
    }
