"""Shared pieces of the sandbox tests: a hand-moved clock, in-process sandboxes, a callback receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from airflow_provider_smsww.sandbox.server import InProcessSandbox, in_process_sandbox
from tests.sandbox.helpers import FakeClock, Received, Receiver


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sandbox_app(clock: FakeClock) -> Iterator[InProcessSandbox]:
    """An in-process sandbox on a fake clock (states only move when the test ticks it)."""
    with in_process_sandbox(clock=clock) as box:
        yield box


@pytest.fixture
def http(sandbox_app: InProcessSandbox) -> Iterator[httpx.Client]:
    """A plain httpx client on the in-process sandbox, authorised with its static token."""
    headers = {"Authorization": f"Bearer {sandbox_app.token}"}
    with httpx.Client(transport=sandbox_app.transport, base_url=sandbox_app.url, headers=headers) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rec = holder["r"]
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            ctype = self.headers.get("Content-Type", "")
            if ctype.startswith("application/x-www-form-urlencoded"):
                form = parse_qs(raw)
                payload = {k: json.loads(v[0]) for k, v in form.items()}
            else:
                payload = json.loads(raw)
            rec.received.append(Received(self.path, dict(self.headers), ctype, payload))
            status = rec.statuses.pop(0) if rec.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["r"] = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder["r"]
    finally:
        server.shutdown()
        server.server_close()
