"""The receipts endpoint's answers (airflow_provider_smsww/plugins/receipts.py): who is refused and how,
bounded and form bodies, both payload shapes. Recording is stubbed here;
tests/integration/test_receipt_events.py records into a real Airflow database from the sandbox's own
callbacks."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from airflow_provider_smsww.plugins import SmsWwPlugin
from airflow_provider_smsww.plugins import receipts as endpoint
from airflow_provider_smsww.plugins.app import create_app
from airflow_provider_smsww.receipts import DEFAULT_ASSET, ORIGIN_FIELD, RECEIPT_HEADER, Origin, credential

SECRET = "k" * 40
ORIGIN = Origin("smsww_default", "etl", "manual__1", "send", -1, DEFAULT_ASSET)
CUSTOM = {ORIGIN_FIELD: ORIGIN.as_custom(), "smsww_key": "abc"}
MESSAGE = {
    "id": "65f0c0ffee0000000000000a",
    "state": "DELIVERED",
    "recipient": "+393331234567",
    "internationalPrefix": "39",
    "countryCode": "IT",
    "messageCount": 1,
    "totalPrice": 0.065,
}
GOOD = {RECEIPT_HEADER: credential(SECRET, CUSTOM, "+393331234567")}


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> tuple[TestClient, list[tuple[Any, Origin]]]:
    recorded: list[tuple[Any, Origin]] = []
    monkeypatch.setattr(
        endpoint, "_read_secret", lambda conn_id: SECRET if conn_id == "smsww_default" else None
    )
    monkeypatch.setattr(
        "airflow_provider_smsww.plugins.events.record", lambda m, o: recorded.append((m, o)) or True
    )
    return TestClient(create_app()), recorded


def test_a_genuine_receipt_is_recorded_with_its_origin(client: Any) -> None:
    http, recorded = client
    answer = http.post("/receipts", json={"data": MESSAGE, "custom": CUSTOM}, headers=GOOD)
    assert (answer.status_code, answer.json()) == (202, {"recorded": True})
    assert recorded == [(MESSAGE, ORIGIN)]


def test_the_message_alone_with_custom_in_its_callback_is_read_too(client: Any) -> None:
    http, recorded = client
    message = {**MESSAGE, "recipient": "3331234567", "callback": {"custom": CUSTOM}}
    assert http.post("/receipts", json=message, headers=GOOD).status_code == 202
    assert len(recorded) == 1


def test_a_form_body_with_the_json_under_its_field_is_read(client: Any) -> None:
    http, recorded = client
    form = urlencode({"data": json.dumps({"data": MESSAGE, "custom": CUSTOM})})
    headers = {**GOOD, "Content-Type": "application/x-www-form-urlencoded"}
    assert http.post("/receipts", content=form, headers=headers).status_code == 202
    assert len(recorded) == 1


@pytest.mark.parametrize(
    ("why", "headers", "custom", "message", "status"),
    [
        ("no credential", {}, CUSTOM, MESSAGE, 401),
        ("a wrong credential", {RECEIPT_HEADER: "v1=" + "0" * 64}, CUSTOM, MESSAGE, 403),
        (
            "another secret",
            {RECEIPT_HEADER: credential("x" * 40, CUSTOM, "+393331234567")},
            CUSTOM,
            MESSAGE,
            403,
        ),
        ("another message's header", GOOD, {**CUSTOM, "smsww_key": "other"}, MESSAGE, 403),
        ("another number", GOOD, CUSTOM, {**MESSAGE, "recipient": "+393337654321"}, 403),
        ("an unknown connection", GOOD, {ORIGIN_FIELD: {**ORIGIN.as_custom(), "conn": "x"}}, MESSAGE, 403),
        ("no origin", GOOD, {}, MESSAGE, 403),
    ],
)
def test_a_forged_receipt_is_refused_and_records_nothing(
    client: Any,
    caplog: pytest.LogCaptureFixture,
    why: str,
    headers: Any,
    custom: Any,
    message: Any,
    status: int,
) -> None:
    http, recorded = client
    with caplog.at_level(logging.DEBUG):
        answer = http.post("/receipts", json={"data": message, "custom": custom}, headers=headers)
    assert answer.status_code == status, why
    assert recorded == []
    assert SECRET not in caplog.text
    assert "3331234567" not in caplog.text
    assert "v1=" not in caplog.text


def test_a_body_past_the_bound_and_a_body_that_is_no_receipt_are_refused(client: Any) -> None:
    http, recorded = client
    padding = "x" * (endpoint.MAX_BODY_BYTES + 1)
    answer = http.post(
        "/receipts", json={"data": {**MESSAGE, "pad": padding}, "custom": CUSTOM}, headers=GOOD
    )
    assert answer.status_code == 413

    def chunks() -> Any:  # no Content-Length: refused as it grows
        for _ in range(70):
            yield b"x" * 1024

    assert http.post("/receipts", content=chunks(), headers=GOOD).status_code == 413
    assert http.post("/receipts", content=b"not json", headers=GOOD).status_code == 400
    assert http.post("/receipts", json=[1], headers=GOOD).status_code == 400
    assert http.post("/receipts", json={"data": {"state": "DELIVERED"}}, headers=GOOD).status_code == 400
    assert recorded == []


def test_the_plugin_builds_its_app_only_when_asked() -> None:
    (app,) = SmsWwPlugin.fastapi_apps
    assert app["url_prefix"] == "/smsww"
    assert app["app"] is SmsWwPlugin.fastapi_apps[0]["app"]
