"""One account's rate limit shared by several processes on one host (issue 28): 4 and 8 OS processes,
each calling ``SmsWwHook.send_many`` with the connection's ``rate_limit`` set to the account's 20
requests/s, against one sandbox on 127.0.0.1 enforcing it (``benchmarks/shared_account.py`` runs them,
and compares the pacing of earlier releases and processes that share nothing, as on separate hosts).

The processes share the host's schedule (``airflow_provider_smsww._http.pace``), so they must hold >= 90%
of the limit from the first stored send to the last with <= 5% of the send requests throttled, and store
every text exactly once. About 12 s of sending per case, plus the processes' start."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
from shared_account import measure, meets_targets

RATE_LIMIT = 20.0
SECONDS = 12


@pytest.mark.timing
@pytest.mark.parametrize("processes", [4, 8])
def test_processes_of_one_host_share_one_account_rate_limit(processes: int) -> None:
    case: dict[str, Any] = measure(processes, round(SECONDS * RATE_LIMIT / processes), RATE_LIMIT, "one_host")
    figures = {k: case[k] for k in ("throughput_share", "throttled_share", "requests", "stored_span_s")}
    assert case["exactly_once"], (case["stored"], case["texts"], case["errors"])
    assert meets_targets(case), f"{processes} processes miss the targets: {figures}"
