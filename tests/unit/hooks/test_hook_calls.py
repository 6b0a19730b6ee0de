"""SmsWwHook as the API a TaskFlow task calls: send, estimate, read and list, sync and async twins."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest

from airflow_provider_smsww.exceptions import (
    SmsWwDryRunIgnoredError,
    SmsWwNotFoundError,
    SmsWwServerError,
    SmsWwValidationError,
)
from airflow_provider_smsww.hooks.smsww import SmsWwHook
from airflow_provider_smsww.models import Estimate, Message
from airflow_provider_smsww.validation import build_request
from tests.fakes import API, FakeGateway

ALICE, BOB = "+393331234567", "+393331234568"


def test_send_message_checks_locally_then_sends(gateway: FakeGateway) -> None:
    with SmsWwHook() as hook:
        message = hook.send_message("+39 333 123 4567", "Order shipped", sender="Shop")
    assert isinstance(message, Message)
    assert message.id
    assert message.recipient == ALICE
    (body,) = gateway.bodies
    assert body == {
        "recipient": ALICE,
        "message": "Order shipped",
        "sender": "Shop",
        "options": {"dryRun": False, "failOnMultipleMessages": False},
    }


def test_send_message_refuses_bad_input_naming_each_parameter(httpx_mock: Any) -> None:
    with SmsWwHook() as hook, pytest.raises(SmsWwValidationError) as info:
        hook.send_message("3331234567", "", sender="12345", region="FR")  # type: ignore[arg-type]
    text = str(info.value)
    for name in ("recipient:", "message:", "sender:", "region:"):
        assert name in text
    assert "4 problem(s)" in text
    assert httpx_mock.get_requests() == []


def test_send_message_refuses_a_callback_with_an_unknown_key(httpx_mock: Any) -> None:
    with SmsWwHook() as hook, pytest.raises(SmsWwValidationError, match=r"unknown key\(s\) 'header'"):
        hook.send_message(ALICE, "Hi", callback={"url": "https://h.example.test/cb", "header": {}})
    assert httpx_mock.get_requests() == []


async def test_asend_message_dry_run_costs_nothing(gateway: FakeGateway, hook: SmsWwHook) -> None:
    message = await hook.asend_message(ALICE, "Hi", dry_run=True, region="IT")
    assert message.options is not None
    assert message.options.dry_run
    assert gateway.stored == []
    assert gateway.paths == ["/IT-messages"]


def test_estimate_prices_one_message(gateway: FakeGateway) -> None:
    with SmsWwHook() as hook:
        estimate = hook.estimate(build_request(ALICE, "x" * 170))
    assert estimate == Estimate(ALICE, 2, "GSM-7", Decimal("0.1"))
    assert gateway.dry_run_to() == [ALICE]
    assert gateway.stored == []


async def test_aestimate_refuses_what_the_api_would_block(gateway: FakeGateway, hook: SmsWwHook) -> None:
    gateway.blocklist_dry_runs.add(ALICE)
    with pytest.raises(SmsWwValidationError, match="would block"):
        await hook.aestimate(build_request(ALICE, "Hi"))


async def test_aestimate_stops_when_the_gateway_ignores_dry_run(
    gateway: FakeGateway, hook: SmsWwHook
) -> None:
    gateway.dry_run_echo = False
    with pytest.raises(SmsWwDryRunIgnoredError):
        await hook.aestimate(build_request(ALICE, "Hi"))


def test_get_message_404_names_the_id_and_the_connection(httpx_mock: Any) -> None:
    httpx_mock.add_response(status_code=404, json={"code": 404, "message": "Not found"})
    with SmsWwHook() as hook, pytest.raises(SmsWwNotFoundError, match="'smsww_default'") as info:
        hook.get_message("abc123")
    assert "abc123" in str(info.value)


def serve_messages(httpx_mock: Any, ids: list[str], fail: str | None = None) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        message_id = request.url.path.rsplit("/", 1)[-1]
        if message_id == fail:
            return httpx.Response(503, text="busy")
        return httpx.Response(200, json={"data": {"id": message_id, "state": "DELIVERED"}})

    for message_id in ids:
        httpx_mock.add_callback(
            answer, url=f"{API}/messages/{message_id}", is_reusable=True, is_optional=True
        )


def test_get_messages_reads_each_id(httpx_mock: Any) -> None:
    ids = [f"id{i}" for i in range(25)]
    serve_messages(httpx_mock, ids)
    found = SmsWwHook().get_messages(ids, max_concurrency=5)
    assert sorted(found) == sorted(ids)
    assert {m.state_name for m in found.values()} == {"DELIVERED"}


async def test_aget_messages_keeps_what_was_read_before_an_error(httpx_mock: Any, hook: SmsWwHook) -> None:
    ids = ["id1", "id2", "bad"]
    serve_messages(httpx_mock, ids, fail="bad")
    found: dict[str, Message] = {}
    with pytest.raises(SmsWwServerError):
        await hook.aget_messages(ids, max_concurrency=1, into=found)
    assert sorted(found) == ["id1", "id2"]


def test_list_messages_and_alist_messages_walk_every_page(gateway: FakeGateway) -> None:
    with SmsWwHook() as hook:
        for i in range(5):
            hook.send_message(f"+39333123{i:04d}", "Hi")
        listed = [m.recipient for m in hook.list_messages(page_size=2)]
    assert listed == list(reversed(gateway.sent_to()))

    async def alisted() -> list[str | None]:
        return [m.recipient async for m in hook.alist_messages(page_size=2)]

    assert hook.run_async(alisted) == listed


def test_the_context_manager_closes_the_pool(gateway: FakeGateway) -> None:
    with SmsWwHook() as hook:
        client = hook.client
    assert client._http.is_closed
    assert json.dumps(hook.send_message(ALICE, "Hi").summary())  # a new pool after close
    hook.close()
