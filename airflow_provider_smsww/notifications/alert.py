"""Sending one alert: one dry run of the final text (the fallback text when the API refuses it), then
every recipient through the operator's fan-out (:class:`~airflow_provider_smsww.hooks.fanout.FanOut`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smsww.exceptions import SmsWwDryRunIgnoredError, SmsWwError, SmsWwValidationError
from airflow_provider_smsww.notifications import outcome
from airflow_provider_smsww.notifications.plan import Plan, Rendered, prepare

if TYPE_CHECKING:
    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.sending.batch import Batch
    from airflow_provider_smsww.validation import Recipient


async def send_alert(
    hook: SmsWwHook,
    plan: Plan,
    alert: Rendered,
    log: Any,
    *,
    concurrency: int,
    unusable: Exception | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """The one alert path: one dry run of the final text, then every recipient concurrently on one
    pooled client; the first refusal of the account (credentials, credit) stops the rest. Returns who
    got the alert (with the message id) and who did not (with the reason).

    :param unusable: why the hook cannot be used at all (no connection): nobody gets the alert.
    """
    from airflow_provider_smsww.hooks.fanout import FanOut

    batch, failures = plan.batch, dict(plan.refused)
    sent: dict[str, str] = {}
    if batch is None:
        return sent, failures
    try:
        if unusable is not None:
            raise unusable
        batch = await _dry_run(hook, batch, plan, alert, log, sent, failures)
        if batch is not None:
            await hook.awarn_if_credit_low()  # loud below the threshold; an alert still goes out
            fanout = FanOut(hook, batch, concurrency, failures)

            async def send(recipient: Recipient) -> None:
                if fanout.stopped(recipient):
                    return
                try:
                    message = await fanout.send(recipient)
                except Exception as exc:
                    failures[recipient.e164] = outcome.reason(exc)
                else:
                    if message is not None:
                        sent[recipient.e164] = message.id

            await fanout.run(batch.recipients, send)
    except Exception as exc:  # no connection, unreadable connection: nobody gets the alert
        for recipient in (plan.batch or batch).recipients:  # type: ignore[union-attr]
            if recipient.e164 not in sent:
                failures.setdefault(recipient.e164, f"not sent: {outcome.reason(exc)}")
    finally:
        await hook.aclose()
    return sent, failures


async def _dry_run(
    hook: SmsWwHook,
    batch: Batch,
    plan: Plan,
    alert: Rendered,
    log: Any,
    sent: dict[str, str],
    failures: dict[str, str],
) -> Batch | None:
    """Dry-run the text once; if the API refuses it, dry-run the fallback text once. Returns the
    batch to send, or None when nothing more may be sent (every outcome is in sent/failures)."""
    on_fallback = plan.on_fallback
    while True:
        try:
            checked = await hook.aestimate(batch.request(batch.recipients[0], dry_run=True), batch.region)
        except SmsWwDryRunIgnoredError as exc:
            outcome.dry_run_ignored(log, batch, exc, sent, failures)
            return None
        except SmsWwValidationError as exc:
            fallback = None if on_fallback else prepare(alert, plan.fallback, None, log)[0]
            if fallback is None:
                outcome.dry_run_failed(log, batch, exc, failures)
                return None
            log.warning(
                "SMS alert dry run refused the rendered text or sender (%s): trying the fallback text "
                "%r from the default sender",
                exc.message,
                plan.fallback,
            )
            batch, on_fallback = fallback, True
        except SmsWwError as exc:
            outcome.dry_run_failed(log, batch, exc, failures)
            return None
        else:
            outcome.dry_run_passed(log, checked)
            return batch
