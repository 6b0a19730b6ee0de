"""The provider's client against the sandbox, in process and over a loopback socket: send, get, list,
dry run, error mapping, token minting, retries on 429 and 5xx, uncertain real sends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_smsww._http.auth import TokenMinter
from airflow_provider_smsww._http.client import AsyncSmsWwClient, RetryPolicy, SmsWwClient
from airflow_provider_smsww.exceptions import (
    SmsWwAuthError,
    SmsWwBlocklistedError,
    SmsWwInsufficientCreditError,
    SmsWwNotFoundError,
    SmsWwRateLimitError,
    SmsWwSendUncertainError,
    SmsWwServerError,
    SmsWwTransportError,
    SmsWwValidationError,
)
from airflow_provider_smsww.models import MessageState, SendRequest
from airflow_provider_smsww.sandbox.server import (
    InProcessSandbox,
    SandboxHandle,
    in_process_sandbox,
    run_sandbox,
)

US = "+14155550123"
IT = "+393331234567"
FAST = RetryPolicy(max_retries=3, backoff_base=0.001, backoff_max=0.01)


@pytest.fixture(params=["in-process", pytest.param("loopback", marks=pytest.mark.integration)])
def box(request: pytest.FixtureRequest) -> Iterator[SandboxHandle]:
    runner: Any = in_process_sandbox if request.param == "in-process" else run_sandbox
    with runner(pending_after=0, delivered_after=0.05) as handle:
        yield handle


def client_kwargs(box: SandboxHandle, *, sync: bool = True) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"retry": FAST}
    if isinstance(box, InProcessSandbox):
        kwargs["transport"] = box.transport if sync else box.async_transport
    return kwargs


@contextmanager
def client(box: SandboxHandle, **extra: Any) -> Iterator[SmsWwClient]:
    with SmsWwClient(box.url, token=box.token, **{**client_kwargs(box), **extra}) as c:
        yield c


def test_send_get_and_list(box: SandboxHandle) -> None:
    with client(box) as c:
        sent = c.send_message(SendRequest(recipient=IT, message="Hello", sender="MyCompany"), "IT")
        assert sent.state == MessageState.NEW
        assert sent.total_price == Decimal("0.065")
        box.wait_for(lambda: c.get_message(sent.id).is_final, timeout=5)
        assert c.get_message(sent.id).state == MessageState.DELIVERED
        for i in range(4):
            c.send_message(SendRequest(recipient=US, message=f"n{i}"))
        listed = list(c.list_messages(page_size=2))
        assert len(listed) == 5
        assert listed[-1].id == sent.id  # newest first
        assert [m.id for m in c.list_messages(page_size=2, max_items=2)] == [m.id for m in listed[:2]]


def test_dry_run_through_the_client(box: SandboxHandle) -> None:
    with client(box) as c:
        estimate = c.send_message(
            SendRequest(recipient=IT, message="x" * 200, options={"dry_run": True}), "IT"
        )
        assert estimate.message_count == 2
        assert box.sandbox.messages == {}
        assert box.sandbox.dry_runs == 1


@pytest.mark.parametrize(
    ("body", "region", "error", "code"),
    [
        ({"recipient": "+390000000000", "message": "x"}, "WW", SmsWwValidationError, 2011),
        ({"recipient": US, "message": "x"}, "ES", SmsWwValidationError, 2013),
        ({"recipient": US, "message": "x", "sender": "1234"}, "WW", SmsWwValidationError, 2024),
        (
            {"recipient": US, "message": "forbiddenword", "options": {"dry_run": True}},
            "WW",
            SmsWwValidationError,
            2044,
        ),
    ],
)
def test_errors_map_to_exceptions(
    box: SandboxHandle, body: dict[str, Any], region: Any, error: type[Exception], code: int
) -> None:
    with client(box) as c, pytest.raises(error) as caught:
        c.send_message(SendRequest(**body), region)
    assert getattr(caught.value, "code", None) == code
    assert box.token not in str(caught.value)


def test_account_errors_map_to_exceptions(box: SandboxHandle) -> None:
    with client(box) as c:
        with pytest.raises(SmsWwNotFoundError):
            c.get_message("633aabe3e4a9a0e69811ad7f")
        with pytest.raises(SmsWwInsufficientCreditError):
            c.send_message(SendRequest(recipient=US, message="x" * 20_000))
        with pytest.raises(SmsWwValidationError) as forbidden:
            c.send_message(SendRequest(recipient=US, message="forbiddenword"))
        assert forbidden.value.code == 2044
        with pytest.raises(SmsWwBlocklistedError):
            c.send_message(SendRequest(recipient=US, message="fine"))
    with SmsWwClient(box.url, token="wrong", **client_kwargs(box)) as bad, pytest.raises(SmsWwAuthError):
        bad.get_message("633aabe3e4a9a0e69811ad7f")


def test_token_minting(box: SandboxHandle) -> None:
    config = box.sandbox.config
    minted: list[str] = []
    minter = TokenMinter(box.url, config.email, config.api_key, ["*:*/*"], on_token=minted.append)
    with SmsWwClient(box.url, minter=minter, **client_kwargs(box)) as c:
        c.send_message(SendRequest(recipient=US, message="x"))
        assert list(c.list_messages())
    assert len(minted) == 1
    assert minted[0] in box.sandbox.tokens
    wrong = TokenMinter(box.url, config.email, "nope", ["*:*/*"])
    with SmsWwClient(box.url, minter=wrong, **client_kwargs(box)) as c, pytest.raises(SmsWwAuthError):
        c.get_message("633aabe3e4a9a0e69811ad7f")


def test_token_minting_with_data_envelope() -> None:
    with in_process_sandbox(oauth_envelope=True) as box:
        config = box.sandbox.config
        minter = TokenMinter(box.url, config.email, config.api_key, ["GET:*/messages*"])
        with SmsWwClient(box.url, minter=minter, transport=box.transport, retry=FAST) as c:
            assert list(c.list_messages()) == []


def test_retries_429_then_succeeds_for_real_sends(box: SandboxHandle) -> None:
    box.faults.inject("429=0.01", "429=0.01", path="/WW-messages")
    with client(box) as c:
        sent = c.send_message(SendRequest(recipient=US, message="x"))
    assert list(box.sandbox.messages) == [sent.id]
    assert [r[2] for r in box.sandbox.requests] == [429, 429, 201]


def test_rate_limit_exhausted(box: SandboxHandle) -> None:
    box.faults.inject(*["429=0.01"] * 4, path="/messages")
    with client(box) as c, pytest.raises(SmsWwRateLimitError) as caught:
        c.get_message("633aabe3e4a9a0e69811ad7f")
    assert caught.value.retry_after == pytest.approx(0.01)


def test_gets_and_dry_runs_retry_5xx_and_drops(box: SandboxHandle) -> None:
    with client(box) as c:
        sent = c.send_message(SendRequest(recipient=US, message="x"))
        box.faults.inject("503", "drop-before", "500-after", path="/messages", method="GET")
        assert c.get_message(sent.id).id == sent.id
        box.faults.inject("503", "drop-after", path="/WW-messages")
        c.send_message(SendRequest(recipient=US, message="x", options={"dry_run": True}))
        box.faults.inject(*["503"] * 4, path="/messages")
        with pytest.raises(SmsWwServerError):
            c.get_message(sent.id)
        box.faults.inject(*["drop-before"] * 4, path="/messages")
        with pytest.raises(SmsWwTransportError):
            c.get_message(sent.id)
    assert len(box.sandbox.messages) == 1


@pytest.mark.parametrize(
    ("fault", "stored"), [("503", 0), ("503-after", 1), ("drop-before", 0), ("drop-after", 1)]
)
def test_uncertain_real_sends_are_not_retried(box: SandboxHandle, fault: str, stored: int) -> None:
    box.faults.inject(fault, path="/WW-messages")
    with client(box) as c, pytest.raises(SmsWwSendUncertainError):
        c.send_message(SendRequest(recipient=US, message="x"))
    assert len(box.sandbox.messages) == stored  # one request only: never a duplicate
    assert len(box.sandbox.requests) == 1


async def test_async_client(box: SandboxHandle) -> None:
    config = box.sandbox.config
    minter = TokenMinter(box.url, config.email, config.api_key, ["*:*/*"])
    async with AsyncSmsWwClient(box.url, minter=minter, **client_kwargs(box, sync=False)) as c:
        sent = await c.send_message(SendRequest(recipient=US, message="hello"))
        assert (await c.get_message(sent.id)).id == sent.id
        assert [m.id async for m in c.list_messages(page_size=1)] == [sent.id]
        box.faults.inject("drop-after", path="/WW-messages")
        with pytest.raises(SmsWwSendUncertainError):
            await c.send_message(SendRequest(recipient=US, message="again"))
        with pytest.raises(SmsWwNotFoundError):
            await c.get_message("633aabe3e4a9a0e69811ad7f")
    assert box.sandbox.per_recipient() == {US: 2}
