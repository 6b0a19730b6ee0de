"""The receipts endpoint: ``POST /smsww/receipts`` on Airflow's API server, where the gateway posts each
message's state changes (docs/receipts.md).

Airflow does not authenticate a plugin's app, so this one checks every caller itself: a receipt with no
credential is answered 401, one whose credential does not match its message (a wrong secret, another
message's header, an unknown connection) 403, and neither records anything. A genuine receipt is
recorded once as an asset event (:mod:`.events`) and answered 202 at once, so the gateway does not retry
for nothing. Bodies are bounded (:data:`MAX_BODY_BYTES`) and read as JSON or as a form with the JSON
under one field (the callback's ``method`` POST). No number, secret or header reaches a log.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from airflow_provider_smsww.receipts import RECEIPT_HEADER, Origin, digits, is_genuine

log = logging.getLogger(__name__)

#: A message rendered with its callback is about 1 KiB; anything past this is not a receipt.
MAX_BODY_BYTES = 64 * 1024
#: How long a connection's receipts secret is reused before it is read again (a rotation takes effect
#: within this many seconds).
SECRET_TTL = 30.0
#: Connections whose secret is kept at most: callers name them, so the cache must not grow with them.
SECRET_CACHE_SIZE = 256


@dataclass(frozen=True)
class Receipt:
    """A receipt once parsed: the message as the gateway rendered it, and its callback's ``custom``."""

    message: Mapping[str, Any]
    custom: Mapping[str, Any]

    @classmethod
    def of(cls, payload: Any) -> Receipt:
        """The receipt of a body: ``{"data": Message, "custom": {...}}`` (the sandbox's and the likely
        shape), or the message alone with ``custom`` inside its echoed ``callback`` (the spec does not
        say which: both are read).

        :raises HTTPException: 400 when it is neither.
        """
        if not isinstance(payload, Mapping):
            raise HTTPException(400, "A receipt is a JSON object")
        message = payload.get("data", payload)
        if not isinstance(message, Mapping) or not isinstance(message.get("id"), str):
            raise HTTPException(400, "A receipt carries the message, with its id")
        custom = payload.get("custom")
        if not isinstance(custom, Mapping):
            callback = message.get("callback")
            custom = callback.get("custom") if isinstance(callback, Mapping) else None
        return cls(message, custom if isinstance(custom, Mapping) else {})

    def numbers(self) -> list[str]:
        """The recipient as the gateway may write it: as given, and with the international prefix."""
        recipient = digits(str(self.message.get("recipient") or ""))
        prefix = digits(str(self.message.get("internationalPrefix") or ""))
        return [recipient] if recipient.startswith(prefix) else [recipient, prefix + recipient]


class Secrets:
    """Each connection's ``receipts_secret``, read from Airflow (secrets backends, then the metadata
    database) and kept :data:`SECRET_TTL` seconds."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, str | None]] = {}

    def get(self, conn_id: str) -> str | None:
        """The secret; None when the connection does not exist, is not an SMS Worldwide one, or has
        none (a receipt naming it is refused like a wrong credential)."""
        now = time.monotonic()
        cached = self._cache.get(conn_id)
        if cached is not None and now - cached[0] < SECRET_TTL:
            return cached[1]
        secret = _read_secret(conn_id)
        if len(self._cache) >= SECRET_CACHE_SIZE:
            self._cache.clear()
        self._cache[conn_id] = (now, secret)
        return secret


def _read_secret(conn_id: str) -> str | None:
    from airflow.models.connection import Connection

    from airflow_provider_smsww import CONN_TYPE

    try:
        with warnings.catch_warnings():  # 3.3 points tasks at the SDK's; the API server has no task context
            warnings.simplefilter("ignore", DeprecationWarning)
            conn = Connection.get_connection_from_secrets(conn_id)
    except Exception:  # AirflowNotFoundException, or a backend failing: no secret, no receipt
        return None
    secret = conn.extra_dejson.get("receipts_secret") if conn.conn_type == CONN_TYPE else None
    return secret if isinstance(secret, str) and secret else None


async def read_body(request: Request) -> bytes:
    """The body, refused with 413 past :data:`MAX_BODY_BYTES` (before reading it when the length is
    announced, else as soon as it grows past)."""
    announced = request.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > MAX_BODY_BYTES:
        raise HTTPException(413, f"A receipt is at most {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise HTTPException(413, f"A receipt is at most {MAX_BODY_BYTES} bytes")
    return bytes(body)


def parse_body(body: bytes, content_type: str) -> Any:
    """A JSON body, or a form whose field holds the JSON (the first field that does).

    :raises HTTPException: 400 when no JSON object can be read.
    """
    try:
        if "application/x-www-form-urlencoded" in content_type:
            fields = parse_qs(body.decode(), keep_blank_values=True)
            for values in fields.values():
                for value in values:
                    if value.lstrip().startswith("{"):
                        return json.loads(value)
            raise HTTPException(400, "No field of the form holds the receipt's JSON")
        return json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(400, "The body is not JSON") from None


def check(receipt: Receipt, header: str | None, secrets: Secrets) -> Origin:
    """The origin of a genuine receipt.

    :raises HTTPException: 401 without a credential; 403 when it does not match (the same answer for an
        unknown connection, a wrong secret and another message's header).
    """
    if not header:
        raise HTTPException(401, f"A receipt needs its {RECEIPT_HEADER} header", {"WWW-Authenticate": "HMAC"})
    try:
        origin = Origin.of_custom(receipt.custom)
    except ValueError:
        raise HTTPException(403, "The receipt's credential does not match") from None
    secret = secrets.get(origin.conn_id)
    if secret is None or not is_genuine(secret, header, receipt.custom, receipt.numbers()):
        log.warning("Receipt for message %r refused: its credential does not match", receipt.message["id"])
        raise HTTPException(403, "The receipt's credential does not match")
    return origin


async def receive(request: Request, secrets: Secrets) -> dict[str, Any]:
    """Check a receipt and record it (:mod:`.events`); the route of ``POST /smsww/receipts``."""
    receipt = Receipt.of(parse_body(await read_body(request), request.headers.get("content-type", "")))
    header = request.headers.get(RECEIPT_HEADER)
    return {"recorded": await run_in_threadpool(_accept, receipt, header, secrets)}


def _accept(receipt: Receipt, header: str | None, secrets: Secrets) -> bool:
    """:func:`check`, then record: both read the database, so they share one worker thread."""
    from airflow_provider_smsww.plugins.events import record

    return record(receipt.message, check(receipt, header, secrets))
