"""The scalar engine and the NumPy layers against hand-computed values and torch.autograd
(float64)."""

import math

import matplotlib
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from visionbook import autograd
from visionbook.autograd import (
    Linear,
    ReLU,
    Sequential,
    SoftmaxCrossEntropy,
    Value,
    draw_graph,
    numerical_gradient,
    relative_error,
    topological_order,
)

matplotlib.use("Agg")

# (name, our op on Values, torch op, sampler of valid inputs)
UNARY = [
    ("exp", lambda a: a.exp(), torch.exp, lambda r: r.normal()),
    ("log", lambda a: a.log(), torch.log, lambda r: r.uniform(0.2, 3.0)),
    ("tanh", lambda a: a.tanh(), torch.tanh, lambda r: r.normal()),
    ("sigmoid", lambda a: a.sigmoid(), torch.sigmoid, lambda r: r.normal() * 3),
    ("relu", lambda a: a.relu(), torch.relu, lambda r: r.choice([-1, 1]) * r.uniform(0.1, 2.0)),
    ("pow 3", lambda a: a**3, lambda t: t**3, lambda r: r.normal()),
    ("pow -0.5", lambda a: a**-0.5, lambda t: t**-0.5, lambda r: r.uniform(0.2, 3.0)),
    ("neg", lambda a: -a, lambda t: -t, lambda r: r.normal()),
    ("radd", lambda a: 2.5 + a, lambda t: 2.5 + t, lambda r: r.normal()),
    ("rsub", lambda a: 2.5 - a, lambda t: 2.5 - t, lambda r: r.normal()),
    ("rtruediv", lambda a: 2.5 / a, lambda t: 2.5 / t, lambda r: r.uniform(0.5, 2.0)),
]
BINARY = [
    ("add", lambda a, b: a + b),
    ("sub", lambda a, b: a - b),
    ("mul", lambda a, b: a * b),
    ("truediv", lambda a, b: a / b),
]


@pytest.mark.parametrize("name, ours, theirs, sample", UNARY, ids=[u[0] for u in UNARY])
def test_unary_ops_match_torch(name, ours, theirs, sample):
    rng = np.random.default_rng(0)
    xs = [sample(rng) for _ in range(7)]
    weights = rng.normal(size=7)
    vs = [Value(x) for x in xs]
    out = sum((w * ours(v) for w, v in zip(weights, vs)), Value(0.0))
    out.backward()
    t = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    ref = (torch.tensor(weights) * theirs(t)).sum()
    ref.backward()
    assert math.isclose(out.data, ref.item(), rel_tol=1e-12, abs_tol=1e-12)
    assert relative_error([v.grad for v in vs], t.grad) < 1e-12


@pytest.mark.parametrize("name, op", BINARY, ids=[b[0] for b in BINARY])
def test_binary_ops_match_torch(name, op):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=5), rng.uniform(0.5, 2.0, size=5)
    va, vb = [Value(x) for x in a], [Value(x) for x in b]
    out = sum((op(x, y) for x, y in zip(va, vb)), Value(0.0))
    out.backward()
    ta, tb = (torch.tensor(v, requires_grad=True) for v in (a, b))
    op(ta, tb).sum().backward()
    assert relative_error([v.grad for v in va], ta.grad) < 1e-12
    assert relative_error([v.grad for v in vb], tb.grad) < 1e-12


def test_hand_computed_example_and_reused_node():
    a, b = Value(2.0), Value(-3.0)
    c = a * b + a  # dc/da = b + 1 = -2, dc/db = a = 2
    c.backward()
    assert (c.data, a.grad, b.grad) == (-4.0, -2.0, 2.0)
    x = Value(3.0)
    y = x * x  # the same node used twice: gradients add up, dy/dx = 2x
    y.backward()
    assert x.grad == 6.0


def test_long_chain_does_not_hit_the_recursion_limit():
    x = Value(1.0)
    y = x
    for _ in range(5000):
        y = y + x
    y.backward()
    assert y.data == 5001.0 and x.grad == 5001.0
    assert len(topological_order(y)) == 5001  # x and 5000 sums


