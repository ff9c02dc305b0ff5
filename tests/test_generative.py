"""Tests of visionbook.generative: builders, GAN losses and steps, the VAE, and the sample
metrics."""

import math

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch
import torch.nn.functional as F
from torch import nn

from visionbook import generative as gen

# --- the Fréchet distance ----------------------------------------------------------------------


def test_frechet_of_a_gaussian_sample_with_itself_is_zero():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6))
    assert gen.frechet_distance_features(f, f) == pytest.approx(0.0, abs=1e-8)
    mu, cov = gen.gaussian_stats(f)
    assert gen.frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-8)


def test_frechet_matches_closed_form_for_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    # 1 + 6.25 + (4 + 1 + 0)
    expected = ((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum()
    assert expected == pytest.approx(12.25)
    assert gen.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(
        expected, abs=1e-12
    )


def test_frechet_matches_scipy_sqrtm_for_full_covariances():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    c1, c2 = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    reference = ((mu1 - mu2) ** 2).sum() + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(c1 @ c2).real)
    assert gen.frechet_distance(mu1, c1, mu2, c2) == pytest.approx(reference, rel=1e-9)
    assert gen.frechet_distance(mu1, c1, mu2, c2) == pytest.approx(
        gen.frechet_distance(mu2, c2, mu1, c1), rel=1e-9
    )


def test_frechet_of_samples_approaches_the_closed_form():
    rng = np.random.default_rng(2)
    f1 = rng.normal(0.0, 1.0, size=(200_000, 2))
    f2 = rng.normal(1.0, 2.0, size=(200_000, 2))
    expected = 2 * 1.0 + 2 * (1 + 4 - 2 * 2)  # mean term 2, covariance term 2 * (1 + 4 - 4)
    assert gen.frechet_distance_features(f1, f2) == pytest.approx(expected, abs=0.05)


def test_frechet_accepts_singular_covariances():
    cov = np.diag([1.0, 0.0])
    assert gen.frechet_distance(np.zeros(2), cov, np.zeros(2), cov) == pytest.approx(0.0, abs=1e-12)


def test_frechet_rejects_mismatched_shapes():
    with pytest.raises(
        ValueError, match=r"expected means \(F,\) and covariances \(F, F\) of one size F"
    ):
        gen.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="expected means"):
        gen.frechet_distance(np.zeros((2, 2)), np.eye(2), np.zeros(2), np.eye(2))


def test_gaussian_stats_match_numpy_and_reject_bad_input():
    f = torch.randn(50, 3)
    mu, cov = gen.gaussian_stats(f)
    np.testing.assert_allclose(mu, f.double().mean(0).numpy(), atol=1e-12)
    np.testing.assert_allclose(cov, np.cov(f.double().numpy(), rowvar=False), atol=1e-12)
    with pytest.raises(
        ValueError, match=r"expected features of shape \(N, F\) with N >= 2, got \(1, 3\)"
    ):
        gen.gaussian_stats(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="expected features of shape"):
        gen.gaussian_stats(np.zeros(5))


# --- the classifier metrics ----------------------------------------------------------------------


def test_entropy_of_constructed_histograms():
    assert gen.entropy(np.full(10, 0.1)) == pytest.approx(math.log(10), abs=1e-12)
    assert gen.entropy([1.0] + [0.0] * 9) == 0.0
    assert gen.entropy(torch.tensor([0.5, 0.5])) == pytest.approx(math.log(2), abs=1e-12)
    p = np.array([0.7, 0.2, 0.1])
    assert gen.entropy(p) == pytest.approx(scipy.stats.entropy(p), abs=1e-12)


def test_entropy_rejects_non_distributions():
    with pytest.raises(ValueError, match="expected a probability vector"):
        gen.entropy([0.5, 0.6])
    with pytest.raises(ValueError, match="expected a probability vector"):
        gen.entropy([1.5, -0.5])
    with pytest.raises(ValueError, match="expected a probability vector"):
        gen.entropy(np.full((2, 2), 0.25))


