"""The notifier with receipts on (docs/receipts.md): each alert's callback names the run and task and
carries its credential, from a task callback (sync) and from the triggerer (async); unusable receipt
settings send the alert without receipts rather than not at all."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_smsww.receipts import ORIGIN_FIELD, RECEIPT_HEADER, is_genuine
from tests.fakes import API, TOKEN, FakeGateway, set_connection
from tests.unit.notifications.test_notifier import ON_CALL, context, notifier

SECRET = "n" * 40
URL = "https://airflow.example.test/smsww/receipts"


def receipts_on(monkeypatch: pytest.MonkeyPatch, secret: str = SECRET) -> None:
    extra = {"max_retries": 0, "receipts_url": URL, "receipts_secret": secret}
    set_connection(monkeypatch, host=API, password=TOKEN, extra=extra)


def check_stamped(bodies: list[dict[str, Any]]) -> None:
    sends = [b for b in bodies if not b["options"]["dryRun"]]
    assert sorted(b["recipient"] for b in sends) == sorted(ON_CALL)
    for body in sends:
        callback = body["callback"]
        assert callback["url"] == URL
        assert callback["custom"][ORIGIN_FIELD] == {
            "conn": "smsww_default",
            "dag": "etl",
            "run": "manual__1",
            "task": "load_warehouse",
            "map": -1,
            "asset": "smsww_receipts",
        }
        assert is_genuine(
            SECRET, callback["headers"][RECEIPT_HEADER], callback["custom"], [body["recipient"]]
        )


def test_an_alert_from_a_task_callback_asks_for_receipts(
    gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    receipts_on(monkeypatch)
    notifier().notify(context())
    check_stamped(gateway.bodies)


async def test_an_alert_from_the_triggerer_asks_for_receipts(
    gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    receipts_on(monkeypatch)
    await notifier().async_notify(context())
    check_stamped(gateway.bodies)


def test_unusable_receipt_settings_still_send_the_alert_and_say_why(
    gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    receipts_on(monkeypatch, secret="short")
    notifier().notify(context())
    assert sorted(b["recipient"] for b in gateway.bodies if not b["options"]["dryRun"]) == sorted(ON_CALL)
    assert all("callback" not in b for b in gateway.bodies)
    logged = "".join(capsys.readouterr())
    assert "Receipts are off for this alert" in logged
    assert "receipts_secret is missing or shorter than 32" in logged
