"""The API's input rules, checked locally so that bad input is refused before any money is spent.

The operator runs these before its dry-run gate; the sandbox runs the same ones so that it answers
with the same error codes as the real gateway (spec v1.2.7: 2011, 2013, 2021, 2024; all the codes are
in :mod:`~airflow_provider_smsww.exceptions`). ``phonenumbers``
is imported inside the functions: its metadata is only needed at execute time, not at DAG parse time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from airflow_provider_smsww.arguments import check_text, lone_surrogate
from airflow_provider_smsww.exceptions import (
    CODE_BAD_RECIPIENT,
    CODE_OTP_LENGTH,
    CODE_SENDER_LENGTH,
    CODE_SENDER_NUMERIC,
    CODE_WRONG_COUNTRY,
    SmsWwValidationError,
    describe_problems,
)
from airflow_provider_smsww.models import REGIONS, Callback, MessageOptions, SendOtpRequest, SendRequest
from airflow_provider_smsww.segments import SegmentInfo, analyse

if TYPE_CHECKING:
    from phonenumbers import PhoneNumber

#: Characters people put in phone numbers for readability; removed before checking E.164.
_READABILITY = re.compile(r"[\s\-().]")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
#: A number as dialled in one country: digits only (its international prefix included, if any).
_DIGITS = re.compile(r"^[0-9]{3,18}$")
_SENDER = re.compile(r"^[A-Za-z0-9 ]{3,11}$")
#: What the API's ids look like (24 hex characters today): nothing that could change a request path.
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,127}$")

REGION_COUNTRY = {"IT": "IT", "ES": "ES"}
#: ``POST /otp``: the code's length (spec: 4 to 10) and how long the same code is reused (at most 600 s).
OTP_LENGTHS = range(4, 11)
OTP_MAX_CACHE_SECONDS = 600
#: Concatenated SMS number their parts in one byte (3GPP TS 23.040 UDH): no text can need more.
MAX_PARTS = 255


@dataclass(frozen=True, slots=True)
class Problem:
    """Why an input is refused; ``code`` is the API's code for the same refusal, when it has one."""

    message: str
    code: int | None = None


@dataclass(frozen=True, slots=True)
class Recipient:
    """A recipient in E.164 with the country facts the API reports back."""

    e164: str
    country_code: str
    international_prefix: str

    @property
    def key(self) -> str:
        """This message's identity in a batch (ledger, failures, reconciliation): the number here, the
        number and its text in a personalised entry (:class:`~airflow_provider_smsww.sending.batch.Entry`)."""
        return self.e164

    @property
    def label(self) -> str:
        """How an error names this message."""
        return self.e164


def parse_recipient(raw: str, region: str = "WW", default_country: str | None = None) -> Recipient | Problem:
    """Normalise ``raw`` to E.164 and check that it is a valid number (and in the region's country).

    Spaces, dashes, dots and brackets are dropped. A number without a leading ``+`` is read as dialled
    in ``default_country``; without one it is refused rather than guessed at, since a national number
    means different things in different countries.

    :param raw: the number as given.
    :param region: ``WW``, ``IT`` or ``ES``: the last two take their own country's numbers only.
    :param default_country: ISO 3166 alpha-2 code (``"IT"``) of the country whose national numbers
        (``"333 555 1000"``) and international prefix (``"0044..."``) the numbers without ``+`` use.
    """
    import phonenumbers

    if not isinstance(raw, str) or not raw.strip():
        return Problem("recipient is empty", CODE_BAD_RECIPIENT)
    number = _read_number(raw, _READABILITY.sub("", raw.strip()), default_country)
    if isinstance(number, Problem):
        return number
    if not phonenumbers.is_valid_number(number):
        return Problem(f"{raw!r} is not a valid phone number for its country code", CODE_BAD_RECIPIENT)
    country = phonenumbers.region_code_for_number(number) or ""
    expected = REGION_COUNTRY.get(region)
    if expected and country != expected:
        return Problem(
            f"{raw!r} is a {country or 'non-geographic'} number; "
            f"the {region} endpoint only sends to {expected}",
            CODE_WRONG_COUNTRY,
        )
    return Recipient(
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        country_code=country,
        international_prefix=str(number.country_code),
    )


def _read_number(raw: str, compact: str, default_country: str | None) -> PhoneNumber | Problem:
    """``compact`` (``raw`` without readability characters) as a ``phonenumbers.PhoneNumber``: E.164
    with its ``+``, else as dialled in ``default_country``; or the :class:`Problem` why not."""
    import phonenumbers

    e164_expected = f"{raw!r} is not an E.164 number: expected '+' and 7 to 15 digits, e.g. '+393331234567'"
    if compact.startswith("+"):
        if not _E164.match(compact):
            return Problem(e164_expected, CODE_BAD_RECIPIENT)
    elif default_country is None:
        if compact.startswith("00"):
            return Problem(
                f"{raw!r} is not E.164: write it with a leading '+' instead of '00' ('+{compact[2:]}')",
                CODE_BAD_RECIPIENT,
            )
        hint = " (or set default_country to read national numbers)" if compact.isdigit() else ""
        return Problem(e164_expected + hint, CODE_BAD_RECIPIENT)
    elif not _DIGITS.match(compact):
        return Problem(f"{raw!r} is not a phone number", CODE_BAD_RECIPIENT)
    try:
        return phonenumbers.parse(compact, None if compact.startswith("+") else default_country)
    except phonenumbers.NumberParseException:
        return Problem(f"{raw!r} is not a phone number", CODE_BAD_RECIPIENT)


