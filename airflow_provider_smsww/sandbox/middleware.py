"""The outermost ASGI layer around the sandbox's app: it records every request as answered, answers 429
beyond the account's rate limit (:mod:`.ratelimit`, when one is set), injects the faults :mod:`.faults`
chooses, and starts the callback runner on the first request (a server whose
lifespan never ran still delivers callbacks).

'Before' faults answer without calling the app; 'after' faults let the app process (and store) the
request, swallow its answer and replace it with a 5xx or a dropped connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from airflow_provider_smsww.sandbox.callbacks import CallbackRunner
from airflow_provider_smsww.sandbox.faults import (
    FAULT_HEADER,
    DroppedConnection,
    Fault,
    FaultInjector,
    FaultRecord,
    FaultSyntaxError,
)
from airflow_provider_smsww.sandbox.state import Sandbox

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]


class FaultMiddleware:
    """Records every request, injects faults, starts the callback runner.

    :param app: the ASGI app it wraps.
    :param sandbox: whose ``requests`` log gets one ``(method, path, status)`` per request.
    :param injector: which fault, if any, each request gets.
    :param runner: the callback runner to start.
    """

    def __init__(
        self, app: Any, *, sandbox: Sandbox, injector: FaultInjector, runner: CallbackRunner
    ) -> None:
        self.app = app
        self.sandbox = sandbox
        self.injector = injector
        self.runner = runner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.runner.ensure_started()
        method, path = scope["method"], scope["path"]
        limit = self.sandbox.account_rate_limit
        retry_after = limit.admit(path) if limit is not None else None
        if retry_after is not None:
            await self._too_many(send, scope, retry_after)
            return
        try:
            chosen = self.injector.choose(method, path, _fault_header(scope))
        except FaultSyntaxError as exc:
            await self._answer(send, scope, 400, {"code": 400, "message": f"{FAULT_HEADER}: {exc}"})
            return
        fault, source = chosen if chosen else (None, "")
        if fault is not None and fault.latency:
            await asyncio.sleep(fault.latency)
        if fault is None or fault.action is None:
            await self._pass(scope, receive, send)
            if fault is not None and fault.latency:
                self.injector.record(FaultRecord(method, path, fault.label, source))
            return
        await self._inject(fault, source, scope, receive, send)

    async def _inject(self, fault: Fault, source: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer with the fault's action (after the app processed the request, for an 'after' fault).

        :param fault: the fault chosen for this request; its action is set.
        :param source: where the fault came from (header, script or rate), for the log.
        """
        method, path = scope["method"], scope["path"]
        message_id = None
        if fault.after:
            status, body = await self._capture(scope, receive)
            message_id = _data_id(body) if status < 300 else None
        self.injector.record(FaultRecord(method, path, fault.label, source, message_id))
        if fault.action == "drop":
            await self._drop(send, scope, fault)
        elif fault.action == "429":
            await self._too_many(send, scope, fault.retry_after or 0)
        else:
            error = {"code": fault.status, "message": "Sandbox injected server error."}
            await self._answer(send, scope, fault.status, error)

    async def _too_many(self, send: Send, scope: Scope, retry_after: float) -> None:
        """Answer 429 with ``Retry-After``: an injected fault's, or the account's rate limit's.

        :param retry_after: the seconds the client should wait.
        """
        too_many = {"code": 429, "message": "Too many requests."}
        await self._answer(send, scope, 429, too_many, [(b"retry-after", f"{retry_after:g}".encode())])

    async def _drop(self, send: Send, scope: Scope, fault: Fault) -> None:
        """Send a head that promises a body, then break the connection (logged with status 0).

        :param fault: the drop fault, named in the exception.
        """
        self._seen(scope, 0)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        raise DroppedConnection(f"sandbox fault {fault.label} on {scope['method']} {scope['path']}")

    async def _answer(
        self, send: Send, scope: Scope, status: int, body: dict[str, Any], headers: Headers | None = None
    ) -> None:
        """Answer in the middleware's name (the app never sees the request), then log it.

        :param status: the HTTP status.
        :param body: the JSON body.
        :param headers: headers beside the content type and length.
        """
        await _json(send, status, body, headers)
        self._seen(scope, status)

    async def _pass(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Let the app answer, and log the status it answered with."""
        status = 500

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, recording)
        self._seen(scope, status)

    async def _capture(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        """Let the app process the request; its status and body, never sent to the client."""
        status, chunks = 500, []

        async def swallow(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, swallow)
        return status, b"".join(chunks)

    def _seen(self, scope: Scope, status: int) -> None:
        """Requests seen, as answered; status 0 marks a dropped connection."""
        self.sandbox.requests.append((scope["method"], scope["path"], status))


def _fault_header(scope: Scope) -> str | None:
    """The request's ``X-Sandbox-Fault`` header, if any."""
    return next(
        (v.decode("latin-1") for k, v in scope["headers"] if k.decode("latin-1").lower() == FAULT_HEADER),
        None,
    )


async def _json(send: Send, status: int, body: dict[str, Any], headers: Headers | None = None) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _data_id(body: bytes) -> str | None:
    """The ``data.id`` of a JSON answer: the message an 'after' fault let the app store."""
    try:
        data = json.loads(body).get("data")
    except (ValueError, AttributeError):
        return None
    return data.get("id") if isinstance(data, dict) else None
