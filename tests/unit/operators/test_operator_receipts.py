"""SmsSendOperator with receipts on (docs/receipts.md): every real send and dry run names the task and
carries a credential that fits that message alone; a user's own callback is kept; a receipts setting
that cannot work fails the task before any request."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_smsww.exceptions import SmsWwError
from airflow_provider_smsww.receipts import ORIGIN_FIELD, RECEIPT_HEADER, is_genuine
from tests.fakes import API, TOKEN, FakeGateway, set_connection, task_context
from tests.unit.operators.test_operator import GOOD, op

SECRET = "o" * 40
URL = "https://airflow.example.test/smsww/receipts"


def receipts_on(monkeypatch: pytest.MonkeyPatch, secret: str = SECRET) -> None:
    extra = {"max_retries": 0, "receipts_url": URL, "receipts_secret": secret, "receipts_asset": "sms"}
    set_connection(monkeypatch, host=API, password=TOKEN, extra=extra)


def test_each_message_asks_for_receipts_with_a_credential_of_its_own(
    gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    receipts_on(monkeypatch)
    op().execute(task_context())
    sends = [b for b in gateway.bodies if not b["options"]["dryRun"]]
    assert sorted(b["recipient"] for b in sends) == sorted(GOOD)
    headers = set()
    for body in sends:
        callback = body["callback"]
        assert (callback["url"], callback["method"], callback["retry"]) == (URL, "JSON", 3)
        origin = callback["custom"][ORIGIN_FIELD]
        assert (origin["task"], origin["run"], origin["map"], origin["asset"]) == (
            "send",
            "manual__1",
            -1,
            "sms",
        )
        assert is_genuine(
            SECRET, callback["headers"][RECEIPT_HEADER], callback["custom"], [body["recipient"]]
        )
        headers.add(callback["headers"][RECEIPT_HEADER])
    assert len(headers) == len(GOOD)


def test_a_users_own_callback_is_kept(gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    receipts_on(monkeypatch)
    op(callback={"url": "https://mine.example.test/hook"}).execute(task_context())
    assert {b["callback"]["url"] for b in gateway.bodies} == {"https://mine.example.test/hook"}
    assert all(RECEIPT_HEADER not in b["callback"].get("headers", {}) for b in gateway.bodies)


def test_a_short_secret_fails_the_task_before_any_request(
    httpx_mock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    receipts_on(monkeypatch, secret="short")
    with pytest.raises(SmsWwError, match="receipts_secret is missing or shorter than 32"):
        op().execute(task_context())
    assert httpx_mock.get_requests() == []
