"""Issue 28 item 4: a killed worker does not stall its batch. 400 recipients, the process sending them
SIGKILLed at half the batch, the next try started at once on the same retry ledger (as Airflow's retry
does): the resumed try takes the killed one's accepted messages, which the sandbox lists at once, as its
evidence of the listing's lag, and settles the unknown outcomes after the 15 s floor instead of the
5-minute no-evidence wait. Each recipient is stored once at the sandbox, nobody twice, nobody lost.

A real process, a real kill and real waits: marked ``timing`` (it bounds the wall clock). The listing
behind by 30 s and 120 s is in ``test_settle_from_evidence.py``, on a clock that skips the waits.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_smsww.sandbox.server import SandboxHandle, run_sandbox
from tests.fakes import connect
from tests.integration.resumable_try import RECIPIENTS

pytestmark = [pytest.mark.integration, pytest.mark.timing]

TRY = Path(__file__).with_name("resumable_try.py")
HALF = len(RECIPIENTS) // 2


def start_try(store: Path, log: Path) -> subprocess.Popen[str]:
    """A try of the batch in its own process (``resumable_try.py``), its log in ``log``."""
    with log.open("a") as err:
        return subprocess.Popen(
            [sys.executable, str(TRY), str(store)], stdout=subprocess.PIPE, stderr=err, text=True
        )


def kill_at_half(proc: subprocess.Popen[str], handle: SandboxHandle, timeout: float = 120) -> int:
    """SIGKILL ``proc`` once the sandbox has stored half the batch; how many it had stored then."""
    deadline = time.monotonic() + timeout
    while len(handle.sandbox.accepted()) < HALF:
        assert proc.poll() is None, "the try ended before half the batch was sent"
        assert time.monotonic() < deadline, "half the batch not sent in time"
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return len(handle.sandbox.accepted())


def test_a_try_killed_at_half_resumes_within_a_minute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    store, log = tmp_path / "store", tmp_path / "tries.log"
    store.mkdir()
    with run_sandbox(credit=10_000) as handle:
        connect(monkeypatch, handle)
        stored_at_kill = kill_at_half(start_try(store, log), handle)
        started = time.monotonic()
        resumed = start_try(store, log)
        out, _ = resumed.communicate(timeout=300)
        resumed_for = time.monotonic() - started
        per_recipient = handle.sandbox.per_recipient()
    assert resumed.returncode == 0, log.read_text()[-3000:]
    report: dict[str, Any] = json.loads(out.splitlines()[-1])
    assert per_recipient == dict.fromkeys(RECIPIENTS, 1)
    assert HALF <= stored_at_kill < len(RECIPIENTS)
    assert report["records"] == len(RECIPIENTS)
    assert report["failures"] == 0
    assert resumed_for < 60, log.read_text()[-3000:]
    print(
        f"\nKILLED at {stored_at_kill}/{len(RECIPIENTS)} stored; resumed try {resumed_for:.1f} s "
        f"(send {report['send_seconds']:.1f} s, {report['reused']} reused)"
    )
