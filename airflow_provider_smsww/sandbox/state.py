"""The sandbox's in-memory gateway: accounts, messages, prices, credit, state machine. No HTTP here.

Everything the HTTP layer (:mod:`.app`) answers comes from :class:`Sandbox`, and tests read the same
object to judge what really happened (which messages were accepted, what was charged, which callbacks
were attempted): the sandbox's own record is the ground truth of the reliability tests.

Validation reuses :mod:`airflow_provider_smsww.validation` and :mod:`airflow_provider_smsww.segments`,
so the sandbox and the client agree by construction on E.164, senders, encodings and parts.

Persistence. With ``SandboxConfig.state_file`` the messages, tokens (limits and stats), wallet
transactions, credit and blocklist are written through to a sqlite file (:mod:`.store`) and read back
at start, so a restarted sandbox still knows them; everything else (request log, callback attempts,
queued callbacks, the OTP cache, ``charges``, ``dry_runs``) is in memory only.

Time. Message states are computed lazily from an injectable clock (``SandboxConfig.clock``, default
``time.monotonic``): a read after ``pending_after`` clock units sees PENDING, after ``delivered_after``
the final state. :meth:`Sandbox.advance` applies due transitions in order and queues one callback per
transition; the app's callback runner (:mod:`.callbacks`) is woken to deliver them, so callbacks arrive
without anyone polling the API.
"""

from __future__ import annotations

import itertools
import random
import secrets
import string
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any

from airflow_provider_smsww.exceptions import (
    CODE_BAD_RECIPIENT,
    CODE_FORBIDDEN_CONTENT,
    CODE_FORBIDDEN_CONTENT_REGIONAL,
    CODE_INSUFFICIENT_CREDIT,
    CODE_INVALID_BODY,
    CODE_MULTIPLE_PARTS,
    CODE_NOT_FOUND,
    CODE_OTP_LENGTH,
    CODE_SCOPE,
    CODE_SENDER_LENGTH,
    CODE_SENDER_NUMERIC,
    CODE_TOKEN_LIMIT,
    CODE_UNAUTHORIZED,
    CODE_USER_BLOCKLISTED,
    CODE_WRONG_COUNTRY,
)
from airflow_provider_smsww.models import MessageState
from airflow_provider_smsww.sandbox.store import StateFile
from airflow_provider_smsww.segments import SegmentInfo, analyse
from airflow_provider_smsww.validation import (
    Problem,
    Recipient,
    check_message,
    check_sender,
    parse_recipient,
)

# --- Error texts (the codes are in airflow_provider_smsww.exceptions) --------------------------------
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

    def price_for(self, country: str) -> Decimal:
        return Decimal(str(self.prices.get(country, self.default_price)))


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

    @property
    def total_price(self) -> Decimal:
        return self.price * self.segments.parts


@dataclass(frozen=True)
class Transition:
    """A state change of a message with a callback: the payload is the message as it was then."""

    message_id: str
    state: MessageState
    payload: dict[str, Any]


#: The TokenLimits the sandbox enforces (``subscriptionRequests`` and ``ip`` are not: no subscriptions,
#: loopback only). ``walletAmount`` is EUR, the others are request counts.
LIMIT_NAMES = ("walletAmount", "walletRequests", "totalRequests")


@dataclass
class MintedToken:
    """A token from ``POST /tokens``, with its limits and the usage they are checked against."""

    token: str
    scopes: tuple[str, ...]
    expires: datetime
    name: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    refresh_token: str = ""
    limits: dict[str, float] = field(default_factory=dict)  # a subset of LIMIT_NAMES
    total_requests: int = 0  # every SMS API call made with it (refused ones included, 401/402 excepted)
    wallet_requests: int = 0  # real sends that cost money (forbidden-content penalties included)
    wallet_amount: Decimal = Decimal(0)  # EUR those sends cost

    def detail(self) -> dict[str, Any]:
        """The OAuth spec's ``TokenDetail``, with ``limits`` as given and ``stats`` so far."""
        return {
            "token": self.token,
            "name": self.name,
            "createdAt": _iso(self.created_at),
            "updatedAt": _iso(self.created_at),
            "expireAt": _iso(self.expires),
            "scopes": list(self.scopes),
            "refreshToken": self.refresh_token,
            "limits": dict(self.limits),
            "stats": {
                "totalRequests": self.total_requests,
                "walletRequests": self.wallet_requests,
                "walletAmount": float(self.wallet_amount),
            },
        }


