"""visionbook.checks: each check prints one ✓ line when it holds and raises with the numbers when not."""

import math

import numpy as np
import pytest
import torch

from visionbook.checks import check_at_least, check_at_most, check_close, check_equal, check_true


def test_check_close_passes_prints_and_returns_the_worst_difference(capsys):
    worst = check_close(torch.tensor([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0 + 5e-7]), name="sums")
    assert worst == pytest.approx(5e-7, rel=1e-6)
    assert capsys.readouterr().out == "✓ sums: max abs difference 5e-07 (tolerance 1e-06)\n"


def test_check_close_fails_with_the_difference_and_where(capsys):
    with pytest.raises(
        AssertionError, match=r"✗ conv: max abs difference 0\.5 at index \(1, 0\) exceeds tolerance \(atol=0\.001, rtol=0\)"
    ):
        check_close(torch.tensor([[1.0, 2.0], [3.5, 4.0]]), torch.tensor([[1.0, 2.0], [3.0, 4.0]]), atol=1e-3, name="conv")
    assert capsys.readouterr().out == ""


def test_check_close_relative_tolerance():
    # |1010 - 1000| = 10 <= 0 + 0.01 * 1000
    check_close(1010.0, 1000.0, atol=0.0, rtol=0.01)
    with pytest.raises(AssertionError, match="max abs difference 11"):
        check_close(1011.0, 1000.0, atol=0.0, rtol=0.01)


def test_check_close_shape_mismatch():
    with pytest.raises(AssertionError, match=r"✗ values: shapes differ, got \(2, 3\), expected \(3, 2\)"):
        check_close(torch.zeros(2, 3), torch.zeros(3, 2))


def test_check_close_nan_in_actual_fails_even_with_a_huge_tolerance():
    with pytest.raises(AssertionError, match="NaN values, 1 in the result and 0 expected"):
        check_close(torch.tensor([1.0, float("nan")]), torch.tensor([1.0, 2.0]), atol=1e9)


def test_check_close_nan_in_expected_fails():
    with pytest.raises(AssertionError, match="NaN values, 0 in the result and 1 expected"):
        check_close(np.array([1.0]), np.array([math.nan]), atol=1e9)


def test_check_close_equal_infinities_agree_but_opposite_ones_do_not():
    assert check_close(np.array([math.inf, 1.0]), np.array([math.inf, 1.0])) == 0.0
    with pytest.raises(AssertionError, match="max abs difference inf"):
        check_close(np.array([math.inf]), np.array([-math.inf]))


def test_check_close_rejects_non_numbers():
    with pytest.raises(TypeError, match="expected a number, array or tensor for actual, got str"):
        check_close("abc", 1.0)


def test_check_close_accepts_tensors_with_gradients_and_ints():
    x = torch.ones(2, requires_grad=True)
    assert check_close(x * 2, [2, 2]) == 0.0


def test_check_at_least(capsys):
    assert check_at_least(torch.tensor(0.98), 0.97, "test accuracy") == pytest.approx(0.98)
    assert capsys.readouterr().out == "✓ test accuracy: 0.98 ≥ 0.97\n"
    assert check_at_least(0.97, 0.97, "boundary") == 0.97
    with pytest.raises(AssertionError, match=r"✗ test accuracy: 0\.96 is below the required 0\.97"):
        check_at_least(0.96, 0.97, "test accuracy")
    with pytest.raises(AssertionError, match="nan is below"):
        check_at_least(float("nan"), 0.0, "loss")


def test_check_at_most(capsys):
    assert check_at_most(0.01, 0.05, "error") == 0.01
    assert capsys.readouterr().out == "✓ error: 0.01 ≤ 0.05\n"
    with pytest.raises(AssertionError, match=r"✗ seconds: 91 is above the allowed 90"):
        check_at_most(91, 90, "seconds")
    with pytest.raises(AssertionError, match="nan is above"):
        check_at_most(float("nan"), 1.0, "loss")


