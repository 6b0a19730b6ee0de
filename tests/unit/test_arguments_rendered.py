"""Templated values as Airflow renders them (arguments.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_provider_smsww.arguments import as_list

TEXT = "Report ready"
ALICE, BOB = "+393331234567", "+393331234568"
SINCE = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("+393331234567, +393331234568", [ALICE, BOB]),
        ("['+393331234567', '+393331234568']", [ALICE, BOB]),  # a list rendered without native objects
        ('["+393331234567"]', [ALICE]),
        ([ALICE, BOB], [ALICE, BOB]),
    ],
)
def test_recipients_in_every_rendered_shape(given: Any, expected: list[str]) -> None:
    assert as_list(given) == expected
