"""Self-checks for the chapters: each prints one line and raises when the result is wrong.

These are what the notebook tests (nbval) turn into assertions, so each compares a real
result with a real expectation. Introduced in the chapter "Images as data".
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from visionbook import config
from visionbook._validate import _as_array, _as_scalar, _expect_number

# --- groups: a run of checks as one line on the page ---------------------------------------------

# the lines of the checks inside each open check_group, innermost last
_GROUPS: list[list[str]] = []


def _emit(line: str) -> None:
    """Print a passed check's line, or keep it for the summary of the open :func:`check_group`."""
    if _GROUPS:
        _GROUPS[-1].append(line)
    if not _GROUPS or os.environ.get("VISIONBOOK_CHECK_DETAILS") == "1":
        print(line)


def check_group(name: str) -> contextlib.AbstractContextManager[None]:
    """Run several checks as one: a single line when all pass, every line when one fails.

    Inside the block each check still raises on a wrong result. If all pass, the page shows
    "✓ {name} ({k} checks)"; if one fails, the lines of those that passed are printed before its
    error, so the details are there when they matter. ``VISIONBOOK_CHECK_DETAILS=1`` prints every
    line as it comes (``visionbook.tools.seedspread`` reads them).

    Args:
        name (str): what the checks establish together, for example "FGSM from scratch = Captum".

    >>> with check_group("two facts"):
    ...     check_true(1 < 2, "order")
    ...     _ = check_at_least(3, 2, "three")
    ✓ two facts (2 checks)

    Introduced in the chapter "Images as data".
    """
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"expected the group's name as a non-empty string, got {name!r}")
    return _group(name)


@contextlib.contextmanager
def _group(name: str) -> Iterator[None]:
    lines: list[str] = []
    _GROUPS.append(lines)
    try:
        yield
    except BaseException:
        _GROUPS.pop()
        if os.environ.get("VISIONBOOK_CHECK_DETAILS") != "1":  # else they are printed already
            print("".join(f"{line}\n" for line in lines), end="")
        raise
    _GROUPS.pop()
    _emit(f"✓ {name} ({len(lines)} check{'s' * (len(lines) != 1)})")


def check_close(
    actual: Any, expected: Any, atol: float = 1e-6, rtol: float = 0.0, name: str = "values"
) -> float:
    """Check that two arrays or tensors agree elementwise within ``atol + rtol * |expected|``.

    Args:
        actual: the result to check (number, array or tensor).
        expected: the reference, same shape.
        atol (float): absolute tolerance. Default 1e-6.
        rtol (float): relative tolerance. Default 0.
        name (str): what is compared, for the printed line.

    Returns:
        float: the maximum absolute difference.

    >>> check_close(torch.ones(3), np.ones(3), name="ones")  # doctest: +ELLIPSIS
    ✓ ones: max abs difference 0 (tolerance 1e-06)
    0.0

    Introduced in the chapter "Images as data".
    """
    a, e = _as_array(actual, "actual"), _as_array(expected, "expected")
    _expect_number(atol, "atol", low=0)
    _expect_number(rtol, "rtol", low=0)
    if a.shape != e.shape:
        raise AssertionError(f"✗ {name}: shapes differ, got {a.shape}, expected {e.shape}")
    if np.isnan(a).any() or np.isnan(e).any():
        raise AssertionError(
            f"✗ {name}: NaN values, {int(np.isnan(a).sum())} in the result and "
            f"{int(np.isnan(e).sum())} expected"
        )
    with np.errstate(invalid="ignore"):  # equal infinities agree
        diff = np.where(a == e, 0.0, np.abs(a - e))
        ok = (a == e) | (diff <= atol + rtol * np.abs(e))
    worst = float(diff.max()) if diff.size else 0.0
    if not ok.all():
        where = tuple(int(i) for i in np.unravel_index(diff.argmax(), diff.shape))
        raise AssertionError(
            f"✗ {name}: max abs difference {worst:.3g} at index {where} exceeds tolerance "
            f"(atol={atol:g}, rtol={rtol:g})"
        )
    _emit(
        f"✓ {name}: max abs difference {worst:.3g} (tolerance "
        f"{atol:g}{f', rtol {rtol:g}' if rtol else ''})"
    )
    return worst


# printed by a threshold check that a rehearsal reports instead of raising
REHEARSAL_NOTE = "(not raised: a rehearsal on stand-in data)"


