"""Step 6 of a send (:mod:`.order`): reconciliation. The API has no idempotency key, so a send whose outcome
is unknown is looked up in ``GET /messages`` before anything is resent; a look-up that cannot decide fails
closed."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from airflow_provider_smsww.exceptions import SmsWwReconcileError
from airflow_provider_smsww.hooks.listing import NewestFirst
from airflow_provider_smsww.models import Message, MessageState, as_utc
from airflow_provider_smsww.sending.batch import CALLBACK_KEY_FIELD

if TYPE_CHECKING:
    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.sending.batch import Batch
    from airflow_provider_smsww.validation import Recipient

#: How far before the batch start a reconciled message may have been created, when the gateway's
#: answers carry no ``Date`` header to measure its clock by.
CLOCK_SKEW = timedelta(minutes=5)
#: The allowance around the clock offset measured from ``Date`` (one-second resolution, latency).
DATE_TOLERANCE = timedelta(seconds=5)


def listed_numbers(message: Message) -> set[str]:
    """Every valid E.164 number the listed recipient can be, as ``phonenumbers`` parses it.

    The gateway may write the recipient with ``+``, without it, or in national form with the country
    prefix apart in ``internationalPrefix``: ``3931234567`` with prefix ``39`` is +39 393 1234567, not
    +39 31234567, so the digits cannot just be compared. Each reading is parsed; readings that are not
    valid numbers, or whose country code contradicts ``internationalPrefix``, are dropped. More than
    one left means the listing is ambiguous, and the caller must not guess.
    """
    import phonenumbers

    raw = (message.recipient or "").strip()
    digits = "".join(ch for ch in raw if ch.isdigit())
    if not digits:
        return set()
    prefix = "".join(ch for ch in message.international_prefix or "" if ch.isdigit())
    if raw.startswith("+"):
        readings = {digits}
    elif raw.startswith("00"):
        readings = {digits[2:]}
    else:
        readings = {digits, prefix + digits} if prefix else {digits}
    numbers = set()
    for reading in readings:
        try:
            number = phonenumbers.parse(f"+{reading}", None)
        except phonenumbers.NumberParseException:
            continue
        if not phonenumbers.is_valid_number(number):
            continue
        if prefix and str(number.country_code) != prefix:
            continue
        numbers.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return numbers


#: States a message reaches only once it went to a carrier: a dry run never gets there.
_SENT_STATES = frozenset(
    {MessageState.PENDING, MessageState.DELIVERED, MessageState.UNDELIVERABLE, MessageState.EXPIRED}
)


def is_real_send(message: Message) -> bool:
    """Positive evidence that a listed message was really sent, not a dry run: ``options.dryRun``
    written and false, a ``sentAt`` / ``deliveredAt``, or a state only a sent message reaches. A
    listing without any of these (e.g. no ``options`` object) proves nothing either way."""
    if message.options_say_real_send:
        return True
    if message.sent_at is not None or message.delivered_at is not None:
        return True
    return message.state in _SENT_STATES


class Found(dict[str, Message]):
    """What :func:`reconcile` found: recipient -> our accepted message. ``undecided`` names the
    recipients with a listed message that matches but is not provably a real send (or whose listed
    number is ambiguous): they are neither recorded as sent nor sent again."""

    undecided: frozenset[str] = frozenset()
    #: The id of every message the scan read, the batch's own included (evidence of the listing's lag).
    listed_ids: frozenset[str] = frozenset()
    #: False when the scan stopped once every recipient was found: what it did not read is not absent.
    complete: bool = True


async def reconcile(
    hook: SmsWwHook,
    batch: Batch,
    recipients: Iterable[str],
    since: datetime,
    *,
    scan_limit: int = 10_000,
    clock_offset: timedelta | None = None,
) -> Found:
    """Find messages of this batch that the gateway already accepted, among ``recipients``.

    A match has the same recipient, text and sender, is not a dry run, was created at or after
    ``since`` (on the gateway's clock: offset by its ``Date`` header or by ``clock_offset``, the lowest
    offset the batch's own messages allow (:class:`.settle.Evidence`), whichever is lower; with
    neither, allowing :data:`CLOCK_SKEW`), and carries this batch's callback key when the batch has a
    callback. It counts as ours only on positive evidence of a real send (:func:`is_real_send`), else the
    recipient is undecided (``Found.undecided``): fail closed, never taken for sent.
    The scan of ``GET /messages`` stops early only once it has passed ``since`` in a listing that is
    newest first (the spec does not promise the order, so it is checked as the scan goes). It fails
    closed: if it runs out of ``scan_limit`` before that, with recipients still unaccounted for, it
    raises :class:`SmsWwReconcileError` rather than report them as not sent, which would send them
    again.
    """
    client = await hook.get_async_conn()
    scan = _Scan(_Wanted.of(batch, set(recipients)), since, clock_offset, lambda: client.clock_offset)
    async for message in hook.alist_messages(max_items=scan_limit):
        if scan.stops_at(message):
            break
    else:
        if scan.read >= scan_limit:
            raise _scan_exhausted(scan.missing, scan_limit, scan.order.in_order)
    return scan.found()


class _Scan:
    """One pass of :func:`reconcile` over ``GET /messages``: the messages read, the wanted ones found,
    those that could not be decided, and whether the listing is newest first.

    :param wanted: what the pass looks for.
    :param since: when the batch started, on our clock.
    :param clock_offset: the lowest gateway clock offset the batch's own messages allow, if known.
    :param date_offset: the gateway clock's offset as its ``Date`` header shows it, measured as the
        listing is read (None until known).
    """

    def __init__(
        self,
        wanted: _Wanted,
        since: datetime,
        clock_offset: timedelta | None,
        date_offset: Callable[[], timedelta | None],
    ) -> None:
        self.wanted, self.since, self.clock_offset, self.date_offset = (
            wanted,
            since,
            clock_offset,
            date_offset,
        )
        self.order = NewestFirst()
        self.read = 0
        self.listed: set[str] = set()
        self.matched: dict[str, Message] = {}
        self.undecided: set[str] = set()
        self.complete = True

    @property
    def missing(self) -> int:
        return len(self.wanted.keys) - len(self.matched)

    def stops_at(self, message: Message) -> bool:
        """Take one listed message; True once the scan may stop: every wanted message found, or a
        newest-first listing gone past ``since`` (everything after is older still)."""
        self.read += 1
        if message.id:
            self.listed.add(message.id)
        if _older_than(
            message, _gateway_floor(self.since, self.date_offset(), self.clock_offset), self.order
        ):
            return self.order.in_order and self.order.seen_descending
        candidates, decided = self.wanted.matches(message)
        if not decided:
            self.undecided |= candidates
            return False
        if not candidates or (recipient := candidates.pop()) in self.matched:
            return False
        self.matched[recipient] = message
        # Stopped before the end: what the scan did not read is not proven absent.
        self.complete = self.missing > 0
        return not self.complete

    def found(self) -> Found:
        found = Found(self.matched)
        found.undecided = frozenset(self.undecided - set(self.matched))
        found.listed_ids = frozenset(self.listed)
        found.complete = self.complete
        return found


@dataclass(frozen=True)
class _Wanted:
    """What a reconciliation looks for: each wanted key under its number (one number may have several
    texts in a personalised batch), and the texts, checked before any number is parsed."""

    batch: Batch
    keys: frozenset[str]
    by_number: dict[str, list[Recipient]]
    texts: frozenset[str]

    @classmethod
    def of(cls, batch: Batch, keys: set[str]) -> _Wanted:
        by_number: dict[str, list[Recipient]] = {}
        for r in batch.recipients:
            if r.key in keys:
                by_number.setdefault(r.e164, []).append(r)
        texts = frozenset(batch.text_of(r) for group in by_number.values() for r in group)
        return cls(batch, frozenset(keys), by_number, texts)

    def matches(self, message: Message) -> tuple[set[str], bool]:
        """The wanted keys a listed message can be (same number, text, sender and callback key), and
        whether that is decided: False when it matches but is not provably a real send, or when its
        number or its match is ambiguous. A dry run, or a message without an id, matches none."""
        if not message.id or (message.options is not None and message.options.dry_run):
            return set(), True
        if message.message not in self.texts:
            return set(), True
        numbers = listed_numbers(message)
        candidates = {
            r.key
            for number in numbers
            for r in self.by_number.get(number, ())
            if _same_text(self.batch, message, r) and _same_key(self.batch, message, r.key)
        }
        if not candidates:
            return candidates, True
        return candidates, len(numbers) == 1 and len(candidates) == 1 and is_real_send(message)


def _gateway_floor(
    since: datetime, date_offset: timedelta | None, clock_offset: timedelta | None
) -> datetime:
    """``since`` on the gateway's clock: offset by the lower of its ``Date`` header's offset (measured
    as the listing is read, less :data:`DATE_TOLERANCE`) and the batch's own messages' ``clock_offset``;
    with neither, :data:`CLOCK_SKEW` earlier."""
    date = None if date_offset is None else date_offset - DATE_TOLERANCE
    offsets = [o for o in (date, clock_offset) if o is not None]
    return since - CLOCK_SKEW if not offsets else since + min(offsets)


def _older_than(message: Message, floor: datetime, order: NewestFirst) -> bool:
    """The listed message was created before ``floor``; its creation time, when it has one, is shown
    to ``order`` first."""
    created = as_utc(message.created_at)
    if created is None:
        return False
    order.see(created)
    return created < floor


def _scan_exhausted(missing: int, scan_limit: int, in_order: bool) -> SmsWwReconcileError:
    """Fail closed: sends the scan could neither confirm nor rule out are not sent again."""
    disorder = "" if in_order else " (and the listing is not newest first)"
    return SmsWwReconcileError(
        f"GET /messages: {missing} earlier send(s) could not be confirmed or ruled "
        f"out within {scan_limit} listed messages{disorder}; not sending them again, to avoid a "
        "duplicate. Check the account's messages, then run the task again."
    )


def _same_text(batch: Batch, message: Message, recipient: Recipient) -> bool:
    """The listed message carries the text and sender this recipient's message has (a listing that
    leaves the sender out matches any)."""
    sender = batch.sender_of(recipient)
    return message.message == batch.text_of(recipient) and message.sender in (
        None,
        sender or "Openapi",
        sender,
    )


def _same_key(batch: Batch, message: Message, recipient: str) -> bool:
    """A batch with a callback carries its per-recipient key in ``callback.custom``: a listed message
    with another key belongs to another run."""
    if batch.callback is None or recipient not in batch.keys:
        return True
    custom = message.callback.custom if message.callback else {}
    return bool(custom.get(CALLBACK_KEY_FIELD, batch.keys[recipient]) == batch.keys[recipient])
