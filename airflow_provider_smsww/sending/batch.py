"""Step 1 of a send (:mod:`.order`): recipients and the local checks, which refuse bad input before any
request."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from airflow_provider_smsww.exceptions import SmsWwGateError, describe_problems
from airflow_provider_smsww.models import Callback, Region, SendRequest
from airflow_provider_smsww.segments import SegmentInfo
from airflow_provider_smsww.sending.refusals import Refused
from airflow_provider_smsww.validation import (
    Problem,
    Recipient,
    check_content,
    check_region,
    parse_recipient,
)

if TYPE_CHECKING:
    from airflow_provider_smsww.receipts import ReceiptStamp

log = logging.getLogger(__name__)

#: Where each message carries its per-recipient key, in ``callback.custom`` (see :mod:`.reconcile`).
CALLBACK_KEY_FIELD = "smsww_key"


@dataclass(frozen=True, slots=True)
class Entry(Recipient):
    """One message of a personalised batch (``messages=[...]``): its number, its own text and sender.
    Built by :func:`~airflow_provider_smsww.sending.entries.check_entries`."""

    message: str
    sender: str | None
    segments: SegmentInfo
    #: Where the entry was in ``messages`` (the first, when exact duplicates were dropped).
    index: int
    #: A short hash of (sender, text), made once by :meth:`of`.
    digest: str

    @classmethod
    def of(
        cls, recipient: Recipient, message: str, sender: str | None, segments: SegmentInfo, index: int
    ) -> Entry:
        """The entry of a checked number, text and sender."""
        digest = hashlib.sha256(f"{sender or ''}\x1f{message}".encode()).hexdigest()[:12]
        return cls(
            recipient.e164,
            recipient.country_code,
            recipient.international_prefix,
            message,
            sender,
            segments,
            index,
            digest,
        )

    @property
    def key(self) -> str:
        """The number and a short hash of (sender, text): the same number with two texts is two
        messages, and an exact duplicate (even with the number written differently) is one."""
        return f"{self.e164}#{self.digest}"

    @property
    def label(self) -> str:
        return f"messages[{self.index}] ({self.e164})"


@dataclass(frozen=True)
class Batch:
    """A validated batch: what will be sent to whom. Built by :func:`check_locally`, or by
    :func:`~airflow_provider_smsww.sending.entries.check_entries` with an :class:`Entry` per message
    (then ``message`` is empty and ``segments`` those of the longest text)."""

    recipients: tuple[Recipient, ...]
    message: str
    sender: str | None
    region: Region
    segments: SegmentInfo
    fail_on_multiple_messages: bool = False
    callback: Callback | None = None
    #: Deterministic per-message keys (dag, task, run, map index, ``Recipient.key``), put in callback.custom.
    keys: dict[str, str] = field(default_factory=dict)
    #: With ``on_invalid="skip"``: the rows left out (:mod:`.refusals`), and how many rows were given.
    refused: tuple[Refused, ...] = ()
    rows: int = 0
    #: Each message's key -> its number as given, to name a row the gateway refuses as the user wrote it.
    given: dict[str, str] = field(default_factory=dict)
    #: With receipts on (:func:`with_receipts`): what stamps each message's callback with its credential.
    receipts: ReceiptStamp | None = None

    def without(self, reasons: Mapping[str, str]) -> Batch:
        """The batch less the messages of ``reasons`` (key or number -> why), each added to ``refused``."""
        kept: list[Recipient] = []
        refused: list[Refused] = []
        for recipient in self.recipients:
            why = reasons.get(recipient.key) or reasons.get(recipient.e164)
            if why is None:
                kept.append(recipient)
            else:
                given = self.given.get(recipient.key, recipient.e164)
                refused.append(Refused(given, why, _index(recipient)))
        return replace(self, recipients=tuple(kept), refused=self.refused + tuple(refused))

    def request(self, recipient: Recipient, *, dry_run: bool) -> SendRequest:
        """The request for one recipient, its idempotency key in ``callback.custom`` and, with
        receipts on, its credential in ``callback.headers``."""
        callback = self.callback
        if callback is not None and recipient.key in self.keys:
            custom = {**callback.custom, CALLBACK_KEY_FIELD: self.keys[recipient.key]}
            callback = callback.model_copy(update={"custom": custom})
        if callback is not None and self.receipts is not None:
            headers = self.receipts.header(callback.custom, recipient.e164)
            callback = callback.model_copy(update={"headers": {k: SecretStr(v) for k, v in headers.items()}})
        return SendRequest.of(
            recipient.e164,
            self.text_of(recipient),
            sender=self.sender_of(recipient),
            dry_run=dry_run,
            fail_on_multiple_messages=self.fail_on_multiple_messages,
            callback=callback,
        )

    def text_of(self, recipient: Recipient) -> str:
        """The text this recipient gets: its entry's own, else the batch's."""
        return recipient.message if isinstance(recipient, Entry) else self.message

    def sender_of(self, recipient: Recipient) -> str | None:
        """The sender this recipient's message carries (None for the gateway's default)."""
        return recipient.sender if isinstance(recipient, Entry) else self.sender

    def segments_of(self, recipient: Recipient) -> SegmentInfo:
        """The parts of this recipient's text, counted locally."""
        return recipient.segments if isinstance(recipient, Entry) else self.segments

    def summary(self) -> str:
        """What the batch holds, for the log: its messages, their parts, the region, the rows left out."""
        left_out = f"; {len(self.refused)} refused row(s) left out" if self.refused else ""
        if self.recipients and isinstance(self.recipients[0], Entry):
            parts = sum(self.segments_of(r).parts for r in self.recipients)
            messages = f"{len(self.recipients)} personalised message(s)"
            return f"{messages}, {parts} part(s) in all, region {self.region}{left_out}"
        return (
            f"{len(self.recipients)} recipient(s), {self.segments.parts} {self.segments.encoding} part(s) "
            f"each, region {self.region}{left_out}"
        )


