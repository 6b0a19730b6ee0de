"""How the notifier reports an alert's outcome: who got it (with the message id), who did not and why.

Failures are loud, never silent: each one is logged with the recipient and the reason (never a token),
then one :class:`~airflow_provider_smsww.exceptions.SmsWwError` names them all.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from airflow_provider_smsww.exceptions import SmsWwError, describe_problems

if TYPE_CHECKING:
    from airflow_provider_smsww.models import Estimate
    from airflow_provider_smsww.sending.batch import Batch

_MESSAGE_ID = re.compile(r"message id ([^,)\s]+)")


def reason(exc: BaseException) -> str:
    """Why a recipient did not get the alert, from the error (the provider's own text when it is one)."""
    from airflow_provider_smsww.exceptions import SmsWwSendUncertainError

    if isinstance(exc, SmsWwSendUncertainError):
        return f"{exc.message} (not resent, to avoid a duplicate)"
    if isinstance(exc, SmsWwError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def dry_run_passed(log: Any, checked: Estimate) -> None:
    log.info(
        "SMS alert dry run accepted (%s part(s), %s): sending",
        checked.parts,
        checked.encoding or "encoding not reported",
    )


def dry_run_ignored(
    log: Any, batch: Batch, exc: SmsWwError, sent: dict[str, str], failures: dict[str, str]
) -> None:
    """The gateway answered the dry run as a real send (``options.dryRun`` false): the first recipient
    did get the alert, unchecked, so it is reported as sent (with the answer's message id); nobody else
    is sent it, since every further "dry run" would be another real, unchecked SMS."""
    first = batch.recipients[0].e164
    found = _MESSAGE_ID.search(exc.message)
    message_id = getattr(exc, "message_id", None) or (found.group(1) if found else "unknown")
    sent[first] = message_id
    log.error(
        "SMS alert dry run to %s came back as a REAL send (message id %s): the gateway or a proxy ignored "
        "options.dryRun, so %s got the alert unchecked and nobody else is sent it (every further "
        "'dry run' would be another real, unchecked SMS). %s",
        first,
        message_id,
        first,
        exc.message,
    )
    why = (
        f"not sent: the gateway ignored the dry run (options.dryRun false), so only {first} got the alert "
        f"and nothing more was sent: {exc.message}"
    )
    for recipient in batch.recipients[1:]:
        failures.setdefault(recipient.e164, why)


def dry_run_failed(log: Any, batch: Batch, exc: SmsWwError, failures: dict[str, str]) -> None:
    """Nobody gets the alert: every recipient is reported with the reason."""
    from airflow_provider_smsww.exceptions import SmsWwValidationError

    if isinstance(exc, SmsWwValidationError):
        log.error(
            "SMS alert dry run refused by the API, so the alert was sent to nobody: a real send of a "
            "text or sender the API refuses as forbidden content would blocklist the account. %s",
            exc.message,
        )
        why = f"not sent: the API refused the dry run of this text and sender: {exc.message}"
    else:
        log.error("SMS alert dry run failed, so the alert was sent to nobody: %s", reason(exc))
        why = f"not sent: the dry run failed: {reason(exc)}"
    for recipient in batch.recipients:
        failures.setdefault(recipient.e164, why)


def report(log: Any, sent: dict[str, str], failures: dict[str, str], *, raise_on_failure: bool) -> None:
    """Log every outcome; with ``raise_on_failure``, raise one error naming every failed recipient."""
    for recipient, message_id in sent.items():
        log.info("SMS alert sent to %s (message id %s)", recipient, message_id)
    for recipient, why in failures.items():
        log.error("SMS alert NOT sent to %s: %s", recipient, why)
    if not failures:
        return
    total = len(sent) + len(failures)
    summary = describe_problems(f"SMS alert failed for {len(failures)} of {total} recipient(s):", failures)
    if raise_on_failure:
        raise SmsWwError(summary)
