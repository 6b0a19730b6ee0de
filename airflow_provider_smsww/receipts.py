"""Delivery receipts: each message's ``callback`` points at the provider's receipts endpoint (the plugin
on Airflow's API server), names where the message came from, and carries a credential of its own.

Switched on by the connection's ``receipts_url`` and ``receipts_secret`` extras (docs/receipts.md). The
credential is an HMAC-SHA256, under that secret, of the callback's ``custom`` (the origin: connection,
DAG, run, task, map index, asset; and the message's idempotency key when it has one) and of the
recipient's number: a receipt cannot be forged without the secret, and one message's header replayed on
another message's receipt does not match. Only the sender and the endpoint use this module.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: The header that carries a message's credential.
RECEIPT_HEADER = "X-Smsww-Receipt"
#: Where the callback's ``custom`` names the message's origin.
ORIGIN_FIELD = "smsww_receipt"
#: The asset each receipt becomes an event of, unless the connection's ``receipts_asset`` names another.
DEFAULT_ASSET = "smsww_receipts"
#: The gateway retries a callback that did not get a 2xx (the spec allows 0 to 5).
RECEIPT_RETRIES = 3
_VERSION = "v1"


@dataclass(frozen=True)
class ReceiptSettings:
    """The connection's receipt extras: where the gateway posts, the secret, the asset."""

    url: str
    secret: str = field(repr=False)
    asset: str = DEFAULT_ASSET

    @classmethod
    def of_extra(cls, extra: Mapping[str, Any]) -> ReceiptSettings | None:
        """The settings, or None when receipts are off (no ``receipts_url``).

        :param extra: the connection's extras.
        :raises ValueError: ``receipts_url`` without a ``receipts_secret`` of 32 characters or more.
        """
        url = str(extra.get("receipts_url") or "").strip()
        if not url:
            return None
        secret = str(extra.get("receipts_secret") or "")
        if len(secret) < 32:
            raise ValueError(
                "receipts_url is set but receipts_secret is missing or shorter than 32 characters: "
                "set it to a random string (python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return cls(url, secret, str(extra.get("receipts_asset") or DEFAULT_ASSET))


@dataclass(frozen=True)
class Origin:
    """Where a message came from: what a receipt names, and what its asset event's ``extra`` holds."""

    conn_id: str
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    asset: str

    def as_custom(self) -> dict[str, Any]:
        return {
            "conn": self.conn_id,
            "dag": self.dag_id,
            "run": self.run_id,
            "task": self.task_id,
            "map": self.map_index,
            "asset": self.asset,
        }

    @classmethod
    def of_custom(cls, custom: Mapping[str, Any]) -> Origin:
        """The origin a receipt's ``custom`` names.

        :raises ValueError: it names none, or not in the shape :meth:`as_custom` writes.
        """
        raw = custom.get(ORIGIN_FIELD)
        if not isinstance(raw, Mapping):
            raise ValueError(f"custom.{ORIGIN_FIELD} is missing")
        try:
            texts = [raw[name] for name in ("conn", "dag", "run", "task", "asset")]
            map_index = raw["map"]
        except KeyError as exc:
            raise ValueError(f"custom.{ORIGIN_FIELD} has no {exc.args[0]}") from None
        if not all(isinstance(t, str) for t in texts) or type(map_index) is not int:
            raise ValueError(f"custom.{ORIGIN_FIELD} is malformed")
        conn_id, dag_id, run_id, task_id, asset = texts
        return cls(conn_id, dag_id, run_id, task_id, map_index, asset)


@dataclass(frozen=True)
class ReceiptStamp:
    """What a batch needs to stamp each message: the settings and the origin of its messages."""

    settings: ReceiptSettings
    origin: Origin

    def callback(self) -> dict[str, Any]:
        """The callback every message of the batch starts from (the header is added per message)."""
        custom = {ORIGIN_FIELD: self.origin.as_custom()}
        return {"url": self.settings.url, "method": "JSON", "retry": RECEIPT_RETRIES, "custom": custom}

    def header(self, custom: Mapping[str, Any], recipient: str) -> dict[str, str]:
        """The credential header of the message to ``recipient`` whose callback carries ``custom``."""
        return {RECEIPT_HEADER: credential(self.settings.secret, custom, recipient)}


def credential(secret: str, custom: Mapping[str, Any], recipient: str) -> str:
    """The HMAC of ``custom`` (canonical JSON) and the number's digits under ``secret``."""
    material = json.dumps([custom, digits(recipient)], sort_keys=True, separators=(",", ":"))
    mac = hmac.new(secret.encode(), material.encode(), hashlib.sha256).hexdigest()
    return f"{_VERSION}={mac}"


def is_genuine(secret: str, header: str, custom: Mapping[str, Any], numbers: list[str]) -> bool:
    """Whether ``header`` is the credential of ``custom`` and one way of writing the receipt's number,
    compared in constant time.

    :param numbers: the receipt's number as the gateway may write it (with and without the prefix).
    """
    matches = [hmac.compare_digest(header.encode(), credential(secret, custom, n).encode()) for n in numbers]
    return any(matches)


def digits(number: str) -> str:
    """The number's digits only: ``+39 333-123 4567`` and ``393331234567`` are one number."""
    return re.sub(r"\D", "", number)


def mask_number(number: str, prefix: str = "") -> str:
    """The number with all but its country prefix and last three digits hidden: ``+39******567``.

    :param number: the number, in any writing.
    :param prefix: its international prefix (``39``), when known.
    """
    all_digits = digits(number)
    head = digits(prefix) if all_digits.startswith(digits(prefix)) else ""
    hidden = max(len(all_digits) - len(head) - 3, 0)
    return f"+{head}{'*' * hidden}{all_digits[len(head) + hidden :]}"
