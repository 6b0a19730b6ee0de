"""The client's request gate: an optional rate per connection, and a 429's Retry-After honoured by every
request sharing the gate (not only the one that was answered 429)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from airflow_provider_smsww._http.client import AsyncSmsWwClient, RetryPolicy, SmsWwClient
from airflow_provider_smsww._http.ratelimit import RateLimiter, shared_rate_limiter
from airflow_provider_smsww.exceptions import SmsWwValidationError
from airflow_provider_smsww.hooks.smsww import SmsWwHook
from tests.fakes import API, TOKEN, set_connection

MESSAGE = {"id": "633aabe3e4a9a0e69811ad7f", "state": "PENDING"}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_rate_spaces_request_starts() -> None:
    clock = Clock()
    gate = RateLimiter(10, clock=clock)
    assert [round(gate.reserve()[0], 3) for _ in range(4)] == [0.0, 0.1, 0.2, 0.3]
    clock.now += 10  # idle for a while: no burst credit is saved up beyond the next slot
    assert gate.reserve()[0] == 0.0


def test_no_rate_means_no_wait_until_a_pause() -> None:
    clock = Clock()
    gate = RateLimiter(clock=clock)
    assert gate.reserve()[0] == 0.0
    end = gate.pause(2.5)
    assert gate.reserve()[0] == 2.5
    assert gate.reserve(own_pause=end)[0] == 0.0  # the request that set it already waits it out
    clock.now += 3
    assert gate.reserve()[0] == 0.0


@pytest.mark.parametrize("bad", [0, -1.0])
def test_a_rate_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError, match="rate_limit"):
        RateLimiter(bad)


async def test_a_429_holds_every_request_of_the_gate_for_its_retry_after(httpx_mock: Any) -> None:
    starts: list[tuple[float, str]] = []
    rate_limited = asyncio.Event()
    answered_429: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        starts.append((time.monotonic(), request.url.path))
        if request.url.path.endswith("a" * 24) and not rate_limited.is_set():
            rate_limited.set()
            answered_429.append(time.monotonic())  # before the client saw it: a slow loop only adds
            return httpx.Response(429, headers={"Retry-After": "0.3"}, json={"code": 429})
        return httpx.Response(200, json={"data": MESSAGE})

    httpx_mock.add_callback(answer, is_reusable=True)
    retry = RetryPolicy(max_retries=2, backoff_base=0.001)
    async with AsyncSmsWwClient(API, token=TOKEN, retry=retry) as client:
        first = asyncio.create_task(client.get_message("a" * 24))
        await rate_limited.wait()
        # Two more requests of the same client, started after the 429: they wait too.
        await asyncio.gather(first, client.get_message("b" * 24), client.get_message("c" * 24))
    later = [t for t, path in starts[1:]]
    assert len(starts) == 4  # one 429, then one request each: nobody else spent an attempt on it
    assert min(later) >= answered_429[0] + 0.28


def test_the_sync_client_waits_only_its_own_retry_after_once(httpx_mock: Any) -> None:
    httpx_mock.add_response(status_code=429, headers={"Retry-After": "2"}, json={"code": 429})
    httpx_mock.add_response(json={"data": MESSAGE})
    sleeps: list[float] = []
    retry = RetryPolicy(max_retries=1, backoff_base=0.001)
    with SmsWwClient(API, token=TOKEN, retry=retry, sleep=sleeps.append) as client:
        assert client.get_message(MESSAGE["id"]).id == MESSAGE["id"]
    assert sleeps == [2.0]


async def test_a_rate_limit_paces_concurrent_requests(httpx_mock: Any) -> None:
    starts: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        starts.append(time.monotonic())
        return httpx.Response(200, json={"data": MESSAGE})

    httpx_mock.add_callback(answer, is_reusable=True)
    async with AsyncSmsWwClient(API, token=TOKEN, rate_limiter=RateLimiter(40)) as client:
        before = time.monotonic()
        await asyncio.gather(*(client.get_message(MESSAGE["id"]) for _ in range(9)))
    # The n-th start is not before its slot, n/40 s after the first could start. Measured from before
    # the first, not between neighbours: a busy machine can start one request late and the next on time.
    assert all(start >= before + n / 40 - 0.005 for n, start in enumerate(sorted(starts)))


def test_the_rate_limit_extra_gives_every_client_of_the_connection_one_gate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_connection(monkeypatch, "smsww_paced", host=API, password=TOKEN, extra={"rate_limit": "25"})
    one, two = SmsWwHook("smsww_paced"), SmsWwHook("smsww_paced")
    try:
        gate = one.client._plan.rate_limiter
        assert gate is two.client._plan.rate_limiter
        assert gate.interval == pytest.approx(0.04)
        assert gate is shared_rate_limiter("smsww_paced", API, 25)
    finally:
        one.close()
        two.close()


@pytest.mark.parametrize("bad", ["fast", "0", -3])
def test_a_bad_rate_limit_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch, bad: Any) -> None:
    set_connection(monkeypatch, "smsww_bad_rate", host=API, password=TOKEN, extra={"rate_limit": bad})
    with pytest.raises(SmsWwValidationError, match="rate_limit"):
        SmsWwHook("smsww_bad_rate").client  # noqa: B018
