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
from typing import TYPE_CHECKING, Any

from airflow_provider_smsww.concurrency import Progress, bounded
from airflow_provider_smsww.exceptions import SmsWwError
from airflow_provider_smsww.sending.entries import as_entries
from airflow_provider_smsww.sending.fanout import FATAL_ERRORS
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
    #: (number, sender, text) -> the indexes of the entries that send it.
    unique: dict[tuple[str, str | None, str], tuple[SendRequest, list[int]]] = {}
    for index, entry in enumerate(entries):
        try:
            request = build_request(
                entry["recipient"],
                entry["message"],
                sender=entry.get("sender") or sender,
                region=region,
                dry_run=dry_run,
                fail_on_multiple_messages=fail_on_multiple_messages,
                callback=callback,
            )
        except SmsWwError as exc:
            results[index] = exc
            continue
        key = (request.recipient, request.sender, request.message)
        unique.setdefault(key, (request, []))[1].append(index)
    progress = Progress(len(unique), "sent (dry run)" if dry_run else "sent")
    fatal: SmsWwError | None = None

    async def send(item: tuple[SendRequest, list[int]]) -> None:
        nonlocal fatal
        request, indexes = item
        result: Message | SmsWwError
        if fatal is not None:
            result = fatal
        else:
            try:
                result = await hook.asend_request(request, region)
            except FATAL_ERRORS as exc:  # no further send can succeed: stop instead of hammering the API
                fatal = fatal or exc
                result = exc
            except SmsWwError as exc:
                result = exc
            progress.tick()
        for index in indexes:
            results[index] = result

    await bounded(unique.values(), send, max_concurrency)
    failed = sum(isinstance(r, SmsWwError) for r in results)
    if failed:
        log.warning("%d of %d message(s) not sent; see the result of each entry", failed, len(entries))
    return [r for r in results if r is not None]
