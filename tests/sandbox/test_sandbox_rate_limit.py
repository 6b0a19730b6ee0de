"""The account's rate limit (``rate_limit`` / ``smsww-sandbox --rate-limit``): a token bucket over the SMS
API's paths holding one second of requests, 429 with whole-second ``Retry-After`` beyond it, OAuth not
counted, the throttled requests in the sandbox's request log."""

from __future__ import annotations

import httpx
import pytest

from airflow_provider_smsww.sandbox.cli import parser
from airflow_provider_smsww.sandbox.server import in_process_sandbox
from tests.sandbox.helpers import FakeClock

SEND = {"recipient": "+393331234567", "message": "hi"}


def test_beyond_the_rate_limit_the_gateway_answers_429_with_retry_after() -> None:
    clock = FakeClock()
    with in_process_sandbox(clock=clock, rate_limit=4) as box:
        headers = {"Authorization": f"Bearer {box.token}"}
        with httpx.Client(transport=box.transport, base_url=box.url, headers=headers) as http:
            answers = [http.post("/WW-messages", json=SEND) for _ in range(5)]  # one second of them, and one
            assert [a.status_code for a in answers] == [201, 201, 201, 201, 429]
            assert answers[-1].headers["Retry-After"] == "1"
            assert answers[-1].json() == {"code": 429, "message": "Too many requests."}
            assert http.get("/messages").status_code == 429  # reads count against the account too
            clock.tick(0.25)  # a quarter second refills one token
            assert http.get("/messages").status_code == 200
            assert http.get("/messages").status_code == 429
            assert http.get("/wallet", auth=("sandbox@example.com", "sandbox-api-key")).status_code == 200
        assert len(box.sandbox.accepted()) == 4  # a throttled send is not stored
        assert [s for _, _, s in box.sandbox.requests].count(429) == 3
        box.reset()  # a full bucket again
        assert box.sandbox.account_rate_limit is not None
        assert box.sandbox.account_rate_limit.admit("/WW-messages") is None


def test_no_rate_limit_by_default() -> None:
    with in_process_sandbox(clock=FakeClock()) as box:
        assert box.sandbox.account_rate_limit is None


@pytest.mark.parametrize(("argv", "expected"), [([], None), (["--rate-limit", "20"], 20.0)])
def test_the_cli_takes_the_rate_limit(argv: list[str], expected: float | None) -> None:
    assert parser().parse_args(argv).rate_limit == expected