class Sandbox:
    """The gateway's state. Thread-safe: the server thread writes while tests read."""

    def __init__(self, config: SandboxConfig | None = None, **overrides: Any) -> None:
        self.config = config or SandboxConfig(**overrides)
        if config is not None and overrides:
            raise TypeError("give either a SandboxConfig or keyword overrides, not both")
        self._lock = threading.RLock()
        self.rng = random.Random(self.config.seed)
        self._ids = itertools.count(1)
        self.wake: Callable[[], None] = lambda: None  # set by the callback runner
        self._store = StateFile(self.config.state_file) if self.config.state_file else None
        self._clear()
        if self._store is not None:
            self._load()

    # --- record -----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every message, token, charge and log (in the state file too); back to the configured
        credit."""
        with self._lock:
            self._clear()
            if self._store is not None:
                self._store.clear()
                self._save_wallet()

    def close(self) -> None:
        """Close the state file, if any (the state stays in it)."""
        if self._store is not None:
            self._store.close()

    def _clear(self) -> None:
        with self._lock:
            self.messages: dict[str, StoredMessage] = {}
            # Insertion-ordered, i.e. in creation order: advance() can stop at the first message not due.
            self._in_flight: dict[str, None] = {}
            self._credit = Decimal(str(self.config.credit))
            self.blocklisted = False
            self.dry_runs = 0
            self.tokens: dict[str, MintedToken] = {}
            self.requests: list[tuple[str, str, int]] = []  # (method, path, status) as answered
            self.pending_callbacks: list[Transition] = []
            self.callback_attempts: list[Any] = []  # CallbackAttempt records, see .callbacks
            self.charges: list[tuple[str, Decimal, str]] = []  # (message id, amount, why)
            self.transactions: list[dict[str, Any]] = []  # WalletTransaction wire dicts, oldest first
            self.wallet_created = self.config.wall_clock()
            self._otp_cache: dict[str, tuple[str, datetime]] = {}

    def _load(self) -> None:
        """The state written to the state file, read back at start (see :mod:`.store`).

        A message's ``created`` (clock units, meaningless in another process) is rebuilt from its
        wall-clock age, so messages in flight move on from where they were.
        """
        assert self._store is not None
        now, wall = self.config.clock(), self.config.wall_clock()
        for row in self._store.load("wallet"):
            self._credit = Decimal(row["credit"])
            self.blocklisted = row["blocklisted"]
            self.wallet_created = datetime.fromisoformat(row["created"])
        self._save_wallet()  # a new file gets its wallet (creation date) at once
        for row in self._store.load("message"):
            message = _message_from_row(row, now, wall)
            self.messages[message.id] = message
            if message.state in (MessageState.NEW, MessageState.PENDING):
                self._in_flight[message.id] = None
        self._ids = itertools.count(max((m.seq for m in self.messages.values()), default=0) + 1)
        self.transactions = self._store.load("transaction")
        for row in self._store.load("token"):
            token = _token_from_row(row)
            self.tokens[token.token] = token

    def _save_message(self, message: StoredMessage) -> None:
        if self._store is not None:
            self._store.put("message", message.id, asdict(message))

    def _save_token(self, token: MintedToken) -> None:
        if self._store is not None:
            self._store.put("token", token.token, asdict(token))

    def _save_wallet(self) -> None:
        if self._store is not None:
            row = {
                "credit": str(self._credit),
                "blocklisted": self.blocklisted,
                "created": _iso(self.wallet_created),
            }
            self._store.put("wallet", "wallet", row)

    @property
    def credit(self) -> float:
        """Credit left in EUR, after every charge due by now."""
        with self._lock:
            self.advance()
            return float(self._credit)

    def accepted(self) -> list[StoredMessage]:
        """Real sends the gateway accepted (answered 201, or would have before an injected fault)."""
        with self._lock:
            return [m for m in self.messages.values() if not m.blocklisted]

    def per_recipient(self) -> Counter[str]:
        """How many accepted messages each recipient got: more than one means a duplicate send."""
        return Counter(m.recipient.e164 for m in self.accepted())

    def wallet(self) -> dict[str, Any]:
        """The OAuth spec's ``Wallet``: credit now, created at the (re)set, updated at the last charge."""
        with self._lock:
            credit = self.credit
            updated = self.transactions[-1]["createdAt"] if self.transactions else _iso(self.wallet_created)
            return {"credit": credit, "createdAt": _iso(self.wallet_created), "updatedAt": updated}

    def wallet_transactions(self, skip: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """``WalletTransaction`` rows, newest first: one per charge (amount negative)."""
        with self._lock:
            self.advance()
            return [dict(t) for t in reversed(self.transactions)][skip : skip + limit]

    # --- auth -------------------------------------------------------------------------------------
    def mint_token(
        self, scopes: list[str], ttl: int | None, name: str | None, limits: Mapping[str, float] | None = None
    ) -> dict[str, Any]:
        """A new Bearer token (OAuth v2 ``POST /tokens``); ttl <= 0 or missing means the default.

        ``limits`` (a subset of :data:`LIMIT_NAMES`, already validated) are enforced on the SMS API.
        """
        now = self.config.wall_clock()
        seconds = ttl if ttl and ttl > 0 else self.config.token_ttl_default
        seconds = min(seconds, 365 * 24 * 3600)
        minted = MintedToken(
            token=secrets.token_hex(12),
            scopes=tuple(scopes),
            expires=now + timedelta(seconds=seconds),
            name=name or "",
            created_at=now,
            refresh_token=secrets.token_hex(12),
            limits=dict(limits or {}),
        )
        with self._lock:
            self.tokens[minted.token] = minted
            self._save_token(minted)
            return minted.detail()

    def token_detail(self, token: str) -> dict[str, Any] | None:
        """``GET /tokens/{token}``: the TokenDetail with its stats, ``None`` when unknown or revoked."""
        with self._lock:
            minted = self.tokens.get(token)
            return minted.detail() if minted else None

    def revoke_token(self, token: str) -> bool:
        """``DELETE /tokens/{token}``: later calls with it are 401. False when it was unknown."""
        with self._lock:
            if self.tokens.pop(token, None) is None:
                return False
            if self._store is not None:
                self._store.delete("token", token)
            return True

    def authorize(self, token: str | None, method: str, path: str) -> MintedToken | None:
        """The minted token that may make this call (``None`` for the static token); else raise 401 for
        a missing, unknown, revoked or expired token, 403 when its scopes miss this call, 402 2035 when
        its ``totalRequests`` are used up. Counts the call in the token's ``totalRequests``.

        Scopes are ``METHOD:host/path`` with ``*`` wildcards; the host part is ignored because the
        sandbox answers under whatever name it was reached by.
        """
        if token and secrets.compare_digest(token, self.config.token):
            return None
        with self._lock:
            minted = self.tokens.get(token or "")
            if minted is None or minted.expires <= self.config.wall_clock():
                raise SandboxError(401, CODE_UNAUTHORIZED, "Unauthorized: missing, unknown or expired token.")
            if not any(_scope_allows(scope, method, path) for scope in minted.scopes):
                raise SandboxError(403, CODE_SCOPE, f"The token has no scope for {method} {path}.")
            cap = minted.limits.get("totalRequests")
            if cap is not None and minted.total_requests >= cap:
                raise SandboxError(402, CODE_TOKEN_LIMIT, f"Token limit reached: totalRequests {cap:g} used.")
            minted.total_requests += 1
            self._save_token(minted)
            return minted

    def _check_limits(self, token: MintedToken | None, cost: Decimal) -> None:
        """402 2035 when one more paid send of ``cost`` EUR would pass the token's wallet limits."""
        if token is None:
            return
        requests = token.limits.get("walletRequests")
        if requests is not None and token.wallet_requests + 1 > requests:
            raise SandboxError(
                402, CODE_TOKEN_LIMIT, f"Token limit reached: walletRequests {requests:g} paid requests used."
            )
        amount = token.limits.get("walletAmount")
        if amount is not None and token.wallet_amount + cost > Decimal(str(amount)):
            raise SandboxError(
                402,
                CODE_TOKEN_LIMIT,
                f"Token limit reached: walletAmount {amount:g} EUR, {float(token.wallet_amount):g} spent, "
                f"this send costs {float(cost):g}.",
            )

    def _spend(self, token: MintedToken | None, cost: Decimal) -> None:
        if token is not None:
            token.wallet_requests += 1
            token.wallet_amount += cost
            self._save_token(token)

    # --- send -------------------------------------------------------------------------------------
    def send(self, region: str, body: Mapping[str, Any], token: MintedToken | None = None) -> dict[str, Any]:
        """``POST /{region}-messages``: validate, price, store (unless dry run); the wire dict.

        Order of checks: blocklisted account (403 2020), body shape (422 1000), recipient (2011,
        2013), sender (2021, 2024), text (1000, 2040), forbidden words in a dry run (2044), the
        token's wallet limits in a real send (402 2035), forbidden words (2044 / 2050), credit (402
        2030). ``token`` is the minted token making the call (see :meth:`authorize`).
        """
        with self._lock:
            self.advance()
            if self.blocklisted:
                raise SandboxError(403, CODE_USER_BLOCKLISTED, SPEC_TEXTS[CODE_USER_BLOCKLISTED])
            options = _options(body.get("options", {}))
            recipient = self._recipient(body.get("recipient"), region)
            sender = body.get("sender")
            if sender is not None and not isinstance(sender, str):
                raise SandboxError(422, CODE_INVALID_BODY, "sender must be a string or null.")
            if problem := check_sender(sender):
                raise SandboxError(422, problem.code or CODE_SENDER_LENGTH, SPEC_TEXTS[problem.code or 2021])
            text = body.get("message")
            if not isinstance(text, str):
                raise SandboxError(422, CODE_INVALID_BODY, "message is required and must be a string.")
            checked = check_message(text, fail_on_multiple_messages=options["failOnMultipleMessages"])
            if isinstance(checked, Problem):
                multi = options["failOnMultipleMessages"] and analyse(text).parts > 1
                raise SandboxError(422, CODE_MULTIPLE_PARTS if multi else CODE_INVALID_BODY, checked.message)
            return self._accept(
                region, recipient, sender or DEFAULT_SENDER, text, checked, options, body, token
            )

    def send_otp(self, body: Mapping[str, Any], token: MintedToken | None = None) -> dict[str, Any]:
        """``POST /otp``: a generated code sent like a WW message (sender 'OTP MOBILE', isOtp true).

        The real gateway translates the text to the recipient's language; the sandbox writes English.
        """
        with self._lock:
            self.advance()
            if self.blocklisted:
                raise SandboxError(403, CODE_USER_BLOCKLISTED, SPEC_TEXTS[CODE_USER_BLOCKLISTED])
            options = _options(body.get("options", {}))
            length = _int_field(body, "length", 5)
            if not 4 <= length <= 10:
                raise SandboxError(422, CODE_OTP_LENGTH, SPEC_TEXTS[CODE_OTP_LENGTH])
            cache_seconds = _int_field(body, "cacheSeconds", 0)
            if not 0 <= cache_seconds <= 600:
                raise SandboxError(422, CODE_INVALID_BODY, "cacheSeconds must be between 0 and 600.")
            alphanumeric = body.get("alphanumeric", False)
            if not isinstance(alphanumeric, bool):
                raise SandboxError(422, CODE_INVALID_BODY, "alphanumeric must be a boolean.")
            recipient = self._recipient(body.get("recipient"), "WW")
            code = self._otp_code(recipient.e164, length, alphanumeric, cache_seconds, options["dryRun"])
            text = f"Your verification code is {code}"
            otp = {
                "otp": code,
                "otpOptions": {"length": length, "alphanumeric": alphanumeric, "cacheSeconds": cache_seconds},
            }
            return self._accept("WW", recipient, OTP_SENDER, text, analyse(text), options, body, token, otp)

    def _otp_code(self, e164: str, length: int, alphanumeric: bool, cache_seconds: int, dry_run: bool) -> str:
        now = self.config.wall_clock()
        cached = self._otp_cache.get(e164)
        if cached and cached[1] > now and len(cached[0]) == length:
            return cached[0]
        alphabet = (string.digits + string.ascii_uppercase) if alphanumeric else string.digits
        code = "".join(secrets.choice(alphabet) for _ in range(length))
        if cache_seconds and not dry_run:
            self._otp_cache[e164] = (code, now + timedelta(seconds=cache_seconds))
        return code

    def _recipient(self, raw: Any, region: str) -> Recipient:
        if not isinstance(raw, str):
            raise SandboxError(422, CODE_INVALID_BODY, "recipient is required and must be a string.")
        parsed = parse_recipient(raw, region)
        if isinstance(parsed, Problem):
            code = parsed.code or CODE_BAD_RECIPIENT
            text = SPEC_TEXTS[CODE_BAD_RECIPIENT]
            if code == CODE_WRONG_COUNTRY:
                text = f"The recipient number does not belong to the supported country for this endpoint ({region})."

            raise SandboxError(422, code, text)
        return parsed

    def _forbidden(self, *texts: str) -> bool:
        lowered = [t.lower() for t in texts]
        return any(w.lower() in t for w in self.config.forbidden_words if w for t in lowered)

    def _accept(
        self,
        region: str,
        recipient: Recipient,
        sender: str,
        text: str,
        segments: SegmentInfo,
        options: dict[str, bool],
        body: Mapping[str, Any],
        token: MintedToken | None,
        otp: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        dry_run = options["dryRun"]
        parts = segments.parts
        regional = region in ("IT", "ES")
        rate = self.config.price_for(recipient.country_code)
        now, wall = self.config.clock(), self.config.wall_clock()
        seq = next(self._ids)
        message = StoredMessage(
            id=self._new_id(wall, seq),
            seq=seq,
            region=region,
            recipient=recipient,
            sender=sender,
            text=text,
            segments=segments,
            options=options,
            callback=_callback(body["callback"]) if "callback" in body else None,
            created=now,
            created_at=wall,
            updated_at=wall,
            final_state=self._outcome(recipient.e164),
            price=rate if regional else Decimal(0),
            otp=otp["otp"] if otp else None,
            otp_options=otp["otpOptions"] if otp else None,
        )
        forbidden = self._forbidden(text, sender)
        if forbidden and dry_run:
            raise SandboxError(422, CODE_FORBIDDEN_CONTENT, SPEC_TEXTS[CODE_FORBIDDEN_CONTENT])
        # What this send will cost (WW: charged later, at PENDING, at this rate): the token limits count it now.
        per_part = Decimal(str(self.config.penalty_per_part)) if forbidden and not regional else rate
        cost = per_part * parts
        if not dry_run:
            self._check_limits(token, cost)
        if forbidden:
            self._spend(token, cost)
            self._block(message, regional)
            code = CODE_FORBIDDEN_CONTENT_REGIONAL if regional else CODE_FORBIDDEN_CONTENT
            raise SandboxError(422, code, SPEC_TEXTS[code])
        needed = message.total_price if regional else Decimal(str(self.config.min_credit_per_part)) * parts
        if self._credit < needed:
            raise SandboxError(
                402,
                CODE_INSUFFICIENT_CREDIT,
                f"Insufficient credit: {needed:.2f} EUR needed for {parts} part(s), {self._credit:.2f} EUR left.",
            )
        if dry_run:
            self.dry_runs += 1
            return self._render(message)
        self.messages[message.id] = message
        self._in_flight[message.id] = None
        self._spend(token, cost)
        if regional:
            self._charge(message, message.total_price, "regional send", wall)
        self._save_message(message)
        return self._render(message)

    def _block(self, message: StoredMessage, regional: bool) -> None:
        """Forbidden content in a real send: stored REJECTED, account blocklisted, charged."""
        if not regional:
            message.price = Decimal(str(self.config.penalty_per_part))
        message.blocklisted = True
        message.blocklisted_reason = "The message or sender contains forbidden content."
        self.blocklisted = True
        self.messages[message.id] = message
        self._charge(message, message.total_price, "forbidden content", message.created_at)
        self._set_state(message, MessageState.REJECTED, message.created_at)

    def _outcome(self, e164: str) -> MessageState:
        forced = self.config.outcomes.get(e164) or MAGIC_OUTCOMES.get(e164)
        return MessageState(forced) if forced else MessageState.DELIVERED

    def _new_id(self, wall: datetime, seq: int) -> str:
        """24 hex digits like a MongoDB ObjectId (the spec's example): time, random, counter. The
        counter is the message's sequence number, so ids stay unique after a restart on a state file
        (the seeded random part repeats)."""
        return f"{int(wall.timestamp()) & 0xFFFFFFFF:08x}{self.rng.getrandbits(40):010x}{seq & 0xFFFFFF:06x}"

    def _charge(self, message: StoredMessage, amount: Decimal, why: str, when: datetime) -> None:
        """Take ``amount`` off the credit and book it as a wallet transaction dated ``when``."""
        self._credit -= amount
        self.charges.append((message.id, amount, why))
        api = "otp" if message.otp is not None else f"{message.region}-messages"
        penalty = ": forbidden content penalty" if message.blocklisted else ""
        self.transactions.append(
            {
                "id": f"txn_{message.id}",  # one charge per message at most
                "amount": -float(amount),
                "createdAt": _iso(when),
                "description": f"SMS {api} to {message.recipient.e164}{penalty}",
            }
        )
        if self._store is not None:
            self._store.put("transaction", self.transactions[-1]["id"], self.transactions[-1])
            self._save_wallet()

    # --- time -------------------------------------------------------------------------------------
    def advance(self) -> list[Transition]:
        """Apply every transition due by the clock's now, oldest first; returns the new transitions
        that have a callback (also queued on :attr:`pending_callbacks` for the runner)."""
        with self._lock:
            now = self.config.clock()
            before = len(self.pending_callbacks)
            first_due = min(self.config.pending_after, self.config.delivered_after)
            due = []
            for message_id in self._in_flight:  # creation order, on one clock
                message = self.messages[message_id]
                if now < message.created + first_due:
                    break  # no later message can be due either: each read costs O(due), not O(in flight)
                due.append(message)
            for message in due:
                if message.state is MessageState.NEW and now >= message.created + self.config.pending_after:
                    self._to_pending(message)
                if (
                    message.state is MessageState.PENDING
                    and now >= message.created + self.config.delivered_after
                ):
                    self._to_final(message)
            new = self.pending_callbacks[before:]
        if new:
            self.wake()
        return new

    def seconds_until_next(self) -> float | None:
        """Clock units until the next due transition, ``None`` when nothing is in flight."""
        with self._lock:
            if not self._in_flight:
                return None
            now = self.config.clock()
            due = [
                m.created
                + (self.config.pending_after if m.state is MessageState.NEW else self.config.delivered_after)
                for m in (self.messages[i] for i in self._in_flight)
            ]
            return max(0.0, min(due) - now)

    def _when(self, message: StoredMessage, offset: float) -> datetime:
        return message.created_at + timedelta(seconds=offset)

    def _to_pending(self, message: StoredMessage) -> None:
        message.sent_at = self._when(message, self.config.pending_after)
        if message.region == "WW":  # priced on provider acceptance
            message.price = self.config.price_for(message.recipient.country_code)
            self._charge(message, message.total_price, "worldwide send", message.sent_at)
        self._set_state(message, MessageState.PENDING, message.sent_at)

    def _to_final(self, message: StoredMessage) -> None:
        when = self._when(message, self.config.delivered_after)
        if message.final_state is MessageState.DELIVERED:
            message.delivered_at = when
        self._in_flight.pop(message.id, None)
        self._set_state(message, message.final_state, when)

    def _set_state(self, message: StoredMessage, state: MessageState, when: datetime) -> None:
        message.state = state
        message.updated_at = when
        message.history.append(state)
        self._save_message(message)
        if message.callback:
            self.pending_callbacks.append(Transition(message.id, state, self._render(message)))

    def take_callbacks(self) -> list[Transition]:
        with self._lock:
            taken, self.pending_callbacks = self.pending_callbacks, []
            return taken

    # --- read -------------------------------------------------------------------------------------
    def get(self, message_id: str) -> dict[str, Any]:
        with self._lock:
            self.advance()
            message = self.messages.get(message_id)
            if message is None:
                raise SandboxError(404, CODE_NOT_FOUND, "Message not found.")
            return self._render(message)

    def list_messages(self, skip: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first, ``skip``/``limit`` like the API."""
        if skip < 0 or limit < 0:
            raise SandboxError(422, CODE_INVALID_BODY, "skip and limit must not be negative.")
        with self._lock:
            self.advance()
            newest = sorted(self.messages.values(), key=lambda m: m.seq, reverse=True)
            return [self._render(m) for m in newest[skip : skip + limit]]

    def view(self, message: StoredMessage | str) -> dict[str, Any]:
        """The wire dict of a stored message (or id) as a GET would answer it now."""
        return self.get(message if isinstance(message, str) else message.id)

    def _render(self, m: StoredMessage) -> dict[str, Any]:
        """MessageResponse: every field of the spec. ``blocklistedReason`` is "" when not blocklisted
        (the spec types it as a non-nullable string); the callback is echoed as sent, header values
        included, as the spec's example shows (the client masks them on its side)."""
        data: dict[str, Any] = {
            "id": m.id,
            "username": self.config.email,
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
            "createdAt": _iso(m.created_at),
            "updatedAt": _iso(m.updated_at or m.created_at),
            "sentAt": _iso(m.sent_at) if m.sent_at else None,
            "deliveredAt": _iso(m.delivered_at) if m.delivered_at else None,
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

    def callback_secrets(self, message_id: str) -> dict[str, Any] | None:
        """The callback as given (for the runner): read under the lock, without advancing the clock."""
        with self._lock:
            message = self.messages.get(message_id)
            return message.callback if message else None


def _message_from_row(row: dict[str, Any], now: float, wall: datetime) -> StoredMessage:
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


def _token_from_row(row: dict[str, Any]) -> MintedToken:
    """A :class:`MintedToken` from its state-file row."""
    fields = dict(row)
    fields["scopes"] = tuple(row["scopes"])
    fields["expires"] = datetime.fromisoformat(row["expires"])
    fields["created_at"] = datetime.fromisoformat(row["created_at"])
    fields["wallet_amount"] = Decimal(row["wallet_amount"])
    return MintedToken(**fields)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _scope_allows(scope: str, method: str, path: str) -> bool:
    scope_method, _, rest = scope.partition(":")
    scope_path = "/" + rest.partition("/")[2] if "/" in rest else "/*"
    return fnmatchcase(method.upper(), scope_method.upper()) and fnmatchcase(path, scope_path)


def _options(raw: Any) -> dict[str, bool]:
    """The options object with its defaults; 422 when it is not an object (``null`` included: the
    spec does not make it nullable)."""
    if not isinstance(raw, Mapping):
        raise SandboxError(422, CODE_INVALID_BODY, "options must be an object.")
    options = {}
    for name in ("dryRun", "failOnMultipleMessages"):
        value = raw.get(name, False)
        if not isinstance(value, bool):
            raise SandboxError(422, CODE_INVALID_BODY, f"options.{name} must be a boolean.")
        options[name] = value
    return options


def _int_field(body: Mapping[str, Any], name: str, default: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SandboxError(422, CODE_INVALID_BODY, f"{name} must be an integer.")
    return value


def _callback(raw: Any) -> dict[str, Any]:
    """The callback object normalised with the spec's defaults; 422 when its shape is wrong.

    ``null``, ``false`` or ``0`` for the callback, its headers or custom are refused, not read as
    "absent": the spec makes none of them nullable (schemathesis found the sandbox too lenient).
    """
    if not isinstance(raw, Mapping):
        raise SandboxError(422, CODE_INVALID_BODY, "callback must be an object.")
    url = raw.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise SandboxError(422, CODE_INVALID_BODY, "callback.url must be an http(s) URL.")
    method = raw.get("method", "JSON")
    if method not in ("JSON", "POST"):
        raise SandboxError(422, CODE_INVALID_BODY, "callback.method must be JSON or POST.")
    field_name = raw.get("field", "data")
    retry = raw.get("retry", 0)
    headers = raw.get("headers", {})
    custom = raw.get("custom", {})
    if not isinstance(field_name, str) or not field_name:
        raise SandboxError(422, CODE_INVALID_BODY, "callback.field must be a non-empty string.")
    if isinstance(retry, bool) or not isinstance(retry, int) or not 0 <= retry <= 5:
        raise SandboxError(422, CODE_INVALID_BODY, "callback.retry must be an integer from 0 to 5.")
    if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
        raise SandboxError(422, CODE_INVALID_BODY, "callback.headers must map names to strings.")
    if not isinstance(custom, Mapping):
        raise SandboxError(422, CODE_INVALID_BODY, "callback.custom must be an object.")
    return {
        "url": url,
        "method": method,
        "field": field_name,
        "retry": retry,
        "headers": dict(headers),
        "custom": dict(custom),
    }
