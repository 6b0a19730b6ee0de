"""The arguments of the operator, sensor and notifier: the rules that can be checked when the DAG file
is parsed (each ``check_*`` returns why a value is refused, naming the parameter, or None), and how a
templated value reads once Airflow rendered it (a list may arrive as a Python list, an XComArg's
value, or, without ``render_template_as_native_obj``, as the string Jinja made of it).

Plain Python: no pydantic, no HTTP stack, no phone metadata (the list of countries only for a DAG that
sets ``default_country``), so that DAG files stay cheap to import.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from airflow_provider_smsww.exceptions import SmsWwGateError
from airflow_provider_smsww.sending.refusals import MAX_REFUSED_FRACTION, ON_INVALID


def _shown(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _templated(value: object) -> bool:
    """An XComArg or another value Airflow resolves before ``execute`` (checked again then)."""
    return hasattr(value, "resolve")


def check_message_type(value: object, *, at_parse_time: bool = False) -> str | None:
    """The text is a string (``message=12345`` is not reported as "empty")."""
    if at_parse_time and _templated(value):
        return None
    return check_text("message", value, empty_ok=True)


def check_recipients_type(value: object) -> str | None:
    """Recipients are one string (comma-separated allowed) or an iterable of them (an XComArg too),
    never a bare number: a number has lost its ``+``, and an int is not iterable."""
    if isinstance(value, str) or _templated(value):
        return None
    if isinstance(value, Iterable) and not isinstance(value, bytes | bytearray | Mapping):
        return None
    return f"recipients must be an E.164 string or a list of them, not {_shown(value)}"


def lone_surrogate(text: str) -> int | None:
    """Where ``text`` holds a lone surrogate (half of an emoji, e.g. cut by a slice), or None: no SMS
    encoding can carry one, nor can the UTF-8 that Airflow stores rendered fields in."""
    try:
        text.encode("utf-16-le")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def check_rendered(name: str, value: object) -> str | None:
    """A templated field as rendered: no lone surrogate in any string of it (in lists and dicts too),
    named by its place (``callback.headers.X-Key``) and position, never by its value (it may be a
    secret)."""
    if isinstance(value, str):
        at = lone_surrogate(value)
        return None if at is None else f"{name} has a lone surrogate at position {at} (half of an emoji?)"
    if isinstance(value, Mapping):
        items: Iterable[tuple[object, object]] = value.items()
    elif isinstance(value, list | tuple | set | frozenset):
        items = enumerate(value)
    else:
        items = ((k, v) for k, v in vars(value).items()) if hasattr(value, "model_dump") else ()
    for key, item in items:
        if problem := check_rendered(f"{name}.{key}" if isinstance(key, str) else f"{name}[{key}]", item):
            return problem
    return None


def check_text(name: str, value: object, *, empty_ok: bool = False, none_ok: bool = False) -> str | None:
    """A text argument (``message``, ``sender``) as rendered: a string (an XCom may hand in anything),
    not empty or only spaces unless ``empty_ok``; None only with ``none_ok``."""
    if none_ok and value is None:
        return None
    if not isinstance(value, str):
        return f"{name} must be a string, not {_shown(value)}"
    if not empty_ok and not value.strip():
        return f"{name} is empty"
    return None


#: The keys an entry may have; ``recipient`` and ``message`` are required.
ENTRY_KEYS = frozenset({"recipient", "message", "sender"})


def check_messages_value(value: Any, *, at_parse_time: bool = False) -> str | None:
    """Why ``messages`` (as given, or as rendered) is not a list of entries, naming the first bad entry
    by its index; None when it is one. Each entry is a dict with a string ``recipient`` and
    ``message`` and, optionally, a string (or None) ``sender``; nothing else.

    :param value: the operator's ``messages``, or the hook's.
    :param at_parse_time: a template string or an XComArg passes (checked again once rendered).
    """
    if at_parse_time and (isinstance(value, str) or _templated(value)):
        return None
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        return f"messages must be a list of {{recipient, message, sender}} dicts, not {type(value).__name__}"
    for index, entry in enumerate(value):
        if not isinstance(entry, Mapping):
            return f"messages[{index}] must be a dict with recipient and message, not {type(entry).__name__}"
        if unknown := sorted(str(k) for k in set(entry) - ENTRY_KEYS):
            allowed = "allowed: recipient, message, sender"
            return f"messages[{index}] has unknown key(s) {', '.join(unknown)} ({allowed})"
        for name in ("recipient", "message"):
            if not isinstance(entry.get(name), str):
                return f"messages[{index}] needs {name} as a string, not {type(entry.get(name)).__name__}"
        if not isinstance(entry.get("sender"), str | None):
            return (
                f"messages[{index}] sender must be a string or absent, not {type(entry['sender']).__name__}"
            )
    return None


def _read_back(value: Any) -> Any:
    """A list, or the string Jinja made of one (without ``render_template_as_native_obj``)."""
    if isinstance(value, str) and isinstance(parsed := parse_literal(value.strip()), list):
        return parsed
    return value


def messages_problem(value: Any) -> str | None:
    """Why the rendered ``messages`` is not a list of entries (read back from a string first), or None."""
    return check_messages_value(_read_back(value))


def as_entries(value: Any) -> list[Mapping[str, Any]]:
    """The rendered ``messages`` (the operator's, or the hook's ``send_many``): a list, or the string
    Jinja made of one (without ``render_template_as_native_obj``). Raises :class:`SmsWwGateError`
    naming what is wrong."""
    if problem := messages_problem(value):
        raise SmsWwGateError(
            f"SMS batch refused before any request; nothing was sent: {problem}",
            problems={"messages": problem},
        )
    return list(_read_back(value))


def check_positive_int(name: str, value: object) -> str | None:
    """Counts such as ``max_concurrency``: an int of at least 1 (not a bool, not a string of digits)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return f"{name} must be a positive integer, not {_shown(value)}"
    return None


