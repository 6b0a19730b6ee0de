"""What a :class:`~airflow_provider_smsww.sandbox.state.Sandbox` is set up with (:class:`SandboxConfig`,
its defaults and magic numbers) and how it refuses a call (:class:`SandboxError`, with the spec's
texts; the codes are in :mod:`airflow_provider_smsww.exceptions`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from airflow_provider_smsww.exceptions import (
    CODE_BAD_RECIPIENT,
    CODE_FORBIDDEN_CONTENT,
    CODE_FORBIDDEN_CONTENT_REGIONAL,
    CODE_OTP_LENGTH,
    CODE_SENDER_LENGTH,
    CODE_SENDER_NUMERIC,
    CODE_USER_BLOCKLISTED,
)
from airflow_provider_smsww.models import MessageState

#: The spec's texts for its documented codes.
SPEC_TEXTS = {
    CODE_BAD_RECIPIENT: "Invalid mobile phone number. Use E.164 format.",
    CODE_SENDER_LENGTH: "Sender alias must be between 3 and 11 alphanumeric characters.",
    CODE_SENDER_NUMERIC: "Sender alias cannot be purely numeric.",
    CODE_FORBIDDEN_CONTENT: "The sent message does not comply with the legal requirements.",
    CODE_FORBIDDEN_CONTENT_REGIONAL: "The sent message does not comply with the legal requirements.",
    CODE_USER_BLOCKLISTED: "The user is blocklisted. Please contact support for assistance.",
    CODE_OTP_LENGTH: "Length must be between 4 and 10.",
}

# --- Magic numbers ------------------------------------------------------------------------------------
#: Recipients whose final state is forced (valid Italian mobiles, accepted by every endpoint but ES).
MAGIC_OUTCOMES: dict[str, MessageState] = {
    "+393330000001": MessageState.UNDELIVERABLE,
    "+393330000002": MessageState.EXPIRED,
    "+393330000003": MessageState.REJECTED,
}

DEFAULT_PRICES: dict[str, Decimal] = {
    "IT": Decimal("0.065"),
    "ES": Decimal("0.07"),
    "GB": Decimal("0.045"),
    "US": Decimal("0.01"),
}
DEFAULT_SENDER = "Openapi"
OTP_SENDER = "OTP MOBILE"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class SandboxError(Exception):
    """A refusal the app turns into ``{"code", "message"}`` with ``status``."""

    def __init__(
        self, status: int, code: int, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


@dataclass
class SandboxConfig:
    """Everything configurable; every field has a default that works for a quick local run."""

    token: str = "sandbox-token-0123456789abcdef"
    email: str = "sandbox@example.com"
    api_key: str = "sandbox-api-key"
    credit: Decimal | float | str = Decimal(100)
    prices: Mapping[str, Decimal | float | str] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    default_price: Decimal | float | str = Decimal("0.08")
    min_credit_per_part: Decimal | float | str = Decimal(1)  # WW sends need this much per part
    penalty_per_part: Decimal | float | str = Decimal(1)  # WW forbidden-content penalty
    forbidden_words: tuple[str, ...] = ("forbiddenword",)
    pending_after: float = 0.2  # clock units after creation: NEW -> PENDING (WW gets priced)
    delivered_after: float = 1.0  # clock units after creation: PENDING -> final state
    # The final state at a client's Nth look at the message (GET by id, or a listing page showing it)
    # instead of by the clock: a test sees its sensor find the message in flight, then delivered,
    # however slowly the machine starts the task. None: by the clock (delivered_after).
    final_at_look: int | None = None
    listing_lag: float = 0.0  # clock units after creation before GET /messages lists a message
    date_header: bool = True  # the loopback server's Date header (uvicorn's, real time); in process: none
    outcomes: Mapping[str, MessageState | str] = field(default_factory=dict)  # recipient -> final state
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    seed: int | None = 0  # ids and fault rates are drawn from random.Random(seed)
    token_ttl_default: int = 3600
    oauth_envelope: bool = False  # True wraps POST /tokens answers in {"data": ...}
    callback_backoff: float = 0.05  # seconds before callback retry n: backoff * 2**n
    callback_timeout: float = 5.0
    callback_hosts: frozenset[str] | None = LOOPBACK_HOSTS  # None allows any host (never in tests)
    state_file: str | None = None  # a sqlite file that keeps the state across restarts; None: memory only
    # The account's rate limit, requests per second over the SMS API's paths (a token bucket, 429 with
    # Retry-After beyond it: .ratelimit); None: unlimited.
    rate_limit: float | None = None

    def price_for(self, country: str) -> Decimal:
        return Decimal(str(self.prices.get(country, self.default_price)))

    def outcome_for(self, e164: str) -> MessageState:
        """The final state a message to ``e164`` reaches: configured, magic, else DELIVERED."""
        forced = self.outcomes.get(e164) or MAGIC_OUTCOMES.get(e164)
        return MessageState(forced) if forced else MessageState.DELIVERED

    def forbids(self, *texts: str) -> bool:
        """Whether any of ``texts`` holds a forbidden word (case-insensitive)."""
        lowered = [t.lower() for t in texts]
        return any(w.lower() in t for w in self.forbidden_words if w for t in lowered)
