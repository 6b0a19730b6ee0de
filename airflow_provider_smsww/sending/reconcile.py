"""Step 5 of sending: reconciliation. The API has no idempotency key, so a send whose outcome is unknown
is looked up in ``GET /messages`` before anything is resent; a look-up that cannot decide fails closed."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from airflow_provider_smsww.exceptions import SmsWwReconcileError
from airflow_provider_smsww.listing import LISTING_ORDER_TOLERANCE
from airflow_provider_smsww.models import Message, as_utc
from airflow_provider_smsww.sending.batch import CALLBACK_KEY_FIELD

if TYPE_CHECKING:
    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.sending.batch import Batch

#: How far before the batch start a reconciled message may have been created (clock skew).
CLOCK_SKEW = timedelta(minutes=5)


def listed_e164(message: Message) -> str:
    """The recipient of a listed message in E.164, whether the gateway writes it with ``+``, without,
    or without the country prefix (which it reports apart, in ``internationalPrefix``)."""
    raw = (message.recipient or "").strip()
    digits = "".join(ch for ch in raw if ch.isdigit())
    prefix = message.international_prefix or ""
    if digits and not raw.startswith("+") and prefix and not digits.startswith(prefix):
        digits = prefix + digits
    return f"+{digits}" if digits else ""


async def reconcile(
    hook: SmsWwHook,
    batch: Batch,
    recipients: Iterable[str],
    since: datetime,
    *,
    scan_limit: int = 10_000,
) -> dict[str, Message]:
    """Find messages of this batch that the gateway already accepted, among ``recipients``.

    A match has the same recipient, text and sender, is not a dry run, was created at or after
    ``since`` minus clock skew, and carries this batch's callback key when the batch has a callback.
    The scan of ``GET /messages`` stops early only once it has passed ``since`` in a listing that is
    newest first (the spec does not promise the order, so it is checked as the scan goes). It fails
    closed: if it runs out of ``scan_limit`` before that, with recipients still unaccounted for, it
    raises :class:`SmsWwReconcileError` rather than report them as not sent, which would send them
    again.
    """
    wanted = set(recipients)
    found: dict[str, Message] = {}
    floor = since - CLOCK_SKEW
    sender = batch.sender or "Openapi"
    newest_first, seen_descending = True, False
    previous: datetime | None = None
    scanned = 0
    async for message in hook.alist_messages(max_items=scan_limit):
        scanned += 1
        created = as_utc(message.created_at)
        if created is not None:
            if previous is not None and created > previous + LISTING_ORDER_TOLERANCE:
                newest_first = False
            elif previous is not None and created < previous:
                seen_descending = True
            previous = created
            if created < floor:
                if newest_first and seen_descending:
                    return found  # a newest-first listing: everything after this is older still
                continue
        if not message.id or (message.options is not None and message.options.dry_run):
            continue
        recipient = listed_e164(message)
        if recipient not in wanted or recipient in found or message.message != batch.message:
            continue
        if message.sender not in (None, sender, batch.sender):
            continue
        if batch.callback is not None and recipient in batch.keys:
            custom = message.callback.custom if message.callback else {}
            if custom.get(CALLBACK_KEY_FIELD, batch.keys[recipient]) != batch.keys[recipient]:
                continue
        found[recipient] = message
        if len(found) == len(wanted):
            return found
    if scanned >= scan_limit:
        order = "" if newest_first else " (and the listing is not newest first)"
        raise SmsWwReconcileError(
            f"GET /messages: {len(wanted) - len(found)} earlier send(s) could not be confirmed or ruled "
            f"out within {scan_limit} listed messages{order}; not sending them again, to avoid a "
            "duplicate. Check the account's messages, then run the task again."
        )
    return found
