"""Step 1 of a personalised send (:mod:`.order`): ``messages=[{recipient, message, sender}, ...]``, a
text (and optionally a sender) per recipient, read and checked locally before any request.

The operator's ``messages`` and the hook's ``send_many`` take the same entries; ``docs/operator.md``
tells how they are sent (each (number, sender, text) once, across retries and crashes).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_smsww.models import Callback
from airflow_provider_smsww.segments import SegmentInfo
from airflow_provider_smsww.sending.batch import Batch, Entry, refuse_unless_skipped
from airflow_provider_smsww.sending.refusals import Refused
from airflow_provider_smsww.validation import (
    Problem,
    check_callback,
    check_content,
    check_region,
    parse_recipient,
)

log = logging.getLogger(__name__)

#: The parts of a batch whose every entry was refused (it fails its share check before any request).
_NO_TEXT = SegmentInfo("GSM-7", 0, 0)


def check_entries(
    messages: Sequence[Mapping[str, Any]],
    *,
    sender: str | None = None,
    region: str = "WW",
    callback: Callback | dict[str, Any] | None = None,
    fail_on_multiple_messages: bool = False,
    max_parts_per_message: int | None = None,
    default_country: str | None = None,
    skip_invalid: bool = False,
) -> Batch:
    """Check every entry as :func:`~airflow_provider_smsww.sending.batch.check_locally` checks a
    one-text batch, and raise one :class:`SmsWwGateError` naming every problem by its entry
    (``messages[3] (+39...)``). An exact duplicate (same number, however written, same text, same
    sender) is sent once; the same number with another text is another message.

    :param messages: the entries, each ``{recipient, message, sender?}`` (see
        :func:`~airflow_provider_smsww.arguments.as_entries`).
    :param sender: the sender of the entries that name none.
    :param region: ``WW``, ``IT`` or ``ES``.
    :param callback: the callback every message carries.
    :param fail_on_multiple_messages: refuse texts longer than one part.
    :param max_parts_per_message: refuse texts that need more parts than this.
    :param default_country: the country of the numbers written without ``+`` (ISO 3166 alpha-2).
    :param skip_invalid: leave a refused entry out (:attr:`Batch.refused`) instead of refusing the batch.
    """
    problems, parsed_callback = _batch_problems(messages, region, callback)
    content = _ContentChecks(fail_on_multiple_messages, max_parts_per_message)
    valid: dict[str, Entry] = {}
    given: dict[str, str] = {}
    refused: list[Refused] = []
    for index, item in enumerate(messages):
        entry = _check_entry(item, index, sender, (region, default_country), content)
        if isinstance(entry, str):
            refused.append(Refused(str(item["recipient"]), entry, index))
        elif entry.key not in valid:
            valid[entry.key], given[entry.key] = entry, str(item["recipient"])
    refuse_unless_skipped(problems, refused, skip_invalid)
    assert not isinstance(parsed_callback, Problem)
    if len(valid) + len(refused) < len(messages):
        log.warning(
            "%d duplicate message(s) dropped: each (number, sender, text) is sent once",
            len(messages) - len(valid) - len(refused),
        )
    entries = tuple(valid.values())
    return Batch(
        recipients=entries,
        message="",
        sender=sender or None,
        region=region,  # type: ignore[arg-type]
        segments=max((e.segments for e in entries), key=lambda s: s.parts, default=_NO_TEXT),
        fail_on_multiple_messages=fail_on_multiple_messages,
        callback=parsed_callback,
        refused=tuple(refused),
        rows=len(messages),
        given=given,
    )


def _batch_problems(
    messages: Sequence[Mapping[str, Any]], region: str, callback: Callback | dict[str, Any] | None
) -> tuple[dict[str, str], Callback | Problem | None]:
    """What is wrong with the batch as a whole (region, no entries, callback), and the callback parsed
    once for all entries: the same object goes with every message."""
    problems: dict[str, str] = {}
    if problem := check_region(region):
        problems["region"] = problem.message
    if not messages:
        problems["messages"] = "no messages given"
    parsed_callback = None if callback is None else check_callback(callback)
    if isinstance(parsed_callback, Problem):
        problems["callback"] = parsed_callback.message
    return problems, parsed_callback


class _ContentChecks:
    """The sender and text checks of each (sender, text) once: order confirmations share few texts."""

    def __init__(self, fail_on_multiple_messages: bool, max_parts_per_message: int | None) -> None:
        self.fail_on_multiple_messages = fail_on_multiple_messages
        self.max_parts_per_message = max_parts_per_message
        self.checked: dict[tuple[str | None, str], tuple[SegmentInfo | Problem, str | None]] = {}

    def of(self, sender: str | None, text: str) -> tuple[SegmentInfo | Problem, str | None]:
        """The parts of ``text`` (or its problem), and every problem of the sender and text in one line."""
        if (sender, text) not in self.checked:
            problems: dict[str, str] = {}
            segments, _ = check_content(
                text,
                problems,
                sender=sender,
                callback=None,
                fail_on_multiple_messages=self.fail_on_multiple_messages,
                max_parts_per_message=self.max_parts_per_message,
            )
            self.checked[(sender, text)] = (segments, "; ".join(problems.values()) or None)
        return self.checked[(sender, text)]


def _check_entry(
    item: Mapping[str, Any],
    index: int,
    sender: str | None,
    numbering: tuple[str, str | None],
    content: _ContentChecks,
) -> Entry | str:
    """One entry checked: its :class:`Entry`, or why it is refused (its number's and its content's
    problems in one line). ``numbering``: the region and the default country, which read its number."""
    text, entry_sender = item["message"], item.get("sender") or sender or None
    found: dict[str, str] = {}
    parsed = parse_recipient(item["recipient"], *numbering)
    if isinstance(parsed, Problem):
        found["recipient"] = parsed.message
    segments, problem_text = content.of(entry_sender, text)
    if problem_text:
        found["message"] = problem_text
    if found or isinstance(parsed, Problem) or isinstance(segments, Problem):
        return "; ".join(found.values())
    return Entry.of(parsed, text, entry_sender, segments, index)
