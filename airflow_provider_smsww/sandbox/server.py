"""Run the sandbox: over a real loopback socket (uvicorn in a thread) or in process (no socket).

:func:`run_sandbox` is what ``scripts/demo.py``, the CLI and the ``smsww_sandbox`` fixture use;
:func:`in_process_sandbox` backs the ``smsww_sandbox_app`` fixture. Both yield an object with the
same read side: ``url``, ``token``, ``conn_json``, ``sandbox`` (the state), ``faults`` (the injector),
``reset()``.

Uvicorn logs at WARNING with no access log: nothing it prints carries a token (paths have no secrets,
headers are never logged), and the deliberate connection drops of fault injection are filtered out
of its error log.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from airflow_provider_smsww.sandbox.callbacks import CallbackRunner
from airflow_provider_smsww.sandbox.config import SandboxConfig
from airflow_provider_smsww.sandbox.faults import DroppedConnection, FaultConfig, FaultInjector
from airflow_provider_smsww.sandbox.state import Sandbox

IN_PROCESS_URL = "http://sandbox.smsww.invalid"


class _HideDrops(logging.Filter):
    """Uvicorn logs an application exception with its traceback; a deliberate drop is not one."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


_FILTER = _HideDrops()


@dataclass
class SandboxHandle:
    """A running sandbox. ``app`` is the FastAPI app; ``sandbox`` its state."""

    url: str
    app: Any
    sandbox: Sandbox
    faults: FaultInjector
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def token(self) -> str:
        return self.sandbox.config.token

    @property
    def runner(self) -> CallbackRunner:
        runner: CallbackRunner = self.app.state.runner
        return runner

    @property
    def conn_json(self) -> str:
        """The ``AIRFLOW_CONN_SMSWW_DEFAULT`` value: this host and the static token."""
        return json.dumps({"conn_type": "smsww", "host": self.url, "password": self.token})

    @property
    def oauth_conn_json(self) -> str:
        """A connection that mints tokens from this sandbox's ``POST /tokens`` (email + API key)."""
        extra = {"api_key": self.sandbox.config.api_key, "oauth_host": self.url}
        return json.dumps(
            {"conn_type": "smsww", "host": self.url, "login": self.sandbox.config.email, "extra": extra}
        )

    def wallet(self) -> dict[str, Any]:
        """What ``GET /wallet`` answers (its ``data``): ``credit``, ``createdAt``, ``updatedAt``."""
        return self.sandbox.wallet()

    def transactions(self, skip: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """What ``GET /wallet/transactions`` answers: one row per charge, newest first."""
        return self.sandbox.wallet_transactions(skip, limit)

    def token_stats(self, token: str) -> dict[str, Any] | None:
        """A minted token's ``stats`` as ``GET /tokens/{token}`` shows them; ``None`` if unknown/revoked."""
        detail = self.sandbox.token_detail(token)
        return detail["stats"] if detail else None

    def reset(self) -> None:
        """Forget messages, tokens, charges, logs and queued faults (cheaper than a new server)."""
        self.sandbox.reset()
        self.faults.reset()

    def wait_for(self, predicate: Any, timeout: float = 5.0, interval: float = 0.01) -> None:
        """Block until ``predicate()`` is true (e.g. callbacks arrived); ``TimeoutError`` otherwise."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("condition not met in time")
            self.sandbox.advance()
            time.sleep(interval)


def build(
    *,
    faults: FaultConfig | None = None,
    callback_transport: httpx.AsyncBaseTransport | None = None,
    **config: Any,
) -> tuple[Any, Sandbox, FaultInjector]:
    """App, state and fault injector from keyword config (:class:`SandboxConfig` fields)."""
    from airflow_provider_smsww.sandbox.app import create_app

    sandbox = Sandbox(SandboxConfig(**config))
    injector = FaultInjector(faults or FaultConfig())
    app = create_app(sandbox, faults=injector, callback_transport=callback_transport)
    return app, sandbox, injector


@contextmanager
def run_sandbox(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    faults: FaultConfig | None = None,
    callback_transport: httpx.AsyncBaseTransport | None = None,
    log_level: str = "warning",
    **config: Any,
) -> Iterator[SandboxHandle]:
    """Serve the sandbox with uvicorn in a daemon thread; port 0 picks a free port."""
    import uvicorn

    app, sandbox, injector = build(faults=faults, callback_transport=callback_transport, **config)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            log_config=None,
            access_log=False,
            lifespan="on",
            date_header=sandbox.config.date_header,
        )
    )
    logging.getLogger("uvicorn.error").addFilter(_FILTER)
    thread = threading.Thread(target=server.run, name="smsww-sandbox-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox could not start on {host}:{port}")
            time.sleep(0.005)
        bound = server.servers[0].sockets[0].getsockname()
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        yield SandboxHandle(f"http://{shown}:{bound[1]}", app, sandbox, injector)
    finally:
        server.should_exit = True
        thread.join(10)
        sandbox.close()


@dataclass
class InProcessSandbox(SandboxHandle):
    """The app behind httpx transports, no socket: ``transport`` for ``SmsWwClient``,
    ``async_transport`` for ``AsyncSmsWwClient``."""

    thread: Any = None

    @property
    def transport(self) -> httpx.BaseTransport:
        from airflow_provider_smsww.sandbox.transport import SyncSandboxTransport

        return SyncSandboxTransport(self.thread)

    @property
    def async_transport(self) -> httpx.AsyncBaseTransport:
        from airflow_provider_smsww.sandbox.transport import AsyncSandboxTransport

        return AsyncSandboxTransport(self.thread)


@contextmanager
def in_process_sandbox(
    *,
    faults: FaultConfig | None = None,
    callback_transport: httpx.AsyncBaseTransport | None = None,
    **config: Any,
) -> Iterator[InProcessSandbox]:
    """The sandbox app in a background loop thread, reached through in-process transports."""
    from airflow_provider_smsww.sandbox.transport import AppThread

    app, sandbox, injector = build(faults=faults, callback_transport=callback_transport, **config)
    thread = AppThread(app)
    try:
        yield InProcessSandbox(IN_PROCESS_URL, app, sandbox, injector, thread=thread)
    finally:
        thread.shutdown()
        sandbox.close()
