"""The sandbox's HTTP answers, in process: paths, envelope, validation codes, money, state machine."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from airflow_provider_smsww.sandbox.server import InProcessSandbox, in_process_sandbox
from tests.sandbox.helpers import MESSAGE_FIELDS, SPEC_EXAMPLE, FakeClock

IT = "+393331234567"
ES = "+34612345678"
US = "+14155550123"


def send(http: httpx.Client, body: dict[str, Any], region: str = "WW") -> httpx.Response:
    return http.post(f"/{region}-messages", json=body)


def test_spec_example_verbatim_gets_every_field(http: httpx.Client, sandbox_app: InProcessSandbox) -> None:
    response = send(http, SPEC_EXAMPLE)
    assert response.status_code == 201
    data = response.json()["data"]
    assert set(data) == MESSAGE_FIELDS
    assert re.fullmatch(r"[0-9a-f]{24}", data["id"])
    assert data["state"] == "NEW"
    assert data["sender"] == "MyCompany"
    assert (data["recipient"], data["internationalPrefix"], data["countryCode"]) == (IT, "39", "IT")
    assert (data["encoding"], data["charactersCount"], data["messageCount"]) == ("GSM-7", 30, 1)
    assert (data["price"], data["totalPrice"]) == (0, 0)  # WW: priced after provider acceptance
    assert data["blocklisted"] is False
    assert data["isOtp"] is False
    assert data["callback"]["custom"] == {"my_custom_id": "123456789"}
    assert data["callback"]["headers"] == {"session_id": "9834r5fh589494"}  # echoed as sent, like the spec
    assert data["sentAt"] is None
    assert data["deliveredAt"] is None
    assert data["username"] == sandbox_app.sandbox.config.email
    assert list(sandbox_app.sandbox.messages) == [data["id"]]


def test_state_machine_and_ww_pricing_follow_the_clock(
    http: httpx.Client, sandbox_app: InProcessSandbox, clock: FakeClock
) -> None:
    message_id = send(http, {"recipient": US, "message": "hi"}).json()["data"]["id"]
    assert sandbox_app.sandbox.credit == 100
    clock.tick(0.2)
    pending = http.get(f"/messages/{message_id}").json()["data"]
    assert pending["state"] == "PENDING"
    assert pending["sentAt"] is not None
    assert (pending["price"], pending["totalPrice"]) == (0.01, 0.01)
    assert sandbox_app.sandbox.credit == pytest.approx(99.99)
    clock.tick(0.8)
    delivered = http.get(f"/messages/{message_id}").json()["data"]
    assert delivered["state"] == "DELIVERED"
    assert delivered["deliveredAt"] is not None
    assert sandbox_app.sandbox.messages[message_id].history == ["PENDING", "DELIVERED"]


@pytest.mark.parametrize(
    ("recipient", "final"),
    [
        ("+393330000001", "UNDELIVERABLE"),
        ("+393330000002", "EXPIRED"),
        ("+393330000003", "REJECTED"),
        ("+393331234568", "DELIVERED"),
    ],
)
def test_magic_numbers_force_the_final_state(
    http: httpx.Client, clock: FakeClock, recipient: str, final: str
) -> None:
    message_id = send(http, {"recipient": recipient, "message": "hi"}, "IT").json()["data"]["id"]
    clock.tick(1)
    data = http.get(f"/messages/{message_id}").json()["data"]
    assert data["state"] == final
    assert (data["deliveredAt"] is not None) == (final == "DELIVERED")


def test_configured_outcome_map(clock: FakeClock) -> None:
    with in_process_sandbox(clock=clock, outcomes={US: "EXPIRED"}, delivered_after=5) as box:
        headers = {"Authorization": f"Bearer {box.token}"}
        with httpx.Client(transport=box.transport, base_url=box.url, headers=headers) as http:
            message_id = send(http, {"recipient": US, "message": "x"}).json()["data"]["id"]
            clock.tick(4.9)
            assert http.get(f"/messages/{message_id}").json()["data"]["state"] == "PENDING"
            clock.tick(0.1)
            assert http.get(f"/messages/{message_id}").json()["data"]["state"] == "EXPIRED"


def test_regional_price_is_known_at_once_and_charged(
    http: httpx.Client, sandbox_app: InProcessSandbox
) -> None:
    text = "x" * 161  # two GSM-7 parts
    for region, number, rate in (("IT", IT, 0.065), ("ES", ES, 0.07)):
        dry = send(http, {"recipient": number, "message": text, "options": {"dryRun": True}}, region)
        assert dry.status_code == 201
        assert (dry.json()["data"]["price"], dry.json()["data"]["totalPrice"]) == (
            rate,
            pytest.approx(rate * 2),
        )
        real = send(http, {"recipient": number, "message": text}, region).json()["data"]
        assert real["totalPrice"] == pytest.approx(rate * 2)
    assert sandbox_app.sandbox.credit == pytest.approx(100 - 2 * 0.065 - 2 * 0.07)


def test_dry_run_stores_and_spends_nothing(http: httpx.Client, sandbox_app: InProcessSandbox) -> None:
    response = send(http, {"recipient": US, "message": "é" * 71, "options": {"dryRun": True}})
    assert response.status_code == 201
    data = response.json()["data"]
    assert (data["encoding"], data["charactersCount"], data["messageCount"]) == ("GSM-7", 71, 1)
    ucs2 = send(http, {"recipient": US, "message": "ж" * 71, "options": {"dryRun": True}}).json()["data"]
    assert (ucs2["encoding"], ucs2["messageCount"]) == ("UCS-2", 2)
    assert sandbox_app.sandbox.messages == {}
    assert sandbox_app.sandbox.dry_runs == 2
    assert sandbox_app.sandbox.credit == 100
    assert http.get(f"/messages/{data['id']}").status_code == 404
    assert http.get("/messages").json() == {"data": []}


def test_fail_on_multiple_messages(http: httpx.Client, sandbox_app: InProcessSandbox) -> None:
    options = {"failOnMultipleMessages": True}
    assert send(http, {"recipient": US, "message": "x" * 160, "options": options}).status_code == 201
    refused = send(http, {"recipient": US, "message": "x" * 161, "options": options})
    assert refused.status_code == 422
    assert refused.json()["code"] == 2040
    assert len(sandbox_app.sandbox.messages) == 1


@pytest.mark.parametrize(
    ("region", "body", "code"),
    [
        ("WW", {"recipient": "393331234567", "message": "x"}, 2011),
        ("WW", {"recipient": "+39 333", "message": "x"}, 2011),
        ("WW", {"recipient": "+390000000000", "message": "x"}, 2011),
        ("IT", {"recipient": ES, "message": "x"}, 2013),
        ("ES", {"recipient": IT, "message": "x"}, 2013),
        ("WW", {"recipient": IT, "message": "x", "sender": "AB"}, 2021),
        ("WW", {"recipient": IT, "message": "x", "sender": "TwelveChars1"}, 2021),
        ("WW", {"recipient": IT, "message": "x", "sender": "12345"}, 2024),
        (
            "WW",
            {"recipient": IT, "message": "x", "options": {"dryRun": True}, "sender": "Forbiddenword"},
            2021,
        ),
        ("WW", {"recipient": IT, "message": "a FORBIDDENWORD", "options": {"dryRun": True}}, 2044),
        ("IT", {"recipient": IT, "message": "forbiddenword", "options": {"dryRun": True}}, 2044),
        ("WW", {"message": "x"}, 1000),
        ("WW", {"recipient": IT}, 1000),
        ("WW", {"recipient": IT, "message": ""}, 1000),
        ("WW", {"recipient": IT, "message": 5}, 1000),
        ("WW", {"recipient": IT, "message": "x", "options": {"dryRun": "yes"}}, 1000),
        ("WW", {"recipient": IT, "message": "x", "callback": {"url": "ftp://x"}}, 1000),
        ("WW", {"recipient": IT, "message": "x", "callback": {"url": "http://127.0.0.1/", "retry": 6}}, 1000),
        # null, false or 0 are not "absent": the spec makes none of these nullable.
        *[
            ("WW", {"recipient": IT, "message": "x", name: bad}, 1000)
            for name in ("options", "callback")
            for bad in (None, False, 0)
        ],
        *[
            (
                "WW",
                {"recipient": IT, "message": "x", "callback": {"url": "http://127.0.0.1/", name: bad}},
                1000,
            )
            for name in ("headers", "custom")
            for bad in (None, False, 0)
        ],
        ("IT", {"recipient": IT, "message": "x", "options": None}, 1000),
    ],
)
def test_bad_input_gets_the_documented_code(
    http: httpx.Client, sandbox_app: InProcessSandbox, region: str, body: dict[str, Any], code: int
) -> None:
    response = send(http, body, region)
    assert response.status_code == 422
    assert response.json()["code"] == code
    assert isinstance(response.json()["message"], str)
    assert sandbox_app.sandbox.messages == {}
    assert sandbox_app.sandbox.blocklisted is False


def test_spec_texts_for_documented_codes(http: httpx.Client) -> None:
    assert send(http, {"recipient": "+1", "message": "x"}).json() == {
        "code": 2011,
        "message": "Invalid mobile phone number. Use E.164 format.",
    }
    assert send(http, {"recipient": US, "message": "x"}, "IT").json()["message"] == (
        "The recipient number does not belong to the supported country for this endpoint (IT)."
    )


def test_body_that_is_not_a_json_object(http: httpx.Client) -> None:
    assert http.post("/WW-messages", content=b"{nope").json()["code"] == 1000
    assert http.post("/WW-messages", json=["x"]).json()["code"] == 1000


@pytest.mark.parametrize(("region", "code", "penalty"), [("WW", 2044, 2.0), ("IT", 2050, 0.13)])
def test_forbidden_content_blocks_message_and_account(
    http: httpx.Client, sandbox_app: InProcessSandbox, region: str, code: int, penalty: float
) -> None:
    refused = send(http, {"recipient": IT, "message": "ForbiddenWord " + "x" * 150}, region)
    assert (refused.status_code, refused.json()["code"]) == (422, code)
    (blocked,) = sandbox_app.sandbox.messages.values()
    view = sandbox_app.sandbox.view(blocked)
    assert view["blocklisted"] is True
    assert view["blocklistedReason"]
    assert view["state"] == "REJECTED"
    assert view["messageCount"] == 2
    assert sandbox_app.sandbox.credit == pytest.approx(100 - penalty)
    assert sandbox_app.sandbox.accepted() == []
    later = send(http, {"recipient": IT, "message": "innocent"}, "IT")
    assert later.status_code == 403
    assert later.json() == {
        "code": 2020,
        "message": "The user is blocklisted. Please contact support for assistance.",
    }
    assert send(http, {"recipient": IT, "message": "x", "options": {"dryRun": True}}).status_code == 403


def test_forbidden_word_in_sender_counts(http: httpx.Client, sandbox_app: InProcessSandbox) -> None:
    with in_process_sandbox(forbidden_words=("spam",)) as box:
        headers = {"Authorization": f"Bearer {box.token}"}
        with httpx.Client(transport=box.transport, base_url=box.url, headers=headers) as client:
            response = send(client, {"recipient": IT, "message": "hello", "sender": "Spam Co"})
            assert response.json()["code"] == 2044
            assert box.sandbox.blocklisted


def test_credit_is_required_for_worldwide_sends() -> None:
    with in_process_sandbox(credit=1.5) as box:
        headers = {"Authorization": f"Bearer {box.token}"}
        with httpx.Client(transport=box.transport, base_url=box.url, headers=headers) as http:
            two_parts = {"recipient": US, "message": "x" * 200}
            refused = send(http, two_parts)
            assert (refused.status_code, refused.json()["code"]) == (402, 2030)
            assert send(http, {**two_parts, "options": {"dryRun": True}}).status_code == 402
            assert send(http, {"recipient": US, "message": "x"}).status_code == 201
            assert box.sandbox.credit == 1.5  # WW: nothing charged before provider acceptance
            assert len(box.sandbox.messages) == 1


def test_auth(sandbox_app: InProcessSandbox) -> None:
    with httpx.Client(transport=sandbox_app.transport, base_url=sandbox_app.url) as anon:
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": f"Basic {sandbox_app.token}"},
        ):
            for method, path in (("POST", "/WW-messages"), ("GET", "/messages"), ("GET", "/messages/x")):
                response = anon.request(method, path, headers=headers, json={"recipient": IT, "message": "x"})
                assert response.status_code == 401
                assert response.json()["code"] == 401
                assert sandbox_app.token not in response.text
    assert sandbox_app.sandbox.messages == {}


def test_unknown_message_is_404(http: httpx.Client) -> None:
    response = http.get("/messages/633aabe3e4a9a0e69811ad7f")
    assert (response.status_code, response.json()["code"]) == (404, 404)


def test_list_is_newest_first_and_paginated(http: httpx.Client) -> None:
    ids = [send(http, {"recipient": US, "message": f"n{i}"}).json()["data"]["id"] for i in range(7)]
    newest_first = list(reversed(ids))
    assert [m["id"] for m in http.get("/messages").json()["data"]] == newest_first
    pages = [http.get("/messages", params={"skip": s, "limit": 3}).json()["data"] for s in (0, 3, 6, 9)]
    assert [[m["id"] for m in p] for p in pages] == [
        newest_first[0:3],
        newest_first[3:6],
        newest_first[6:],
        [],
    ]
    assert http.get("/messages", params={"skip": -1}).json()["code"] == 1000
    assert http.get("/messages", params={"limit": "many"}).status_code == 422
    for query in ("skip=1&skip=2", "limit=1&limit=2", "skip=1_0", "limit= 3"):
        refused = http.get(f"/messages?{query}")
        assert (refused.status_code, refused.json()["code"]) == (422, 1000), query


def test_otp_refuses_null_options(http: httpx.Client, sandbox_app: InProcessSandbox) -> None:
    response = http.post("/otp", json={"recipient": IT, "options": None})
    assert (response.status_code, response.json()["code"]) == (422, 1000)
    assert sandbox_app.sandbox.messages == {}


def test_wrong_method_is_405_with_allow(http: httpx.Client) -> None:
    for method, path, allowed in (("GET", "/WW-messages", "POST"), ("DELETE", "/messages", "GET")):
        response = http.request(method, path)
        assert response.status_code == 405
        assert response.headers["Allow"] == allowed


def test_otp(http: httpx.Client, sandbox_app: InProcessSandbox) -> None:
    response = http.post(
        "/otp", json={"recipient": IT, "length": 6, "alphanumeric": True, "cacheSeconds": 60}
    )
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["isOtp"] is True
    assert len(data["otp"]) == 6
    assert data["otp"] in data["message"]
    assert data["sender"] == "OTP MOBILE"
    assert data["price"] == 0
    again = http.post("/otp", json={"recipient": IT, "length": 6, "cacheSeconds": 60}).json()["data"]
    assert again["otp"] == data["otp"]  # reused within cacheSeconds
    assert http.post("/otp", json={"recipient": IT, "length": 3}).json()["code"] == 1020
    assert http.post("/otp", json={"recipient": "+1"}).json()["code"] == 2011


def test_request_log(http: httpx.Client, sandbox_app: InProcessSandbox) -> None:
    send(http, {"recipient": US, "message": "x"})
    http.get("/messages/nope")
    assert sandbox_app.sandbox.requests == [("POST", "/WW-messages", 201), ("GET", "/messages/nope", 404)]


def test_oauth_tokens(sandbox_app: InProcessSandbox) -> None:
    config = sandbox_app.sandbox.config
    with httpx.Client(transport=sandbox_app.transport, base_url=sandbox_app.url) as client:
        body = {"scopes": ["GET:test.sms.openapi.com/messages"], "ttl": 60, "name": "t"}
        assert client.post("/tokens", json=body, auth=(config.email, "wrong")).status_code == 401
        assert (
            client.post("/tokens", json={"ttl": 5}, auth=(config.email, config.api_key)).json()["error"] == 70
        )
        bad_format = client.post("/tokens", json={"scopes": ["nope"]}, auth=(config.email, config.api_key))
        assert bad_format.json()["error"] == 80
        minted = client.post("/tokens", json=body, auth=(config.email, config.api_key))
        assert minted.status_code == 200
        detail = minted.json()
        assert {"token", "expireAt", "scopes", "createdAt", "name"} <= set(detail)
        auth = {"Authorization": f"Bearer {detail['token']}"}
        assert client.get("/messages", headers=auth).status_code == 200
        scoped_out = client.post("/WW-messages", headers=auth, json={"recipient": US, "message": "x"})
        assert (scoped_out.status_code, scoped_out.json()["code"]) == (403, 403)
        assert detail["token"] not in scoped_out.text


def test_expired_token_is_refused() -> None:
    from datetime import UTC, datetime, timedelta

    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    with in_process_sandbox(wall_clock=lambda: now[0]) as box:
        config = box.sandbox.config
        with httpx.Client(transport=box.transport, base_url=box.url) as client:
            token = client.post(
                "/tokens", json={"scopes": ["*:*/*"], "ttl": 60}, auth=(config.email, config.api_key)
            ).json()["token"]
            auth = {"Authorization": f"Bearer {token}"}
            assert client.get("/messages", headers=auth).status_code == 200
            now[0] += timedelta(seconds=61)
            assert client.get("/messages", headers=auth).status_code == 401


def test_a_lagging_listing_and_no_date_header(clock: FakeClock) -> None:
    """Issue 23: ``listing_lag`` keeps a stored message out of ``GET /messages`` for that long (``GET
    /messages/{id}`` finds it at once); ``date_header=False`` drops the loopback server's ``Date``."""
    from airflow_provider_smsww.sandbox.server import run_sandbox

    with (
        in_process_sandbox(clock=clock, listing_lag=60.0) as box,
        httpx.Client(transport=box.transport, base_url=box.url, headers=_auth(box)) as client,
    ):
        sent = send(client, {"recipient": US, "message": "late"}).json()["data"]["id"]
        assert client.get("/messages").json()["data"] == []
        assert client.get(f"/messages/{sent}").status_code == 200
        clock.tick(59.9)
        assert client.get("/messages").json()["data"] == []
        clock.tick(0.1)
        assert [m["id"] for m in client.get("/messages").json()["data"]] == [sent]
    for date_header in (True, False):
        with run_sandbox(date_header=date_header) as handle:
            answer = httpx.get(f"{handle.url}/messages", headers={"Authorization": f"Bearer {handle.token}"})
            assert answer.status_code == 200
            assert ("date" in answer.headers) is date_header


def _auth(box: InProcessSandbox) -> dict[str, str]:
    return {"Authorization": f"Bearer {box.token}"}


def test_without_a_listing_lag_every_stored_message_is_listed_at_once(clock: FakeClock) -> None:
    """The benchmarks seed messages whose ``created`` lies ahead (to schedule a late delivery): with no
    ``listing_lag`` they are listed all the same, as every stored message is."""
    with (
        in_process_sandbox(clock=clock) as box,
        httpx.Client(transport=box.transport, base_url=box.url, headers=_auth(box)) as client,
    ):
        sent = send(client, {"recipient": US, "message": "delivered in an hour"}).json()["data"]["id"]
        box.sandbox.messages[sent].created += 3600
        assert [m["id"] for m in client.get("/messages").json()["data"]] == [sent]
