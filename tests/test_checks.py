"""visionbook.checks: each check prints one ✓ line when it holds and raises with the numbers
when not."""

import math

import numpy as np
import pytest
import torch

from visionbook.checks import (
    check_at_least,
    check_at_most,
    check_close,
    check_equal,
    check_group,
    check_true,
    exercise,
)


def test_check_close_passes_prints_and_returns_the_worst_difference(capsys):
    worst = check_close(
        torch.tensor([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0 + 5e-7]), name="sums"
    )
    assert worst == pytest.approx(5e-7, rel=1e-6)
    assert capsys.readouterr().out == "✓ sums: max abs difference 5e-07 (tolerance 1e-06)\n"


def test_check_close_fails_with_the_difference_and_where(capsys):
    with pytest.raises(
        AssertionError,
        match=(
            r"✗ conv: max abs difference 0\.5 at index \(1, 0\) exceeds tolerance "
            r"\(atol=0\.001, rtol=0\)"
        ),
    ):
        check_close(
            torch.tensor([[1.0, 2.0], [3.5, 4.0]]),
            torch.tensor([[1.0, 2.0], [3.0, 4.0]]),
            atol=1e-3,
            name="conv",
        )
    assert capsys.readouterr().out == ""


def test_check_close_relative_tolerance():
    # |1010 - 1000| = 10 <= 0 + 0.01 * 1000
    check_close(1010.0, 1000.0, atol=0.0, rtol=0.01)
    with pytest.raises(AssertionError, match="max abs difference 11"):
        check_close(1011.0, 1000.0, atol=0.0, rtol=0.01)


def test_check_close_shape_mismatch():
    with pytest.raises(
        AssertionError, match=r"✗ values: shapes differ, got \(2, 3\), expected \(3, 2\)"
    ):
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
    with pytest.raises(
        ValueError, match=r"expected a single number for accuracy, got an array of shape \(2,\)"
    ):
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


@pytest.mark.parametrize(
    "condition", [1, 0.0, "yes", None, torch.tensor(1.0), torch.tensor([True, True])]
)
def test_check_true_rejects_non_bools(condition):
    with pytest.raises(TypeError, match="expected a bool .* for 'statement', got"):
        check_true(condition, "statement")


def test_argument_helpers_name_what_was_expected():
    from visionbook._validate import _expect_int, _expect_module, _expect_number, _expect_tensor

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


# --- exercise(): a student copy's checks report instead of raising --------------------------------


def _run_cell(code: str, **names) -> dict:
    """Run ``code`` as a notebook cell does: its global names are the notebook's namespace."""
    namespace = {
        "exercise": exercise,
        "check_equal": check_equal,
        "check_true": check_true,
        **names,
    }
    exec(compile(code, "<cell>", "exec"), namespace)
    return namespace


CHECK = (
    'with exercise("ex-w", w="the weights", f="a function") as outcome:\n'
    '    check_equal(f(w), 4, "f(w)")\n'
)


def _stub_f(x):
    raise NotImplementedError("f")


def test_exercise_on_stubs_says_not_attempted_and_what_to_define(capsys):
    ns = _run_cell(CHECK, w=..., f=_stub_f)
    assert ns["outcome"].status == "not attempted"
    assert (
        capsys.readouterr().out
        == "○ ex-w: not attempted yet: define `w`, the weights; `f`, a function\n"
    )
    # the function is still the stub: found from where it raised
    ns = _run_cell(CHECK, w=2, f=_stub_f)
    assert ns["outcome"].message == "not attempted yet: define `f`, a function"
    ns = _run_cell(CHECK.replace('f="a function"', 'f="the weights"'), w=..., f=len)
    # f is written: only w is left
    assert ns["outcome"].message == "not attempted yet: define `w`, the weights"
    ns = _run_cell(CHECK.replace('f="a function"', 'f="the weights"'), w=..., f=_stub_f)
    assert ns["outcome"].message == "not attempted yet: define `w` and `f`, the weights"


