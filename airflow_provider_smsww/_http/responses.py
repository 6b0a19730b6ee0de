"""Reading the API's answers: error mapping, the ``{"data": ...}`` envelope, ``Retry-After``, tokens.

Plain functions over ``httpx.Response``, shared by the sync and async clients and by token minting, so
every caller maps an answer the same way. No I/O here.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from airflow_provider_smsww.exceptions import (
    CODE_OTP_LENGTH,
    CODE_TOKEN_LIMIT,
    CODE_USER_BLOCKLISTED,
    SmsWwAuthError,
    SmsWwBlocklistedError,
    SmsWwError,
    SmsWwInsufficientCreditError,
    SmsWwNotFoundError,
    SmsWwRateLimitError,
    SmsWwResponseError,
    SmsWwServerError,
    SmsWwSpendingCapError,
    SmsWwValidationError,
)
from airflow_provider_smsww.models import Envelope, ErrorBody, Token, as_utc


def parse_retry_after(
    value: str | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (as_utc(when) - now()).total_seconds())


def date_offset(
    response: httpx.Response,
    previous: timedelta | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> timedelta | None:
    """The server's clock minus ours, from the answer's ``Date`` header (one-second resolution, so
    callers allow a few seconds either way); ``previous`` when the answer has no readable one."""
    value = response.headers.get("Date")
    try:
        when = parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        when = None
    return previous if when is None else as_utc(when) - now()


#: Shorter values are not scrubbed: replacing every "1" or "on" would make the text unreadable.
MIN_SECRET_LENGTH = 4


def request_secrets(request: httpx.Request) -> set[str]:
    """Every secret the request carried, which a gateway or proxy may echo back in its error text: the
    Bearer token, the Basic credentials (and the API key inside them) and the callback header values."""
    secrets: set[str] = set()
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    secrets.add(credentials)
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials).decode()
        except ValueError:
            decoded = ""
        secrets |= {decoded, decoded.partition(":")[2]}
    try:
        body = json.loads(request.content or b"null")
    except (ValueError, httpx.RequestNotRead):
        body = None
    callback = body.get("callback") if isinstance(body, dict) else None
    headers = callback.get("headers") if isinstance(callback, dict) else None
    if isinstance(headers, dict):
        secrets |= {str(value) for value in headers.values()}
    return {secret for secret in secrets if len(secret) >= MIN_SECRET_LENGTH}


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each secret, as written and as JSON would escape it, replaced by ``***``."""
    for secret in sorted(secrets, key=len, reverse=True):
        for form in {secret, json.dumps(secret)[1:-1]}:
            text = text.replace(form, "***")
    return text


def describe_call(method: str, url: httpx.URL | str) -> str:
    """``POST /WW-messages``: method and path only; query strings and hosts stay out of messages."""
    return f"{method} {urlsplit(str(url)).path or '/'}"


def error_from_response(response: httpx.Response) -> SmsWwError:
    """Map an error response to the exception hierarchy, with the API's own code and text."""
    status = response.status_code
    body: ErrorBody | None = None
    try:
        body = ErrorBody.model_validate(response.json())
    except (ValueError, ValidationError):
        body = None
    code = body.api_code if body else None
    text = body.message if body and body.message else response.reason_phrase or "no detail"
    text = scrub(text, request_secrets(response.request))[:300]
    where = describe_call(response.request.method, response.request.url)
    detail = f"{where} answered {status}" + (f" (code {code})" if code is not None else "") + f": {text}"
    kwargs: dict[str, Any] = {"status_code": status, "code": code}
    if status == 401:
        return SmsWwAuthError(f"{detail}. Check the connection's token or email + API key.", **kwargs)
    if status == 403 and code == CODE_USER_BLOCKLISTED:
        return SmsWwBlocklistedError(f"{detail}. The account is blocklisted: contact Openapi.", **kwargs)
    if status == 403:
        return SmsWwAuthError(f"{detail}. The token lacks the scope for this call.", **kwargs)
    if status == 402 and (code == CODE_TOKEN_LIMIT or "limit" in text.lower()):
        return SmsWwSpendingCapError(
            f"{detail}. The per-task token's spending cap is used up: nothing more is sent with it.",
            **kwargs,
        )
    if status == 402:
        return SmsWwInsufficientCreditError(
            f"{detail}. Top up: worldwide sends need 1 EUR of credit per message part.", **kwargs
        )
    if status == 404:
        return SmsWwNotFoundError(detail, **kwargs)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return SmsWwRateLimitError(detail, retry_after=retry_after, **kwargs)
    if status >= 500:
        return SmsWwServerError(detail, **kwargs)
    if status == 422 and code == CODE_OTP_LENGTH:
        return SmsWwValidationError(f"{detail}. An OTP's length must be 4 to 10.", **kwargs)
    if status in (400, 409, 413, 422):
        return SmsWwValidationError(detail, **kwargs)
    return SmsWwError(detail, **kwargs)


def parse_data(response: httpx.Response, model: Any) -> Any:
    """The ``data`` of a successful answer as ``model``; anything else is a :class:`SmsWwResponseError`."""
    where = describe_call(response.request.method, response.request.url)
    try:
        payload = response.json()
    except ValueError:
        ctype = response.headers.get("content-type", "unknown")
        raise SmsWwResponseError(
            f"{where} answered {response.status_code} with non-JSON content ({ctype}); "
            "is the connection's host the SMS API?",
            status_code=response.status_code,
        ) from None
    try:
        return Envelope[model].model_validate(payload).data
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or "<root>" for e in exc.errors()[:5])
        raise SmsWwResponseError(
            f"{where} answered {response.status_code} with JSON the provider does not understand "
            f"(problem at: {fields})",
            status_code=response.status_code,
        ) from None


def parse_token(response: httpx.Response) -> Token:
    """A minted token, wrapped in ``{"data": ...}`` or not (both shapes are seen)."""
    where = describe_call(response.request.method, response.request.url)
    try:
        payload = response.json()
        if isinstance(payload, dict) and isinstance(payload.get("data"), dict):
            payload = payload["data"]
        return Token.model_validate(payload)
    except (ValueError, ValidationError):
        raise SmsWwResponseError(
            f"{where} answered without a token", status_code=response.status_code
        ) from None