@pytest.mark.parametrize("check", [check_at_least, check_at_most])
def test_bounds_reject_arrays(check):
    with pytest.raises(ValueError, match=r"expected a single number for accuracy, got an array of shape \(2,\)"):
        check(torch.tensor([0.5, 0.6]), 0.5, "accuracy")


def test_check_equal_on_values_and_tensors(capsys):
    assert check_equal((1, 28, 28), (1, 28, 28), "shape") == (1, 28, 28)
    check_equal(torch.tensor([1, 2]), np.array([1, 2]), "labels")
    assert capsys.readouterr().out == "✓ shape: (1, 28, 28)\n✓ labels: (2,) array, equal\n"
    with pytest.raises(AssertionError, match=r"✗ count: got 4, expected 5"):
        check_equal(4, 5, "count")
    with pytest.raises(AssertionError, match="✗ labels: got tensor"):
        check_equal(torch.tensor([1, 2]), torch.tensor([1, 3]), "labels")
    with pytest.raises(AssertionError, match="✗ labels"):
        check_equal(torch.tensor([1, 2]), torch.tensor([1, 2, 3]), "labels")


def test_check_true(capsys):
    check_true(True, "loss decreased")
    check_true(torch.tensor(True), "tensor condition")
    check_true(np.bool_(True), "numpy condition")
    assert capsys.readouterr().out == "✓ loss decreased\n✓ tensor condition\n✓ numpy condition\n"
    with pytest.raises(AssertionError, match="✗ loss decreased: does not hold"):
        check_true(False, "loss decreased")
    with pytest.raises(AssertionError, match="does not hold"):
        check_true(torch.tensor([False]), "one-element tensor")


@pytest.mark.parametrize("condition", [1, 0.0, "yes", None, torch.tensor(1.0), torch.tensor([True, True])])
def test_check_true_rejects_non_bools(condition):
    with pytest.raises(TypeError, match="expected a bool .* for 'statement', got"):
        check_true(condition, "statement")


def test_argument_helpers_name_what_was_expected():
    from visionbook.checks import _expect_int, _expect_module, _expect_number, _expect_tensor

    assert _expect_tensor(torch.ones(2, 3), "x", "(N, D)", ndim=2).shape == (2, 3)
    with pytest.raises(TypeError, match=r"expected x as a tensor of shape \(N, D\), got list"):
        _expect_tensor([1.0], "x", "(N, D)")
    with pytest.raises(ValueError, match=r"expected x of shape \(N, D\), got \(3,\)"):
        _expect_tensor(torch.ones(3), "x", "(N, D)", ndim=2)
    with pytest.raises(ValueError, match=r"expected x of shape \(\.\.\., H, W\), got \(3,\)"):
        _expect_tensor(torch.ones(3), "x", "(..., H, W)", min_ndim=2)
    assert _expect_int(np.int64(3), "k") == 3
    with pytest.raises(TypeError, match="expected an integer k, got True"):
        _expect_int(True, "k")
    with pytest.raises(ValueError, match="expected an integer k of at least 1, got 0"):
        _expect_int(0, "k")
    with pytest.raises(TypeError, match="expected a number for lr, got '0.1'"):
        _expect_number("0.1", "lr")
    with pytest.raises(ValueError, match=r"expected lam in \[0, 1\], got 2"):
        _expect_number(2, "lam", 0, 1)
    with pytest.raises(ValueError, match="expected lr >= 0, got -1"):
        _expect_number(-1, "lr", low=0)
    with pytest.raises(ValueError, match="expected p <= 1, got 2"):
        _expect_number(2, "p", high=1)
    with pytest.raises(TypeError, match="expected model as an nn.Module, got str"):
        _expect_module("net")


def test_check_close_and_check_equal_reject_bad_arguments():
    with pytest.raises(TypeError, match="expected a number for atol, got '1e-6'"):
        check_close(1.0, 1.0, atol="1e-6")
    with pytest.raises(TypeError, match="expected name as a string, got int"):
        check_equal(1, 1, name=1)
