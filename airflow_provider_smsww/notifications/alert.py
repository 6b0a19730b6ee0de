"""One alert: its text, sender and recipients after every fallback (a template that failed, a text
that renders empty or that the local checks refuse), checked locally, then once by the API's dry run
(the fallback text when the API refuses the rendered one); and its outcome, who got it and who did not.

Failures are loud, never silent: each one is logged with the recipient and the reason (never a token),
then one :class:`~airflow_provider_smsww.exceptions.SmsWwError` names them all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_smsww.exceptions import (
    SmsWwDryRunIgnoredError,
    SmsWwError,
    SmsWwGateError,
    SmsWwSendUncertainError,
    SmsWwValidationError,
    describe_problems,
)
from airflow_provider_smsww.notifications.fallback import fit_one_part

if TYPE_CHECKING:
    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.models import Estimate
    from airflow_provider_smsww.sending.batch import Batch
    from airflow_provider_smsww.validation import Recipient

_MESSAGE_ID = re.compile(r"message id ([^,)\s]+)")


@dataclass(frozen=True)
class Rendered:
    """The notifier's templates as rendered for one alert, and its settings.

    :param message: the rendered text (None when it failed to render).
    :param sender: the rendered sender.
    :param recipients: the rendered recipients; ``fallback_recipients`` when they render to nobody.
    :param problems: each template that failed to render, with the error.
    :param fallback: the alert's fallback text (built once per alert).
    """

    message: Any
    sender: str | None
    recipients: Any
    fallback_recipients: str | Sequence[str] | None
    problems: Mapping[str, str]
    fallback: str
    region: str
    fail_on_multiple_messages: bool
    truncate: bool


@dataclass
class Plan:
    """One alert, checked locally: the batch to send (None when nothing can be sent), the recipients
    refused with the reason, and the fallback text to use if the API refuses the rendered one."""

    batch: Batch | None
    refused: dict[str, str]
    fallback: str
    on_fallback: bool


def plan(alert: Rendered, log: Any, summary: str = "") -> Plan:
    """The text, sender and recipients after every fallback, checked locally; ``summary`` is the storm
    guard's "+N more" text, put before the text."""
    fallback = fit_one_part(f"({summary}) {alert.fallback}") if summary else alert.fallback
    for name, problem in alert.problems.items():
        if name != "dedupe_key":
            log.warning("SMS alert: the %s template failed to render (%s)", name, problem)
    text = alert.message if isinstance(alert.message, str) else str(alert.message or "")
    if "message" in alert.problems or not text.strip():
        log.warning("SMS alert: sending the fallback text %r instead of the message", fallback)
        text = fallback
    elif summary:
        text = f"({summary}) {text}"
    sender = None if "sender" in alert.problems else alert.sender
    batch, refused = prepare(alert, text, sender, log)
    if batch is None and (text, sender) != (fallback, None):
        log.warning(
            "SMS alert refused locally (%s): sending the fallback text %r from the default sender",
            "; ".join(refused.values()),
            fallback,
        )
        batch, refused = prepare(alert, fallback, None, log)
        return Plan(batch, refused, fallback, on_fallback=True)
    return Plan(batch, refused, fallback, on_fallback=(text, sender) == (fallback, None))


def prepare(alert: Rendered, text: str, sender: str | None, log: Any) -> tuple[Batch | None, dict[str, str]]:
    """Check everything locally. Returns the batch of valid recipients (None when nothing can be
    sent) and the recipients refused, with the reason."""
    from airflow_provider_smsww.sending.batch import check_locally

    text = _fitted(alert, text, log)
    valid, refused = _parse_recipients(alert, log)
    try:
        batch = check_locally(
            valid,
            text,
            sender=sender or None,
            region=alert.region,
            fail_on_multiple_messages=alert.fail_on_multiple_messages,
        )
    except SmsWwGateError as exc:
        return None, _refuse_all(alert, exc, valid, refused)
    return batch, refused


def _fitted(alert: Rendered, text: str, log: Any) -> str:
    """The text cut to one part when the alert keeps to one part and may be cut (logged when cut)."""
    if not (alert.fail_on_multiple_messages and alert.truncate and text.strip()):
        return text
    fitted = fit_one_part(text)
    if fitted != text:
        log.warning("SMS alert text cut from %d to %d characters to fit one SMS part", len(text), len(fitted))
    return fitted


def _parse_recipients(alert: Rendered, log: Any) -> tuple[list[str], dict[str, str]]:
    """The recipients that are valid numbers, and the others with the reason."""
    from airflow_provider_smsww.validation import Problem, parse_recipient

    refused: dict[str, str] = {}
    valid: list[str] = []
    for raw in _recipients(alert, log):
        parsed = parse_recipient(raw, alert.region)
        if isinstance(parsed, Problem):
            refused[str(raw)] = parsed.message
        else:
            valid.append(raw)
    return valid, refused