def _threshold_missed(message: str) -> None:
    """Raise a missed threshold; in a rehearsal (:func:`visionbook.config.rehearsal`) print it.

    A rehearsal executes full mode on stand-in files (random weights, made-up images), whose
    trained numbers mean nothing: there a missed threshold is printed, marked, and the run goes
    on; an error of the code itself, or an exact check, still stops it.
    """
    if config.rehearsal() is None:
        raise AssertionError(message)
    print(f"{message} {REHEARSAL_NOTE}")


def check_at_least(value: float, minimum: float, name: str = "value") -> float:
    """Check that a measured number is at least ``minimum`` (for example a test accuracy).

    Args:
        value (float): the measured number (a one-element tensor is accepted).
        minimum (float): the lowest acceptable value.
        name (str): what was measured, for the printed line.

    Returns:
        float: the value.

    >>> check_at_least(0.98, 0.97, "accuracy")
    ✓ accuracy: 0.98 ≥ 0.97
    0.98

    Introduced in the chapter "Images as data".
    """
    v, minimum = _as_scalar(value, name), _as_scalar(minimum, "minimum")
    if not v >= minimum:
        _threshold_missed(f"✗ {name}: {v:.4g} is below the required {minimum:.4g}")
        return v
    _emit(f"✓ {name}: {v:.4g} ≥ {minimum:.4g}")
    return v


def check_at_most(value: float, maximum: float, name: str = "value") -> float:
    """Check that a measured number is at most ``maximum`` (for example an error or a time).

    Args:
        value (float): the measured number.
        maximum (float): the highest acceptable value.
        name (str): what was measured.

    Returns:
        float: the value.

    >>> check_at_most(0.01, 0.05, "error")
    ✓ error: 0.01 ≤ 0.05
    0.01

    Introduced in the chapter "Images as data".
    """
    v, maximum = _as_scalar(value, name), _as_scalar(maximum, "maximum")
    if not v <= maximum:
        _threshold_missed(f"✗ {name}: {v:.4g} is above the allowed {maximum:.4g}")
        return v
    _emit(f"✓ {name}: {v:.4g} ≤ {maximum:.4g}")
    return v


def check_equal(actual: Any, expected: Any, name: str = "value") -> Any:
    """Check exact equality (shapes, counts, labels, tuples).

    Args:
        actual: the result; tensors and arrays are compared elementwise.
        expected: what it must equal.
        name (str): what is compared.

    Returns:
        The actual value.

    >>> check_equal((1, 28, 28), (1, 28, 28), "shape")
    ✓ shape: (1, 28, 28)
    (1, 28, 28)

    Introduced in the chapter "Images as data".
    """
    if not isinstance(name, str):
        raise TypeError(f"expected name as a string, got {type(name).__name__}")
    if isinstance(actual, (torch.Tensor, np.ndarray)) or isinstance(
        expected, (torch.Tensor, np.ndarray)
    ):
        a, e = _as_array(actual, name), _as_array(expected, name)
        same = a.shape == e.shape and bool(np.array_equal(a, e))
    else:
        same = actual == expected
    if not same:
        raise AssertionError(f"✗ {name}: got {actual!r}, expected {expected!r}")
    shown = (
        repr(actual)
        if not isinstance(actual, (torch.Tensor, np.ndarray))
        else f"{tuple(actual.shape)} array, equal"
    )
    _emit(f"✓ {name}: {shown}")
    return actual


def check_true(condition: bool, name: str) -> None:
    """Check a yes/no fact, stated in ``name`` (for example "loss decreased").

    Args:
        condition (bool): the fact; a one-element bool tensor or array is accepted.
        name (str): the statement that must hold.

    Returns:
        None.

    >>> check_true(2 > 1, "two exceeds one")
    ✓ two exceeds one

    Introduced in the chapter "Images as data".
    """
    if (
        isinstance(condition, torch.Tensor)
        and condition.dtype == torch.bool
        and condition.numel() == 1
    ):
        condition = bool(condition.item())
    if isinstance(condition, np.ndarray) and condition.dtype == np.bool_ and condition.size == 1:
        condition = bool(condition.item())
    if not isinstance(condition, (bool, np.bool_)):
        shown = (
            f"{type(condition).__name__} of shape {tuple(condition.shape)}"
            if hasattr(condition, "shape")
            else type(condition).__name__
        )
        raise TypeError(f"expected a bool (or a one-element bool tensor) for {name!r}, got {shown}")
    if not condition:
        raise AssertionError(f"✗ {name}: does not hold")
    _emit(f"✓ {name}")


# --- exercises in a student copy: report, never stop the notebook ---------------------------------

# the machine-readable result the grader reads
RESULT_MIME = "application/vnd.visionbook.exercise+json"
_SYMBOL = {"passed": "✓", "failed": "✗", "not attempted": "○"}


