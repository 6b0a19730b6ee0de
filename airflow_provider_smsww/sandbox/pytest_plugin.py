"""pytest plugin registered by the package (entry point ``pytest11``): sandbox fixtures for DAG tests.

It loads in every pytest run of everyone who installs the provider, so it imports nothing heavy at
module level (FastAPI, uvicorn, httpx and the sandbox are imported inside the fixtures) and defines
fixtures only.

- ``smsww_sandbox``: a sandbox served on 127.0.0.1 (a free port), with ``AIRFLOW_CONN_SMSWW_DEFAULT``
  set to its connection for the test. One server per test session, reset before each test (messages,
  tokens, credit, logs, queued faults); a test that needs other settings calls ``run_sandbox`` itself.
  The handle reads the money side too: ``.wallet()``, ``.transactions()``, ``.token_stats(token)`` (the
  same data as ``GET /wallet``, ``GET /wallet/transactions`` and ``GET /tokens/{token}``).
- ``smsww_sandbox_app``: the same sandbox in process, no socket: ``.transport`` for
  ``SmsWwClient(transport=...)``, ``.async_transport`` for ``AsyncSmsWwClient(transport=...)``, plus
  ``.app``, ``.sandbox``, ``.faults``, ``.url``, ``.token``. A new one per test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow_provider_smsww.sandbox.server import InProcessSandbox, SandboxHandle


@pytest.fixture(scope="session")
def _smsww_sandbox_server() -> Iterator[SandboxHandle]:
    from airflow_provider_smsww.sandbox.server import run_sandbox

    with run_sandbox() as server:
        yield server


@pytest.fixture
def smsww_sandbox(_smsww_sandbox_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxHandle]:
    """A running sandbox on loopback; the Airflow connection ``smsww_default`` points at it."""
    server: SandboxHandle = _smsww_sandbox_server
    server.reset()
    monkeypatch.setenv("AIRFLOW_CONN_SMSWW_DEFAULT", server.conn_json)
    yield server
    server.reset()


@pytest.fixture
def smsww_sandbox_app() -> Iterator[InProcessSandbox]:
    """The sandbox app in process, reached through httpx transports (no socket)."""
    from airflow_provider_smsww.sandbox.server import in_process_sandbox

    with in_process_sandbox() as sandbox:
        yield sandbox
