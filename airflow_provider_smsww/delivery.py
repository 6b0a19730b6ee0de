"""Delivery rules shared by :class:`~airflow_provider_smsww.sensors.smsww.SmsDeliverySensor` and
:class:`~airflow_provider_smsww.triggers.smsww.SmsDeliveryTrigger`: which message ids to watch, what
counts as delivered, failed or still in flight, when ``min_delivered`` is met or out of reach, and how
a round of reads is made. One implementation keeps poke, reschedule and deferrable mode in agreement.

Import cost: the sensor imports this module only on a worker; it needs pydantic (loaded by Airflow).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_smsww.arguments import parse_literal
from airflow_provider_smsww.exceptions import (
    MAX_NAMED,
    SmsWwError,
    SmsWwRateLimitError,
    SmsWwServerError,
    SmsWwTransportError,
    SmsWwValidationError,
    describe_problems,
)
from airflow_provider_smsww.hooks.listing import LISTING_MIN_IDS
from airflow_provider_smsww.models import MessageState
from airflow_provider_smsww.validation import is_message_id

if TYPE_CHECKING:
    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.models import Message

_SEPARATORS = re.compile(r"[,;\s]+")
_MAX_DEPTH = 4

#: Errors that say nothing about the messages, only that the API could not answer right now (after the
#: client's own retries): a poll round that meets one counts as "not yet" and the next round tries
#: again. Everything else (401/403, 404, a host that does not speak the API) will not heal by waiting.
TRANSIENT_ERRORS: tuple[type[SmsWwError], ...] = (SmsWwServerError, SmsWwTransportError, SmsWwRateLimitError)

#: State reported for an id that could not be read yet (only in a ``min_delivered`` success).
UNKNOWN_STATE = "UNKNOWN"


def required_count(total: int, min_delivered: int | None) -> int:
    """How many of ``total`` messages must be delivered: all of them, or ``min_delivered`` capped at
    ``total`` (a mapped campaign's last batch may be smaller than the batch size the bar was set for)."""
    if min_delivered is None:
        return total
    return min(min_delivered, total)


def describe(message: Message) -> str:
    """``id=… recipient=… state=…`` plus the blocklist reason: enough to act on, nothing secret."""
    text = f"id={message.id} recipient={message.recipient or '?'} state={message.state_name}"
    if message.blocklisted:
        reason = f": {message.blocklisted_reason}" if message.blocklisted_reason else ""
        text += f" (blocklisted{reason})"
    return text


@dataclass(frozen=True)
class DeliveryProgress:
    """Where a set of messages stands, and the verdict.

    Without ``min_delivered`` every message must be delivered, so the first failed one decides.
    With it, the wait succeeds once ``required`` are delivered and fails as soon as fewer than
    ``required`` can still be (``total - failed < required``): waiting longer cannot change the outcome.
    A message counts as failed when its state is UNDELIVERABLE, EXPIRED or REJECTED, or when it is
    blocklisted (whatever its state). An unknown state, or an id not read yet, counts as pending.
    """

    ids: Sequence[str]
    messages: Mapping[str, Message]
    required: int

    @property
    def delivered(self) -> list[Message]:
        return [m for m in self._known() if not m.is_failure and m.state == MessageState.DELIVERED]

    @property
    def failed(self) -> list[Message]:
        return [m for m in self._known() if m.is_failure]

    @property
    def pending_ids(self) -> list[str]:
        done = {m.id for m in self.delivered} | {m.id for m in self.failed}
        return [i for i in self.ids if i not in done]

    @property
    def succeeded(self) -> bool:
        return len(self.delivered) >= self.required

    @property
    def impossible(self) -> bool:
        """True when the success condition can no longer be met."""
        return len(self.ids) - len(self.failed) < self.required

    @property
    def done(self) -> bool:
        return self.succeeded or self.impossible

    def _known(self) -> list[Message]:
        return [m for i in self.ids if (m := self.messages.get(i)) is not None]

    def counts(self) -> str:
        """One log line: ``3/10 delivered, 6 pending, 1 failed (need 9)``."""
        need = f" (need {self.required})" if self.required < len(self.ids) else ""
        return (
            f"{len(self.delivered)}/{len(self.ids)} delivered, {len(self.pending_ids)} pending, "
            f"{len(self.failed)} failed{need}"
        )

    def failure_message(self) -> str:
        """Why the wait failed, naming each failed message (id, recipient, state)."""
        failed = self.failed
        named = "; ".join(describe(m) for m in failed[:MAX_NAMED])
        if len(failed) > MAX_NAMED:
            named += f"; and {len(failed) - MAX_NAMED} more"
        if self.required < len(self.ids):
            head = (
                f"SMS delivery cannot reach min_delivered={self.required}: {len(failed)} of "
                f"{len(self.ids)} message(s) failed, so at most {len(self.ids) - len(failed)} "
                "can be delivered"
            )
        else:
            head = f"{len(failed)} of {len(self.ids)} SMS message(s) will not be delivered"
        return f"{head}: {named}"

    def records(self) -> list[dict[str, Any]]:
        """The messages as JSON-safe records (no text, no callback headers), in id order."""
        out: list[dict[str, Any]] = []
        for message_id in self.ids:
            message = self.messages.get(message_id)
            if message is None:
                out.append({"id": message_id, "recipient": None, "state": UNKNOWN_STATE})
            else:
                out.append(message.summary())
        return out

    def event(self) -> dict[str, Any]:
        """The trigger event payload for a finished wait."""
        status = "success" if self.succeeded else "failure"
        message = f"SMS delivery complete: {self.counts()}" if self.succeeded else self.failure_message()
        return {
            "status": status,
            "message": message,
            "messages": self.records(),
            "delivered": len(self.delivered),
            "failed": len(self.failed),
            "pending": len(self.pending_ids),
        }


async def read_messages(
    hook: SmsWwHook,
    ids: Sequence[str],
    messages: dict[str, Message],
    *,
    max_concurrency: int,
) -> SmsWwError | None:
    """Read ``ids`` into ``messages`` through the hook's bounded concurrent read; return the transient
    error that cut the round short, if any. Used by the trigger and by the sensor's pokes, so both read
    the same way: from :data:`~airflow_provider_smsww.hooks.listing.LISTING_MIN_IDS` ids on, by listing pages
    (about one request per 100 messages instead of one each), else one GET per id.

    After a transient error no new request starts in this round: the client has already retried
    with backoff, so the API is struggling and hammering it for every other id would only slow the
    recovery. A non-transient error propagates (a 404 names the id).
    """
    try:
        by_listing = len(ids) >= LISTING_MIN_IDS
        await hook.aget_messages(ids, max_concurrency=max_concurrency, into=messages, by_listing=by_listing)
    except TRANSIENT_ERRORS as exc:
        return exc
    return None


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def normalize_message_ids(value: Any) -> list[str]:
    """Every message id in ``value``, deduplicated, in order.

    Accepts one id, a comma- or space-separated string of ids, a list of ids, the records that
    :class:`~airflow_provider_smsww.operators.smsww.SmsSendOperator` returns (``{recipient, id, state,
    ...}``), nested lists of those (a mapped upstream), and any of these rendered to a JSON or Python
    literal string. Raises :class:`SmsWwValidationError` naming every entry that is not a message id.
    """
    ids: list[str] = []
    problems: list[str] = []

    def add(candidate: str) -> None:
        if is_message_id(candidate):
            ids.append(candidate)
        else:
            problems.append(f"{_short(candidate)} is not a message id (letters, digits and '-')")

    def walk(item: Any, depth: int) -> None:
        if depth > _MAX_DEPTH:
            problems.append(f"{_short(item)} is nested too deeply")
        elif isinstance(item, str):
            text = item.strip()
            if text[:1] in ("[", "{", "("):
                parsed = parse_literal(text)
                if parsed is None or isinstance(parsed, str):
                    problems.append(f"{_short(text)} looks like a list or record but does not parse")
                else:
                    walk(parsed, depth + 1)
            else:
                for part in _SEPARATORS.split(text):
                    if part:
                        add(part)
        elif isinstance(item, Mapping):
            if item.get("dry_run") is True:
                problems.append(
                    "got the estimate of SmsSendOperator(dry_run=True): nothing was sent, so there is "
                    "nothing to wait for"
                )
            elif isinstance(item.get("id"), str) and item["id"]:
                add(item["id"])
            else:
                recipient = item.get("recipient")
                problems.append(
                    f"record {_short(dict(item))} has no message id"
                    + (f" (recipient {recipient})" if recipient else "")
                )
        elif isinstance(item, Iterable) and not isinstance(item, bytes | bytearray):
            for element in item:
                walk(element, depth + 1)
        else:
            problems.append(f"{type(item).__name__} {_short(item)} is not a message id")

    walk(value, 0)
    if problems:
        raise SmsWwValidationError(describe_problems("message_ids:", problems, limit=MAX_NAMED))
    if not ids:
        raise SmsWwValidationError(
            "message_ids is empty: there is nothing to wait for (did the upstream task send anything?)"
        )
    return list(dict.fromkeys(ids))
