"""Rules for the operator's arguments that can be checked when the DAG file is parsed.

Plain Python: no pydantic, no HTTP stack, no phone metadata, so that DAG files stay cheap to import.
Each function returns why a value is refused (naming the parameter), or None.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def _shown(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _templated(value: object) -> bool:
    """An XComArg or another value Airflow resolves before ``execute`` (checked again then)."""
    return hasattr(value, "resolve")


def check_message_type(value: object, *, at_parse_time: bool = False) -> str | None:
    """The text is a string (``message=12345`` is not reported as "empty")."""
    if isinstance(value, str) or (at_parse_time and _templated(value)):
        return None
    return f"message must be a string, not {_shown(value)}"


def check_recipients_type(value: object) -> str | None:
    """Recipients are one string (comma-separated allowed) or an iterable of them (an XComArg too),
    never a bare number: a number has lost its ``+``, and an int is not iterable."""
    if isinstance(value, str) or _templated(value):
        return None
    if isinstance(value, Iterable) and not isinstance(value, bytes | bytearray | Mapping):
        return None
    return f"recipients must be an E.164 string or a list of them, not {_shown(value)}"


def check_positive_int(name: str, value: object) -> str | None:
    """Counts such as ``max_concurrency``: an int of at least 1 (not a bool, not a string of digits)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return f"{name} must be a positive integer, not {_shown(value)}"
    return None
