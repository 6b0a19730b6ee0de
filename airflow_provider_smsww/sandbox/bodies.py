"""What a send's body says, checked the way the gateway checks it (the spec's codes and texts), before
anything is priced or stored: :func:`read_send` for ``POST /{region}-messages``, and the parts every send
has (options, callback, recipient; ``POST /otp`` reads them too). Each refusal is a
:class:`~airflow_provider_smsww.sandbox.config.SandboxError`. The rules themselves are the provider's
(:mod:`airflow_provider_smsww.validation`, :mod:`airflow_provider_smsww.segments`), so the sandbox and
the client agree by construction on E.164, senders, encodings and parts; that agreement proves nothing
about the rules, which ``tests/sandbox/test_sandbox_spec_facts.py`` checks against the spec and the
standards."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_smsww.exceptions import (
    CODE_BAD_RECIPIENT,
    CODE_INVALID_BODY,
    CODE_MULTIPLE_PARTS,
    CODE_SENDER_LENGTH,
    CODE_WRONG_COUNTRY,
)
from airflow_provider_smsww.sandbox.config import DEFAULT_SENDER, SPEC_TEXTS, SandboxError
from airflow_provider_smsww.segments import SegmentInfo, analyse
from airflow_provider_smsww.validation import Problem, Recipient, check_message, check_sender, parse_recipient


@dataclass(frozen=True)
class SendBody:
    """A send's body once checked: the sender is the default one when none was given."""

    recipient: Recipient
    sender: str
    text: str
    segments: SegmentInfo
    options: dict[str, bool]


def read_send(body: Mapping[str, Any], region: str) -> SendBody:
    """Checks in the gateway's order: body shape (422 1000), recipient (2011, 2013), sender (2021,
    2024), text (1000, 2040)."""
    options = read_options(body.get("options", {}))
    recipient = read_recipient(body.get("recipient"), region)
    sender = body.get("sender")
    if sender is not None and not isinstance(sender, str):
        raise SandboxError(422, CODE_INVALID_BODY, "sender must be a string or null.")
    if problem := check_sender(sender):
        raise SandboxError(
            422, problem.code or CODE_SENDER_LENGTH, SPEC_TEXTS[problem.code or CODE_SENDER_LENGTH]
        )
    text = body.get("message")
    if not isinstance(text, str):
        raise SandboxError(422, CODE_INVALID_BODY, "message is required and must be a string.")
    checked = check_message(text, fail_on_multiple_messages=options["failOnMultipleMessages"])
    if isinstance(checked, Problem):
        multi = options["failOnMultipleMessages"] and analyse(text).parts > 1
        raise SandboxError(422, CODE_MULTIPLE_PARTS if multi else CODE_INVALID_BODY, checked.message)
    return SendBody(recipient, sender or DEFAULT_SENDER, text, checked, options)


def read_recipient(raw: Any, region: str) -> Recipient:
    """The recipient, or 422 with the spec's code and text (2011, or 2013 for a number of another
    country on IT/ES)."""
    if not isinstance(raw, str):
        raise SandboxError(422, CODE_INVALID_BODY, "recipient is required and must be a string.")
    parsed = parse_recipient(raw, region)
    if isinstance(parsed, Problem):
        code = parsed.code or CODE_BAD_RECIPIENT
        text = SPEC_TEXTS[CODE_BAD_RECIPIENT]
        if code == CODE_WRONG_COUNTRY:
            text = (
                f"The recipient number does not belong to the supported country for this endpoint ({region})."
            )

        raise SandboxError(422, code, text)
    return parsed


def read_options(raw: Any) -> dict[str, bool]:
    """The options object with its defaults; 422 when it is not an object (``null`` included: the
    spec does not make it nullable)."""
    if not isinstance(raw, Mapping):
        raise SandboxError(422, CODE_INVALID_BODY, "options must be an object.")
    options = {}
    for name in ("dryRun", "failOnMultipleMessages"):
        value = raw.get(name, False)
        if not isinstance(value, bool):
            raise SandboxError(422, CODE_INVALID_BODY, f"options.{name} must be a boolean.")
        options[name] = value
    return options


def int_field(body: Mapping[str, Any], name: str, default: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SandboxError(422, CODE_INVALID_BODY, f"{name} must be an integer.")
    return value


def read_callback(raw: Any) -> dict[str, Any]:
    """The callback object normalised with the spec's defaults; 422 when its shape is wrong.

    ``null``, ``false`` or ``0`` for the callback, its headers or custom are refused, not read as
    "absent": the spec makes none of them nullable (schemathesis found the sandbox too lenient).
    """
    if not isinstance(raw, Mapping):
        raise SandboxError(422, CODE_INVALID_BODY, "callback must be an object.")
    url = raw.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise SandboxError(422, CODE_INVALID_BODY, "callback.url must be an http(s) URL.")
    method = raw.get("method", "JSON")
    if method not in ("JSON", "POST"):
        raise SandboxError(422, CODE_INVALID_BODY, "callback.method must be JSON or POST.")
    field_name = raw.get("field", "data")
    retry = raw.get("retry", 0)
    headers = raw.get("headers", {})
    custom = raw.get("custom", {})
    if not isinstance(field_name, str) or not field_name:
        raise SandboxError(422, CODE_INVALID_BODY, "callback.field must be a non-empty string.")
    if isinstance(retry, bool) or not isinstance(retry, int) or not 0 <= retry <= 5:
        raise SandboxError(422, CODE_INVALID_BODY, "callback.retry must be an integer from 0 to 5.")
    if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
        raise SandboxError(422, CODE_INVALID_BODY, "callback.headers must map names to strings.")
    if not isinstance(custom, Mapping):
        raise SandboxError(422, CODE_INVALID_BODY, "callback.custom must be an object.")
    return {
        "url": url,
        "method": method,
        "field": field_name,
        "retry": retry,
        "headers": dict(headers),
        "custom": dict(custom),
    }