def parse_literal(text: str) -> Any:
    """A list or record rendered to a string: JSON, or the Python repr that Jinja produces for a list
    when the DAG does not set ``render_template_as_native_obj``; None when it is neither."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def as_list(recipients: str | Iterable[str] | None) -> list[str]:
    """One string, a comma-separated string, a list rendered to a string (``"['+39...', ...]"``), or
    any iterable (a rendered XComArg) -> list."""
    if recipients is None:
        return []
    if isinstance(recipients, str):
        text = recipients.strip()
        if text.startswith("[") and isinstance(parsed := parse_literal(text), list):
            return [str(r) for r in parsed]
        return [r for r in (p.strip() for p in text.split(",")) if r]
    return [str(r) for r in recipients]


def positive_amount(name: str, value: Any) -> None:
    """Refuse a money parameter that is not a positive finite number of EUR (``None`` is allowed):
    a zero, negative or NaN budget or assumed price would let any batch through the budget check."""
    if value is None:
        return
    number = isinstance(value, int | float | Decimal) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of EUR (or None), not {value!r}")


def check_mappable(
    max_total_price: Any = None,
    price_per_part_if_unknown: Any = None,
    default_country: Any = None,
    on_invalid: Any = "fail",
    max_refused_fraction: Any = MAX_REFUSED_FRACTION,
    **_: Any,
) -> None:
    """The ``SmsSendOperator`` arguments checked when the DAG file is parsed, for a mapped operator too
    (its ``__init__`` runs only when it is expanded): the two money parameters, each a positive amount or
    None, :func:`check_default_country`, ``on_invalid`` and ``max_refused_fraction`` (a share from 0 to 1).
    Raises ``ValueError`` naming the first bad one; the other keyword arguments are ignored (``partial``
    hands in all of its own)."""
    positive_amount("max_total_price", max_total_price)
    positive_amount("price_per_part_if_unknown", price_per_part_if_unknown)
    check_default_country(default_country)
    if on_invalid not in ON_INVALID:
        choices = " or ".join(map(repr, ON_INVALID))
        raise ValueError(f"on_invalid must be {choices}, not {_shown(on_invalid)}")
    share = isinstance(max_refused_fraction, int | float) and not isinstance(max_refused_fraction, bool)
    if not share or not 0 <= max_refused_fraction <= 1:
        raise ValueError(
            "max_refused_fraction must be a share of the rows from 0 to 1 (0.1: a tenth), "
            f"not {_shown(max_refused_fraction)}"
        )


def check_default_country(value: Any) -> None:
    """``default_country`` of ``SmsSendOperator``: None, or the ISO 3166 alpha-2 code of a country with
    phone numbers (``"IT"``), checked when the DAG file is parsed (for a mapped operator too): a typo
    would read every national number as another country's. Raises ``ValueError``."""
    if value is None:
        return
    if not isinstance(value, str) or not re.fullmatch("[A-Z]{2}", value):
        raise ValueError(
            f"default_country must be an ISO 3166 alpha-2 code in capitals, e.g. 'IT', not {_shown(value)}"
        )
    import phonenumbers

    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"default_country {value!r} is no country with phone numbers (ISO 3166 alpha-2)")


