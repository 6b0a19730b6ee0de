"""Deployment tests: a real Airflow (api-server, scheduler, dag-processor, triggerer, workers) on loopback.

Run with ``make test-deployment`` (it installs what they need); plain ``pytest`` does not collect them
(``testpaths`` in pyproject.toml). Each module starts its own stack and stops it, also on failure.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import pytest

pytest.register_assert_rewrite("approval", "browser")  # helper modules: their asserts explain themselves too

from harness import FAILED, FIGURES, TIMINGS  # noqa: E402


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Any:
    report = yield
    if report.when == "call" and report.failed:
        item.stash[FAILED] = True  # the browser test keeps its screenshots then
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TIMINGS:
        terminalreporter.section("deployment phase times")
        for name, seconds in TIMINGS:
            terminalreporter.write_line(f"{seconds:7.1f} s  {name}")
    if FIGURES:
        terminalreporter.section("deployment figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
