"""Delivers the sandbox's callbacks: one POST per state change, with retries, recorded for tests.

The runner is an asyncio task in the event loop that serves the app (uvicorn's, or the loop of an
in-process transport). It sleeps until the next transition is due (at most ``POLL_CAP`` seconds, so an
injected clock that tests move by hand is noticed) or until :meth:`Sandbox.advance` wakes it, then
delivers every queued transition. Deliveries of one message run in order (PENDING before DELIVERED).

Shape (unconfirmed by the spec, the sandbox's assumption): ``{"data": <Message>, "custom": {...}}``.
``method`` JSON posts it as ``application/json``; POST posts a form with the JSON string under
``field`` (default ``data``). Header values are sent, and echoed in the message like a GET shows it,
but never logged nor shown in a :class:`CallbackAttempt`'s repr. A call is retried
``retry`` times (so ``1 + retry`` attempts at most) on a non-2xx answer or a connection error, after
``callback_backoff * 2**n`` seconds. Only loopback hosts are called unless ``callback_hosts`` says
otherwise: a sandbox must never send traffic off the machine by accident (the spec's example URL is
``https://www.mysite.com/myEndpoint``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from airflow_provider_smsww.sandbox.messages import Transition
from airflow_provider_smsww.sandbox.state import Sandbox

log = logging.getLogger(__name__)

POLL_CAP = 0.25


@dataclass(frozen=True)
class CallbackAttempt:
    """One delivery attempt. ``status`` is the receiver's HTTP status, ``error`` the failure otherwise."""

    message_id: str
    state: str
    url: str
    method: str
    attempt: int  # 1-based
    status: int | None
    error: str | None
    # The message as the gateway renders it, callback header values included: kept out of repr so that
    # a failing assertion on the attempts does not print them.
    payload: dict[str, Any] = field(repr=False)
    #: Seconds from the attempt's start to the receiver's answer (or the error).
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class CallbackRunner:
    """Started lazily in the loop that serves requests; :meth:`aclose` before that loop ends."""

    def __init__(self, sandbox: Sandbox, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.sandbox = sandbox
        self.transport = transport
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._event: asyncio.Event | None = None
        self._http: httpx.AsyncClient | None = None
        self._chains: dict[str, asyncio.Task[None]] = {}

    def ensure_started(self) -> None:
        """Start (or move) the runner to the running loop; cheap when already running there."""
        loop = asyncio.get_running_loop()
        if self._loop is loop and self._task is not None and not self._task.done():
            return
        self._loop = loop
        self._event = asyncio.Event()
        self._http = httpx.AsyncClient(transport=self.transport, timeout=self.sandbox.config.callback_timeout)
        self._chains = {}
        self.sandbox.wake = self._wake
        self._task = loop.create_task(self._run(), name="smsww-sandbox-callbacks")

    def _wake(self) -> None:
        loop, event = self._loop, self._event
        if loop is None or event is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(event.set)

    async def _run(self) -> None:
        assert self._event is not None
        while True:
            self.sandbox.advance()
            for transition in self.sandbox.take_callbacks():
                self._schedule(transition)
            due = self.sandbox.seconds_until_next()
            timeout = POLL_CAP if due is None else min(due, POLL_CAP)
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation that
            # meets a set event, and this loop would then outlive aclose().
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(timeout, 0.001)):
                    await self._event.wait()
            self._event.clear()

    def _schedule(self, transition: Transition) -> None:
        previous = self._chains.get(transition.message_id)
        task = asyncio.get_running_loop().create_task(self._deliver(transition, previous))
        self._chains[transition.message_id] = task

    async def _deliver(self, transition: Transition, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # in order; its failure is recorded, not raised here
        callback = self.sandbox.callback_secrets(transition.message_id)
        if not callback:
            return
        payload = {"data": transition.payload, "custom": callback.get("custom", {})}
        body = json.dumps(payload)
        if callback["method"] == "POST":
            request: dict[str, Any] = {"data": {callback["field"]: body}}
        else:
            request = {"content": body, "headers": {"Content-Type": "application/json"}}
        headers = {**callback.get("headers", {}), **request.pop("headers", {})}
        allowed = self.sandbox.config.callback_hosts
        host = urlsplit(callback["url"]).hostname or ""
        attempts = 1 + int(callback.get("retry", 0))
        for n in range(1, attempts + 1):
            status: int | None = None
            error: str | None = None
            started = time.monotonic()
            if allowed is not None and host not in allowed:
                error = "not called: the sandbox only calls back to loopback hosts"
            else:
                try:
                    assert self._http is not None
                    response = await self._http.post(callback["url"], headers=headers, **request)
                    status = response.status_code
                except httpx.HTTPError as exc:
                    error = type(exc).__name__
            record = CallbackAttempt(
                transition.message_id,
                transition.state.value,
                callback["url"],
                callback["method"],
                n,
                status,
                error,
                payload,
                time.monotonic() - started,
            )
            self.sandbox.callback_attempts.append(record)
            if record.ok or (error and status is None and error.startswith("not called")):
                return
            if n < attempts:
                await asyncio.sleep(self.sandbox.config.callback_backoff * 2 ** (n - 1))
        log.info(
            "callback for message %s (%s) failed after %d attempt(s)",
            transition.message_id,
            transition.state.value,
            attempts,
        )

    async def aclose(self) -> None:
        """Stop the runner, cancel deliveries in flight and close the HTTP client."""
        tasks = [t for t in (self._task, *self._chains.values()) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._http is not None:
            await self._http.aclose()
        self._task = None
        self._loop = None
        self._http = None
        self._chains = {}
        self.sandbox.wake = lambda: None