def check_sender(sender: str | None) -> Problem | None:
    """3-11 letters, digits or spaces, not all digits. ``None`` or empty means the default 'Openapi'."""
    if not sender:
        return None
    if not sender.strip():
        return Problem(
            f"sender {sender!r} is only spaces: give 3 to 11 letters or digits, or none for 'Openapi'",
            CODE_SENDER_LENGTH,
        )
    if not _SENDER.match(sender):
        return Problem(
            f"sender {sender!r} must be 3 to 11 letters, digits or spaces (it has {len(sender)} characters)",
            CODE_SENDER_LENGTH,
        )
    if sender.replace(" ", "").isdigit():
        return Problem(f"sender {sender!r} cannot be purely numeric", CODE_SENDER_NUMERIC)
    return None


def check_message(text: str, *, fail_on_multiple_messages: bool = False) -> SegmentInfo | Problem:
    """The message's encoding and parts, or why it cannot be sent."""
    if (wrong := check_text("message", text)) is not None:
        return Problem(wrong)
    if (at := lone_surrogate(text)) is not None:  # e.g. half an emoji cut by a slice
        return Problem(
            f"message has a lone surrogate {text[at]!r} at position {at}, which no SMS "
            "encoding can carry (half of an emoji?): remove it or restore the whole character"
        )
    info = analyse(text)
    if info.parts > MAX_PARTS:
        return Problem(
            f"message needs {info.parts} parts ({info.characters} {info.encoding} characters); "
            f"one SMS can be split into at most {MAX_PARTS}"
        )
    if fail_on_multiple_messages and info.parts > 1:
        return Problem(
            f"message needs {info.parts} parts ({info.characters} {info.encoding} characters, "
            f"{info.single_part_limit} fit in one) and fail_on_multiple_messages is set"
        )
    return info


def is_message_id(value: object) -> bool:
    """The one message-id rule: letters, digits and '-', as ids go into ``/messages/{id}``."""
    return isinstance(value, str) and _MESSAGE_ID.match(value) is not None


def check_region(region: str) -> Problem | None:
    """The one region rule: ``WW``, ``IT`` or ``ES`` (the number's country is checked by
    :func:`parse_recipient` for IT and ES)."""
    if region not in REGIONS:
        return Problem(f"region {region!r} is unknown: use one of {', '.join(REGIONS)}")
    return None


def _int_in(value: object, allowed: range, code: int | None = None) -> Problem | None:
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        return Problem(f"must be an integer from {allowed[0]} to {allowed[-1]}, not {value!r}", code)
    return None


def check_otp_length(length: object) -> Problem | None:
    """The one OTP length rule: 4 to 10 characters (the API's 1020 otherwise)."""
    return _int_in(length, OTP_LENGTHS, CODE_OTP_LENGTH)


def check_otp_cache_seconds(cache_seconds: object) -> Problem | None:
    """The one OTP cache rule: 0 to 600 seconds during which the same number gets the same code."""
    return _int_in(cache_seconds, range(OTP_MAX_CACHE_SECONDS + 1))


#: The keys a callback takes, in the spec's spelling (``url``, ``method``, ``field``, ``retry``,
#: ``headers``, ``custom``).
CALLBACK_KEYS = frozenset(info.alias or name for name, info in Callback.model_fields.items())


def check_callback(callback: Callback | dict[str, Any]) -> Callback | Problem:
    """The callback as the API takes it, or why not. Unknown keys are refused: the model ignores them
    (it also parses the server's echo), and a typo would silently drop credentials ("header") or
    retries ("retries")."""
    if isinstance(callback, dict) and (unknown := sorted(set(callback) - CALLBACK_KEYS)):
        return Problem(
            f"unknown key(s) {', '.join(map(repr, unknown))}; the callback takes "
            f"{', '.join(sorted(CALLBACK_KEYS))}"
        )
    try:
        return Callback.model_validate(callback)
    except ValueError as exc:
        errors = getattr(exc, "errors", None)
        if callable(errors):
            first = errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "callback"
            return Problem(f"{where}: {first.get('msg')}")
        return Problem(str(exc))


