"""The look-ups of a deferred settle wait: what
:class:`~airflow_provider_smsww.triggers.send_wait.SmsSendWaitTrigger` needs to find a batch's unknown
outcomes in ``GET /messages`` from the triggerer, written as JSON-safe trigger kwargs (no callback headers:
reconciliation matches on the per-recipient key alone).

The trigger only looks; it records and sends nothing. The task resumes when every unknown outcome is
listed or the first is due (:func:`.settle.resend_at`), and its own send order looks them up again before
it sends what is proven unsent (:mod:`.bulk`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_smsww.sending.batch import Entry, check_locally
from airflow_provider_smsww.sending.entries import check_entries
from airflow_provider_smsww.sending.reconcile import reconcile
from airflow_provider_smsww.sending.settle import Evidence

if TYPE_CHECKING:
    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.sending.batch import Batch


def lookup_of(
    batch: Batch, unknown: list[str], since: datetime, evidence: dict[str, Any] | None
) -> dict[str, Any]:
    """The trigger kwargs that let :func:`look_up` find the messages ``unknown`` (``Recipient.key``) of
    ``batch``, sent since ``since``.

    :param batch: the batch the unknown outcomes belong to (one text, or personalised entries).
    :param unknown: the keys of the messages whose outcome is unknown.
    :param since: when the batch started sending (the reconciliation floor).
    :param evidence: the batch's settle evidence (:meth:`.settle.Evidence.as_dict`): its clock offset.
    """
    callback = None
    if batch.callback is not None:  # the key is what matches; the headers stay out of the triggerer's table
        callback = batch.callback.model_dump(mode="json", exclude={"headers"})
    wanted = set(unknown)
    messages = [
        {"recipient": r.e164, "message": batch.text_of(r), "sender": batch.sender_of(r)}
        for r in batch.recipients
        if r.key in wanted
    ]
    return {
        "messages": messages,
        "personalised": any(isinstance(r, Entry) for r in batch.recipients),
        "batch_size": len(batch.recipients),
        "region": batch.region,
        "callback": callback,
        "keys": {k: batch.keys[k] for k in unknown if k in batch.keys},
        "since": since.isoformat(),
        "evidence": evidence,
    }


def batch_of(lookup: dict[str, Any]) -> Batch:
    """The batch of the messages ``lookup`` looks for, rebuilt once as the task built it (same keys);
    their keys are its recipients' ``key``."""
    messages = lookup["messages"]
    if lookup["personalised"]:
        batch = check_entries(messages, region=lookup["region"], callback=lookup["callback"])
    else:
        first = messages[0] if messages else {}
        batch = check_locally(
            [m["recipient"] for m in messages],
            str(first.get("message", "")),
            sender=first.get("sender"),
            region=lookup["region"],
            callback=lookup["callback"],
        )
    return replace(batch, keys=dict(lookup["keys"]))


async def look_up(
    hook: SmsWwHook, batch: Batch, lookup: dict[str, Any], wanted: set[str], *, scan_limit: int = 10_000
) -> set[str]:
    """The keys among ``wanted`` whose messages ``GET /messages`` lists as sent.

    :param hook: the hook of the look-ups.
    :param batch: :func:`batch_of` ``lookup``.
    :param lookup: what :func:`lookup_of` wrote.
    :param wanted: the keys still looked for.
    :param scan_limit: listed messages to read beyond the batch's own.
    """
    found = await reconcile(
        hook,
        batch,
        sorted(wanted),
        datetime.fromisoformat(lookup["since"]),
        scan_limit=scan_limit + int(lookup.get("batch_size") or len(batch.recipients)),
        clock_offset=Evidence.from_dict(lookup.get("evidence")).clock_offset,
    )
    return set(found)
