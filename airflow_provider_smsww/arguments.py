"""The arguments of the operator, sensor and notifier: the rules that can be checked when the DAG file
is parsed (each ``check_*`` returns why a value is refused, naming the parameter, or None), and how a
templated value reads once Airflow rendered it (a list may arrive as a Python list, an XComArg's
value, or, without ``render_template_as_native_obj``, as the string Jinja made of it).

Plain Python: no pydantic, no HTTP stack, no phone metadata, so that DAG files stay cheap to import.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow_provider_smsww.exceptions import SmsWwGateError


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
            return f"messages[{index}] has unknown key(s) {', '.join(unknown)} (allowed: recipient, message, sender)"
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
