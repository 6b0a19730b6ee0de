"""Local checks (sending/batch.py): refused before any request."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_provider_smsww.exceptions import (
    SmsWwGateError,
)
from airflow_provider_smsww.sending.batch import check_locally

TEXT = "Report ready"
ALICE, BOB = "+393331234567", "+393331234568"
SINCE = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_unknown_callback_keys_are_refused_before_any_request(httpx_mock: Any) -> None:
    with pytest.raises(SmsWwGateError, match=r"unknown key\(s\) 'header', 'retries'"):
        check_locally([ALICE], TEXT, callback={"url": "https://h.example.test", "header": {}, "retries": 3})
    assert httpx_mock.get_requests() == []
