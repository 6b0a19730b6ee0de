"""Constants and small helpers shared by the sandbox tests (imported; fixtures live in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
