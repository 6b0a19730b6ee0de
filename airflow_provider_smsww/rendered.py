"""Templated values as Airflow hands them over: a list may arrive as a Python list, an XComArg's value,
or, without ``render_template_as_native_obj``, as the string Jinja made of it. One reader for all of
them, used by the operator, the sensor and the notifier."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable
from typing import Any


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
