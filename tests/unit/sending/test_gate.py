"""The dry-run gate (sending/gate.py) when the gateway ignores ``dryRun``, leaves ``options`` out, or
would block a message."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_provider_smsww.exceptions import (
    SmsWwDryRunIgnoredError,
    SmsWwGateError,
)
from airflow_provider_smsww.hooks.smsww import SmsWwHook
from airflow_provider_smsww.sending.batch import check_locally
from airflow_provider_smsww.sending.gate import gate
from tests.fakes import FakeGateway

TEXT = "Report ready"
ALICE, BOB = "+393331234567", "+393331234568"
SINCE = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


async def run_gate(recipients: list[str]) -> Any:
    hook = SmsWwHook()
    try:
        return await gate(hook, check_locally(recipients, TEXT), concurrency=20)
    finally:
        await hook.aclose()


async def test_a_dry_run_answered_as_a_real_send_stops_after_one_message(gateway: FakeGateway) -> None:
    gateway.dry_run_echo = False
    with pytest.raises(SmsWwDryRunIgnoredError, match=r"options\.dryRun false"):
        await run_gate([f"+39333123{i:04d}" for i in range(30)])
    assert len(gateway.posts) == 1  # the canary alone, not 20 in flight


async def test_a_dry_run_answer_without_options_is_not_taken_for_a_real_send(gateway: FakeGateway) -> None:
    gateway.dry_run_echo = None
    result = await run_gate([ALICE, BOB])
    assert result.total_parts == 2


async def test_a_blocklisted_dry_run_answer_refuses_the_batch(gateway: FakeGateway) -> None:
    gateway.blocklist_dry_runs.add(BOB)
    with pytest.raises(SmsWwGateError, match="would block") as info:
        await run_gate([ALICE, BOB])
    assert list(info.value.problems) == [BOB]