def rendered_recipients(value: Any) -> list[str]:
    """The rendered ``recipients`` as a list (see :func:`as_list`). Raises ``SmsWwGateError`` when it is
    no string nor list of them (an XComArg's value may be anything); nothing is sent."""
    if problem := check_recipients_type(value):
        from airflow_provider_smsww.exceptions import SmsWwGateError

        raise SmsWwGateError(problem, problems={"recipients": problem})
    return as_list(value)


def as_seconds(name: str, value: float | timedelta) -> float:
    """A duration given as seconds or a ``timedelta``, checked at DAG parse time."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds < float("inf"):
        raise ValueError(f"{name} must be a number of seconds >= 0 or a timedelta, not {value!r}")
    return float(seconds)


def check_send_arguments(
    recipients: Any,
    message: Any,
    messages: Any,
    max_concurrency: Any,
    *,
    gate: bool,
    dry_run: bool,
    budgeted: bool,
) -> None:
    """Refuse, when the DAG file is parsed, the ``SmsSendOperator`` arguments no rendering can make
    right. Raises ``ValueError`` naming each problem.

    :param recipients: the operator's ``recipients``, as given.
    :param message: the operator's ``message``, as given.
    :param messages: the operator's ``messages``, as given.
    :param max_concurrency: requests in flight at once.
    :param gate: whether the dry-run gate runs.
    :param dry_run: whether the task only estimates.
    :param budgeted: ``max_total_price`` or ``price_per_part_if_unknown`` is given.
    """
    if messages is not None and (recipients is not None or message is not None):
        raise ValueError("give either messages or recipients and message, not both")
    if messages is None and recipients is None and message is None:
        raise ValueError("give recipients and message (one text for all), or messages (a text per recipient)")
    checks: tuple[str | None, ...]
    if messages is not None:
        checks = (check_messages_value(messages, at_parse_time=True),)
    else:
        checks = (check_recipients_type(recipients), check_message_type(message, at_parse_time=True))
    problems = [
        problem for problem in (*checks, check_positive_int("max_concurrency", max_concurrency)) if problem
    ]
    if problems:
        raise ValueError("; ".join(problems))
    if not gate and not dry_run and budgeted:
        raise ValueError(
            "max_total_price is checked on the dry-run estimate: it needs gate=True (the default), "
            "or it would be ignored and the batch sent whatever it costs"
        )


def check_send_rendered(fields: Mapping[str, Any]) -> None:
    """The rendered templated fields of ``SmsSendOperator``: no lone surrogate anywhere, recipients a
    string or a list, the message a non-empty string, the sender a string or None, the callback a
    valid one (an XCom or a Variable may hand in anything). Raises ``SmsWwGateError`` naming each bad
    field; nothing is sent.

    :param fields: each templated field's name and rendered value.
    """
    from airflow_provider_smsww.exceptions import SmsWwGateError, describe_problems
    from airflow_provider_smsww.validation import Problem, check_callback

    problems = {name: p for name, value in fields.items() if (p := check_rendered(name, value))}
    callback = None if fields["callback"] is None else check_callback(fields["callback"])
    one_text = fields["messages"] is None
    checks = {
        "recipients": check_recipients_type(fields["recipients"]) if one_text else None,
        "message": check_text("message", fields["message"]) if one_text else None,
        "messages": None if one_text else messages_problem(fields["messages"]),
        "sender": check_text("sender", fields["sender"], empty_ok=True, none_ok=True),
        "callback": f"callback {callback.message}" if isinstance(callback, Problem) else None,
    }
    for name, problem in checks.items():
        if problem:
            problems.setdefault(name, problem)
    if problems:
        head = "Templated field(s) refused once rendered; nothing was sent."
        raise SmsWwGateError(describe_problems(head, problems), problems=problems)
