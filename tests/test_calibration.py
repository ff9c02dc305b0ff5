"""Reliability bins and ECE against an independent loop and scikit-learn; temperature scaling."""

import math

import numpy as np
import pytest
import torch
from sklearn.calibration import calibration_curve

from visionbook.calibration import (
    expected_calibration_error,
    fit_temperature,
    plot_reliability,
    reliability,
)


def _loop_ece(probs, labels, n_bins):
    """ECE the slow, obvious way: one pass over the bins (lo, hi], the first closed at 0."""
    conf, pred = probs.max(1)
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        inside = [i for i in range(len(conf)) if (lo < conf[i] <= hi) or (b == 0 and conf[i] == 0)]
        if inside:
            acc = sum(float(pred[i] == labels[i]) for i in inside) / len(inside)
            mean_conf = sum(float(conf[i]) for i in inside) / len(inside)
            total += len(inside) / len(conf) * abs(acc - mean_conf)
    return total


def _random_predictions(n, k, seed, sharpness=3.0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g, dtype=torch.float64) * sharpness
    labels = torch.randint(0, k, (n,), generator=g)
    return logits.softmax(1), labels


@pytest.mark.parametrize("n_bins", [1, 5, 15])
def test_ece_matches_an_independent_loop(n_bins):
    probs, labels = _random_predictions(300, 4, n_bins)
    assert expected_calibration_error(probs, labels, n_bins) == pytest.approx(
        _loop_ece(probs, labels, n_bins), abs=1e-12
    )


def test_reliability_matches_sklearn_calibration_curve():
    probs, labels = _random_predictions(500, 3, 7)
    r = reliability(probs, labels, n_bins=10)
    conf, pred = probs.max(1)
    prob_true, prob_pred = calibration_curve(
        (pred == labels).numpy(), conf.numpy(), n_bins=10, strategy="uniform"
    )
    full = (r.counts > 0).numpy()
    np.testing.assert_allclose(r.accuracy.numpy()[full], prob_true, atol=1e-12)
    np.testing.assert_allclose(r.confidence.numpy()[full], prob_pred, atol=1e-12)
    assert int(r.counts.sum()) == 500 and r.edges.shape == (11,)


def test_hand_case_and_bin_edges():
    # confidences 0.9 (right) and 0.7 (wrong) share the bin (0.5, 1]: gap |0.5 - 0.8| = 0.3
    probs, labels = torch.tensor([[0.9, 0.1], [0.3, 0.7]]), torch.tensor([0, 0])
    assert expected_calibration_error(probs, labels, n_bins=2) == pytest.approx(0.3)
    # a confidence exactly on an edge belongs to the bin below it: (lo, hi]
    r = reliability(torch.tensor([[0.5, 0.5]]), torch.tensor([0]), n_bins=2)
    assert r.counts.tolist() == [1, 0]


def test_a_calibrated_predictor_has_a_small_ece():
    g = torch.Generator().manual_seed(0)
    conf = 0.5 + 0.5 * torch.rand(20000, generator=g, dtype=torch.float64)
    # right with probability = confidence
    correct = torch.rand(20000, generator=g, dtype=torch.float64) < conf
    probs = torch.stack([conf, 1 - conf], 1)
    labels = torch.where(correct, 0, 1)
    assert expected_calibration_error(probs, labels) < 0.02
    assert (
        expected_calibration_error(
            torch.stack([torch.ones(100), torch.zeros(100)], 1).double(), torch.ones(100).long()
        )
        == 1.0
    )


def test_errors():
    with pytest.raises(ValueError, match="sum to 1"):
        reliability(torch.tensor([[2.0, 1.0]]), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"probs \(N, K\) and labels \(N,\)"):
        reliability(torch.tensor([0.5, 0.5]), torch.tensor([0]))
    with pytest.raises(ValueError, match="positive integer n_bins"):
        expected_calibration_error(torch.tensor([[0.5, 0.5]]), torch.tensor([0]), n_bins=0)
    with pytest.raises(TypeError, match="as tensors"):
        reliability(np.array([[0.5, 0.5]]), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"logits \(N, K\) and labels \(N,\)"):
        fit_temperature(torch.zeros(3), torch.zeros(3).long())


def test_temperature_known_answer():
    logits = torch.tensor([[4.0, 0.0], [4.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    assert fit_temperature(logits, torch.tensor([0, 0, 1, 1])) == pytest.approx(
        4 / math.log(3), rel=1e-4
    )


def test_temperature_matches_a_grid_search_and_recovers_a_known_scale():
    g = torch.Generator().manual_seed(1)
    true_logits = torch.randn(4000, 5, generator=g) * 2
    labels = torch.multinomial(true_logits.softmax(1), 1, generator=g)[:, 0]  # calibrated at T = 1
    overconfident = 3.0 * true_logits
    t = fit_temperature(overconfident, labels)
    assert t == pytest.approx(3.0, rel=0.1)
    grid = torch.linspace(0.5, 6, 2201)
    nll = torch.stack([torch.nn.functional.cross_entropy(overconfident / s, labels) for s in grid])
    assert t == pytest.approx(float(grid[nll.argmin()]), abs=0.005)


def test_plot_reliability_draws_bars():
    ax = plot_reliability(reliability(*_random_predictions(200, 3, 2)), title="test")
    assert ax.get_title() == "test" and len(ax.patches) > 0


def test_new_bad_input_messages():
    with pytest.raises(TypeError, match=r"expected labels as a tensor of shape \(N,\), got list"):
        fit_temperature(torch.zeros(2, 2), [0, 1])
    with pytest.raises(TypeError, match="expected an integer max_iter, got '5'"):
        fit_temperature(torch.zeros(2, 2), torch.tensor([0, 1]), max_iter="5")
    with pytest.raises(TypeError, match="expected a Reliability from reliability"):
        plot_reliability((1, 2))
