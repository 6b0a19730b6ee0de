"""Constants and small helpers shared by the sandbox tests (imported; fixtures live in conftest.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

SPEC_PATH = Path(__file__).parents[2].parent / "shared/api/smsv2.openapi.json"
OAUTH_SPEC_PATH = Path(__file__).parents[2].parent / "shared/api/oauthv2.openapi.json"

#: The spec's example request (SendMessageRequest examples), sent verbatim.
SPEC_EXAMPLE = {
    "recipient": "+393331234567",
    "message": "Hello! This is a test message.",
    "sender": "MyCompany",
    "options": {"dryRun": False, "failOnMultipleMessages": False},
    "callback": {
        "method": "JSON",
        "field": "data",
        "url": "https://www.mysite.com/myEndpoint",
        "retry": 3,
        "headers": {"session_id": "9834r5fh589494"},
        "custom": {"my_custom_id": "123456789"},
    },
}

MESSAGE_FIELDS = {
    "id",
    "username",
    "state",
    "sender",
    "recipient",
    "internationalPrefix",
    "countryCode",
    "message",
    "encoding",
    "charactersCount",
    "messageCount",
    "price",
    "totalPrice",
    "blocklisted",
    "blocklistedReason",
    "options",
    "callback",
    "createdAt",
    "updatedAt",
    "sentAt",
    "deliveredAt",
    "isOtp",
}


class FakeClock:
    """The sandbox's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    content_type: str
    payload: dict[str, Any]


@dataclass
class Receiver:
    """A tiny callback receiver on 127.0.0.1: answers ``statuses`` in turn (then 200)."""

    url: str
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@contextmanager
def serve_receiver() -> Iterator[Receiver]:
    """A callback receiver served on 127.0.0.1 for as long as the block runs."""
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