def test_value_errors():
    with pytest.raises(TypeError, match="expected a real number for Value, got str"):
        Value("1")
    with pytest.raises(TypeError, match="expected a real number for Value, got bool"):
        Value(True)
    with pytest.raises(TypeError, match="expected a constant int or float exponent, got Value"):
        Value(2.0) ** Value(2.0)
    with pytest.raises(ValueError, match="expected a positive Value for log, got -1"):
        Value(-1.0).log()
    with pytest.raises(TypeError, match="expected a Value, got float"):
        topological_order(1.0)


def test_draw_graph_draws_one_box_per_node():
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    out = (a * b + a).tanh()
    out.backward()
    fig = draw_graph(out)
    # arrows are empty annotations
    texts = [t.get_text() for t in fig.axes[0].texts if t.get_text()]
    assert len(texts) == len(topological_order(out)) == 5
    assert any(t.startswith("a = 2") for t in texts) and any("[tanh]" in t for t in texts)


# ---------------------------------------------------------------------------- NumPy layers


@pytest.mark.parametrize("seed", range(4))
def test_linear_relu_softmax_match_torch_on_random_sizes(seed):
    rng = np.random.default_rng(seed)
    n, d, h, k = rng.integers(1, 9, size=4) + 1
    x, y = rng.normal(size=(n, d)), rng.integers(0, k, size=n)
    net = Sequential([Linear.init(d, h, rng), ReLU(), Linear.init(h, k, rng)])
    loss_fn = SoftmaxCrossEntropy()
    loss = loss_fn.forward(net.forward(x), y)
    grad_x = net.backward(loss_fn.backward())
    tx = torch.tensor(x, requires_grad=True)
    tparams = [torch.tensor(p, requires_grad=True) for p in net.parameters()]
    t_loss = F.cross_entropy(
        F.linear(F.relu(F.linear(tx, *tparams[:2])), *tparams[2:]), torch.tensor(y)
    )
    t_loss.backward()
    assert math.isclose(loss, t_loss.item(), rel_tol=1e-12)
    assert relative_error(grad_x, tx.grad) < 1e-12
    for ours, theirs in zip(net.gradients(), tparams):
        assert ours.shape == theirs.shape and relative_error(ours, theirs.grad) < 1e-12


def test_linear_and_relu_backward_by_hand():
    layer = Linear(np.array([[1.0, 2.0], [0.0, -1.0]]), np.array([0.5, 0.0]))
    out = layer.forward(np.array([[3.0, 4.0]]))
    np.testing.assert_array_equal(out, [[11.5, -4.0]])
    grad_x = layer.backward(np.array([[1.0, 2.0]]))
    np.testing.assert_array_equal(grad_x, [[1.0, 0.0]])  # [1, 2] @ W
    np.testing.assert_array_equal(layer.grad_weight, [[3.0, 4.0], [6.0, 8.0]])
    np.testing.assert_array_equal(layer.grad_bias, [1.0, 2.0])
    relu = ReLU()
    np.testing.assert_array_equal(relu.forward(np.array([-1.0, 0.0, 2.0])), [0.0, 0.0, 2.0])
    np.testing.assert_array_equal(relu.backward(np.ones(3)), [0.0, 0.0, 1.0])


def test_softmax_cross_entropy_is_stable_and_matches_the_formula():
    loss_fn = SoftmaxCrossEntropy()
    logits = np.array([[1000.0, 0.0], [0.0, 0.0]])
    loss = loss_fn.forward(logits, np.array([0, 1]))
    assert math.isclose(loss, math.log(2) / 2)
    np.testing.assert_allclose(loss_fn.backward(), [[0.0, 0.0], [0.25, -0.25]], atol=1e-15)


def test_linear_init_uses_pytorch_bounds():
    layer = Linear.init(16, 200, np.random.default_rng(0))
    assert layer.weight.shape == (200, 16) and layer.bias.shape == (200,)
    assert np.abs(layer.weight).max() <= 0.25 and np.abs(layer.weight).max() > 0.24


