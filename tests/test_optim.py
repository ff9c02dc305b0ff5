"""The from-scratch optimisers and schedules against torch.optim, plus the range test."""

import math

import pytest
import torch
from torch import nn

from visionbook.optim import (
    SGD,
    Adam,
    RMSProp,
    UpdateRule,
    cosine_schedule,
    gradient_norm,
    lr_range_test,
    one_cycle_schedule,
    step_schedule,
    suggest_lr,
)

PAIRS = [
    ("sgd", lambda ps: SGD(ps, lr=0.1), lambda ps: torch.optim.SGD(ps, lr=0.1)),
    (
        "momentum",
        lambda ps: SGD(ps, lr=0.1, momentum=0.9),
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
    ),
    (
        "nesterov",
        lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    ),
    (
        "sgd wd",
        lambda ps: SGD(ps, lr=0.1, momentum=0.5, weight_decay=0.01),
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.5, weight_decay=0.01),
    ),
    ("rmsprop", lambda ps: RMSProp(ps, lr=0.01), lambda ps: torch.optim.RMSprop(ps, lr=0.01)),
    ("adam", lambda ps: Adam(ps, lr=0.01), lambda ps: torch.optim.Adam(ps, lr=0.01)),
    (
        "adam wd",
        lambda ps: Adam(ps, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1),
        lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1),
    ),
]


def _run(make_optimizer, steps: int = 5) -> list[torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    X, y = torch.randn(16, 4, dtype=torch.float64), torch.randint(0, 3, (16,))
    optimizer = make_optimizer(model.parameters())
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("name, ours, theirs", PAIRS, ids=[p[0] for p in PAIRS])
def test_optimisers_match_torch_over_several_steps(name, ours, theirs):
    for a, b in zip(_run(ours), _run(theirs)):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_momentum_by_hand():
    w = torch.tensor([0.0], requires_grad=True)
    opt = SGD([w], lr=1.0, momentum=0.5)
    for expected in (-1.0, -2.5, -4.25):  # velocity 1, 1.5, 1.75 with a constant gradient 1
        w.grad = torch.tensor([1.0])
        opt.step()
        assert w.item() == expected


def test_adam_first_step_is_lr_times_sign():
    w = torch.tensor([1.0, 1.0], requires_grad=True, dtype=torch.float64)
    w.grad = torch.tensor([3.0, -0.001], dtype=torch.float64)
    Adam([w], lr=0.1, eps=0.0).step()  # m_hat = g, v_hat = g^2: the step is lr * g / |g|
    torch.testing.assert_close(
        w.detach(), torch.tensor([0.9, 1.1], dtype=torch.float64), atol=1e-15, rtol=0
    )


def test_parameters_without_gradients_are_left_alone_and_closure_is_returned():
    a, b = torch.ones(1, requires_grad=True), torch.ones(1, requires_grad=True)
    a.grad = torch.ones(1)
    assert SGD([a, b], lr=0.5).step(closure=lambda: 7.0) == 7.0
    assert a.item() == 0.5 and b.item() == 1.0


def test_works_with_torch_schedulers():
    w = torch.zeros(1, requires_grad=True)
    opt = SGD([w], lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    w.grad = torch.ones(1)
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == 0.5


def test_optimiser_errors():
    params = [torch.zeros(1, requires_grad=True)]
    with pytest.raises(ValueError, match="expected a positive learning rate, got 0"):
        SGD(params, lr=0)
    with pytest.raises(ValueError, match=r"expected momentum in \[0, 1\), got 1.0"):
        SGD(params, lr=0.1, momentum=1.0)
    with pytest.raises(
        ValueError, match="expected momentum > 0 with nesterov=True, got momentum=0"
    ):
        SGD(params, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"expected weight_decay in \[0, inf\), got -1"):
        SGD(params, lr=0.1, weight_decay=-1)
    with pytest.raises(ValueError, match=r"expected alpha in \[0, 1\), got 1.5"):
        RMSProp(params, alpha=1.5)
    with pytest.raises(ValueError, match=r"expected eps in \[0, inf\), got -1"):
        RMSProp(params, eps=-1)
    with pytest.raises(
        ValueError, match=r"expected betas as a tuple \(b1, b2\), got \[0.9, 0.999\]"
    ):
        Adam(params, betas=[0.9, 0.999])
    with pytest.raises(ValueError, match=r"expected betas\[1\] in \[0, 1\), got 1.0"):
        Adam(params, betas=(0.9, 1.0))


# ---------------------------------------------------------------------------- schedules


def _torch_lrs(make_scheduler, steps: int, lr: float = 0.1) -> list[float]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr, momentum=0.9)
    sched = make_scheduler(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_schedules_match_torch():
    n = 50
    step = _torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.3), n)
    assert step == pytest.approx([step_schedule(s, 0.1, 7, 0.3) for s in range(n)], abs=1e-15)
    cosine = _torch_lrs(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=n, eta_min=0.001), n + 1
    )
    assert cosine == pytest.approx(
        [cosine_schedule(s, n, 0.1, 0.001) for s in range(n + 1)], abs=1e-12
    )
    one = _torch_lrs(lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.5, total_steps=n), n)
    assert one == pytest.approx([one_cycle_schedule(s, n, 0.5) for s in range(n)], abs=1e-12)