def _index(recipient: Recipient) -> int | None:
    return recipient.index if isinstance(recipient, Entry) else None


def with_receipts(batch: Batch, stamp: ReceiptStamp | None) -> Batch:
    """The batch with each message's callback pointed at the receipts endpoint (docs/receipts.md).

    :param batch: the checked batch.
    :param stamp: the connection's receipt settings and the messages' origin; None: receipts are off.
    :return: the batch unchanged when receipts are off or it has a callback of the user's (theirs keeps
        working: a message has one callback).
    """
    if stamp is None or batch.callback is not None:
        return batch
    return replace(batch, callback=Callback.model_validate(stamp.callback()), receipts=stamp)


def idempotency_key(*parts: object) -> str:
    """A stable key for one message of one task try family (same across retries)."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]


def check_locally(
    recipients: Sequence[str],
    message: str,
    *,
    sender: str | None = None,
    region: str = "WW",
    callback: Callback | dict[str, Any] | None = None,
    fail_on_multiple_messages: bool = False,
    max_parts_per_message: int | None = None,
    default_country: str | None = None,
    skip_invalid: bool = False,
) -> Batch:
    """Validate everything that can be validated without the API; raise one error naming every problem.

    Duplicate recipients (also when written differently, e.g. with spaces, or nationally) are sent once.
    ``default_country``: see :func:`~airflow_provider_smsww.validation.parse_recipient`. With
    ``skip_invalid`` a bad number is left out (:attr:`Batch.refused`) instead of refusing the batch.
    """
    problems: dict[str, str] = {}
    if problem := check_region(region):
        problems["region"] = problem.message
    segments, parsed_callback = check_content(
        message,
        problems,
        sender=sender,
        callback=callback,
        fail_on_multiple_messages=fail_on_multiple_messages,
        max_parts_per_message=max_parts_per_message,
    )
    if not recipients:
        problems["recipients"] = "no recipients given"
    valid, given, bad_numbers = _parse_recipients(recipients, region, default_country)
    refused = tuple(Refused(raw, why) for raw, why in bad_numbers.items())
    refuse_unless_skipped(problems, refused, skip_invalid)
    assert isinstance(segments, SegmentInfo)
    assert not isinstance(parsed_callback, Problem)
    if len(valid) + len(refused) < len(recipients):
        log.warning(
            "%d duplicate recipient(s) dropped: each number gets the message once",
            len(recipients) - len(valid) - len(refused),
        )
    return Batch(
        recipients=tuple(valid.values()),
        message=message,
        sender=sender or None,
        region=region,  # type: ignore[arg-type]
        segments=segments,
        fail_on_multiple_messages=fail_on_multiple_messages,
        callback=parsed_callback,
        refused=refused,
        rows=len(recipients),
        given=given,
    )


def _parse_recipients(
    recipients: Sequence[str], region: str, default_country: str | None
) -> tuple[dict[str, Recipient], dict[str, str], dict[str, str]]:
    """Each valid number once, under its E.164 form (also when written differently, e.g. with spaces),
    each one's first form as given, and why each invalid number (as given) is refused."""
    valid: dict[str, Recipient] = {}
    given: dict[str, str] = {}
    bad: dict[str, str] = {}
    for raw in recipients:
        parsed = parse_recipient(raw, region, default_country)
        if isinstance(parsed, Problem):
            bad[str(raw)] = parsed.message
        elif parsed.e164 not in valid:
            valid[parsed.e164], given[parsed.e164] = parsed, str(raw)
    return valid, given, bad


def refuse_unless_skipped(problems: dict[str, str], refused: Sequence[Refused], skip_invalid: bool) -> None:
    """Refuse the batch, every problem named, when something is wrong with it as a whole (``problems``)
    or, unless ``skip_invalid`` (``on_invalid="skip"``), with any of its rows (``refused``)."""
    if problems or (refused and not skip_invalid):
        rows = {} if skip_invalid else {r.label: r.reason for r in refused}
        raise refused_locally({**problems, **rows})


def refused_locally(problems: dict[str, str]) -> SmsWwGateError:
    """The error of a batch the local checks refuse, naming every problem: nothing was sent."""
    return SmsWwGateError(
        describe_problems("SMS batch refused before any request; nothing was sent.", problems),
        problems=problems,
    )