def _raised_in(tb: Any) -> Any:
    """The code object of the function in which a traceback ends (a stub raises NotImplementedError
    there)."""
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code if tb is not None else None


def _names(names: list[str]) -> str:
    quoted = [f"`{n}`" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


class _Exercise:
    """What :func:`exercise` returns: judges the block's outcome on exit, reports it, stops
    the error."""

    def __init__(self, label: str, needs: dict[str, str], namespace: dict) -> None:
        self.label, self.needs, self.namespace = label, needs, namespace
        self.status, self.message = "", ""

    def __enter__(self) -> _Exercise:
        return self

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> bool:
        if kind is not None and not issubclass(kind, Exception):
            return False  # KeyboardInterrupt, SystemExit: the kernel's business
        self.status, self.message = self._judge(error, tb)
        passed = self.status == "passed"
        _report(
            {
                "exercise": self.label,
                "status": self.status,
                "passed": passed,
                "message": self.message,
            }
        )
        return True

    def _judge(self, error: BaseException | None, tb: Any) -> tuple[str, str]:
        ns = self.namespace
        stubs = [n for n in self.needs if n in ns and ns[n] is Ellipsis]
        if isinstance(error, NotImplementedError):
            code = _raised_in(tb)
            stubs = [
                n for n in self.needs if n in stubs or getattr(ns.get(n), "__code__", None) is code
            ]
        if stubs:
            by_hint: dict[str, list[str]] = {}
            for name in stubs:
                by_hint.setdefault(self.needs[name], []).append(name)
            todo = "; ".join(f"{_names(names)}, {hint}" for hint, names in by_hint.items())
            return "not attempted", f"not attempted yet: define {todo}"
        missing = [n for n in self.needs if n not in ns]
        if missing:
            it = "it" if len(missing) == 1 else "them"
            fix = f"run the cell that defines {it} (and fix its error, if it shows one)"
            return "failed", f"{_names(missing)} not defined: {fix}"
        if error is None:
            return "passed", "all checks pass"
        if isinstance(error, AssertionError):
            return "failed", str(error).removeprefix("✗ ")
        return "failed", f"your code raised {type(error).__name__}: {error}"


def _report(record: dict) -> None:
    """Show an exercise's result: in a Jupyter kernel also as data the grader reads, else
    printed."""
    line = f"{_SYMBOL[record['status']]} {record['exercise']}: {record['message']}"
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:  # pragma: no cover - IPython comes with the book's dependencies
        shell = None
    if shell is not None and hasattr(shell, "kernel"):
        from IPython.display import display

        display({"text/plain": line, RESULT_MIME: record}, raw=True)
    else:
        print(line)


def exercise(label: str, /, **needs: str) -> _Exercise:
    """Run an exercise's checks in a student copy: report the outcome instead of stopping
    the notebook.

    Used as ``with exercise("perceptron-ex-pocket", w_pocket="..."):`` around the checks of an
    exercise-check cell (``visionbook-student`` writes these cells). On leaving the block it
    reports one of: "not attempted yet: define `w_pocket`, <hint>" while a name in ``needs`` is
    still ``...`` or a stub function raised ``NotImplementedError``; the failed check's message
    (what was expected and what came) or the error the code raised; or "all checks pass". The
    error is then stopped, so the rest of the notebook runs. In a Jupyter kernel the outcome is
    also shown as ``application/vnd.visionbook.exercise+json`` data, which ``visionbook-grade``
    reads. The chapters themselves do not use it: there a failed check raises.

    Args:
        label (str): the exercise's label, as in its ``{exercise}`` directive.
        **needs (str): each name the student defines (looked up among the caller's global names),
            with a one-line hint of what it holds.

    Returns:
        a context manager; after the block its ``status`` is "passed", "failed" or "not attempted"
        and its ``message`` says why.

    >>> w = ...
    >>> with exercise("ex-w", w="a positive weight"):
    ...     check_true(w > 0, "w is positive")
    ○ ex-w: not attempted yet: define `w`, a positive weight

    Introduced in the page "For instructors".
    """
    if not isinstance(label, str):
        raise TypeError(f"expected the exercise's label as a string, got {type(label).__name__}")
    if not label.strip():
        raise ValueError(f"expected a non-empty exercise label, got {label!r}")
    wrong = {name: hint for name, hint in needs.items() if not isinstance(hint, str)}
    if wrong:
        raise TypeError(f"expected a hint string for each name, got {wrong!r}")
    return _Exercise(label, dict(needs), sys._getframe(1).f_globals)
