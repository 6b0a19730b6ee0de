"""A minimal fake of the SMS API in a child process, for the throughput benchmarks (a helper, not a
benchmark): raw asyncio HTTP/1.1 with keep-alive, no framework, so that the server is not the
bottleneck and a run measures the client.

Why not the sandbox: the sandbox validates and prices like the gateway (FastAPI, pydantic, a lock),
about 1 ms of CPU per request; on a 2-core machine shared with the client it caps a concurrent run and
the ratio then measures the machine. This server answers in ~0.1 ms and adds the simulated network and
gateway latency with ``loop.call_later`` (no CPU while waiting). Correctness of the provider against
the gateway's rules is the sandbox's and the tests' business, not this file's.

Routes: ``POST /{WW,IT,ES}-messages`` (201, a Message; a real send is stored and counted per
recipient, a dry run only counted), ``GET /messages/{id}``, ``GET /messages?skip&limit`` (newest
first), and for the parent ``GET /__stats`` (accepted, duplicates, dry runs, requests, CPU seconds)
and ``POST /__reset``. Serves on 127.0.0.1 only; prints ``{"url", "pid"}`` and stops when stdin closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from typing import Any

REASONS = {200: "OK", 201: "Created", 404: "Not Found", 422: "Unprocessable Entity"}


class State:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.messages: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        self.per_recipient: Counter[str] = Counter()
        self.dry_runs = 0
        self.requests: Counter[str] = Counter()
        self.ids = itertools.count(1)

    def handle(self, method: str, target: str, body: bytes) -> tuple[int, Any]:
        path, _, query = target.partition("?")
        if path.startswith("/__"):
            if path == "/__reset":
                self.reset()
                return 200, {"ok": True}
            counts = self.per_recipient
            return 200, {
                "accepted": sum(counts.values()),
                "recipients": len(counts),
                "duplicates": sum(1 for n in counts.values() if n > 1),
                "dry_runs": self.dry_runs,
                "requests": dict(self.requests),
                "cpu": time.process_time(),
            }
        route = "/messages/{id}" if path.startswith("/messages/") else path
        self.requests[f"{method} {route}"] += 1
        if method == "POST" and path.endswith("-messages"):
            return self.send(json.loads(body))
        if method == "GET" and path == "/messages":
            params = dict(p.partition("=")[::2] for p in query.split("&") if p)
            skip, limit = int(params.get("skip", 0)), int(params.get("limit", 100))
            newest = self.order[::-1][skip : skip + limit]
            return 200, {"data": [self.messages[i] for i in newest]}
        if method == "GET" and route == "/messages/{id}":
            found = self.messages.get(path.rsplit("/", 1)[-1])
            return (200, {"data": found}) if found else (404, {"code": 404, "message": "Message not found"})
        return 404, {"code": 404, "message": "no such route"}

    def send(self, body: dict[str, Any]) -> tuple[int, Any]:
        options = body.get("options") or {}
        dry = bool(options.get("dryRun"))
        message = {
            "id": f"{next(self.ids):024x}",
            "state": "NEW",
            "sender": body.get("sender") or "Openapi",
            "recipient": body["recipient"],
            "message": body["message"],
            "encoding": "GSM-7",
            "messageCount": 1,
            "price": 0.0,
            "totalPrice": 0.0,
            "blocklisted": False,
            "options": {"dryRun": dry, "failOnMultipleMessages": bool(options.get("failOnMultipleMessages"))},
            "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        if dry:
            self.dry_runs += 1
        else:
            self.messages[message["id"]] = message
            self.order.append(message["id"])
            self.per_recipient[body["recipient"]] += 1
        return 201, {"data": message}


class Connection(asyncio.Protocol):
    """HTTP/1.1 with keep-alive and Content-Length bodies: what httpx and requests send."""

    def __init__(self, state: State, latency: float) -> None:
        self.state, self.latency = state, latency
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            method, target, _ = head[0].split(" ", 2)
            status, payload = self.state.handle(method, target, body)
            raw = json.dumps(payload).encode()
            response = (
                f"HTTP/1.1 {status} {REASONS.get(status, 'OK')}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(raw)}\r\n\r\n"
            ).encode() + raw
            if self.latency and not target.startswith("/__"):
                asyncio.get_running_loop().call_later(self.latency, self._write, response)
            else:
                self._write(response)

    def _write(self, response: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(response)


async def _serve(latency: float) -> None:
    state = State()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(state, latency), "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"url": f"http://127.0.0.1:{port}", "pid": os.getpid()}), flush=True)
    stop = asyncio.Event()
    threading.Thread(
        target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)), daemon=True
    ).start()
    async with server:
        await stop.wait()


class FakeGateway:
    """The parent's handle: starts the child, ``url``, ``conn_json``, :meth:`stats`, :meth:`reset`."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> FakeGateway:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, str(self.latency)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = json.loads(self.proc.stdout.readline())["url"]
        if not self.url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the fake gateway is not on loopback: {self.url}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()  # type: ignore[union-attr]
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    @property
    def conn_json(self) -> str:
        return json.dumps({"conn_type": "smsww", "host": self.url, "password": "bench-token"})

    def _call(self, method: str, path: str) -> Any:
        request = urllib.request.Request(
            self.url + path, method=method, data=b"" if method == "POST" else None
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        return dict(self._call("GET", "/__stats"))

    def reset(self) -> None:
        self._call("POST", "/__reset")

    def cpu(self) -> float:
        return float(self.stats()["cpu"])


if __name__ == "__main__":
    asyncio.run(_serve(float(sys.argv[1]) if len(sys.argv) > 1 else 0.0))
