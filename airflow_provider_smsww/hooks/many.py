"""Many personalised messages in one call, for TaskFlow code:
:class:`~airflow_provider_smsww.hooks.smsww.SmsWwHook` takes :func:`send_many` and :func:`asend_many`
as its own methods (``hook.send_many(entries)``); they live here to keep the hook's module small.

Unlike :class:`~airflow_provider_smsww.operators.smsww.SmsSendOperator` (``messages=``), there is no
dry-run gate, budget or retry ledger: each entry is checked locally and sent, a bounded number at once,
and the caller gets one result per entry (the message, or the error for that entry). A task that
calls it and is retried sends again; ``docs/hook.md`` says when to use which.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_smsww.arguments import as_entries
from airflow_provider_smsww.concurrency import Progress
from airflow_provider_smsww.exceptions import SmsWwError
from airflow_provider_smsww.hooks.dry_run import as_dry_run
from airflow_provider_smsww.hooks.fanout import FanOut
from airflow_provider_smsww.validation import build_request

if TYPE_CHECKING:
    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.models import Callback, Message, Region, SendRequest

log = logging.getLogger(__name__)


def send_many(
    hook: SmsWwHook,
    messages: Sequence[Mapping[str, Any]],
    *,
    sender: str | None = None,
    region: Region = "WW",
    max_concurrency: int = 20,
    dry_run: bool = False,
    fail_on_multiple_messages: bool = False,
    callback: Callback | dict[str, Any] | None = None,
) -> list[Message | SmsWwError]:
    """Send a text per recipient: ``messages`` is a list of ``{"recipient": ..., "message": ...,
    "sender": ...}`` (``sender`` optional). Returns one result per entry, in entry order: the
    :class:`~airflow_provider_smsww.models.Message`, or the :class:`SmsWwError` that entry met (a
    local check, the API's refusal, an unknown outcome that is not resent). An exact duplicate (same
    number, sender and text) is sent once, and gets the same result. After a refusal of the account
    (credentials, credit) no further entry is sent: each gets that error. A list that is not a list
    of such dicts raises :class:`~airflow_provider_smsww.exceptions.SmsWwGateError` before any request.

    :param messages: the entries.
    :param sender: the sender of the entries that name none (default "Openapi").
    :param region: ``WW``, ``IT`` or ``ES``.
    :param max_concurrency: requests in flight at once.
    :param dry_run: validate and price only (free).
    :param fail_on_multiple_messages: refuse a text longer than one part.
    :param callback: the API's callback object, the same for every message.
    """
    return hook.run_async(
        lambda: asend_many(
            hook,
            messages,
            sender=sender,
            region=region,
            max_concurrency=max_concurrency,
            dry_run=dry_run,
            fail_on_multiple_messages=fail_on_multiple_messages,
            callback=callback,
        )
    )


async def asend_many(
    hook: SmsWwHook,
    messages: Sequence[Mapping[str, Any]],
    *,
    sender: str | None = None,
    region: Region = "WW",
    max_concurrency: int = 20,
    dry_run: bool = False,
    fail_on_multiple_messages: bool = False,
    callback: Callback | dict[str, Any] | None = None,
) -> list[Message | SmsWwError]:
    """Async twin of :func:`send_many` (``await hook.asend_many(...)``), with the same parameters.

    :param messages: the entries, each ``{recipient, message, sender?}``.
    :param params: ``sender``, ``region``, ``max_concurrency``, ``dry_run``,
        ``fail_on_multiple_messages``, ``callback``, as for :func:`send_many`.
    """
    entries = as_entries(messages)
    results: list[Message | SmsWwError | None] = [None] * len(entries)
    sends = distinct_sends(
        entries,
        results,
        sender=sender,
        region=region,
        fail_on_multiple_messages=fail_on_multiple_messages,
        callback=callback,
    )
    progress = Progress(len(sends), "sent (dry run)" if dry_run else "sent")
    fanout = FanOut(hook, DistinctSends(region), max_concurrency, {}, dry_run=dry_run)

    async def send(distinct: DistinctSend) -> None:
        result: Message | SmsWwError
        if (fatal := fanout.fatal) is not None and fanout.stopped(distinct):
            result = fatal
        else:
            try:
                message = await fanout.send(distinct)
            except SmsWwError as exc:
                result = exc
            else:
                result = message if message is not None else fanout.refused[distinct.key]
            progress.tick()
        for index in distinct.indexes:
            results[index] = result

    await fanout.run(sends, send)
    failed = sum(isinstance(r, SmsWwError) for r in results)
    if failed:
        log.warning("%d of %d message(s) not sent; see the result of each entry", failed, len(entries))
    return [r for r in results if r is not None]


@dataclass(frozen=True)
class DistinctSend:
    """One distinct (number, sender, text) of ``send_many``: its request, and the entries that send it
    (an exact duplicate is sent once and gets the same result)."""

    key: str
    request: SendRequest
    indexes: list[int]


@dataclass(frozen=True)
class DistinctSends:
    """The :class:`~airflow_provider_smsww.hooks.fanout.Outbox` of ``send_many``: each distinct send's
    own request, to the region's send path."""

    region: Region

    def request(self, recipient: DistinctSend, *, dry_run: bool) -> SendRequest:
        return as_dry_run(recipient.request) if dry_run else recipient.request


def distinct_sends(
    entries: Sequence[Mapping[str, Any]],
    results: list[Message | SmsWwError | None],
    *,
    sender: str | None,
    region: Region,
    fail_on_multiple_messages: bool,
    callback: Callback | dict[str, Any] | None,
) -> list[DistinctSend]:
    """Check each entry locally (:func:`~airflow_provider_smsww.validation.build_request`) and group the
    exact duplicates; an entry refused here gets its error in ``results`` at its index.

    :param entries: the entries, each ``{recipient, message, sender?}``.
    :param results: one slot per entry.
    :param sender: the sender of the entries that name none.
    :param region: ``WW``, ``IT`` or ``ES``.
    :param fail_on_multiple_messages: refuse a text longer than one part.
    :param callback: the API's callback object, the same for every message.
    """
    sends: dict[str, DistinctSend] = {}
    for index, entry in enumerate(entries):
        try:
            request = build_request(
                entry["recipient"],
                entry["message"],
                sender=entry.get("sender") or sender,
                region=region,
                fail_on_multiple_messages=fail_on_multiple_messages,
                callback=callback,
            )
        except SmsWwError as exc:
            results[index] = exc
            continue
        # The number and the sender hold no \x1f, so the key tells every (number, sender, text) apart.
        key = "\x1f".join((request.recipient, request.sender or "", request.message))
        sends.setdefault(key, DistinctSend(key, request, [])).indexes.append(index)
    return list(sends.values())
