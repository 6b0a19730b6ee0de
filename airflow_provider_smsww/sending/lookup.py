"""The look-ups of a deferred settle wait: what :class:`~airflow_provider_smsww.triggers.send_wait.SmsSendWaitTrigger`
needs to find a batch's unknown outcomes in ``GET /messages`` from the triggerer, written as JSON-safe
trigger kwargs (no callback headers: reconciliation matches on the per-recipient key alone).

The trigger only looks; it records and sends nothing. The task resumes when every unknown outcome is
listed or the first is due (:func:`.settle.resend_at`), and its own send order looks them up again before
it sends what is proven unsent (:mod:`.bulk`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_smsww.sending.batch import check_locally
from airflow_provider_smsww.sending.reconcile import reconcile
from airflow_provider_smsww.sending.settle import Evidence

if TYPE_CHECKING:
    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.sending.batch import Batch


def lookup_of(
    batch: Batch, unknown: list[str], since: datetime, evidence: dict[str, Any] | None
) -> dict[str, Any]:
    """The trigger kwargs that let :func:`look_up` find ``unknown`` (E.164) of ``batch``, sent since ``since``.

    :param batch: the batch the unknown outcomes belong to.
    :param unknown: the recipients whose outcome is unknown.
    :param since: when the batch started sending (the reconciliation floor).
    :param evidence: the batch's settle evidence (:meth:`.settle.Evidence.as_dict`): its clock offset.
    """
    callback = None
    if batch.callback is not None:  # the key is what matches; the headers stay out of the triggerer's table
        callback = batch.callback.model_dump(mode="json", exclude={"headers"})
    return {
        "recipients": list(unknown),
        "batch_size": len(batch.recipients),
        "message": batch.message,
        "sender": batch.sender,
        "region": batch.region,
        "callback": callback,
        "keys": {r: batch.keys[r] for r in unknown if r in batch.keys},
        "since": since.isoformat(),
        "evidence": evidence,
    }


async def look_up(hook: SmsWwHook, lookup: dict[str, Any], *, scan_limit: int = 10_000) -> set[str]:
    """The recipients of ``lookup`` (:func:`lookup_of`) that ``GET /messages`` lists as sent."""
    batch = check_locally(
        lookup["recipients"],
        lookup["message"],
        sender=lookup["sender"],
        region=lookup["region"],
        callback=lookup["callback"],
    )
    batch = replace(batch, keys=dict(lookup["keys"]))
    offset = Evidence.from_dict(lookup.get("evidence")).clock_offset
    found = await reconcile(
        hook,
        batch,
        lookup["recipients"],
        datetime.fromisoformat(lookup["since"]),
        scan_limit=scan_limit + int(lookup.get("batch_size") or len(lookup["recipients"])),
        clock_offset=offset,
    )
    return set(found)
