"""What a dry run's answer means (the hook's :meth:`~airflow_provider_smsww.hooks.smsww.SmsWwHook.estimate`):
the gateway's price and parts, a refusal, or a real send where a dry run was asked for. No I/O."""

from __future__ import annotations

from airflow_provider_smsww.exceptions import SmsWwDryRunIgnoredError, SmsWwValidationError
from airflow_provider_smsww.models import Estimate, Message, SendRequest
from airflow_provider_smsww.segments import analyse


def dry_run_refusal(answer: Message, recipient: str, region: str) -> str | None:
    """What a dry run's answer says beyond its status: raises :class:`SmsWwDryRunIgnoredError` when the
    gateway reports it as a real send (``options.dryRun`` explicitly false: stop before anything else is
    sent), returns the refusal when it says the message would be blocked, else None."""
    if answer.options_say_real_send:
        raise SmsWwDryRunIgnoredError(
            f"{region}-messages answered a dry run for {recipient} as a real send (options.dryRun false, "
            f"message id {answer.id or '?'}): stopping before anything else is sent. Is the connection's "
            "host the SMS API, with nothing in between that drops the options?"
        )
    if answer.blocklisted:
        return f"the API would block this message: {answer.blocklisted_reason or 'blocklisted'}"
    return None


def as_dry_run(request: SendRequest) -> SendRequest:
    """The same request with ``options.dryRun`` set: priced and validated, never sent."""
    options = request.options.model_copy(update={"dry_run": True})
    return request.model_copy(update={"options": options})


def estimate_from(request: SendRequest, region: str, answer: Message) -> Estimate:
    """The estimate a dry run's answer gives (parts, encoding, price when priced); raises
    :class:`SmsWwValidationError` when the API would block the message."""
    if refusal := dry_run_refusal(answer, request.recipient, region):
        raise SmsWwValidationError(refusal)
    parts = answer.message_count or analyse(request.message).parts
    price = answer.total_price or (answer.price * parts if answer.price else None)
    return Estimate(request.recipient, parts, answer.encoding, price or None)
