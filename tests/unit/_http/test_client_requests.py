"""What the clients put on the wire and read back: the send body with its headers, the region's endpoint,
one message, message ids that would change the path, and the pagination of ``GET /messages``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from pytest_httpx import HTTPXMock

from airflow_provider_smsww import __version__
from airflow_provider_smsww.exceptions import (
    SmsWwValidationError,
)
from airflow_provider_smsww.models import MessageState
from tests.unit._http.helpers import (
    API,
    HEADER_SECRET,
    JITTER,
    MESSAGE_ID,
    TOKEN,
    Harness,
    get,
    message_json,
    send,
    send_request,
)

# --- success ----------------------------------------------------------------------------------------


def test_send_posts_the_wire_body_with_bearer_auth(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="POST", url=f"{API}/WW-messages", status_code=201, json={"data": message_json()}
    )
    message = send(harness)
    assert message.id == MESSAGE_ID
    assert message.state is MessageState.NEW
    request = httpx_mock.get_request()
    assert request is not None
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["User-Agent"] == f"airflow-provider-smsww/{__version__}"
    assert request.headers["Accept"] == "application/json"
    assert json.loads(request.content) == {
        "recipient": "+393331234567",
        "message": "Hello! This is a test message.",
        "sender": "MyCompany",
        "options": {"dryRun": False, "failOnMultipleMessages": False},
        "callback": {
            "url": "https://www.mysite.com/myEndpoint",
            "method": "JSON",
            "field": "data",
            "retry": 0,
            "headers": {"Authorization": HEADER_SECRET},
            "custom": {"my_custom_id": "123456789"},
        },
    }
    assert harness.sleeps == []


@pytest.mark.parametrize("region", ["WW", "IT", "ES"])
def test_region_picks_the_endpoint(region: str, harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{API}/{region}-messages", status_code=201, json={"data": message_json()})
    harness.run("send_message", send_request(), call={"region": region})
    assert httpx_mock.get_request() is not None


def test_get_message_reads_one_message(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="GET",
        url=f"{API}/messages/{MESSAGE_ID}",
        json={"data": message_json(state="DELIVERED", deliveredAt="2025-11-19T10:00:05Z")},
    )
    message = get(harness)
    assert message.state is MessageState.DELIVERED
    assert message.delivered_at == datetime(2025, 11, 19, 10, 0, 5, tzinfo=UTC)


@pytest.mark.parametrize("bad_id", ["", "../tokens", "a/b", "id?x=1", "a b"])
def test_message_ids_that_would_change_the_path_are_refused(
    bad_id: str, harness: Harness, httpx_mock: HTTPXMock
) -> None:
    with pytest.raises(SmsWwValidationError, match="is not a message id"):
        harness.run("get_message", bad_id)
    assert httpx_mock.get_requests() == []


# --- pagination -------------------------------------------------------------------------------------


def serve_messages(total: int) -> Callable[[httpx.Request], httpx.Response]:
    ids = [f"{i:024x}" for i in range(total)]

    def handler(request: httpx.Request) -> httpx.Response:
        skip, limit = int(request.url.params["skip"]), int(request.url.params["limit"])
        return httpx.Response(200, json={"data": [message_json(id=i) for i in ids[skip : skip + limit]]})

    return handler


def pages(httpx_mock: HTTPXMock) -> list[tuple[int, int]]:
    return [(int(r.url.params["skip"]), int(r.url.params["limit"])) for r in httpx_mock.get_requests()]


def test_list_messages_walks_every_page_until_an_empty_one(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_callback(serve_messages(250), url=re.compile(rf"^{API}/messages\?"), is_reusable=True)
    messages = harness.run("list_messages")
    assert [m.id for m in messages] == [f"{i:024x}" for i in range(250)]
    assert pages(httpx_mock) == [(0, 100), (100, 100), (200, 100), (250, 100)]


def test_list_messages_follows_a_server_that_caps_the_page_size(
    harness: Harness, httpx_mock: HTTPXMock
) -> None:
    """A gateway that returns fewer than ``limit`` per page must not end the walk early: reconciliation
    would miss older messages and send them again."""
    full = serve_messages(7)

    def capped(request: httpx.Request) -> httpx.Response:
        return full(httpx.Request("GET", request.url.copy_set_param("limit", 3)))

    httpx_mock.add_callback(capped, is_reusable=True)
    messages = harness.run("list_messages", call={"page_size": 5})
    assert [m.id for m in messages] == [f"{i:024x}" for i in range(7)]
    assert pages(httpx_mock) == [(0, 5), (3, 5), (6, 5), (7, 5)]


def test_list_messages_stops_at_max_items(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_callback(serve_messages(1000), is_reusable=True)
    messages = harness.run("list_messages", call={"page_size": 100, "max_items": 150})
    assert [m.id for m in messages] == [f"{i:024x}" for i in range(150)]
    assert pages(httpx_mock) == [(0, 100), (100, 100)]


def test_list_messages_of_an_empty_account(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json={"data": []})
    assert harness.run("list_messages") == []


def test_a_page_is_retried_without_losing_the_position(harness: Harness, httpx_mock: HTTPXMock) -> None:
    handler = serve_messages(3)
    httpx_mock.add_callback(handler)
    httpx_mock.add_response(status_code=502)
    httpx_mock.add_callback(handler, is_reusable=True)
    messages = harness.run("list_messages", call={"page_size": 2})
    assert len(messages) == 3
    assert pages(httpx_mock) == [(0, 2), (2, 2), (2, 2), (3, 2)]
    assert harness.sleeps == pytest.approx(JITTER[:1])
