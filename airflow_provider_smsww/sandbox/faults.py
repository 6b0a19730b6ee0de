"""Fault injection: 5xx, 429 with Retry-After, latency and dropped connections, before or after the
request is processed, so reliability tests can prove that retries neither lose nor duplicate messages.

Three sources, first match wins for each request:

1. the request header ``X-Sandbox-Fault`` (any path, GET included), when ``FaultConfig.header`` is on;
2. a script queued with :meth:`FaultInjector.inject` (the next matching requests take one entry each);
3. random rates from :class:`FaultConfig`, drawn from ``random.Random(seed)`` (reproducible), only on
   ``FaultConfig.paths`` (path prefixes; the send endpoints by default, add ``/messages`` for reads).

Spec grammar (header value or script entry), comma-separated tokens:
``500`` / ``502`` / ``503`` / ``504`` (answer that 5xx before processing), ``500-after`` (process and
store, then answer the 5xx), ``429`` or ``429=SECONDS`` (rate limited, ``Retry-After`` SECONDS, default
``FaultConfig.retry_after``), ``drop-before`` / ``drop-after`` (break the connection, the request
processed or not), ``latency=SECONDS`` (sleep first; combines with the others), ``none``.

A dropped connection over a socket is an HTTP head with a Content-Length followed by an aborted body
(:class:`DroppedConnection` raised from the app: uvicorn closes the connection and httpx raises
``RemoteProtocolError``); the in-process transports turn the same exception into
``httpx.RemoteProtocolError``. Every injected fault is logged in :attr:`FaultInjector.log`.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass, field

FAULT_HEADER = "x-sandbox-fault"
SEND_PATHS = ("/WW-messages", "/IT-messages", "/ES-messages", "/otp")


class DroppedConnection(Exception):
    """Raised by the app after the response head to make the server abort the connection."""


class FaultSyntaxError(ValueError):
    pass


@dataclass
class FaultConfig:
    """Random fault rates (each a probability in [0, 1]) and where they apply."""

    rate_5xx: float = 0.0  # 5xx before processing
    rate_5xx_after: float = 0.0  # processed and stored, then 5xx
    status_5xx: int = 503
    rate_429: float = 0.0
    retry_after: float = 1.0  # seconds, in the Retry-After header of a 429
    rate_drop_before: float = 0.0
    rate_drop_after: float = 0.0
    latency: float = 0.0  # seconds added to every request on ``paths``
    paths: tuple[str, ...] = SEND_PATHS
    header: bool = True  # honour X-Sandbox-Fault
    seed: int | None = 0


@dataclass(frozen=True)
class Fault:
    """What to do to one request. ``action`` is None (only latency), 'error', '429' or 'drop'."""

    action: str | None = None
    after: bool = False
    status: int = 503
    retry_after: float | None = None
    latency: float = 0.0

    @property
    def label(self) -> str:
        parts = []
        if self.action == "error":
            parts.append(f"{self.status}" + ("-after" if self.after else ""))
        elif self.action == "429":
            parts.append(f"429={self.retry_after:g}")
        elif self.action == "drop":
            parts.append("drop-after" if self.after else "drop-before")
        if self.latency:
            parts.append(f"latency={self.latency:g}")
        return ",".join(parts) or "none"


@dataclass(frozen=True)
class FaultRecord:
    method: str
    path: str
    fault: str
    source: str  # header | script | random
    message_id: str | None = None  # the message stored before an 'after' fault


def parse_fault(spec: str, default_retry_after: float = 1.0) -> Fault:
    """Parse the grammar in the module docstring; :class:`FaultSyntaxError` when it does not fit."""
    action: str | None = None
    after = False
    status = 503
    retry_after: float | None = None
    latency = 0.0
    for token in (t.strip().lower() for t in spec.split(",")):
        if not token or token == "none":
            continue
        name, _, value = token.partition("=")
        try:
            if name == "latency":
                latency = float(value)
            elif name == "429":
                action, retry_after = "429", float(value) if value else default_retry_after
            elif name in ("drop-before", "drop-after"):
                action, after = "drop", name == "drop-after"
            elif name.removesuffix("-after").isdigit() and 500 <= int(name.removesuffix("-after")) <= 599:
                action, after, status = "error", name.endswith("-after"), int(name.removesuffix("-after"))
            else:
                raise FaultSyntaxError(f"unknown fault {token!r}")
        except ValueError as exc:
            raise FaultSyntaxError(f"bad fault {token!r}: {exc}") from None
        if latency < 0 or (retry_after is not None and retry_after < 0):
            raise FaultSyntaxError(f"bad fault {token!r}: negative seconds")
    return Fault(action, after, status, retry_after, latency)


@dataclass
class _Scripted:
    fault: Fault
    path: str | None
    method: str | None


@dataclass
class FaultInjector:
    """Chooses the fault of each request and keeps the log. Thread-safe."""

    config: FaultConfig = field(default_factory=FaultConfig)
    log: list[FaultRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._script: deque[_Scripted] = deque()
        self._rng = random.Random(self.config.seed)

    def reset(self) -> None:
        with self._lock:
            self.log.clear()
            self._script.clear()
            self._rng = random.Random(self.config.seed)

    def inject(self, *specs: str, path: str | None = None, method: str | None = None) -> None:
        """Queue one fault per spec for the next requests whose path starts with ``path`` (any when
        None) and whose method is ``method`` (any when None)."""
        faults = [parse_fault(s, self.config.retry_after) for s in specs]
        with self._lock:
            self._script.extend(_Scripted(f, path, method.upper() if method else None) for f in faults)

    def choose(self, method: str, path: str, header: str | None) -> tuple[Fault, str] | None:
        """The fault for this request and its source, or None."""
        if header is not None and self.config.header:
            return parse_fault(header, self.config.retry_after), "header"
        with self._lock:
            for entry in self._script:
                if (entry.path is None or path.startswith(entry.path)) and entry.method in (None, method):
                    self._script.remove(entry)
                    return entry.fault, "script"
            if not path.startswith(self.config.paths):
                return None
            return self._random(), "random"

    def _random(self) -> Fault:
        c = self.config
        latency = c.latency
        draw = self._rng.random()
        table = [
            (c.rate_drop_before, Fault("drop", False, latency=latency)),
            (c.rate_5xx, Fault("error", False, c.status_5xx, latency=latency)),
            (c.rate_429, Fault("429", False, retry_after=c.retry_after, latency=latency)),
            (c.rate_drop_after, Fault("drop", True, latency=latency)),
            (c.rate_5xx_after, Fault("error", True, c.status_5xx, latency=latency)),
        ]
        edge = 0.0
        for rate, fault in table:
            edge += rate
            if draw < edge:
                return fault
        return Fault(latency=latency)

    def record(self, record: FaultRecord) -> None:
        with self._lock:
            self.log.append(record)
