"""Step 1 of a personalised send (:mod:`.order`): ``messages=[{recipient, message, sender}, ...]``, a
text (and optionally a sender) per recipient, read and checked locally before any request.

The operator's ``messages`` and the hook's ``send_many`` take the same entries; ``docs/operator.md``
tells how they are sent (each (number, sender, text) once, across retries and crashes).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_smsww.exceptions import SmsWwGateError, describe_problems
from airflow_provider_smsww.models import Callback
from airflow_provider_smsww.segments import SegmentInfo
from airflow_provider_smsww.sending.batch import Batch, Entry
from airflow_provider_smsww.validation import (
    Problem,
    check_callback,
    check_content,
    check_region,
    parse_recipient,
)

log = logging.getLogger(__name__)


def check_entries(
    messages: Sequence[Mapping[str, Any]],
    *,
    sender: str | None = None,
    region: str = "WW",
    callback: Callback | dict[str, Any] | None = None,
    fail_on_multiple_messages: bool = False,
    max_parts_per_message: int | None = None,
) -> Batch:
    """Check every entry as :func:`~airflow_provider_smsww.sending.batch.check_locally` checks a
    one-text batch, and raise one :class:`SmsWwGateError` naming every problem by its entry
    (``messages[3] (+39...)``). An exact duplicate (same number, however written, same text, same
    sender) is sent once; the same number with another text is another message.

    :param messages: the entries, each ``{recipient, message, sender?}`` (see :func:`~airflow_provider_smsww.arguments.as_entries`).
    :param sender: the sender of the entries that name none.
    :param region: ``WW``, ``IT`` or ``ES``.
    :param callback: the callback every message carries.
    :param fail_on_multiple_messages: refuse texts longer than one part.
    :param max_parts_per_message: refuse texts that need more parts than this.
    """
    problems: dict[str, str] = {}
    if problem := check_region(region):
        problems["region"] = problem.message
    if not messages:
        problems["messages"] = "no messages given"
    # The callback once, for all entries: the same object goes with every message.
    parsed_callback = None if callback is None else check_callback(callback)
    if isinstance(parsed_callback, Problem):
        problems["callback"] = parsed_callback.message
    checked: dict[tuple[str | None, str], tuple[SegmentInfo | Problem, str | None]] = {}
    valid: dict[str, Entry] = {}
    for index, item in enumerate(messages):
        text, entry_sender = item["message"], item.get("sender") or sender or None
        found: dict[str, str] = {}
        parsed = parse_recipient(item["recipient"], region)
        if isinstance(parsed, Problem):
            found["recipient"] = parsed.message
        if (entry_sender, text) not in checked:  # order confirmations share few texts: count each once
            own: dict[str, str] = {}
            segments, _ = check_content(
                text,
                own,
                sender=entry_sender,
                callback=None,
                fail_on_multiple_messages=fail_on_multiple_messages,
                max_parts_per_message=max_parts_per_message,
            )
            checked[(entry_sender, text)] = (segments, "; ".join(own.values()) or None)
        segments, problem_text = checked[(entry_sender, text)]
        if problem_text:
            found["message"] = problem_text
        if found or isinstance(parsed, Problem) or isinstance(segments, Problem):
            problems[f"messages[{index}] ({item['recipient']})"] = "; ".join(found.values())
            continue
        entry = Entry.of(parsed, text, entry_sender, segments, index)
        valid.setdefault(entry.key, entry)
    if problems:
        raise SmsWwGateError(
            describe_problems("SMS batch refused before any request; nothing was sent.", problems),
            problems=problems,
        )
    assert not isinstance(parsed_callback, Problem)
    if len(valid) < len(messages):
        log.warning(
            "%d duplicate message(s) dropped: each (number, sender, text) is sent once",
            len(messages) - len(valid),
        )
    entries = tuple(valid.values())
    return Batch(
        recipients=entries,
        message="",
        sender=sender or None,
        region=region,  # type: ignore[arg-type]
        segments=max((e.segments for e in entries), key=lambda s: s.parts),
        fail_on_multiple_messages=fail_on_multiple_messages,
        callback=parsed_callback,
    )