def test_layer_errors():
    with pytest.raises(ValueError, match=r"expected weight with 2 dimensions, got shape \(3,\)"):
        Linear(np.zeros(3), np.zeros(3))
    with pytest.raises(
        ValueError, match=r"expected a bias of shape \(2,\) for weight \(2, 3\), got \(3,\)"
    ):
        Linear(np.zeros((2, 3)), np.zeros(3))
    layer = Linear(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(RuntimeError, match="Linear.backward called before forward"):
        layer.backward(np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"expected inputs with 3 features, got shape \(1, 4\)"):
        layer.forward(np.zeros((1, 4)))
    with pytest.raises(TypeError, match="expected a NumPy array for the input of Linear, got list"):
        layer.forward([[1.0, 2.0, 3.0]])
    with pytest.raises(TypeError, match="expected a NumPy array for the input of ReLU, got list"):
        ReLU().forward([1.0])
    with pytest.raises(RuntimeError, match="ReLU.backward called before forward"):
        ReLU().backward(np.ones(1))
    with pytest.raises(
        ValueError, match=r"expected 2 integer labels in 0..2, got int64 labels of shape \(2,\)"
    ):
        SoftmaxCrossEntropy().forward(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"expected 2 integer labels in 0..2, got float64"):
        SoftmaxCrossEntropy().forward(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(RuntimeError, match="SoftmaxCrossEntropy.backward called before forward"):
        SoftmaxCrossEntropy().backward()
    with pytest.raises(
        TypeError, match="expected layers with forward, backward, parameters and gradients, got int"
    ):
        Sequential([ReLU(), 3])


# ---------------------------------------------------------------------------- gradient checking


def test_numerical_gradient_agrees_with_backprop():
    rng = np.random.default_rng(0)
    net, loss_fn = (
        Sequential([Linear.init(5, 4, rng), ReLU(), Linear.init(4, 3, rng)]),
        SoftmaxCrossEntropy(),
    )
    x, y = rng.normal(size=(6, 5)), rng.integers(0, 3, size=6)
    loss_fn.forward(net.forward(x), y)
    net.backward(loss_fn.backward())
    for param, grad in zip(net.parameters(), net.gradients()):
        numeric = numerical_gradient(lambda _: loss_fn.forward(net.forward(x), y), param)
        assert relative_error(grad, numeric) < 1e-7


def test_numerical_gradient_restores_x_and_checks_input():
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(
        numerical_gradient(lambda v: float(np.prod(v)), x), [2.0, 1.0], atol=1e-9
    )
    np.testing.assert_array_equal(x, [1.0, 2.0])
    with pytest.raises(TypeError, match="expected a float64 NumPy array for x, got float32"):
        numerical_gradient(lambda v: 0.0, np.zeros(2, dtype=np.float32))
    with pytest.raises(TypeError, match="expected a float64 NumPy array for x, got list"):
        numerical_gradient(lambda v: 0.0, [1.0])
    with pytest.raises(ValueError, match="expected a positive step h, got 0"):
        numerical_gradient(lambda v: 0.0, np.zeros(2), h=0)


def test_relative_error_definition():
    assert relative_error(np.array([2.0, 0.0]), np.array([1.0, 0.0])) == 0.5  # |2 - 1| / max(2, 1)
    # near-zero entry judged on the scale 1
    assert relative_error(np.array([1.0, 1e-12]), np.array([1.0, 0.0])) == 1e-12
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.array([1e-10]), np.array([0.0])) == pytest.approx(1e-2)  # floor 1e-8
    assert relative_error(torch.ones(2), np.ones(2)) == 0.0
    with pytest.raises(
        ValueError, match=r"expected arrays of the same shape, got \(2,\) and \(3,\)"
    ):
        relative_error(np.zeros(2), np.zeros(3))


def test_gradient_checking_rejects_bad_arguments():
    x = np.array([1.0, 2.0])
    with pytest.raises(TypeError, match="expected f as a callable that maps x to a float, got str"):
        autograd.numerical_gradient("f", x)
    with pytest.raises(ValueError, match="expected a positive step h, got '1e-6'"):
        autograd.numerical_gradient(lambda v: 0.0, x, h="1e-6")
    with pytest.raises(TypeError, match="expected a number, array or tensor for actual, got str"):
        autograd.relative_error("a", x)
    with pytest.raises(ValueError, match="expected a positive floor, got 0"):
        autograd.relative_error(x, x, floor=0)
