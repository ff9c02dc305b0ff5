"""Tests of visionbook.diffusion: the schedule, the forward process, the posterior, the loss, the
U-Net and the samplers, each against a direct computation or a case worked out by hand."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from visionbook import diffusion as dif


@pytest.fixture
def schedule():
    return dif.noise_schedule(100)


def f64(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


class Oracle(nn.Module):
    """Predicts the same clean images whatever it is shown."""

    predicts = "x0"

    def __init__(self, x0: torch.Tensor):
        super().__init__()
        self.x0 = x0

    def forward(self, x, t, y=None):
        return self.x0


class Recorder(nn.Module):
    """Predicts zeros and remembers the steps and labels it was given."""

    predicts, num_classes = "eps", 10

    def forward(self, x, t, y=None):
        self.t, self.y = t, y
        return torch.zeros_like(x)


def small_unet(predicts: str = "x0") -> dif.UNet:
    torch.manual_seed(0)
    return dif.UNet(channels=(8, 8), emb_dim=8, predicts=predicts).eval()


# --- the schedule ---------------------------------------------------------------------------------


def test_schedule_is_ho_et_al_at_T_1000():
    s = dif.noise_schedule(1000)
    assert s.T == 1000 and s.betas.shape == s.alphas.shape == s.alpha_bars.shape == (1001,)
    assert s.betas.dtype == torch.float64
    assert s.betas[0] == 0 and s.alpha_bars[0] == 1
    assert math.isclose(s.betas[1].item(), 1e-4) and math.isclose(s.betas[1000].item(), 0.02)
    assert torch.allclose(s.betas[1:], torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64))
    assert torch.allclose(s.alpha_bars, torch.cumprod(1 - s.betas, 0), rtol=0, atol=1e-15)


def test_scaled_defaults_keep_the_total_noise(schedule):
    """With T = 100 the betas are 10 times larger, so alpha_bar_T stays near the T = 1000 value."""
    assert math.isclose(schedule.betas[1].item(), 1e-3) and math.isclose(
        schedule.betas[100].item(), 0.2
    )
    assert (
        0.5 < schedule.alpha_bars[100].item() / dif.noise_schedule(1000).alpha_bars[1000].item() < 2
    )
    assert torch.all(schedule.alpha_bars[1:] < schedule.alpha_bars[:-1])


def test_schedule_rejects_bad_arguments():
    for T in ("100", 1.5, True):
        with pytest.raises(TypeError, match="expected an integer number of steps T"):
            dif.noise_schedule(T)
    with pytest.raises(ValueError, match="at least 2"):
        dif.noise_schedule(1)
    with pytest.raises(ValueError, match="beta_1 <= beta_T"):
        dif.noise_schedule(100, beta_1=0.1, beta_T=0.01)
    with pytest.raises(ValueError, match="beta_T"):
        dif.noise_schedule(100, beta_T=1.5)
    with pytest.raises(ValueError, match=r"0 < beta_1"):
        dif.noise_schedule(10)  # the default beta_T = 20 / T would be 2


# --- the forward process --------------------------------------------------------------------------


def test_q_sample_is_the_closed_form(schedule):
    x0, noise, t = f64(3, 1, 4, 4), f64(3, 1, 4, 4, seed=1), torch.tensor([0, 7, 100])
    ab = schedule.alpha_bars[t].view(-1, 1, 1, 1)
    assert torch.allclose(
        dif.q_sample(x0, t, schedule, noise), ab.sqrt() * x0 + (1 - ab).sqrt() * noise, atol=1e-15
    )
    assert torch.equal(dif.q_sample(x0, torch.tensor([0, 0, 0]), schedule), x0)


def test_the_chain_of_single_steps_matches_the_closed_form_by_sampling(schedule):
    """Run q(x_t | x_{t-1}) step by step on many copies and compare moments with the formula."""
    torch.manual_seed(0)
    n, x0 = 20000, torch.tensor([-1.0, -0.3, 0.4, 1.0]).view(1, 1, 2, 2)
    x = x0.expand(n, -1, -1, -1).double()
    for t in range(1, 31):
        x = schedule.alphas[t].sqrt() * x + schedule.betas[t].sqrt() * torch.randn_like(x)
    mean, var = schedule.alpha_bars[30].sqrt() * x0.double()[0], 1 - schedule.alpha_bars[30]
    assert ((x.mean(0) - mean).abs() / (var / n).sqrt()).max() < 5
    assert ((x.var(0) - var).abs() / (var * math.sqrt(2 / (n - 1)))).max() < 5
    direct = dif.q_sample(x0.expand(n, -1, -1, -1), torch.full((n,), 30), schedule)
    assert ((direct.mean(0) - mean).abs() / (var / n).sqrt()).max() < 5


def test_x0_and_eps_conversions_invert_each_other(schedule):
    x0, eps, t = f64(4, 1, 3, 3), f64(4, 1, 3, 3, seed=1), torch.tensor([1, 30, 60, 100])
    x_t = dif.q_sample(x0, t, schedule, eps)
    assert torch.allclose(dif.x0_from_eps(x_t, eps, t, schedule), x0, atol=1e-9)
    assert torch.allclose(dif.eps_from_x0(x_t, x0, t, schedule), eps, atol=1e-9)
    one = dif.q_sample(x0, torch.full((4,), 40), schedule, eps)  # one step for all, as an int
    assert torch.allclose(dif.eps_from_x0(one, x0, 40, schedule), eps, atol=1e-9)
    assert torch.allclose(dif.x0_from_eps(one, eps, 40, schedule), x0, atol=1e-9)


def test_posterior_is_gaussian_conditioning(schedule):
    x0, x_t = f64(2, 1, 3, 3), f64(2, 1, 3, 3, seed=1)
    ab, a = schedule.alpha_bars, schedule.alphas
    for t in range(1, schedule.T + 1):
        v_prev, v_t, c = 1 - ab[t - 1], 1 - ab[t], a[t].sqrt() * (1 - ab[t - 1])
        mean, var = dif.posterior(x0, x_t, t, schedule)
        expected = ab[t - 1].sqrt() * x0 + c / v_t * (x_t - ab[t].sqrt() * x0)
        assert torch.allclose(mean, expected, atol=1e-12)
        assert math.isclose(var.item(), (v_prev - c**2 / v_t).item(), abs_tol=1e-14)
    mean, var = dif.posterior(x0, x_t, 1, schedule)
    assert torch.allclose(mean, x0, atol=1e-15) and var.item() == 0  # the last step lands on x0


def test_posterior_matches_the_forward_process_by_sampling(schedule):
    """Draw (x_{t-1}, x_t) from the chain; among draws, the regression of x_{t-1} on x_t is the
    posterior."""
    torch.manual_seed(1)
    t, n, x0 = 10, 200000, torch.tensor([[[[0.5]]]], dtype=torch.float64)
    prev = dif.q_sample(x0.expand(n, -1, -1, -1), torch.full((n,), t - 1), schedule)
    x_t = schedule.alphas[t].sqrt() * prev + schedule.betas[t].sqrt() * torch.randn_like(prev)
    slope = ((prev - prev.mean()) * (x_t - x_t.mean())).mean() / x_t.var()
    residual = prev - (prev.mean() + slope * (x_t - x_t.mean()))
    mean_at_0, var = dif.posterior(x0, torch.zeros_like(x0), t, schedule)
    mean_at_1, _ = dif.posterior(x0, torch.ones_like(x0), t, schedule)
    assert abs(slope.item() - (mean_at_1 - mean_at_0).item()) < 0.01
    assert abs(residual.var().item() / var.item() - 1) < 0.02


# --- the loss -------------------------------------------------------------------------------------


def test_loss_is_the_mean_squared_error_of_the_models_target(schedule):
    x0, noise, t, y = (
        f64(2, 1, 28, 28),
        f64(2, 1, 28, 28, seed=1),
        torch.tensor([3, 90]),
        torch.tensor([4, 7]),
    )
    x_t = dif.q_sample(x0, t, schedule, noise)
    for predicts, target in (("x0", x0), ("eps", noise)):
        net = small_unet(predicts).double()
        expected = F.mse_loss(net(x_t, t, y), target)
        assert torch.allclose(
            dif.denoising_loss(net, x0, schedule, y, t=t, noise=noise), expected, atol=1e-12
        )


def test_x0_loss_is_the_noise_loss_weighted_by_the_inverse_snr(schedule):
    x0, noise, t = f64(3, 1, 28, 28), f64(3, 1, 28, 28, seed=1), torch.tensor([2, 40, 100])
    net = small_unet("x0").double()
    x_t = dif.q_sample(x0, t, schedule, noise)
    x0_hat = net(x_t, t)
    eps_hat = dif.eps_from_x0(x_t, x0_hat, t, schedule)
    ab = schedule.alpha_bars[t]
    err_x0, err_eps = ((x0_hat - x0) ** 2).mean((1, 2, 3)), ((eps_hat - noise) ** 2).mean((1, 2, 3))
    assert torch.allclose(err_x0, (1 - ab) / ab * err_eps, rtol=1e-9)


def test_label_dropout_and_step_drawing(schedule):
    rec, x0, y = Recorder(), torch.zeros(500, 1, 28, 28), torch.arange(500) % 10
    dif.denoising_loss(rec, x0, schedule, y, p_uncond=0.0)
    assert (
        torch.equal(rec.y, y)
        and rec.t.min() >= 1
        and rec.t.max() <= schedule.T
        and rec.t.dtype == torch.long
    )
    dif.denoising_loss(rec, x0, schedule, y, p_uncond=1.0)
    assert torch.all(rec.y == 10)
    torch.manual_seed(0)
    dif.denoising_loss(rec, x0, schedule, y, p_uncond=0.2)
    assert 0.12 < (rec.y == 10).float().mean().item() < 0.28
    dif.denoising_loss(rec, x0, schedule)
    assert rec.y is None


def test_loss_rejects_bad_arguments(schedule):
    net, x0 = small_unet(), torch.zeros(2, 1, 28, 28)
    with pytest.raises(ValueError, match="p_uncond"):
        dif.denoising_loss(net, x0, schedule, torch.tensor([1, 2]), p_uncond=1.5)
    with pytest.raises(ValueError, match=r"steps t in 1\.\.100"):
        dif.denoising_loss(net, x0, schedule, t=torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="labels in 0..10"):
        dif.denoising_loss(net, x0, schedule, torch.tensor([1, 11]))
    with pytest.raises(ValueError, match="model.predicts"):
        bad = small_unet()
        bad.predicts = "v"
        dif.denoising_loss(bad, x0, schedule)
    with pytest.raises(TypeError, match="diffusion.Schedule"):
        dif.denoising_loss(net, x0, (1, 2, 3))


# --- the network ----------------------------------------------------------------------------------


def test_timestep_embedding_is_sines_and_cosines():
    emb = dif.timestep_embedding(torch.tensor([0, 3, 50]), 8)
    assert emb.shape == (3, 8) and torch.equal(emb[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    freqs = 10000 ** (-torch.arange(4) / 4)
    assert torch.allclose(
        emb[1], torch.cat([torch.sin(3 * freqs), torch.cos(3 * freqs)]), atol=1e-6
    )
    assert torch.allclose(emb.norm(dim=1), torch.full((3,), 2.0))  # sqrt(dim / 2)
    with pytest.raises(ValueError, match="even"):
        dif.timestep_embedding(torch.tensor([1]), 5)
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        dif.timestep_embedding(torch.tensor([[1]]), 4)


def test_res_block_shapes_skip_and_embedding():
    torch.manual_seed(0)
    same, wider = dif.ResBlock(4, 4, 6), dif.ResBlock(4, 8, 6)
    assert isinstance(same.skip, nn.Identity) and isinstance(wider.skip, nn.Conv2d)
    x, emb = torch.randn(2, 4, 5, 5), torch.randn(2, 6)
    assert wider(x, emb).shape == (2, 8, 5, 5)
    for conv in (same.conv1, same.conv2):
        nn.init.zeros_(conv.weight), nn.init.zeros_(conv.bias)
    assert torch.allclose(same(x, emb), x)  # with zero convolutions only the identity remains
    with pytest.raises(ValueError, match=r"features x of shape \(B, 4, H, W\)"):
        same(torch.randn(2, 3, 5, 5), emb)
    with pytest.raises(ValueError, match=r"embedding emb of shape \(2, 6\)"):
        same(x, torch.randn(2, 5))


def test_unet_shapes_labels_and_the_no_label_class():
    net = small_unet()
    x, t = torch.randn(3, 1, 28, 28), torch.tensor([1, 50, 100])
    out = net(x, t)
    assert out.shape == (3, 1, 28, 28)
    assert torch.equal(out, net(x, t, torch.full((3,), 10)))  # None means label 10, "no label"
    assert not torch.allclose(out, net(x, t, torch.tensor([0, 1, 2])))
    assert not torch.allclose(net(x, torch.tensor([1, 1, 1])), net(x, torch.tensor([90, 90, 90])))


def test_unet_rejects_bad_arguments():
    net = small_unet()
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        net(torch.randn(2, 1, 14, 14), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="int64"):
        net(torch.randn(2, 1, 28, 28), torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="labels in 0..10"):
        net(torch.randn(2, 1, 28, 28), torch.tensor([1, 2]), torch.tensor([3, 12]))
    with pytest.raises(ValueError, match="predicts"):
        dif.UNet(predicts="v")
    with pytest.raises(TypeError, match="channels"):
        dif.UNet(channels=16)
    with pytest.raises(ValueError, match="even emb_dim"):
        dif.UNet(emb_dim=9)


# --- sampling -------------------------------------------------------------------------------------


def test_predict_noise_converts_and_guides(schedule):
    net, x, y = small_unet("x0"), torch.randn(2, 1, 28, 28), torch.tensor([3, 8])
    steps = torch.full((2,), 40)
    with torch.no_grad():
        cond = dif.eps_from_x0(x, net(x, steps, y), 40, schedule)
        uncond = dif.eps_from_x0(x, net(x, steps), 40, schedule)
        assert torch.allclose(dif.predict_noise(net, x, 40, schedule, y), cond, atol=1e-5)
        assert torch.allclose(
            dif.predict_noise(net, x, 40, schedule, y, guidance=0.0), uncond, atol=1e-5
        )
        assert torch.allclose(dif.predict_noise(net, x, 40, schedule), uncond, atol=1e-5)
        guided = dif.predict_noise(net, x, 40, schedule, y, guidance=3.0)
        assert torch.allclose(guided, uncond + 3 * (cond - uncond), atol=1e-4)
    eps_net = Recorder()
    assert torch.equal(
        dif.predict_noise(eps_net, x, 7, schedule), torch.zeros_like(x)
    ) and eps_net.t.tolist() == [7, 7]
    with pytest.raises(ValueError, match="guidance"):
        dif.predict_noise(net, x, 40, schedule, y, guidance=-1.0)
    with pytest.raises(ValueError, match=r"step t in 1\.\.100"):
        dif.predict_noise(net, x, 0, schedule)


def test_ddpm_step_is_ho_et_al_algorithm_2(schedule):
    x_t, eps, z = f64(2, 1, 3, 3), f64(2, 1, 3, 3, seed=1), f64(2, 1, 3, 3, seed=2)
    for t in (1, 2, 50, 100):
        b, a, ab = schedule.betas[t], schedule.alphas[t], schedule.alpha_bars[t]
        sigma = ((1 - schedule.alpha_bars[t - 1]) / (1 - ab) * b).sqrt()
        expected = (x_t - b / (1 - ab).sqrt() * eps) / a.sqrt() + sigma * z
        assert torch.allclose(dif.ddpm_step(x_t, eps, t, schedule, z), expected, atol=1e-12)


def test_ddpm_step_clips_the_guess_of_x0(schedule):
    x_t, eps = (
        torch.full((1, 1, 2, 2), 3.0, dtype=torch.float64),
        torch.zeros(1, 1, 2, 2, dtype=torch.float64),
    )
    # at t = 1 the step returns the guess of x0 itself: x_t / sqrt(alpha_bar_1), or 1 once clipped
    assert torch.allclose(
        dif.ddpm_step(x_t, eps, 1, schedule, clip=False), x_t / schedule.alpha_bars[1].sqrt()
    )
    assert torch.allclose(dif.ddpm_step(x_t, eps, 1, schedule, clip=True), torch.ones_like(x_t))


def test_ddim_step_formula_and_its_ddpm_special_case(schedule):
    x_t, eps, z = f64(2, 1, 3, 3), f64(2, 1, 3, 3, seed=1), f64(2, 1, 3, 3, seed=2)
    ab = schedule.alpha_bars
    x0 = (x_t - (1 - ab[60]).sqrt() * eps) / ab[60].sqrt()
    assert torch.allclose(
        dif.ddim_step(x_t, eps, 60, 25, schedule),
        ab[25].sqrt() * x0 + (1 - ab[25]).sqrt() * eps,
        atol=1e-12,
    )
    for t in (1, 30, 100):  # eta = 1 and one step back: DDPM's step with the posterior variance
        assert torch.allclose(
            dif.ddim_step(x_t, eps, t, t - 1, schedule, eta=1.0, noise=z),
            dif.ddpm_step(x_t, eps, t, schedule, z),
            atol=1e-12,
        )
        clipped = dif.ddim_step(3 * x_t, eps, t, t - 1, schedule, eta=1.0, noise=z, clip=True)
        assert torch.allclose(
            clipped, dif.ddpm_step(3 * x_t, eps, t, schedule, z, clip=True), atol=1e-12
        )


def test_ddim_step_rejects_bad_steps(schedule):
    x = torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match=r"next step s \(below t = 5\) in 0\.\.4"):
        dif.ddim_step(x, x, 5, 5, schedule)
    with pytest.raises(ValueError, match="eta"):
        dif.ddim_step(x, x, 5, 2, schedule, eta=2.0)
    with pytest.raises(TypeError, match="clip"):
        dif.ddim_step(x, x, 5, 2, schedule, clip="yes")


def test_ddim_times():
    assert dif.ddim_times(100, 4) == [100, 75, 50, 25, 0]
    assert dif.ddim_times(100, 100) == list(range(100, -1, -1))
    assert dif.ddim_times(100, 1) == [100, 0]
    assert dif.ddim_times(100, 3) == [100, 67, 33, 0]
    with pytest.raises(ValueError, match="at most T = 10"):
        dif.ddim_times(10, 11)


def test_an_oracle_is_recovered_exactly_by_both_samplers(schedule):
    truth, x_T = f64(2, 1, 28, 28).clamp(-1, 1), f64(2, 1, 28, 28, seed=1)
    for steps in (1, 3, 100):
        assert torch.allclose(
            dif.ddim_sample(Oracle(truth), x_T, schedule, steps, clip=False), truth, atol=1e-9
        )
    assert torch.allclose(
        dif.ddpm_sample(Oracle(truth), x_T, schedule, generator=torch.Generator().manual_seed(0)),
        truth,
        atol=1e-9,
    )


def test_ddim_with_eta_1_and_all_steps_is_ddpm(schedule):
    net = small_unet()
    x_T = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    ddpm = dif.ddpm_sample(net, x_T, schedule, generator=torch.Generator().manual_seed(1))
    ddim = dif.ddim_sample(
        net, x_T, schedule, 100, eta=1.0, generator=torch.Generator().manual_seed(1)
    )
    assert torch.allclose(ddpm, ddim, atol=1e-4)
    assert ddpm.min() >= -1 and ddpm.max() <= 1


def test_ddim_with_eta_0_is_deterministic_and_guided_sampling_runs(schedule):
    net, x_T, y = small_unet(), torch.randn(2, 1, 28, 28), torch.tensor([1, 2])
    a = dif.ddim_sample(net, x_T, schedule, 5, y=y, guidance=2.0)
    b = dif.ddim_sample(net, x_T, schedule, 5, y=y, guidance=2.0)
    assert torch.equal(a, b) and a.shape == (2, 1, 28, 28)
    with pytest.raises(TypeError, match="torch.Generator"):
        dif.ddpm_sample(net, x_T, schedule, generator=0)
    with pytest.raises(ValueError, match=r"starting noise x_T of shape \(B, 1, 28, 28\)"):
        dif.ddim_sample(net, torch.randn(2, 28, 28), schedule, 5)


def test_to_pixels():
    assert dif.to_pixels(torch.tensor([-2.0, -1.0, 0.0, 0.5, 3.0])).tolist() == [
        0.0,
        0.0,
        0.5,
        0.75,
        1.0,
    ]
    with pytest.raises(TypeError, match="expected images x as a tensor"):
        dif.to_pixels([0.0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_step_and_sampling_on_cuda(schedule):
    net = small_unet().cuda().train()
    x0, y = (
        torch.rand(4, 1, 28, 28, device="cuda") * 2 - 1,
        torch.tensor([0, 1, 2, 3], device="cuda"),
    )
    dif.denoising_loss(net, x0, schedule, y, 0.5).backward()
    net.eval()
    x_T = torch.randn(2, 1, 28, 28, device="cuda")
    out = dif.ddim_sample(
        net,
        x_T,
        schedule,
        3,
        y=y[:2],
        guidance=2.0,
        eta=1.0,
        generator=torch.Generator().manual_seed(0),
    )
    assert out.device.type == "cuda" and dif.to_pixels(out).device.type == "cpu"
