"""SmsDeliveryTrigger against pytest-httpx mocks: one event, one client, early failure, clean exits."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from airflow_provider_smsww._http import client as client_module
from airflow_provider_smsww.models import Message
from airflow_provider_smsww.triggers.smsww import CLASSPATH, DeliveryProgress, SmsDeliveryTrigger
from tests.fakes import CALLBACK_SECRET, IDS, TEXT, TOKEN, FakeMessages


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> list[httpx.AsyncClient]:
    """Every httpx.AsyncClient the provider's client module creates."""
    created: list[httpx.AsyncClient] = []

    class Recording(httpx.AsyncClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            created.append(self)

    monkeypatch.setattr(client_module.httpx, "AsyncClient", Recording)
    return created


def mock(httpx_mock: Any, fake: FakeMessages, *, slow: bool = False) -> FakeMessages:
    httpx_mock.add_callback(fake.slow if slow else fake, is_reusable=True, is_optional=True)
    return fake


async def events_of(trigger: SmsDeliveryTrigger) -> list[dict[str, Any]]:
    return [event.payload async for event in trigger.run()]


def trigger(ids: list[str] = IDS, **kwargs: Any) -> SmsDeliveryTrigger:
    kwargs.setdefault("poll_interval", 0)
    return SmsDeliveryTrigger(message_ids=ids, **kwargs)


def test_serialize_round_trip() -> None:
    original = SmsDeliveryTrigger(
        message_ids=IDS, smsww_conn_id="sms_alt", poll_interval=30, min_delivered=2, max_concurrency=4
    )
    classpath, kwargs = original.serialize()
    assert classpath == CLASSPATH == "airflow_provider_smsww.triggers.smsww.SmsDeliveryTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs  # JSON-safe
    assert kwargs == {
        "message_ids": IDS,
        "smsww_conn_id": "sms_alt",
        "poll_interval": 30.0,
        "min_delivered": 2,
        "max_concurrency": 4,
        "not_before": None,
    }
    assert SmsDeliveryTrigger(**kwargs).serialize() == (classpath, kwargs)


async def test_the_first_round_waits_for_not_before(httpx_mock: Any) -> None:
    fake = mock(httpx_mock, FakeMessages({key: ["DELIVERED"] for key in IDS}))
    start = datetime.now(UTC) + timedelta(seconds=0.4)
    (event,) = await events_of(trigger(not_before=start))
    assert event["status"] == "success"
    assert fake.reads == IDS
    assert datetime.now(UTC) >= start  # nothing was read, and no event fired, before it


def test_classpath_imports_to_the_class() -> None:
    from tests.airflow_versions import import_string

    assert import_string(CLASSPATH) is SmsDeliveryTrigger


async def test_success_after_several_rounds_yields_one_event(
    httpx_mock: Any, clients: list[httpx.AsyncClient]
) -> None:
    fake = mock(
        httpx_mock,
        FakeMessages(
            {
                IDS[0]: ["NEW", "PENDING", "DELIVERED"],
                IDS[1]: ["DELIVERED"],
                IDS[2]: ["PENDING", "PENDING", "PENDING", "DELIVERED"],
            }
        ),
    )
    events = await events_of(trigger())
    assert len(events) == 1
    event = events[0]
    assert event["status"] == "success"
    assert [m["id"] for m in event["messages"]] == IDS
    assert {m["state"] for m in event["messages"]} == {"DELIVERED"}
    assert TEXT not in json.dumps(event)
    assert CALLBACK_SECRET not in json.dumps(event)
    # Final ids are not read again: IDS[1] once, IDS[0] three times, IDS[2] four times.
    assert fake.reads.count(IDS[1]) == 1
    assert fake.reads.count(IDS[0]) == 3
    assert fake.reads.count(IDS[2]) == 4
    assert len(clients) == 1  # one pooled client for every id and every round
    assert clients[0].is_closed


@pytest.mark.parametrize("state", ["UNDELIVERABLE", "EXPIRED", "REJECTED"])
async def test_a_failed_message_ends_the_wait_at_once(httpx_mock: Any, state: str) -> None:
    mock(httpx_mock, FakeMessages({IDS[0]: ["PENDING"], IDS[1]: [state], IDS[2]: ["DELIVERED"]}))
    events = await events_of(trigger())
    assert len(events) == 1
    event = events[0]
    assert event["status"] == "failure"
    assert IDS[1] in event["message"]
    assert state in event["message"]
    assert "+393331234501" in event["message"]
    assert event["pending"] == 1
    assert event["failed"] == 1
    assert event["delivered"] == 1


async def test_blocklisted_message_fails_whatever_its_state(httpx_mock: Any) -> None:
    mock(httpx_mock, FakeMessages({IDS[0]: ["PENDING"]}, blocklisted=[IDS[0]]))
    (event,) = await events_of(trigger([IDS[0]]))
    assert event["status"] == "failure"
    assert "blocklisted: forbidden word" in event["message"]


async def test_delivered_but_blocklisted_counts_as_failed(httpx_mock: Any) -> None:
    mock(httpx_mock, FakeMessages({IDS[0]: ["DELIVERED"]}, blocklisted=[IDS[0]]))
    (event,) = await events_of(trigger([IDS[0]]))
    assert event["status"] == "failure"
    assert (event["delivered"], event["failed"]) == (0, 1)


async def test_an_unknown_state_is_in_flight_and_read_again(httpx_mock: Any) -> None:
    fake = mock(httpx_mock, FakeMessages({IDS[0]: ["QUEUED", "delivered", "DELIVERED"]}))
    (event,) = await events_of(trigger([IDS[0]]))
    assert event["status"] == "success"
    assert fake.reads == [IDS[0]] * 3  # "QUEUED" and lowercase "delivered" are not final


@pytest.mark.parametrize(
    ("state", "blocklisted", "verdict"),
    [
        ("NEW", False, "pending"),
        ("PENDING", False, "pending"),
        ("DELIVERED", False, "delivered"),
        ("UNDELIVERABLE", False, "failed"),
        ("EXPIRED", False, "failed"),
        ("REJECTED", False, "failed"),
        ("SOMETHING_NEW", False, "pending"),
        ("delivered", False, "pending"),
        ("DELIVERED", True, "failed"),
        ("PENDING", True, "failed"),
        ("SOMETHING_NEW", True, "failed"),
    ],
)
def test_delivery_progress_follows_the_model_states(state: str, blocklisted: bool, verdict: str) -> None:
    message = Message.model_validate({"id": IDS[0], "state": state, "blocklisted": blocklisted})
    progress = DeliveryProgress([IDS[0]], {IDS[0]: message}, required=1)
    got = {
        "delivered": [m.id for m in progress.delivered],
        "failed": [m.id for m in progress.failed],
        "pending": progress.pending_ids,
    }
    assert got == {k: ([IDS[0]] if k == verdict else []) for k in got}
    assert message.is_final is (state in ("DELIVERED", "UNDELIVERABLE", "EXPIRED", "REJECTED"))


async def test_min_delivered_succeeds_with_messages_still_in_flight(httpx_mock: Any) -> None:
    mock(httpx_mock, FakeMessages({IDS[0]: ["DELIVERED"], IDS[1]: ["UNDELIVERABLE"], IDS[2]: ["DELIVERED"]}))
    (event,) = await events_of(trigger(min_delivered=2))
    assert event["status"] == "success"
    assert [m["state"] for m in event["messages"]] == ["DELIVERED", "UNDELIVERABLE", "DELIVERED"]


async def test_min_delivered_fails_once_it_is_out_of_reach(httpx_mock: Any) -> None:
    mock(httpx_mock, FakeMessages({IDS[0]: ["PENDING"], IDS[1]: ["UNDELIVERABLE"], IDS[2]: ["REJECTED"]}))
    (event,) = await events_of(trigger(min_delivered=2))
    assert event["status"] == "failure"
    assert "min_delivered=2" in event["message"]
    assert "at most 1" in event["message"]
    assert IDS[1] in event["message"]
    assert IDS[2] in event["message"]


async def test_unknown_id_is_an_error_event_and_the_client_is_closed(
    httpx_mock: Any, clients: list[httpx.AsyncClient]
) -> None:
    mock(httpx_mock, FakeMessages({IDS[0]: ["PENDING"]}))
    (event,) = await events_of(trigger([IDS[0], "bbbbbbbbbbbbbbbbbbbbbbb9"]))
    assert event["status"] == "error"
    assert event["error_type"] == "SmsWwNotFoundError"
    assert "bbbbbbbbbbbbbbbbbbbbbbb9" in event["message"]
    assert "smsww_default" in event["message"]
    assert clients[0].is_closed


async def test_refused_credentials_are_an_error_event_without_the_token(httpx_mock: Any) -> None:
    httpx_mock.add_response(status_code=401, json={"code": 401, "message": "Unauthorized"}, is_reusable=True)
    (event,) = await events_of(trigger())
    assert event["status"] == "error"
    assert event["error_type"] == "SmsWwAuthError"
    assert TOKEN not in json.dumps(event)


async def test_missing_connection_is_an_error_event(monkeypatch: pytest.MonkeyPatch) -> None:
    (event,) = await events_of(trigger(smsww_conn_id="does_not_exist"))
    assert event["status"] == "error"
    assert "does_not_exist" in event["message"]


async def test_transient_errors_count_as_not_yet(httpx_mock: Any) -> None:
    fake = mock(httpx_mock, FakeMessages({IDS[0]: ["PENDING", "DELIVERED"]}))
    fake.faults = [httpx.Response(503, text="busy"), httpx.Response(429, json={"code": 429})]
    (event,) = await events_of(trigger([IDS[0]]))
    assert event["status"] == "success"
    assert len(fake.reads) == 4  # 503, 429, PENDING, DELIVERED


async def test_a_transient_error_stops_the_round_instead_of_hammering_the_api(httpx_mock: Any) -> None:
    fake = mock(httpx_mock, FakeMessages({key: ["DELIVERED"] for key in IDS}))
    fake.faults = [httpx.Response(503, text="busy")]
    (event,) = await events_of(trigger(max_concurrency=1))
    assert event["status"] == "success"
    assert len(fake.reads) == 1 + 3  # round 1 stops after the 503; round 2 reads all three


async def test_reads_are_concurrent_within_the_bound(httpx_mock: Any) -> None:
    ids = [f"c{i:023d}" for i in range(12)]
    fake = mock(httpx_mock, FakeMessages({key: ["DELIVERED"] for key in ids}), slow=True)
    (event,) = await events_of(trigger(ids, max_concurrency=4))
    assert event["status"] == "success"
    assert 1 < fake.max_in_flight <= 4


async def test_cancellation_closes_the_client(httpx_mock: Any, clients: list[httpx.AsyncClient]) -> None:
    fake = mock(httpx_mock, FakeMessages({key: ["PENDING"] for key in IDS}))
    task = asyncio.ensure_future(events_of(trigger(poll_interval=60)))
    for _ in range(500):  # until the first round has read every id and the trigger sleeps
        if len(fake.reads) == len(IDS):
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(clients) == 1
    assert clients[0].is_closed


def test_duplicate_ids_are_watched_once() -> None:
    assert trigger([IDS[0], IDS[0], IDS[1]]).message_ids == [IDS[0], IDS[1]]
