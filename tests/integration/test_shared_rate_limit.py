"""One account's rate limit shared by several processes (issue 28): 4 and 8 OS processes, each calling
``SmsWwHook.send_many`` with the connection's ``rate_limit`` set to the account's 20 requests/s, against
one sandbox on 127.0.0.1 enforcing it (``benchmarks/shared_account.py`` runs them, and compares the
per-process pacing of earlier releases).

Every text must be stored exactly once. The targets (>= 90% of the limit from the first stored send to
the last, <= 5% of the send requests throttled) are reported as an expected failure, with the figures,
when missed: the adaptive pacing does not meet them yet for every process count (README, Benchmarks).
About 20 s of sending per case, plus the processes' start."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
from shared_account import TARGET_THROTTLED_SHARE, TARGET_THROUGHPUT_SHARE, measure

RATE_LIMIT = 20.0
SECONDS = 20


@pytest.mark.timing
@pytest.mark.parametrize("processes", [4, 8])
def test_processes_sharing_one_account_rate_limit(processes: int) -> None:
    case: dict[str, Any] = measure(
        processes, round(SECONDS * RATE_LIMIT / processes), RATE_LIMIT, baseline=False
    )
    figures = {k: case[k] for k in ("throughput_share", "throttled_share", "requests", "stored_span_s")}
    assert case["exactly_once"], (case["stored"], case["texts"], case["errors"])
    met = (
        case["throughput_share"] >= TARGET_THROUGHPUT_SHARE
        and case["throttled_share"] <= TARGET_THROTTLED_SHARE
    )
    if not met:
        pytest.xfail(f"{processes} processes miss the targets: {figures}")
