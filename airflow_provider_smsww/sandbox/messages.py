"""The messages the sandbox keeps: the stored record (:class:`StoredMessage`), its wire shape
(:func:`render_message`), its row in the state file, and the state changes callbacks report."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from airflow_provider_smsww.models import MessageState
from airflow_provider_smsww.segments import SegmentInfo
from airflow_provider_smsww.validation import Recipient


@dataclass
class StoredMessage:
    """One message as the gateway keeps it; :meth:`Sandbox.view` renders the wire shape."""

    id: str
    seq: int
    region: str
    recipient: Recipient
    sender: str
    text: str
    segments: SegmentInfo
    options: dict[str, bool]
    callback: dict[str, Any] | None
    created: float  # clock units
    created_at: datetime
    final_state: MessageState
    state: MessageState = MessageState.NEW
    price: Decimal = Decimal(0)
    blocklisted: bool = False
    blocklisted_reason: str = ""
    updated_at: datetime | None = None
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    otp: str | None = None
    otp_options: dict[str, Any] | None = None
    history: list[MessageState] = field(default_factory=list)
    looks: int = 0  # reads by a client, for SandboxConfig.final_at_look

    def aged(self, seconds: float) -> datetime:
        """When the message is ``seconds`` old, on the wall clock."""
        return self.created_at + timedelta(seconds=seconds)

    @property
    def total_price(self) -> Decimal:
        return self.price * self.segments.parts


@dataclass(frozen=True)
class Transition:
    """A state change of a message with a callback: the payload is the message as it was then."""

    message_id: str
    state: MessageState
    payload: dict[str, Any]


def render_message(m: StoredMessage, username: str) -> dict[str, Any]:
    """The stored message as the API answers it (``MessageResponse``), every field of the spec.

    ``blocklistedReason`` is "" when not blocklisted (the spec types it as a non-nullable string); the
    callback is echoed as sent, header values included, as the spec's example shows (the client masks
    them on its side).
    """
    data: dict[str, Any] = {
        "id": m.id,
        "username": username,
        "state": m.state.value,
        "sender": m.sender,
        "recipient": m.recipient.e164,
        "internationalPrefix": m.recipient.international_prefix,
        "countryCode": m.recipient.country_code,
        "message": m.text,
        "encoding": m.segments.encoding,
        "charactersCount": m.segments.characters,
        "messageCount": m.segments.parts,
        "price": float(m.price),
        "totalPrice": float(m.total_price),
        "blocklisted": m.blocklisted,
        "blocklistedReason": m.blocklisted_reason,
        "options": dict(m.options),
        "createdAt": iso(m.created_at),
        "updatedAt": iso(m.updated_at or m.created_at),
        "sentAt": iso(m.sent_at) if m.sent_at else None,
        "deliveredAt": iso(m.delivered_at) if m.delivered_at else None,
        "isOtp": m.otp is not None,
    }
    if m.callback is not None:
        data["callback"] = {
            **m.callback,
            "headers": dict(m.callback["headers"]),
            "custom": dict(m.callback["custom"]),
        }
    if m.otp is not None:
        data["otp"] = m.otp
        data["otpOptions"] = dict(m.otp_options or {})
    return data


def new_message_id(wall: datetime, seq: int, rng: random.Random) -> str:
    """24 hex digits like a MongoDB ObjectId (the spec's example): time, random, counter. The counter
    is the message's sequence number, so ids stay unique after a restart on a state file (the seeded
    random part repeats)."""
    return f"{int(wall.timestamp()) & 0xFFFFFFFF:08x}{rng.getrandbits(40):010x}{seq & 0xFFFFFF:06x}"


def message_from_row(row: dict[str, Any], now: float, wall: datetime) -> StoredMessage:
    """A :class:`StoredMessage` from its state-file row (``asdict`` written as JSON)."""
    fields = dict(row)
    fields["recipient"] = Recipient(**row["recipient"])
    fields["segments"] = SegmentInfo(**row["segments"])
    for name in ("created_at", "updated_at", "sent_at", "delivered_at"):
        fields[name] = datetime.fromisoformat(row[name]) if row[name] else None
    fields["price"] = Decimal(row["price"])
    fields["state"] = MessageState(row["state"])
    fields["final_state"] = MessageState(row["final_state"])
    fields["history"] = [MessageState(s) for s in row["history"]]
    fields["created"] = now - (wall - fields["created_at"]).total_seconds()
    return StoredMessage(**fields)


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
