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


def test_a_one_text_batch_keys_each_message_by_its_number() -> None:
    # Existing ledgers, records and XCom of one-text batches stay as they were.
    batch = check_locally(["+39 333 123 4567"], "Hi")
    assert [r.key for r in batch.recipients] == ["+393331234567"]
    assert [r.label for r in batch.recipients] == ["+393331234567"]


def test_personalised_entries_are_keyed_by_number_sender_and_text() -> None:
    from airflow_provider_smsww.sending.entries import check_entries

    entries = [
        {"recipient": "+393331234567", "message": "A1"},
        {"recipient": "+39 333 123 4567", "message": "A1", "sender": "Shop"},  # the default sender: same
        {"recipient": "+393331234567", "message": "A2"},
        {"recipient": "+393331234567", "message": "A1", "sender": "Other"},
    ]
    batch = check_entries(entries, sender="Shop")
    assert [(e.index, e.message, e.sender) for e in batch.recipients] == [
        (0, "A1", "Shop"),
        (2, "A2", "Shop"),
        (3, "A1", "Other"),
    ]
    keys = [e.key for e in batch.recipients]
    assert all(k.startswith("+393331234567#") for k in keys)
    assert len(set(keys)) == 3
    assert keys == [e.key for e in check_entries(entries, sender="Shop").recipients]  # stable
    assert batch.recipients[1].label == "messages[2] (+393331234567)"
    request = batch.request(batch.recipients[2], dry_run=False)
    assert (request.recipient, request.message, request.sender) == ("+393331234567", "A1", "Other")