def test_class_histogram_counts_the_argmax():
    logits = F.one_hot(torch.tensor([0, 0, 3, 9, 9, 9]), 10).float()
    hist = gen.class_histogram(logits)
    assert hist.shape == (10,)
    np.testing.assert_allclose(hist, [2 / 6, 0, 0, 1 / 6, 0, 0, 0, 0, 0, 3 / 6])
    uniform = gen.class_histogram(F.one_hot(torch.arange(10).repeat(3), 10).float())
    assert gen.entropy(uniform) == pytest.approx(math.log(10))
    with pytest.raises(
        ValueError, match=r"expected logits of shape \(N, 10\) with N >= 1, got \(4, 3\)"
    ):
        gen.class_histogram(torch.zeros(4, 3))


def test_mean_confidence_of_constructed_logits():
    assert gen.mean_confidence(torch.zeros(5, 10)) == pytest.approx(0.1)
    assert gen.mean_confidence(torch.tensor([[100.0, 0.0], [0.0, 0.0]])) == pytest.approx(0.75)
    with pytest.raises(ValueError, match=r"expected logits of shape \(N, K\) with N >= 1"):
        gen.mean_confidence(torch.zeros(10))


def _toy_classifier():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 6), nn.ReLU(), nn.Linear(6, 10))


def test_classifier_outputs_are_penultimate_features_and_logits():
    clf, x = _toy_classifier(), torch.rand(7, 1, 28, 28)
    feats, logits = gen.classifier_outputs(clf, x, batch_size=3)
    torch.testing.assert_close(feats, clf[:-1](x), rtol=0, atol=1e-6)
    torch.testing.assert_close(logits, clf(x), rtol=0, atol=1e-6)
    with pytest.raises(TypeError, match="expected an nn.Sequential classifier"):
        gen.classifier_outputs(nn.Linear(784, 10), x)
    with pytest.raises(
        ValueError, match=r"expected images of shape \(N, 1, 28, 28\), got \(7, 784\)"
    ):
        gen.classifier_outputs(clf, x.flatten(1))


def test_sample_report_is_consistent():
    clf, x = _toy_classifier(), torch.rand(40, 1, 28, 28)
    feats, logits = gen.classifier_outputs(clf, x)
    report = gen.sample_report(clf, x, feats)
    assert report["frechet"] == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(report["histogram"], gen.class_histogram(logits))
    assert report["entropy"] == pytest.approx(gen.entropy(report["histogram"]))
    assert report["confidence"] == pytest.approx(gen.mean_confidence(logits))
    assert torch.equal(report["labels"], logits.argmax(1))


# --- builders ----------------------------------------------------------------------------------


def test_dcgan_shapes_and_range():
    G, D = gen.dcgan_generator(16, channels=8), gen.dcgan_discriminator(channels=4)
    x = G(torch.randn(5, 16))
    assert x.shape == (5, 1, 28, 28) and x.min() >= 0 and x.max() <= 1
    assert D(x).shape == (5, 1)
    assert D[:-1](x).shape == (5, 2 * 4 * 49)
    assert gen.dcgan_generator(16, 8, cond_dim=10)(torch.randn(2, 26)).shape == (2, 1, 28, 28)
    assert gen.dcgan_discriminator(4, in_channels=11)(torch.rand(2, 11, 28, 28)).shape == (2, 1)


def test_mlp_gan_shapes():
    G = gen.mlp_generator(8, hidden=16)
    x = G(torch.randn(4, 8))
    assert x.shape == (4, 1, 28, 28) and x.min() >= 0 and x.max() <= 1
    assert gen.mlp_discriminator(16)(x).shape == (4, 1)
    assert gen.mlp_discriminator(16, minibatch_kernels=5)(x).shape == (4, 1)


