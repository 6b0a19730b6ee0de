"""The sandbox's in-memory gateway: it runs the sends, the state machine and the reads over the
bodies (:mod:`.bodies`, :mod:`.otp`), messages (:mod:`.messages`), tokens (:mod:`.tokens`) and money
(:mod:`.wallet`) it keeps. No HTTP here.

Everything the HTTP layer (:mod:`.app`) answers comes from :class:`Sandbox`, and tests read the same
object to judge what really happened (which messages were accepted, what was charged, which callbacks
were attempted): the sandbox's own record is the ground truth of the reliability tests.

Persistence (``SandboxConfig.state_file``): what is kept across restarts is told in :mod:`.store`.

Time. Message states are computed lazily from an injectable clock (``SandboxConfig.clock``, default
``time.monotonic``): a read after ``pending_after`` clock units sees PENDING, after ``delivered_after``
the final state. :meth:`Sandbox.advance` applies due transitions in order and queues one callback per
transition; the app's callback runner (:mod:`.callbacks`) is woken to deliver them, so callbacks arrive
without anyone polling the API.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from typing import Any

from airflow_provider_smsww.exceptions import (
    CODE_FORBIDDEN_CONTENT,
    CODE_FORBIDDEN_CONTENT_REGIONAL,
    CODE_INVALID_BODY,
    CODE_NOT_FOUND,
    CODE_USER_BLOCKLISTED,
)
from airflow_provider_smsww.models import MessageState
from airflow_provider_smsww.sandbox.bodies import SendBody, read_callback, read_send
from airflow_provider_smsww.sandbox.config import OTP_SENDER, SPEC_TEXTS, SandboxConfig, SandboxError
from airflow_provider_smsww.sandbox.messages import (
    StoredMessage,
    Transition,
    message_from_row,
    new_message_id,
    render_message,
)
from airflow_provider_smsww.sandbox.otp import OtpCodes, read_otp
from airflow_provider_smsww.sandbox.ratelimit import AccountRateLimit
from airflow_provider_smsww.sandbox.store import StateFile
from airflow_provider_smsww.sandbox.tokens import MintedToken, Tokens
from airflow_provider_smsww.sandbox.wallet import CreditAccount
from airflow_provider_smsww.segments import analyse


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
        self._tokens = Tokens(self.config, self._lock, self._store)
        self._account = CreditAccount(self.config, self._store)
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
                self._account.save()

    def close(self) -> None:
        """Close the state file, if any (the state stays in it)."""
        if self._store is not None:
            self._store.close()

    def _clear(self) -> None:
        with self._lock:
            self.messages: dict[str, StoredMessage] = {}
            # Insertion-ordered, i.e. in creation order: advance() can stop at the first message not due.
            self._in_flight: dict[str, None] = {}
            self._account.reset()
            self.dry_runs = 0
            self._tokens.by_token = {}
            self.requests: list[tuple[str, str, int]] = []  # (method, path, status) as answered
            self.pending_callbacks: list[Transition] = []
            self.callback_attempts: list[Any] = []  # CallbackAttempt records, see .callbacks
            self._otp = OtpCodes()
            rate = self.config.rate_limit
            self.account_rate_limit = AccountRateLimit(rate, self.config.clock) if rate else None

    def _load(self) -> None:
        """The state written to the state file, read back at start (see :mod:`.store`).

        A message's ``created`` (clock units, meaningless in another process) is rebuilt from its
        wall-clock age, so messages in flight move on from where they were.
        """
        assert self._store is not None
        now, wall = self.config.clock(), self.config.wall_clock()
        self._account.load()
        rows = self._store.load("message")
        # In the order they were stored (seq): the listing reads them newest first from the end.
        for message in sorted((message_from_row(row, now, wall) for row in rows), key=_seq):
            self.messages[message.id] = message
            if message.state in (MessageState.NEW, MessageState.PENDING):
                self._in_flight[message.id] = None
        self._ids = itertools.count(max((m.seq for m in self.messages.values()), default=0) + 1)
        self._tokens.load(self._store.load("token"))

    def _save_message(self, message: StoredMessage) -> None:
        if self._store is not None:
            self._store.put("message", message.id, asdict(message))

    # --- money (:mod:`.wallet`) ------------------------------------------------------------------
    @property
    def credit(self) -> float:
        """Credit left in EUR, after every charge due by now."""
        with self._lock:
            self.advance()
            return float(self._account.credit)

    @property
    def blocklisted(self) -> bool:
        """Forbidden content in a real send blocklisted the account: every later send is 403 2020."""
        return self._account.blocklisted

    @blocklisted.setter
    def blocklisted(self, value: bool) -> None:
        self._account.blocklisted = value

    @property
    def charges(self) -> list[tuple[str, Decimal, str]]:
        """Every charge, oldest first: (message id, amount, why)."""
        return self._account.charges

    @property
    def transactions(self) -> list[dict[str, Any]]:
        """``WalletTransaction`` wire dicts, oldest first."""
        return self._account.transactions

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
            return self._account.as_wire(self.credit)

    def wallet_transactions(self, skip: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """``WalletTransaction`` rows, newest first: one per charge (amount negative)."""
        with self._lock:
            self.advance()
            return [dict(t) for t in reversed(self.transactions)][skip : skip + limit]

    # --- auth (:mod:`.tokens`) -------------------------------------------------------------------
    @property
    def tokens(self) -> dict[str, MintedToken]:
        """Token -> :class:`~.tokens.MintedToken`, every token minted and not revoked."""
        return self._tokens.by_token

    def mint_token(
        self, scopes: list[str], ttl: int | None, name: str | None, limits: Mapping[str, float] | None = None
    ) -> dict[str, Any]:
        """``POST /tokens`` (see :meth:`.tokens.Tokens.mint`)."""
        return self._tokens.mint(scopes, ttl, name, limits)

    def token_detail(self, token: str) -> dict[str, Any] | None:
        """``GET /tokens/{token}`` (see :meth:`.tokens.Tokens.detail`)."""
        return self._tokens.detail(token)

    def revoke_token(self, token: str) -> bool:
        """``DELETE /tokens/{token}`` (see :meth:`.tokens.Tokens.revoke`)."""
        return self._tokens.revoke(token)

    def authorize(self, token: str | None, method: str, path: str) -> MintedToken | None:
        """The minted token that may make this call (see :meth:`.tokens.Tokens.authorize`)."""
        return self._tokens.authorize(token, method, path)

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
            self._refuse_if_blocklisted()
            sent = read_send(body, region)
            return self._accept(self._new_message(region, sent, body), token)

    def send_otp(self, body: Mapping[str, Any], token: MintedToken | None = None) -> dict[str, Any]:
        """``POST /otp``: a generated code sent like a WW message (sender 'OTP MOBILE', isOtp true).

        The real gateway translates the text to the recipient's language; the sandbox writes English.
        """
        with self._lock:
            self.advance()
            self._refuse_if_blocklisted()
            otp = read_otp(body)
            text, sent = self._otp.message(otp, self.config.wall_clock())
            otp_send = SendBody(otp.recipient, OTP_SENDER, text, analyse(text), otp.options)
            return self._accept(self._new_message("WW", otp_send, body, sent), token)

    def _refuse_if_blocklisted(self) -> None:
        """403 2020 for every send once the account is blocklisted."""
        if self.blocklisted:
            raise SandboxError(403, CODE_USER_BLOCKLISTED, SPEC_TEXTS[CODE_USER_BLOCKLISTED])

    def _accept(self, message: StoredMessage, token: MintedToken | None) -> dict[str, Any]:
        """Check the content, the token's limits and the credit, then store (unless dry run); the wire
        dict. Forbidden content in a real send is stored blocked and charged before it is refused.

        :param message: the message the send would store (:meth:`_new_message`).
        :param token: the minted token making the call, whose limits count this send.
        """
        dry_run, parts = message.options["dryRun"], message.segments.parts
        regional = message.region in ("IT", "ES")
        forbidden = self.config.forbids(message.text, message.sender)
        if forbidden and dry_run:
            raise SandboxError(422, CODE_FORBIDDEN_CONTENT, SPEC_TEXTS[CODE_FORBIDDEN_CONTENT])
        # The token's limits count what the send will cost now (WW: charged at PENDING, at this rate).
        rate = self.config.price_for(message.recipient.country_code)
        cost = (Decimal(str(self.config.penalty_per_part)) if forbidden and not regional else rate) * parts
        if not dry_run:
            self._tokens.check_limits(token, cost)
        if forbidden:
            self._tokens.spend(token, cost)
            self._block(message, regional)
            code = CODE_FORBIDDEN_CONTENT_REGIONAL if regional else CODE_FORBIDDEN_CONTENT
            raise SandboxError(422, code, SPEC_TEXTS[code])
        needed = message.total_price if regional else Decimal(str(self.config.min_credit_per_part)) * parts
        self._account.require(needed, parts)
        if dry_run:
            self.dry_runs += 1
            return render_message(message, self.config.email)
        self.messages[message.id] = message
        self._in_flight[message.id] = None
        self._tokens.spend(token, cost)
        if regional:
            self._account.charge(message, message.total_price, "regional send", message.created_at)
        self._save_message(message)
        return render_message(message, self.config.email)

    def _new_message(
        self, region: str, sent: SendBody, body: Mapping[str, Any], otp: dict[str, Any] | None = None
    ) -> StoredMessage:
        """The message a send would store: a new id, its final outcome, its price if regional (WW later).

        :param region: ``WW``, ``IT`` or ``ES``.
        :param sent: the checked body; ``body`` is the body as sent (for its callback).
        :param otp: the generated code and its options, for ``POST /otp``.
        """
        now, wall = self.config.clock(), self.config.wall_clock()
        seq = next(self._ids)
        return StoredMessage(
            id=new_message_id(wall, seq, self.rng),
            seq=seq,
            region=region,
            recipient=sent.recipient,
            sender=sent.sender,
            text=sent.text,
            segments=sent.segments,
            options=sent.options,
            callback=read_callback(body["callback"]) if "callback" in body else None,
            created=now,
            created_at=wall,
            updated_at=wall,
            final_state=self.config.outcome_for(sent.recipient.e164),
            price=self.config.price_for(sent.recipient.country_code)
            if region in ("IT", "ES")
            else Decimal(0),
            otp=otp["otp"] if otp else None,
            otp_options=otp["otpOptions"] if otp else None,
        )

    def _block(self, message: StoredMessage, regional: bool) -> None:
        """Forbidden content in a real send: stored REJECTED, account blocklisted, charged."""
        if not regional:
            message.price = Decimal(str(self.config.penalty_per_part))
        message.blocklisted = True
        message.blocklisted_reason = "The message or sender contains forbidden content."
        self.blocklisted = True
        self.messages[message.id] = message
        self._account.charge(message, message.total_price, "forbidden content", message.created_at)
        self._set_state(message, MessageState.REJECTED, message.created_at)

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
                    and self.config.final_at_look is None
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
            by_clock = self.config.final_at_look is None  # else only NEW -> PENDING is due by the clock
            due = [
                m.created
                + (self.config.pending_after if m.state is MessageState.NEW else self.config.delivered_after)
                for m in (self.messages[i] for i in self._in_flight)
                if by_clock or m.state is MessageState.NEW
            ]
            return max(0.0, min(due) - now) if due else None

    def _to_pending(self, message: StoredMessage) -> None:
        message.sent_at = message.aged(self.config.pending_after)
        if message.region == "WW":  # priced on provider acceptance
            message.price = self.config.price_for(message.recipient.country_code)
            self._account.charge(message, message.total_price, "worldwide send", message.sent_at)
        self._set_state(message, MessageState.PENDING, message.sent_at)

    def _to_final(self, message: StoredMessage) -> None:
        when = message.aged(self.config.delivered_after)
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
            self.pending_callbacks.append(
                Transition(message.id, state, render_message(message, self.config.email))
            )

    def take_callbacks(self) -> list[Transition]:
        with self._lock:
            taken, self.pending_callbacks = self.pending_callbacks, []
            return taken

    def _looked_at(self, messages: list[StoredMessage]) -> None:
        """Count a client's look at each message; with ``final_at_look`` set, the Nth look finds the
        message in its final state (the earlier ones find it in flight)."""
        if self.config.final_at_look is None:
            return
        reached = False
        for message in messages:
            if message.id not in self._in_flight:
                continue
            message.looks += 1
            if message.looks >= self.config.final_at_look:
                if message.state is MessageState.NEW:
                    self._to_pending(message)
                self._to_final(message)
                reached = True
        if reached:
            self.wake()

    # --- read -------------------------------------------------------------------------------------
    def get(self, message_id: str, *, look: bool = True) -> dict[str, Any]:
        """One message as ``GET /messages/{id}`` answers it.

        :param look: count this read as a client's look (``final_at_look``); the tests' own reads
            (:meth:`view`) do not.
        """
        with self._lock:
            self.advance()
            message = self.messages.get(message_id)
            if message is None:
                raise SandboxError(404, CODE_NOT_FOUND, "Message not found.")
            if look:
                self._looked_at([message])
            return render_message(message, self.config.email)

    def list_messages(self, skip: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first, ``skip``/``limit`` like the API. ``messages`` keeps the order they were stored
        in (``seq``), so a page is a slice from the newest, not a sort of the whole account: a campaign's
        sensors read pages deep into 100,000 messages."""
        if skip < 0 or limit < 0:
            raise SandboxError(422, CODE_INVALID_BODY, "skip and limit must not be negative.")
        with self._lock:
            self.advance()
            now, lag = self.config.clock(), self.config.listing_lag  # lagging: the newest are not listed yet
            if lag:
                listed = (m for m in reversed(self.messages.values()) if now >= m.created + lag)
                page = list(itertools.islice(listed, skip, skip + limit))
            else:
                stored = list(self.messages.values())
                page = stored[max(0, len(stored) - skip - limit) : max(0, len(stored) - skip)][::-1]
            self._looked_at(page)
            return [render_message(m, self.config.email) for m in page]

    def view(self, message: StoredMessage | str) -> dict[str, Any]:
        """The wire dict of a stored message (or id) as a GET would answer it now."""
        return self.get(message if isinstance(message, str) else message.id, look=False)

    def callback_secrets(self, message_id: str) -> dict[str, Any] | None:
        """The callback as given (for the runner): read under the lock, without advancing the clock."""
        with self._lock:
            message = self.messages.get(message_id)
            return message.callback if message else None


def _seq(message: StoredMessage) -> int:
    return message.seq
