"""Shared test set-up: a headless matplotlib, and a private cache directory for every test.

Unit tests run with the network switched off (``VISIONBOOK_OFFLINE=1``) and never touch the
user's ``~/.cache/visionbook``: ``VISIONBOOK_HOME`` points to one
temporary directory for the whole session (so a model cached by one test serves the next), and
the environment is restored after each test, so nothing leaks into the chapters that nbval runs
in the same pytest session. Tests that need an empty directory set their own with
``monkeypatch.setenv("VISIONBOOK_HOME", str(tmp_path))``.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

# the network guard that .ci/run loads into every process at start-up; not a test module
collect_ignore = ["offline_site"]

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: starts a Jupyter kernel or runs for seconds (deselect with -m 'not slow')"
    )


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("visionbook-home")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, session_home):
    monkeypatch.setenv("VISIONBOOK_HOME", str(session_home))
    monkeypatch.setenv("VISIONBOOK_OFFLINE", "1")  # unit tests never use the network
    monkeypatch.setenv("VISIONBOOK_PROGRESS", "0")
    monkeypatch.delenv("VISIONBOOK_FULL", raising=False)
    monkeypatch.delenv("VISIONBOOK_REHEARSAL", raising=False)
    yield
    plt.close("all")
