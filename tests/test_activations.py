"""Tests of visionbook.activations against PyTorch's functions and autograd, in float64."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from visionbook import activations
from visionbook.activations import (
    ACTIVATIONS,
    cross_entropy,
    gelu,
    layer_grad_norms,
    leaky_relu,
    leaky_relu_grad,
    log_softmax,
    logsumexp,
    relu,
    sigmoid,
    softmax,
    step,
    tanh,
)

REFERENCES = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "ReLU": F.relu,
    "leaky ReLU": F.leaky_relu,
    "GELU": F.gelu,
}


def points() -> torch.Tensor:
    x = torch.linspace(-8, 8, 1001, dtype=torch.float64)
    return x[x.abs() > 1e-9]  # ReLU-like functions have no derivative at exactly 0


@pytest.mark.parametrize("name", list(REFERENCES))
def test_forward_matches_pytorch(name):
    x = torch.cat([points(), torch.tensor([-1e4, 1e4], dtype=torch.float64)])
    torch.testing.assert_close(ACTIVATIONS[name][0](x), REFERENCES[name](x), atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", list(REFERENCES))
def test_derivative_matches_autograd(name):
    x = points().requires_grad_()
    (grad,) = torch.autograd.grad(REFERENCES[name](x).sum(), x)
    torch.testing.assert_close(ACTIVATIONS[name][1](x.detach()), grad, atol=1e-12, rtol=0)


def test_step_derivative_is_zero_away_from_zero():
    # autograd has no derivative for a comparison; central differences away from 0 give 0
    x, h = points(), 1e-6
    finite_difference = (step(x + h) - step(x - h)) / (2 * h)
    finite_difference[x.abs() <= h] = 0
    torch.testing.assert_close(ACTIVATIONS["step"][1](x), finite_difference, atol=0, rtol=0)


def test_hand_values():
    x = torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64)
    assert step(x).tolist() == [0, 0, 1]
    assert relu(x).tolist() == [0, 0, 2]
    assert leaky_relu(x, 0.5).tolist() == [-0.5, 0, 2]
    assert leaky_relu_grad(x, 0.5).tolist() == [0.5, 0.5, 1]
    assert sigmoid(x)[1].item() == 0.5 and tanh(x)[1].item() == 0
    assert gelu(torch.tensor([0.0])).item() == 0
    assert gelu(torch.tensor([1.0], dtype=torch.float64)).item() == pytest.approx(
        0.5 * (1 + math.erf(1 / math.sqrt(2)))
    )


def test_sigmoid_is_finite_far_out_and_autograd_right_at_zero():
    x = torch.tensor([-1e4, 0.0, 1e4], requires_grad=True)
    s = sigmoid(x)
    s.sum().backward()
    assert s.tolist() == [0.0, 0.5, 1.0]
    assert x.grad.tolist() == [0.0, 0.25, 0.0]


def test_logsumexp_softmax_match_pytorch_for_huge_scores():
    z = 1000 * torch.randn(6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for dim in (0, 1):
        torch.testing.assert_close(
            logsumexp(z, dim=dim), torch.logsumexp(z, dim=dim), atol=1e-10, rtol=0
        )
        torch.testing.assert_close(
            log_softmax(z, dim=dim), F.log_softmax(z, dim=dim), atol=1e-10, rtol=0
        )
        torch.testing.assert_close(
            softmax(z, dim=dim), torch.softmax(z, dim=dim), atol=1e-12, rtol=0
        )
    assert logsumexp(z, keepdim=True).shape == (6, 1)


def test_logsumexp_by_hand_and_minus_infinity():
    assert logsumexp(torch.tensor([0.0, 0.0], dtype=torch.float64)).item() == pytest.approx(
        math.log(2)
    )
    assert logsumexp(torch.tensor([0.0, -math.inf])).item() == 0.0
    assert logsumexp(torch.full((3,), -math.inf)).item() == -math.inf


def test_cross_entropy_matches_pytorch_value_and_gradient():
    gen = torch.Generator().manual_seed(1)
    logits = (500 * torch.randn(32, 10, dtype=torch.float64, generator=gen)).requires_grad_()
    y = torch.randint(0, 10, (32,), generator=gen)
    ours, theirs = cross_entropy(logits, y), F.cross_entropy(logits, y)
    torch.testing.assert_close(ours, theirs, atol=1e-10, rtol=0)
    (g_ours,) = torch.autograd.grad(ours, logits)
    (g_theirs,) = torch.autograd.grad(theirs, logits)
    torch.testing.assert_close(g_ours, g_theirs, atol=1e-12, rtol=0)
    # the gradient is (softmax - one_hot) / N
    expected = (softmax(logits.detach()) - F.one_hot(y, 10)) / 32
    torch.testing.assert_close(g_ours, expected, atol=1e-12, rtol=0)


def test_cross_entropy_by_hand():
    assert cross_entropy(
        torch.zeros(3, 4, dtype=torch.float64), torch.tensor([0, 1, 3])
    ).item() == pytest.approx(math.log(4))


def test_layer_grad_norms_by_hand():
    # y_hat = w x with w = 2, x = 3, target 1: loss (6 - 1)^2, d loss / d w = 2 * 5 * 3 = 30
    model = nn.Sequential(nn.Linear(1, 1, bias=False))
    nn.init.constant_(model[0].weight, 2.0)
    norms = layer_grad_norms(
        model, torch.tensor([[3.0]]), torch.tensor([[1.0]]), loss_fn=F.mse_loss
    )
    assert norms == [pytest.approx(30.0)]


def test_layer_grad_norms_order_and_values():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 3))
    X, y = torch.randn(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
    norms = layer_grad_norms(model, X, y)
    model.zero_grad()
    F.cross_entropy(model(X), y).backward()
    assert norms == pytest.approx(
        [model[0].weight.grad.norm().item(), model[2].weight.grad.norm().item()]
    )


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: sigmoid([0.0]), TypeError, "expected a torch.Tensor for x, got list"),
        (
            lambda: relu(torch.tensor([1, 2])),
            TypeError,
            "expected a floating-point tensor for x, got dtype torch.int64",
        ),
        (lambda: logsumexp(torch.tensor([1])), TypeError, "expected a floating-point tensor for z"),
        (
            lambda: cross_entropy(torch.zeros(3), torch.tensor([0])),
            ValueError,
            r"expected logits \(N, K\) and labels \(N,\), got \(3,\)",
        ),
        (
            lambda: cross_entropy(torch.zeros(2, 3), torch.tensor([0])),
            ValueError,
            r"got \(2, 3\) and \(1,\)",
        ),
        (
            lambda: cross_entropy(torch.zeros(2, 3), torch.tensor([0.0, 1.0])),
            TypeError,
            "expected integer class labels, got dtype torch.float32",
        ),
        (
            lambda: cross_entropy(torch.zeros(2, 3), torch.tensor([0, 3])),
            ValueError,
            "expected labels in 0..2, got values from 0 to 3",
        ),
        (
            lambda: layer_grad_norms(nn.ReLU(), torch.zeros(1), torch.zeros(1)),
            ValueError,
            "expected a model with nn.Linear or nn.Conv2d layers",
        ),
    ],
)
def test_errors_name_what_was_expected(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: activations.leaky_relu(torch.ones(2), slope="0.1"),
            "expected a number for slope, got '0.1'",
        ),
        (
            lambda: activations.softmax(torch.ones(2, 3), dim=2),
            r"expected an integer dim in \[-2, 2\) for z of shape \(2, 3\), got 2",
        ),
        (lambda: activations.logsumexp(torch.ones(2), dim="0"), "expected an integer dim"),
        (lambda: activations.log_softmax([1.0, 2.0]), "expected a torch.Tensor for z, got list"),
        (
            lambda: activations.layer_grad_norms("net", torch.ones(2, 3), torch.zeros(2).long()),
            "expected model as an nn.Module, got str",
        ),
        (
            lambda: activations.layer_grad_norms(
                nn.Linear(3, 2), torch.ones(4, 3), torch.zeros(2).long()
            ),
            r"expected one label per input, got X of shape \(4, 3\) and y of shape \(2,\)",
        ),
    ],
)
def test_new_bad_input_messages(call, message):
    with pytest.raises((TypeError, ValueError), match=message):
        call()