def _refuse_all(
    alert: Rendered, exc: SmsWwGateError, valid: list[str], refused: dict[str, str]
) -> dict[str, str]:
    """Nothing can be sent: every valid recipient is refused too, with the reason."""
    problems = dict(exc.problems)
    if refused:
        problems.pop("recipients", None)  # "no recipients given": say why instead
    elif "recipients" in problems and (failed := alert.problems.get("recipients")):
        problems["recipients"] += f" (the recipients template failed to render: {failed})"
    reason = "; ".join(f"{k}: {v}" for k, v in problems.items())
    refused.update({r: f"not sent: {reason}" for r in valid})
    if not refused:
        refused["recipients"] = reason
    return refused


def _recipients(alert: Rendered, log: Any) -> list[str]:
    from airflow_provider_smsww.arguments import as_list

    recipients = as_list(alert.recipients)
    if not recipients and alert.fallback_recipients:
        log.warning("SMS alert: recipients rendered to nobody, sending to fallback_recipients")
        recipients = as_list(alert.fallback_recipients)
    return recipients


# -- the dry run: the plan checked by the API, once, before any real send


async def dry_run(hook: SmsWwHook, plan: Plan, alert: Rendered, log: Any, outcome: Outcome) -> Batch | None:
    """Dry-run the planned text once; if the API refuses it, dry-run the fallback text once: forbidden
    words get the account blocklisted, so nothing is sent unchecked.

    :param plan: the alert's plan (a plan without a batch has nothing to check).
    :param outcome: filled with every recipient the dry run decides for.
    :return: the batch to send, or None when nothing more may be sent.
    """
    batch, on_fallback = plan.batch, plan.on_fallback
    if batch is None:
        return None
    while True:
        try:
            checked = await hook.aestimate(batch.request(batch.recipients[0], dry_run=True), batch.region)
        except SmsWwDryRunIgnoredError as exc:
            _dry_run_ignored(log, batch, exc, outcome)
            return None
        except SmsWwValidationError as exc:
            fallback = None if on_fallback else prepare(alert, plan.fallback, None, log)[0]
            if fallback is None:
                _dry_run_failed(log, batch, exc, outcome)
                return None
            log.warning(
                "SMS alert dry run refused the rendered text or sender (%s): trying the fallback text "
                "%r from the default sender",
                exc.message,
                plan.fallback,
            )
            batch, on_fallback = fallback, True
        except SmsWwError as exc:
            _dry_run_failed(log, batch, exc, outcome)
            return None
        else:
            _dry_run_passed(log, checked)
            return batch


def _dry_run_passed(log: Any, checked: Estimate) -> None:
    log.info(
        "SMS alert dry run accepted (%s part(s), %s): sending",
        checked.parts,
        checked.encoding or "encoding not reported",
    )


def _dry_run_ignored(log: Any, batch: Batch, exc: SmsWwError, outcome: Outcome) -> None:
    """The gateway answered the dry run as a real send (``options.dryRun`` false): the first recipient
    did get the alert, unchecked, so it is reported as sent (with the answer's message id); nobody else
    is sent it, since every further "dry run" would be another real, unchecked SMS."""
    first = batch.recipients[0].e164
    found = _MESSAGE_ID.search(exc.message)
    message_id = getattr(exc, "message_id", None) or (found.group(1) if found else "unknown")
    outcome.sent[first] = message_id
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
        outcome.failures.setdefault(recipient.e164, why)


def _dry_run_failed(log: Any, batch: Batch, exc: SmsWwError, outcome: Outcome) -> None:
    """Nobody gets the alert: every recipient is reported with the reason."""
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
        outcome.failures.setdefault(recipient.e164, why)


# -- the outcome: who got the alert and who did not


def reason(exc: BaseException) -> str:
    """Why a recipient did not get the alert, from the error (the provider's own text when it is one)."""

    if isinstance(exc, SmsWwSendUncertainError):
        return f"{exc.message} (not resent, to avoid a duplicate)"
    if isinstance(exc, SmsWwError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


@dataclass
class Outcome:
    """Who got the alert and who did not, filled as the dry run and the sends go.

    :param sent: recipient -> the message id of the SMS it got.
    :param failures: recipient -> why it did not get the alert.
    """

    sent: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    def got(self, recipient: Recipient, message_id: str) -> None:
        self.sent[recipient.e164] = message_id

    def missed(self, recipient: Recipient, exc: BaseException) -> None:
        self.failures[recipient.e164] = reason(exc)

    def not_sent(self, recipients: Sequence[Recipient], exc: BaseException) -> None:
        """After an error that ends the alert (no connection): everyone not yet decided is not sent it."""
        for recipient in recipients:
            if recipient.e164 not in self.sent:
                self.failures.setdefault(recipient.e164, f"not sent: {reason(exc)}")

    def report(self, log: Any, *, raise_on_failure: bool) -> None:
        """Log every outcome; with ``raise_on_failure``, raise one error naming every failed recipient."""
        for recipient, message_id in self.sent.items():
            log.info("SMS alert sent to %s (message id %s)", recipient, message_id)
        for recipient, why in self.failures.items():
            log.error("SMS alert NOT sent to %s: %s", recipient, why)
        if not self.failures:
            return
        total = len(self.sent) + len(self.failures)
        summary = describe_problems(
            f"SMS alert failed for {len(self.failures)} of {total} recipient(s):", self.failures
        )
        if raise_on_failure:
            raise SmsWwError(summary)