def test_exercise_on_a_wrong_answer_says_what_was_expected_and_what_came(capsys):
    ns = _run_cell(CHECK, w=3, f=lambda x: x + 2)
    assert (ns["outcome"].status, ns["outcome"].message) == ("failed", "f(w): got 5, expected 4")
    assert capsys.readouterr().out == "✗ ex-w: f(w): got 5, expected 4\n"
    ns = _run_cell(CHECK, w="2", f=lambda x: x * 2)
    assert ns["outcome"].message == "f(w): got '22', expected 4"
    ns = _run_cell(CHECK, w=2, f=lambda x: x / 0)
    assert ns["outcome"].message == "your code raised ZeroDivisionError: division by zero"
    ns = _run_cell(CHECK, f=lambda x: x)  # w never defined: its cell did not run
    assert ns["outcome"].message.startswith("`w` not defined: run the cell that defines it")


def test_exercise_on_a_right_answer_says_so_and_the_notebook_goes_on(capsys):
    ns = _run_cell(CHECK + "after = True\n", w=2, f=lambda x: x * 2)
    assert (ns["outcome"].status, ns["after"]) == ("passed", True)
    assert capsys.readouterr().out == "✓ f(w): 4\n✓ ex-w: all checks pass\n"
    ns = _run_cell(
        CHECK.replace("check_equal", "1 / 0 or check_equal") + "after = True\n", w=2, f=len
    )
    assert ns["after"] is True  # a failing block does not stop the cells after it


def test_exercise_lets_an_interrupt_through_and_refuses_bad_input():
    with pytest.raises(KeyboardInterrupt):
        _run_cell('with exercise("ex"):\n    raise KeyboardInterrupt\n')
    with pytest.raises(TypeError, match="expected the exercise's label as a string, got int"):
        exercise(3)
    with pytest.raises(ValueError, match="expected a non-empty exercise label"):
        exercise(" ")
    with pytest.raises(TypeError, match="expected a hint string for each name, got {'w': 1}"):
        exercise("ex", w=1)


def test_check_group_prints_one_line_when_all_pass(capsys, monkeypatch):
    monkeypatch.delenv("VISIONBOOK_CHECK_DETAILS", raising=False)
    with check_group("three facts"):
        check_true(True, "first")
        check_at_least(0.9, 0.5, "second")
        check_close(torch.ones(2), torch.ones(2), name="third")
    assert capsys.readouterr().out == "✓ three facts (3 checks)\n"


def test_check_group_shows_the_details_when_one_fails(capsys, monkeypatch):
    monkeypatch.delenv("VISIONBOOK_CHECK_DETAILS", raising=False)
    with pytest.raises(AssertionError, match="below"):
        with check_group("two facts"):
            check_at_least(0.9, 0.5, "passes")
            check_at_least(0.1, 0.5, "fails")
    out = capsys.readouterr().out
    assert out == "✓ passes: 0.9 ≥ 0.5\n"  # the passed line, then the failure's error; no summary
    check_true(True, "after the group")  # the group is closed: lines print again
    assert capsys.readouterr().out == "✓ after the group\n"


def test_check_group_prints_every_line_on_request_and_nests(capsys, monkeypatch):
    monkeypatch.setenv("VISIONBOOK_CHECK_DETAILS", "1")
    with check_group("outer"):
        check_true(True, "a")
    assert capsys.readouterr().out == "✓ a\n✓ outer (1 check)\n"
    monkeypatch.delenv("VISIONBOOK_CHECK_DETAILS")
    with check_group("outer"):
        with check_group("inner"):
            check_true(True, "a")
            check_true(True, "b")
        check_true(True, "c")
    assert capsys.readouterr().out == "✓ outer (2 checks)\n"
    with pytest.raises(TypeError, match="expected the group's name as a non-empty string"):
        with check_group(""):
            pass
