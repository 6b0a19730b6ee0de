"""One error hierarchy for everything the provider raises.

Catch :class:`SmsWwError` for all of them. Messages name what went wrong and what to do about it, and
never contain a token, an API key or a callback header (the client builds them from status codes and
the API's own error text only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

#: How many problems an error names before it summarises the rest.
MAX_NAMED = 20

# -- The gateway's error codes (the ``code`` of its error body), for the provider and its sandbox ----
#: Documented by the spec (v1.2.7).
CODE_BAD_RECIPIENT = 2011  # 422: not an E.164 number
CODE_WRONG_COUNTRY = 2013  # 422: a number of another country on IT-messages / ES-messages
CODE_USER_BLOCKLISTED = 2020  # 403: the account is blocklisted
CODE_SENDER_LENGTH = 2021  # 422: sender not 3-11 letters, digits or spaces
CODE_SENDER_NUMERIC = 2024  # 422: sender all digits
CODE_FORBIDDEN_CONTENT = 2044  # 422: forbidden words (dry runs and WW)
CODE_FORBIDDEN_CONTENT_REGIONAL = 2050  # 422: forbidden words in a real IT/ES send
CODE_OTP_LENGTH = 1020  # 422: OTP length out of 4-10
#: Not in the spec: what the sandbox answers and the provider expects (the real API's may differ).
CODE_INVALID_BODY = 1000  # 422: malformed JSON, missing/ill-typed fields, empty or too long message
CODE_MULTIPLE_PARTS = 2040  # 422: options.failOnMultipleMessages and the text needs more than one part
CODE_INSUFFICIENT_CREDIT = 2030  # 402: credit below 1 EUR x parts (WW) or below the price (IT/ES)
#: 402 for a minted token whose ``limits`` are used up; the provider also reads a 402 whose text says
#: "limit" as the cap (fail closed).
CODE_TOKEN_LIMIT = 2035
CODE_UNAUTHORIZED = 401  # 401 without a valid Bearer token (the spec gives no body)
CODE_SCOPE = 403  # 403 the token lacks the scope for this method and path
CODE_NOT_FOUND = 404  # 404 unknown message id
CODE_OAUTH_BAD_LIMITS = 85  # 422 of OAuth POST /tokens for ill-formed ``limits``


def describe_problems(
    head: str, problems: Mapping[str, str] | Sequence[str], *, limit: int | None = None
) -> str:
    """The one "N problem(s)" text: ``head``, the count, then one ``  - who: why`` line per problem
    (at most ``limit`` of them, then how many more)."""
    lines = (
        [f"{who}: {why}" for who, why in problems.items()]
        if isinstance(problems, Mapping)
        else list(problems)
    )
    cut = len(lines) if limit is None else limit
    shown = "\n".join(f"  - {line}" for line in lines[:cut])
    more = f"\n  - and {len(lines) - cut} more" if len(lines) > cut else ""
    return f"{head} {len(lines)} problem(s):\n{shown}{more}"


class SmsWwError(Exception):
    """Base class. ``status_code`` is the HTTP status when there was one, ``code`` the API's error code."""

    def __init__(self, message: str, *, status_code: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code


class SmsWwValidationError(SmsWwError):
    """The request was refused as invalid: locally before sending, or by the API (422, with its code:
    2011 bad E.164, 2013 wrong country, 2021 sender length, 2024 numeric sender, 2044/2050 forbidden
    content)."""


class SmsWwAuthError(SmsWwError):
    """401/403: the token is missing, wrong, expired or lacks the scope, or the API key is wrong."""


class SmsWwBlocklistedError(SmsWwAuthError):
    """403 code 2020: the account is blocklisted (after forbidden content). Nothing more will send."""


class SmsWwInsufficientCreditError(SmsWwError):
    """402: not enough credit. Worldwide sends need at least 1 EUR per message part."""


class SmsWwSpendingCapError(SmsWwInsufficientCreditError):
    """402 code 2035: the per-task token's ``limits`` (its spending cap) are used up. Nothing more
    will send with that token; the gateway refused the call before charging or storing it."""


class SmsWwNotFoundError(SmsWwError):
    """404: no message with that id on this account."""


class SmsWwRateLimitError(SmsWwError):
    """429 after all retries. ``retry_after`` is the server's hint in seconds, when it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: int | None) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class SmsWwServerError(SmsWwError):
    """5xx after all retries."""


class SmsWwTransportError(SmsWwError):
    """The server could not be reached or the connection broke (after all retries)."""


class SmsWwResponseError(SmsWwError):
    """The server answered something that is not the API's JSON (an HTML error page, a proxy, a
    changed API)."""


class SmsWwSendUncertainError(SmsWwError):
    """A real (non dry-run) send may or may not have reached the gateway: the connection broke or the
    server failed after the request was written. Resending blindly could send the SMS twice, so the
    client raises this instead; the operator reconciles against ``GET /messages`` before deciding."""


class SmsWwReconcileError(SmsWwError):
    """``GET /messages`` could not confirm whether earlier sends were accepted: the scan reached its
    limit before the batch's start, or the listing is not newest first. Nothing is resent."""


class SmsWwDryRunIgnoredError(SmsWwError):
    """A dry run came back as a real send (``options.dryRun`` false): the gate stops at once."""


class SmsWwGateError(SmsWwValidationError):
    """The operator's dry-run gate refused the batch; nothing was sent. ``problems`` maps each bad
    recipient to the reason."""

    def __init__(self, message: str, *, problems: dict[str, str]) -> None:
        super().__init__(message)
        self.problems = problems


class SmsWwDeliveryError(SmsWwError):
    """A message reached a final failure state (UNDELIVERABLE, EXPIRED, REJECTED) or was blocklisted."""