def test_conditional_shapes():
    y = torch.tensor([0, 3, 9])
    x = gen.ConditionalGenerator(16, channels=8)(torch.randn(3, 16), y)
    assert x.shape == (3, 1, 28, 28)
    assert gen.ConditionalDiscriminator(channels=4)(x, y).shape == (3, 1)
    with pytest.raises(ValueError, match=r"expected one label per image, shape \(3,\), got \(2,\)"):
        gen.ConditionalDiscriminator(channels=4)(x, y[:2])


def test_projection_discriminator_starts_unconditional_and_uses_the_label():
    D = gen.ConditionalDiscriminator(channels=4).eval()
    x = torch.rand(2, 1, 28, 28)
    # embedding starts at 0
    torch.testing.assert_close(D(x, torch.tensor([0, 0])), D(x, torch.tensor([5, 7])))
    with torch.no_grad():
        D.embed.weight[5] = 1.0
    h = D.trunk(x)
    torch.testing.assert_close(
        D(x, torch.tensor([5, 5])) - D(x, torch.tensor([0, 0])), h.sum(1, keepdim=True)
    )


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: gen.dcgan_generator(0), "expected a positive integer z_dim, got 0"),
        (
            lambda: gen.dcgan_generator(8, channels=2.5),
            "expected a positive integer channels, got 2.5",
        ),
        (
            lambda: gen.dcgan_generator(8, cond_dim=-1),
            "expected a non-negative integer cond_dim, got -1",
        ),
        (lambda: gen.dcgan_discriminator(True), "expected a positive integer channels, got True"),
        (lambda: gen.mlp_generator(8, hidden=0), "expected a positive integer hidden, got 0"),
        (
            lambda: gen.mlp_discriminator(8, minibatch_kernels=-2),
            "expected a non-negative integer minibatch_kernels, got -2",
        ),
        (
            lambda: gen.MinibatchDiscrimination(4, num_kernels=0),
            "expected a positive integer num_kernels, got 0",
        ),
        (lambda: gen.VAE(z_dim=0), "expected a positive integer z_dim, got 0"),
    ],
)
def test_builders_reject_bad_sizes(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_one_hot_and_its_errors():
    assert gen.one_hot(torch.tensor([1, 0]), 3).tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    with pytest.raises(ValueError, match=r"expected int64 labels of shape \(B,\)"):
        gen.one_hot(torch.tensor([1.0, 0.0]))


def test_minibatch_discrimination_counts_near_duplicates():
    layer = gen.MinibatchDiscrimination(3, num_kernels=2, kernel_dim=2)
    same = torch.ones(4, 3)  # four identical samples: each has 3 exact duplicates
    out = layer(same)
    assert out.shape == (4, 5)
    torch.testing.assert_close(out[:, :3], same)
    torch.testing.assert_close(out[:, 3:], torch.full((4, 2), 3.0))
    # two very different samples: no duplicates
    far = torch.tensor([[0.0, 0.0, 0.0], [1e4, -1e4, 1e4]])
    torch.testing.assert_close(layer(far)[:, 3:], torch.zeros(2, 2))


def test_minibatch_discrimination_matches_a_loop():
    torch.manual_seed(0)
    layer, f = gen.MinibatchDiscrimination(5, num_kernels=3, kernel_dim=4), torch.randn(6, 5)
    M = (f @ layer.T).view(6, 3, 4)
    expected = torch.zeros(6, 3)
    for i in range(6):
        for j in range(6):
            if i != j:
                expected[i] += torch.exp(-(M[i] - M[j]).abs().sum(-1))
    torch.testing.assert_close(layer(f)[:, 5:], expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"expected features of shape \(N, 5\), got \(6, 4\)"):
        layer(torch.randn(6, 4))


# --- GAN losses and steps ----------------------------------------------------------------------


def test_d_loss_matches_the_formula():
    real, fake = torch.randn(8, 1), torch.randn(8, 1)
    by_hand = -torch.log(torch.sigmoid(real)).mean() - torch.log(1 - torch.sigmoid(fake)).mean()
    torch.testing.assert_close(gen.d_loss(real, fake), by_hand, rtol=1e-5, atol=1e-6)
    assert gen.d_loss(torch.zeros(3, 1), torch.zeros(3, 1)).item() == pytest.approx(
        2 * math.log(2), abs=1e-6
    )
    smoothed = (
        -(0.9 * F.logsigmoid(real) + 0.1 * F.logsigmoid(-real)).mean() - F.logsigmoid(-fake).mean()
    )
    torch.testing.assert_close(
        gen.d_loss(real, fake, real_target=0.9), smoothed, rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ValueError, match=r"expected a real_target in \(0, 1\], got 1.5"):
        gen.d_loss(real, fake, real_target=1.5)


def test_g_loss_values_and_gradients():
    a = torch.tensor([[-3.0], [0.0], [2.0]], requires_grad=True)
    torch.testing.assert_close(gen.g_loss(a), -F.logsigmoid(a).mean())
    torch.testing.assert_close(gen.g_loss(a, non_saturating=False), F.logsigmoid(-a).mean())
    (g_ns,) = torch.autograd.grad(gen.g_loss(a), a)
    (g_sat,) = torch.autograd.grad(gen.g_loss(a, non_saturating=False), a)
    D = torch.sigmoid(a.detach())
    torch.testing.assert_close(g_ns, -(1 - D) / 3)
    torch.testing.assert_close(g_sat, -D / 3)


def _tiny_gan():
    torch.manual_seed(0)
    return gen.dcgan_generator(8, channels=8), gen.dcgan_discriminator(channels=4)


def _params(net):
    return [p.detach().clone() for p in net.parameters()]


def _changed(before, net):
    return any(not torch.equal(b, p) for b, p in zip(before, net.parameters()))


def test_d_step_moves_only_the_discriminator():
    G, D = _tiny_gan()
    opt_D = torch.optim.SGD(D.parameters(), lr=0.1)
    g0, d0 = _params(G), _params(D)
    fake = G(torch.randn(4, 8))
    stats = gen.d_step(D, opt_D, torch.rand(4, 1, 28, 28), fake)
    assert set(stats) == {"loss_D", "D_x", "D_G_z"}
    assert 0 < stats["D_x"] < 1 and 0 < stats["D_G_z"] < 1 and stats["loss_D"] > 0
    assert _changed(d0, D) and not _changed(g0, G)
    assert all(p.grad is None for p in G.parameters())  # the generated batch was detached
    with pytest.raises(
        ValueError, match=r"expected real images of shape \(N, 1, 28, 28\), got \(4, 784\)"
    ):
        gen.d_step(D, opt_D, torch.rand(4, 784), fake)
    with pytest.raises(
        ValueError, match=r"expected generated images of shape \(N, 1, 28, 28\), got \(4, 784\)"
    ):
        gen.d_step(D, opt_D, torch.rand(4, 1, 28, 28), fake.flatten(1))


def test_g_step_moves_only_the_generator_and_reports_the_gradient_norm():
    G, D = _tiny_gan()
    opt_G = torch.optim.SGD(G.parameters(), lr=0.1)
    z = torch.randn(4, 8)
    G_copy, D_copy = _tiny_gan()
    loss = gen.g_loss(D_copy(G_copy(z)))
    norm = torch.sqrt(
        sum((g**2).sum() for g in torch.autograd.grad(loss, list(G_copy.parameters())))
    )
    g0, d0 = _params(G), _params(D)
    stats = gen.g_step(G, D, opt_G, G(z))
    assert set(stats) == {"loss_G", "grad_G"}
    assert stats["loss_G"] == pytest.approx(loss.item(), rel=1e-6)
    assert stats["grad_G"] == pytest.approx(norm.item(), rel=1e-5)
    assert _changed(g0, G) and not _changed(d0, D)
    with pytest.raises(
        ValueError, match="expected generated images attached to the generator's graph"
    ):
        gen.g_step(G, D, opt_G, G(z).detach())


def test_one_step_of_each_with_a_shared_batch():
    G, D = _tiny_gan()
    opt_G, opt_D = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    fake = G(torch.randn(4, 8))
    gen.d_step(D, opt_D, torch.rand(4, 1, 28, 28), fake)
    d1 = _params(D)
    stats = gen.g_step(G, D, opt_G, fake)  # the graph through G survives the discriminator step
    assert stats["grad_G"] > 0 and not _changed(d1, D)


def test_conditional_steps_run():
    torch.manual_seed(0)
    G, D = gen.ConditionalGenerator(8, channels=8), gen.ConditionalDiscriminator(channels=4)
    y = torch.tensor([1, 2, 3, 4])
    opt_G, opt_D = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    fake = G(torch.randn(4, 8), y)
    assert set(gen.d_step(D, opt_D, torch.rand(4, 1, 28, 28), fake, y)) == {
        "loss_D",
        "D_x",
        "D_G_z",
    }
    assert gen.g_step(G, D, opt_G, fake, y)["grad_G"] > 0


# --- the VAE -------------------------------------------------------------------------------------


def test_vae_shapes_and_modes():
    vae = gen.VAE(z_dim=3, hidden=16)
    x = torch.rand(5, 1, 28, 28)
    recon, mu, logvar = vae(x)
    assert recon.shape == (5, 1, 28, 28) and mu.shape == (5, 3) and logvar.shape == (5, 3)
    vae.eval()
    # eval: the code is the mean
    torch.testing.assert_close(vae(x)[0], vae.decoder(vae.encode(x)[0]))
    images = vae.decode(torch.randn(4, 3))
    assert images.shape == (4, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    with pytest.raises(ValueError, match=r"expected codes of shape \(B, 3\), got \(4, 2\)"):
        vae.decode(torch.randn(4, 2))
    with pytest.raises(
        ValueError, match=r"expected images of shape \(N, 1, 28, 28\), got \(5, 28, 28\)"
    ):
        vae.encode(torch.rand(5, 28, 28))


def test_reparameterize_is_differentiable_and_checks_shapes():
    mu, logvar = (
        torch.tensor([[1.0, -1.0]], requires_grad=True),
        torch.tensor([[0.0, 2.0]], requires_grad=True),
    )
    eps = torch.tensor([[0.5, 2.0]])
    z = gen.reparameterize(mu, logvar, eps)
    torch.testing.assert_close(z, torch.tensor([[1.5, -1.0 + math.e * 2.0]]))
    d_mu, d_logvar = torch.autograd.grad(z.sum(), (mu, logvar))
    torch.testing.assert_close(d_mu, torch.ones(1, 2))
    torch.testing.assert_close(d_logvar, 0.5 * torch.exp(0.5 * logvar.detach()) * eps)
    # noise is drawn
    assert gen.reparameterize(torch.zeros(100, 4), torch.zeros(100, 4)).std() > 0.5
    with pytest.raises(
        ValueError, match=r"expected mu and logvar of the same shape, got \(1, 2\) and \(1, 3\)"
    ):
        gen.reparameterize(torch.zeros(1, 2), torch.zeros(1, 3))


def test_vae_loss_terms():
    torch.manual_seed(0)
    x, logits = torch.rand(3, 1, 28, 28), torch.randn(3, 1, 28, 28)
    mu, logvar = torch.randn(3, 4), torch.randn(3, 4)
    losses = gen.vae_loss(x, logits, mu, logvar)
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3)).mean()
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(1).mean()
    torch.testing.assert_close(losses["recon"], recon)
    torch.testing.assert_close(losses["kl"], kl)
    torch.testing.assert_close(losses["loss"], recon + kl)
    assert gen.vae_loss(x, logits, torch.zeros(3, 4), torch.zeros(3, 4))["kl"].item() == 0.0
    with pytest.raises(
        ValueError,
        match=r"expected recon_logits of the images' shape \(3, 1, 28, 28\), got \(3, 784\)",
    ):
        gen.vae_loss(x, logits.flatten(1), mu, logvar)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda: gen.ConditionalGenerator(8, 8)(torch.zeros(3, 4), torch.tensor([0, 1, 2])),
            ValueError,
            r"expected codes z of shape \(B, 8\), got \(3, 4\)",
        ),
        (
            lambda: gen.ConditionalGenerator(8, 8)(torch.zeros(3, 8), torch.tensor([0, 1])),
            ValueError,
            r"expected one label per code, shape \(3,\), got \(2,\)",
        ),
        (
            lambda: gen.ConditionalDiscriminator(4)(torch.zeros(2, 1, 28, 28), [0, 1]),
            TypeError,
            "expected labels as a tensor",
        ),
        (
            lambda: gen.ConditionalGenerator(num_classes="10"),
            ValueError,
            "expected a positive integer num_classes, got '10'",
        ),
        (
            lambda: gen.MinibatchDiscrimination(5)([[0.0]]),
            TypeError,
            r"expected features as a tensor of shape \(N, 5\)",
        ),
        (
            lambda: gen.one_hot(torch.tensor([5]), 4),
            ValueError,
            "expected labels in 0..3, got values from 5 to 5",
        ),
        (
            lambda: gen.d_loss([[0.0]], torch.zeros(1, 1)),
            TypeError,
            "expected real_logits as a tensor",
        ),
        (lambda: gen.g_loss([[0.0]]), TypeError, "expected fake_logits as a tensor"),
        (
            lambda: gen.reparameterize(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 3)),
            ValueError,
            r"expected noise eps of mu's shape \(1, 2\), got \(1, 3\)",
        ),
        (
            lambda: gen.vae_loss(
                torch.zeros(1, 1, 28, 28),
                torch.zeros(1, 1, 28, 28),
                torch.zeros(2, 2),
                torch.zeros(2, 2),
            ),
            ValueError,
            r"expected mu and logvar of shape \(1, z_dim\), got \(2, 2\) and \(2, 2\)",
        ),
        (
            lambda: gen.classifier_outputs(
                nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), torch.zeros(1, 1, 28, 28), "5"
            ),
            TypeError,
            "expected an integer batch_size",
        ),
        (lambda: gen.mean_confidence([[0.0]]), TypeError, "expected logits as a tensor"),
        (lambda: gen.entropy("p"), TypeError, "expected a number, array or tensor for p, got str"),
        (
            lambda: gen.frechet_distance("m", np.eye(2), np.zeros(2), np.eye(2)),
            TypeError,
            "expected a number, array or tensor for mu1",
        ),
    ],
)
def test_new_bad_input_messages(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_adversarial_steps_reject_a_bad_optimiser_and_bad_labels():
    G, D = gen.dcgan_generator(8, 8), gen.dcgan_discriminator(4)
    x, fake = torch.rand(2, 1, 28, 28), G(torch.randn(2, 8))
    with pytest.raises(TypeError, match="expected opt_D as a torch.optim.Optimizer, got str"):
        gen.d_step(D, "adam", x, fake)
    with pytest.raises(TypeError, match="expected opt_G as a torch.optim.Optimizer, got str"):
        gen.g_step(G, D, "adam", fake)
    cD = gen.ConditionalDiscriminator(4)
    with pytest.raises(ValueError, match=r"expected one label per image, shape \(2,\), got \(1,\)"):
        gen.d_step(cD, torch.optim.SGD(cD.parameters(), 0.1), x, fake, torch.tensor([0]))