def test_schedules_by_hand():
    assert [step_schedule(s, 1.0, 2, 0.5) for s in range(5)] == [1.0, 1.0, 0.5, 0.5, 0.25]
    assert cosine_schedule(0, 10, 1.0, 0.1) == 1.0 and cosine_schedule(
        10, 10, 1.0, 0.1
    ) == pytest.approx(0.1)
    assert one_cycle_schedule(0, 100, 1.0) == pytest.approx(0.04)
    assert one_cycle_schedule(29, 100, 1.0) == pytest.approx(1.0)
    assert one_cycle_schedule(99, 100, 1.0) == pytest.approx(0.04 / 1e4)


def test_schedule_errors():
    with pytest.raises(ValueError, match="expected a non-negative integer step, got -1"):
        step_schedule(-1, 0.1, 5)
    with pytest.raises(ValueError, match="expected a positive integer step_size, got 0"):
        step_schedule(0, 0.1, 0)
    with pytest.raises(ValueError, match="expected an integer total_steps >= 2, got 1"):
        cosine_schedule(0, 1, 0.1)
    with pytest.raises(
        ValueError, match=r"expected 1 < pct_start \* total_steps < total_steps, got pct_start=0.01"
    ):
        one_cycle_schedule(0, 50, 0.1, pct_start=0.01)


# ------------------------------------------------------------------------ range test, gradient norm


def _toy_problem():
    torch.manual_seed(0)
    X = torch.randn(256, 10)
    y = (X[:, 0] > 0).long()
    return nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 2)), (X, y)


def test_lr_range_test_restores_the_model_and_finds_divergence():
    model, data = _toy_problem()
    before = [p.detach().clone() for p in model.parameters()]
    result = lr_range_test(
        model, data, lr_min=1e-4, lr_max=100.0, num_steps=60, device=torch.device("cpu")
    )
    for a, b in zip(before, model.parameters()):
        assert torch.equal(a, b)
    lrs, losses = result["lrs"], result["losses"]
    assert len(lrs) == len(losses) < 60  # lr = 100 with momentum diverges before the end
    ratios = [b / a for a, b in zip(lrs, lrs[1:])]
    assert ratios == pytest.approx([(100.0 / 1e-4) ** (1 / 59)] * len(ratios))
    assert min(losses) < losses[0] and 1e-4 < suggest_lr(result) < 10


def test_lr_range_test_and_suggest_lr_errors():
    model, data = _toy_problem()
    with pytest.raises(
        ValueError,
        match="expected 0 < lr_min < lr_max and an integer num_steps >= 2, got 1.0, 0.1, 10",
    ):
        lr_range_test(model, data, lr_min=1.0, lr_max=0.1, num_steps=10)
    with pytest.raises(
        ValueError,
        match="expected a range-test result with equal, non-empty 'lrs' and 'losses', got 0 and 0",
    ):
        suggest_lr({"lrs": [], "losses": []})


def test_gradient_norm_matches_clip_grad_norm():
    model, (X, y) = _toy_problem()
    nn.functional.cross_entropy(model(X), y).backward()
    ours = gradient_norm(model.parameters())
    theirs = nn.utils.clip_grad_norm_(model.parameters(), max_norm=math.inf)
    assert ours == pytest.approx(theirs.item(), rel=1e-6)
    with pytest.raises(
        ValueError, match=r"expected parameters with gradients; call loss.backward\(\) first"
    ):
        gradient_norm(nn.Linear(2, 2).parameters())


def test_new_bad_input_messages():
    w = torch.zeros(2, requires_grad=True)
    with pytest.raises(
        TypeError,
        match=(
            r"expected params as an iterable of tensors \(model.parameters\(\)\) or of "
            r"groups, got str"
        ),
    ):
        SGD("params", lr=0.1)
    with pytest.raises(TypeError, match="got items of type str"):
        Adam(["w"], lr=0.1)
    with pytest.raises(TypeError, match="expected defaults as a dict with an 'lr', got 'lr'"):
        UpdateRule([w], "lr")
    with pytest.raises(ValueError, match="expected a positive base_lr, got '1'"):
        step_schedule(0, "1", 2)
    with pytest.raises(ValueError, match=r"expected min_lr in \[0, 1\], got 2"):
        cosine_schedule(0, 10, 1.0, min_lr=2)
    with pytest.raises(ValueError, match="expected a positive max_lr, got '1'"):
        one_cycle_schedule(0, 10, "1")
    with pytest.raises(TypeError, match="expected the dict returned by lr_range_test, got str"):
        suggest_lr("result")
    with pytest.raises(TypeError, match="got items of type str"):
        gradient_norm(["w"])
