"""Tests of visionbook.perceptron: hand-computed runs, scikit-learn's Perceptron, the
mistake bound."""

import matplotlib

from visionbook.perceptron import augment, margin_data, perceptron_predict, plot_decision_boundary

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from sklearn.linear_model import Perceptron

from visionbook.perceptron import (
    geometric_margin,
    is_linearly_separable,
    mistake_bound,
    train_perceptron,
)

W_STAR = np.array([1.0, -0.6, 0.25]) / np.linalg.norm([1.0, -0.6, 0.25])
XOR_X, XOR_Y = np.array([[0, 0], [1, 1], [0, 1], [1, 0]], dtype=float), np.array([-1, -1, 1, 1])


def test_augment_appends_ones_and_accepts_tensors():
    np.testing.assert_array_equal(
        augment(torch.tensor([[1.0, 2.0], [3.0, 4.0]])), [[1, 2, 1], [3, 4, 1]]
    )


def test_predict_by_hand_and_zero_score_is_negative():
    # scores: 1*2 - 1*1 + 0 = 1 > 0; 0 - 3 = -3; 1 - 1 = 0 -> -1
    np.testing.assert_array_equal(
        perceptron_predict([1.0, -1.0, 0.0], [[2.0, 1.0], [0.0, 3.0], [1.0, 1.0]]), [1, -1, -1]
    )


def test_train_by_hand():
    # w = 0: x1 = (2, 0) label +1 is a mistake -> w = (2, 0, 1); x2 = (0, 1) label -1: score 1 > 0,
    # mistake -> w = (2, -1, 0)
    run = train_perceptron([[2.0, 0.0], [0.0, 1.0]], [1, -1], shuffle=False)
    np.testing.assert_array_equal(run.history, [[0, 0, 0], [2, 0, 1], [2, -1, 0]])
    assert run.mistakes == [2, 0] and run.epoch_ends == [2, 2] and run.converged
    np.testing.assert_array_equal(run.w, [2, -1, 0])


def test_matches_scikit_learn_perceptron():
    X, y = margin_data(80, 0.05, W_STAR, seed=3)
    run = train_perceptron(X, y, shuffle=False, epochs=200)
    sk = Perceptron(eta0=1.0, tol=None, max_iter=200, shuffle=False, penalty=None).fit(X, y)
    np.testing.assert_allclose(run.w, np.r_[sk.coef_[0], sk.intercept_], atol=1e-12)


def test_learning_rate_only_scales_weights_from_zero():
    X, y = margin_data(100, 0.05, W_STAR, seed=1)
    slow, fast = train_perceptron(X, y, lr=0.1), train_perceptron(X, y, lr=10.0)
    assert slow.mistakes == fast.mistakes
    np.testing.assert_allclose(fast.w, 100 * slow.w, rtol=1e-12)


@pytest.mark.parametrize("margin", [0.02, 0.1, 0.3])
def test_mistakes_within_novikoff_bound(margin):
    X, y = margin_data(150, margin, W_STAR, seed=0)
    bound = mistake_bound(W_STAR, X, y)
    for seed in range(5):
        run = train_perceptron(X, y, epochs=10_000, seed=seed)
        assert run.converged and sum(run.mistakes) <= bound
        assert geometric_margin(run.w, X, y) > 0


def test_xor_never_converges():
    run = train_perceptron(XOR_X, XOR_Y, epochs=50)
    assert not run.converged and min(run.mistakes) >= 1 and len(run.mistakes) == 50


def test_geometric_margin_by_hand():
    # w = (3, 4, 0): distances 3*1/5 = 0.6 and -(-4*2)/5 = 1.6 -> 0.6; flipping a label -> -0.6
    X = [[1.0, 0.0], [0.0, -2.0]]
    assert geometric_margin([3.0, 4.0, 0.0], X, [1, -1]) == pytest.approx(0.6)
    assert geometric_margin([3.0, 4.0, 0.0], X, [-1, -1]) == pytest.approx(-0.6)


def test_margin_data_respects_margin_and_seed():
    X, y = margin_data(200, 0.2, W_STAR, seed=5)
    assert X.shape == (200, 2) and set(np.unique(y)) == {-1, 1}
    assert np.abs(X).max() <= 1 and geometric_margin(W_STAR, X, y) >= 0.2
    np.testing.assert_array_equal(X, margin_data(200, 0.2, W_STAR, seed=5)[0])


def test_separability_by_linear_program():
    assert is_linearly_separable(XOR_X, np.array([-1, 1, 1, 1]))  # OR
    assert not is_linearly_separable(XOR_X, XOR_Y)
    X, y = margin_data(100, 0.01, W_STAR, seed=2)
    assert is_linearly_separable(X, y)


def test_plot_decision_boundary_draws_regions_and_points():
    ax = plot_decision_boundary(
        lambda P: perceptron_predict(W_STAR, P), XOR_X, XOR_Y, resolution=20, title="t"
    )
    assert ax.get_title() == "t" and len(ax.collections) >= 2
    plt.close("all")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: augment(np.zeros(3)), r"expected X of shape \(N, D\), got \(3,\)"),
        (
            lambda: train_perceptron(XOR_X, [0, 1, 1, 0]),
            r"expected labels in \{-1, \+1\}, got values \[0, 1\]",
        ),
        (
            lambda: train_perceptron(XOR_X, XOR_Y[:3]),
            r"expected labels of shape \(4,\), got \(3,\)",
        ),
        (lambda: train_perceptron(XOR_X, XOR_Y, lr=0), "expected a positive learning rate, got 0"),
        (
            lambda: train_perceptron(XOR_X, XOR_Y, epochs=0),
            "expected a positive integer number of epochs, got 0",
        ),
        (
            lambda: train_perceptron(XOR_X, XOR_Y, w0=[0.0, 0.0]),
            r"expected weights of shape \(3,\) \(D weights and the bias\), got \(2,\)",
        ),
        (
            lambda: geometric_margin([0.0, 0.0, 0.0], XOR_X, XOR_Y),
            "expected a non-zero weight vector",
        ),
        (
            lambda: mistake_bound([1.0, 0.0, 0.0], XOR_X, XOR_Y),
            "expected weights that separate the data",
        ),
        (
            lambda: margin_data(0, 0.1, W_STAR),
            "expected a positive integer n and a margin >= 0, got n=0",
        ),
        (
            lambda: plot_decision_boundary(lambda P: P[:, 0], np.zeros((3, 3)), [0, 1, 0]),
            r"expected 2-D points \(N, 2\)",
        ),
    ],
)
def test_errors_name_what_was_expected(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_inputs_that_are_not_numbers_are_named():
    with pytest.raises(TypeError, match="expected a number, array or tensor for X, got str"):
        augment("X")
    with pytest.raises(TypeError, match="expected a number, array or tensor for weights, got str"):
        perceptron_predict("w", [[1.0, 2.0]])
    with pytest.raises(
        ValueError, match="expected a positive integer n and a margin >= 0, got n=5, margin='0.1'"
    ):
        margin_data(5, "0.1", [1.0, -1.0, 0.0])
    with pytest.raises(
        TypeError, match=r"expected predict as a callable on points \(M, 2\), got str"
    ):
        plot_decision_boundary("f", [[0.0, 1.0]], [1])
