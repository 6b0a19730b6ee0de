"""In-process httpx transports: the clients talk to the sandbox app without a socket.

Both the sync and the async transport hand each request to one background event loop thread
(:class:`AppThread`) that runs the app and its callback runner. One loop for everything means the
callback runner outlives any single test's event loop and shuts down cleanly, and the sync client
(``httpx.Client``) works without an event loop of its own.

A :class:`~.faults.DroppedConnection` raised by the app becomes ``httpx.RemoteProtocolError``, which is
what httpx raises when a real server closes the connection mid-response.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx

from airflow_provider_smsww.sandbox.faults import DroppedConnection

T = TypeVar("T")


class AppThread:
    """A daemon thread running an event loop in which the app is called."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._asgi = httpx.ASGITransport(app=app)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=loop.run_forever, name="smsww-sandbox-app", daemon=True
                )
                self._thread.start()
                self._loop = loop
            return self._loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Schedule ``coro`` on the app loop; an awaitable future for the calling loop."""
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._ensure()))

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 60.0) -> T:
        """Run ``coro`` on the app loop and wait for it from a thread without a running loop."""
        return asyncio.run_coroutine_threadsafe(coro, self._ensure()).result(timeout)

    async def handle(self, request: httpx.Request, body: bytes) -> httpx.Response:
        """Runs on the app loop: the whole response is read there."""
        inner = httpx.Request(request.method, request.url, headers=request.headers, content=body)
        try:
            response = await self._asgi.handle_async_request(inner)
        except DroppedConnection:
            raise httpx.RemoteProtocolError("sandbox dropped the connection", request=request) from None
        content = await response.aread()
        return httpx.Response(
            response.status_code, headers=response.headers, content=content, request=request
        )

    def shutdown(self) -> None:
        """Stop the callback runner, then the loop and its thread."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None:
            return
        runner = getattr(self.app.state, "runner", None)
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.aclose(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(10)
        loop.close()


class SyncSandboxTransport(httpx.BaseTransport):
    """For ``SmsWwClient(transport=...)``. ``close()`` is a no-op so one transport serves many
    clients; :meth:`AppThread.shutdown` ends it."""

    def __init__(self, thread: AppThread) -> None:
        self.thread = thread

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.thread.run(self.thread.handle(request, request.read()))


class AsyncSandboxTransport(httpx.AsyncBaseTransport):
    """For ``AsyncSmsWwClient(transport=...)``; works from any event loop."""

    def __init__(self, thread: AppThread) -> None:
        self.thread = thread

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        return await self.thread.submit(self.thread.handle(request, body))
