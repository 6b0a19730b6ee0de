"""Step 1 of a send (:mod:`.order`): recipients and the local checks, which refuse bad input before any
request."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_smsww.exceptions import SmsWwGateError, describe_problems
from airflow_provider_smsww.models import Callback, Region, SendRequest
from airflow_provider_smsww.segments import SegmentInfo
from airflow_provider_smsww.validation import (
    Problem,
    Recipient,
    check_content,
    check_region,
    parse_recipient,
)

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

    def request(self, recipient: Recipient, *, dry_run: bool) -> SendRequest:
        """The request for one recipient, its idempotency key in ``callback.custom``."""
        callback = self.callback
        if callback is not None and recipient.key in self.keys:
            custom = {**callback.custom, CALLBACK_KEY_FIELD: self.keys[recipient.key]}
            callback = callback.model_copy(update={"custom": custom})
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
        """What the batch holds, for the log: its messages, their parts and the region."""
        if self.recipients and isinstance(self.recipients[0], Entry):
            parts = sum(self.segments_of(r).parts for r in self.recipients)
            messages = f"{len(self.recipients)} personalised message(s)"
            return f"{messages}, {parts} part(s) in all, region {self.region}"
        return (
            f"{len(self.recipients)} recipient(s), {self.segments.parts} {self.segments.encoding} part(s) "
            f"each, region {self.region}"
        )


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
) -> Batch:
    """Validate everything that can be validated without the API; raise one error naming every problem.

    Duplicate recipients (also when written differently, e.g. with spaces, or nationally) are sent once.
    ``default_country``: see :func:`~airflow_provider_smsww.validation.parse_recipient`.
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
    valid = _parse_recipients(recipients, region, default_country, problems)
    if problems:
        raise refused_locally(problems)
    assert isinstance(segments, SegmentInfo)
    assert not isinstance(parsed_callback, Problem)
    if len(valid) < len(recipients):
        log.warning(
            "%d duplicate recipient(s) dropped: each number gets the message once",
            len(recipients) - len(valid),
        )
    return Batch(
        recipients=tuple(valid.values()),
        message=message,
        sender=sender or None,
        region=region,  # type: ignore[arg-type]
        segments=segments,
        fail_on_multiple_messages=fail_on_multiple_messages,
        callback=parsed_callback,
    )


def _parse_recipients(
    recipients: Sequence[str], region: str, default_country: str | None, problems: dict[str, str]
) -> dict[str, Recipient]:
    """Each valid number once, under its E.164 form (also when written differently, e.g. with spaces);
    each invalid one goes into ``problems`` under the number as given."""
    if not recipients:
        problems["recipients"] = "no recipients given"
    valid: dict[str, Recipient] = {}
    for raw in recipients:
        parsed = parse_recipient(raw, region, default_country)
        if isinstance(parsed, Problem):
            problems[str(raw)] = parsed.message
        else:
            valid.setdefault(parsed.e164, parsed)
    return valid


def refused_locally(problems: dict[str, str]) -> SmsWwGateError:
    """The error of a batch the local checks refuse, naming every problem: nothing was sent."""
    return SmsWwGateError(
        describe_problems("SMS batch refused before any request; nothing was sent.", problems),
        problems=problems,
    )
