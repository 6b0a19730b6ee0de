"""The sandbox's ``POST /otp`` as the spec has it, in process: length 4-10 (else 422 1020), alphanumeric,
``cacheSeconds`` 0-600 reusing the code for the same number inside the window only, ``dryRun`` (nothing
stored, cached or charged), ``otp``/``otpOptions`` in the answer, WW pricing, sender "OTP MOBILE"."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from airflow_provider_smsww.sandbox.server import InProcessSandbox, in_process_sandbox
from tests.sandbox.helpers import FakeClock

IT, IT2, US = "+393331234567", "+393331234568", "+14155550123"


@pytest.mark.parametrize("length", [4, 5, 10])
@pytest.mark.parametrize("alphanumeric", [False, True])
def test_the_code_has_the_length_and_alphabet_asked(
    length: int, alphanumeric: bool, http: httpx.Client, sandbox_app: InProcessSandbox
) -> None:
    body = {"recipient": IT, "length": length, "alphanumeric": alphanumeric}
    data = http.post("/otp", json=body).json()["data"]
    assert len(data["otp"]) == length
    assert data["otp"].isalnum()
    assert data["otp"].upper() == data["otp"]
    if not alphanumeric:
        assert data["otp"].isdigit()
    assert data["otpOptions"] == {"length": length, "alphanumeric": alphanumeric, "cacheSeconds": 0}
    assert (data["sender"], data["isOtp"]) == ("OTP MOBILE", True)
    assert sandbox_app.sandbox.view(data["id"])["otp"] == data["otp"]  # what the sandbox holds


def test_the_default_is_five_digits(http: httpx.Client) -> None:
    data = http.post("/otp", json={"recipient": IT}).json()["data"]
    assert len(data["otp"]) == 5
    assert data["otp"].isdigit()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"length": 3}, 1020),
        ({"length": 11}, 1020),
        ({"length": 0}, 1020),
        ({"cacheSeconds": 601}, 1000),
        ({"cacheSeconds": -1}, 1000),
        ({"length": "6"}, 1000),
        ({"alphanumeric": "yes"}, 1000),
    ],
)
def test_out_of_spec_bodies_are_refused(
    body: dict[str, object], code: int, http: httpx.Client, sandbox_app: InProcessSandbox
) -> None:
    response = http.post("/otp", json={"recipient": IT, **body})
    assert (response.status_code, response.json()["code"]) == (422, code)
    if code == 1020:
        assert response.json()["message"] == "Length must be between 4 and 10."
    assert sandbox_app.sandbox.messages == {}


def test_the_code_is_reused_for_the_same_number_within_the_window_only() -> None:
    wall = [datetime(2025, 11, 19, 10, 0, tzinfo=UTC)]
    with in_process_sandbox(clock=FakeClock(), wall_clock=lambda: wall[0]) as box:
        headers = {"Authorization": f"Bearer {box.token}"}
        with httpx.Client(transport=box.transport, base_url=box.url, headers=headers) as http:

            def code(recipient: str = IT) -> str:
                # 10 letters or digits: two fresh codes are equal once in 36**10
                body = {"recipient": recipient, "cacheSeconds": 300, "length": 10, "alphanumeric": True}
                return str(http.post("/otp", json=body).json()["data"]["otp"])

            first = code()
            wall[0] += timedelta(seconds=299)
            assert code() == first  # same number, inside the window
            assert code(IT2) != first  # another number: its own code
            wall[0] += timedelta(seconds=2)
            assert code() != first  # the window has passed
            assert len(box.sandbox.messages) == 4  # a reused code is still a message sent


def test_a_dry_run_is_neither_stored_cached_nor_charged(
    http: httpx.Client, sandbox_app: InProcessSandbox, clock: FakeClock
) -> None:
    credit = sandbox_app.sandbox.credit
    dry = http.post("/otp", json={"recipient": US, "cacheSeconds": 600, "options": {"dryRun": True}})
    assert dry.status_code == 201
    data = dry.json()["data"]
    assert data["options"]["dryRun"] is True
    assert data["otp"]
    assert data["isOtp"]
    clock.tick(5)
    assert sandbox_app.sandbox.messages == {}
    assert sandbox_app.sandbox.credit == credit
    assert sandbox_app.sandbox.dry_runs == 1
    real = http.post("/otp", json={"recipient": US, "length": 5}).json()["data"]
    assert real["id"] in sandbox_app.sandbox.messages


def test_an_otp_is_priced_and_charged_like_a_ww_message(
    http: httpx.Client, sandbox_app: InProcessSandbox, clock: FakeClock
) -> None:
    credit = sandbox_app.sandbox.credit
    data = http.post("/otp", json={"recipient": US}).json()["data"]
    assert data["price"] == 0  # WW: priced once the provider accepts it
    clock.tick(1)  # WW is charged on provider acceptance (PENDING), seen at the next request
    read = http.get(f"/messages/{data['id']}").json()["data"]
    cost = sandbox_app.sandbox.config.price_for("US") * data["messageCount"]
    assert [(mid, amount) for mid, amount, _ in sandbox_app.sandbox.charges] == [(data["id"], cost)]
    assert sandbox_app.sandbox.credit == pytest.approx(credit - float(cost))
    assert read["totalPrice"] == pytest.approx(float(cost))
    assert read["otp"] == data["otp"]


@pytest.fixture
def loopback_http() -> Iterator[httpx.Client]:
    from airflow_provider_smsww.sandbox.server import run_sandbox

    with run_sandbox() as handle:
        headers = {"Authorization": f"Bearer {handle.sandbox.config.token}"}
        with httpx.Client(base_url=handle.url, headers=headers) as client:
            yield client


def test_over_loopback(loopback_http: httpx.Client) -> None:
    data = loopback_http.post("/otp", json={"recipient": IT, "length": 8, "cacheSeconds": 60}).json()["data"]
    assert len(data["otp"]) == 8
    again = loopback_http.post("/otp", json={"recipient": IT, "length": 8, "cacheSeconds": 60}).json()["data"]
    assert again["otp"] == data["otp"]
    refused = loopback_http.post("/otp", json={"recipient": IT, "length": 11})
    assert (refused.status_code, refused.json()["code"]) == (422, 1020)
