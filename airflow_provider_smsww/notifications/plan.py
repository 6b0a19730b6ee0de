"""One alert, checked locally before any request: its text, sender and recipients after every fallback
(a template that failed, a text that renders empty or that the local checks refuse)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_smsww.notifications.fallback import fit_one_part

if TYPE_CHECKING:
    from airflow_provider_smsww.sending.batch import Batch


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
    from airflow_provider_smsww.exceptions import SmsWwGateError
    from airflow_provider_smsww.sending.batch import check_locally
    from airflow_provider_smsww.validation import Problem, parse_recipient

    if alert.fail_on_multiple_messages and alert.truncate and text.strip():
        fitted = fit_one_part(text)
        if fitted != text:
            log.warning(
                "SMS alert text cut from %d to %d characters to fit one SMS part", len(text), len(fitted)
            )
        text = fitted

    refused: dict[str, str] = {}
    valid: list[str] = []
    for raw in _recipients(alert, log):
        parsed = parse_recipient(raw, alert.region)
        if isinstance(parsed, Problem):
            refused[str(raw)] = parsed.message
        else:
            valid.append(raw)
    try:
        batch = check_locally(
            valid,
            text,
            sender=sender or None,
            region=alert.region,
            fail_on_multiple_messages=alert.fail_on_multiple_messages,
        )
    except SmsWwGateError as exc:
        problems = dict(exc.problems)
        if refused:
            problems.pop("recipients", None)  # "no recipients given": say why instead
        elif "recipients" in problems and (failed := alert.problems.get("recipients")):
            problems["recipients"] += f" (the recipients template failed to render: {failed})"
        # Nothing can be sent: every valid recipient is refused too, with the reason.
        reason = "; ".join(f"{k}: {v}" for k, v in problems.items())
        refused.update({r: f"not sent: {reason}" for r in valid})
        if not refused:
            refused["recipients"] = reason
        return None, refused
    return batch, refused


def _recipients(alert: Rendered, log: Any) -> list[str]:
    from airflow_provider_smsww.arguments import as_list

    recipients = as_list(alert.recipients)
    if not recipients and alert.fallback_recipients:
        log.warning("SMS alert: recipients rendered to nobody, sending to fallback_recipients")
        recipients = as_list(alert.fallback_recipients)
    return recipients