def check_content(
    message: str,
    problems: dict[str, str],
    *,
    sender: str | None,
    callback: Callback | dict[str, Any] | None,
    fail_on_multiple_messages: bool,
    max_parts_per_message: int | None = None,
) -> tuple[SegmentInfo | Problem, Callback | Problem | None]:
    """What every message of a send carries, checked the API's way: the sender, the text and its
    parts, the callback. Each problem goes into ``problems`` under ``sender``, ``message`` or
    ``callback``; the text's parts and the parsed callback are returned (or their problems).

    :param message: the text.
    :param problems: where the problems are collected (the caller's, in its order).
    :param sender: the alias, None for the default.
    :param callback: the callback, as a model or as the API's dict.
    :param fail_on_multiple_messages: refuse a text longer than one part.
    :param max_parts_per_message: refuse a text that needs more parts than this.
    """
    if problem := check_sender(sender):
        problems["sender"] = problem.message
    segments = check_message(message, fail_on_multiple_messages=fail_on_multiple_messages)
    if isinstance(segments, Problem):
        problems["message"] = segments.message
    elif max_parts_per_message is not None and segments.parts > max_parts_per_message:
        problems["message"] = (
            f"message needs {segments.parts} parts ({segments.characters} {segments.encoding} characters) "
            f"and max_parts_per_message is {max_parts_per_message}"
        )
    checked_callback = None if callback is None else check_callback(callback)
    if isinstance(checked_callback, Problem):
        problems["callback"] = checked_callback.message
    return segments, checked_callback


def build_request(
    recipient: str,
    message: str,
    *,
    sender: str | None = None,
    region: str = "WW",
    dry_run: bool = False,
    fail_on_multiple_messages: bool = False,
    callback: Callback | dict[str, Any] | None = None,
) -> SendRequest:
    """One request, checked by the API's own rules before any money is spent: E.164 (and the country
    for IT/ES), sender, text and parts, region, callback. Raises one :class:`SmsWwValidationError`
    naming every problem."""
    problems: dict[str, str] = {}
    if problem := check_region(region):
        problems["region"] = problem.message
    parsed = parse_recipient(recipient, region)
    if isinstance(parsed, Problem):
        problems["recipient"] = parsed.message
    _, checked_callback = check_content(
        message,
        problems,
        sender=sender,
        callback=callback,
        fail_on_multiple_messages=fail_on_multiple_messages,
    )
    if problems or isinstance(parsed, Problem) or isinstance(checked_callback, Problem):
        raise SmsWwValidationError(
            describe_problems("SMS refused before sending; nothing was sent.", problems)
        )
    return SendRequest.of(
        parsed.e164,
        message,
        sender=sender,
        dry_run=dry_run,
        fail_on_multiple_messages=fail_on_multiple_messages,
        callback=checked_callback,
    )


class OtpParams(TypedDict, total=False):
    """The keyword parameters of a one-time code, as :func:`build_otp_request` takes them (with its
    defaults); the hook's ``send_otp`` and ``asend_otp`` pass them on unchanged."""

    length: int
    alphanumeric: bool
    cache_seconds: int
    dry_run: bool
    callback: Callback | dict[str, Any] | None


def build_otp_request(
    recipient: str,
    *,
    length: int = 5,
    alphanumeric: bool = False,
    cache_seconds: int = 0,
    dry_run: bool = False,
    callback: Callback | dict[str, Any] | None = None,
) -> SendOtpRequest:
    """One ``POST /otp`` request, checked by the spec's rules before any request: a valid E.164 number,
    ``length`` 4-10, ``cache_seconds`` 0-600, the callback as for sends. Raises one
    :class:`SmsWwValidationError` naming every problem, and never the code (there is none yet).

    :param recipient: E.164 number (spaces and dashes allowed).
    :param length: characters of the code.
    :param alphanumeric: digits and capital letters instead of digits only.
    :param cache_seconds: seconds during which the gateway sends the same code to the same number.
    :param dry_run: validate and price only (free; the answer still carries a code that was not sent).
    :param callback: the API's callback object.
    """
    problems: dict[str, str] = {}
    parsed = parse_recipient(recipient)
    checked_callback = None if callback is None else check_callback(callback)
    for name, problem in (
        ("recipient", parsed),
        ("length", check_otp_length(length)),
        ("cache_seconds", check_otp_cache_seconds(cache_seconds)),
        ("alphanumeric", None if isinstance(alphanumeric, bool) else Problem("must be True or False")),
        ("callback", checked_callback),
    ):
        if isinstance(problem, Problem):
            problems[name] = problem.message
    if problems or isinstance(parsed, Problem) or isinstance(checked_callback, Problem):
        raise SmsWwValidationError(
            describe_problems("One-time code refused before sending; nothing was sent.", problems)
        )
    return SendOtpRequest(
        recipient=parsed.e164,
        length=length,
        alphanumeric=alphanumeric,
        cache_seconds=cache_seconds,
        options=MessageOptions(dry_run=dry_run),
        callback=checked_callback,
    )
