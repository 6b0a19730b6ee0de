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


# -- every templated field checked once rendered (issue 23) -------------------------------------------


def test_check_rendered_names_the_place_of_a_lone_surrogate_never_the_value() -> None:
    from airflow_provider_smsww.arguments import check_rendered

    callback = {"url": "https://example.com/hook", "headers": {"X-Key": "s3cret\ud83d"}}
    problem = check_rendered("callback", callback)
    assert problem == "callback.headers.X-Key has a lone surrogate at position 6 (half of an emoji?)"
    assert check_rendered("recipients", [ALICE, "+39333\udc00"]) == (
        "recipients[1] has a lone surrogate at position 6 (half of an emoji?)"
    )
    assert check_rendered("message", TEXT) is None
    assert check_rendered("sender", None) is None


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("message", "Half \ud83d", "message has a lone surrogate at position 5"),
        ("message", "   ", "message is empty"),
        ("message", {"text": "hi"}, "message must be a string, not dict"),
        ("sender", 42, "sender must be a string, not int"),
        ("recipients", 393331234567, "recipients must be an E.164 string or a list of them, not int"),
        ("callback", {"url": "https://example.com", "retries": 3}, "callback unknown key(s) 'retries'"),
    ],
)
def test_the_operator_refuses_a_bad_rendered_field_naming_it(field: str, value: Any, problem: str) -> None:
    from airflow_provider_smsww.exceptions import SmsWwGateError
    from airflow_provider_smsww.operators.smsww import SmsSendOperator

    op = SmsSendOperator(task_id="send", recipients=ALICE, message=TEXT)
    setattr(op, field, value)  # what the template (or an XCom) rendered
    with pytest.raises(SmsWwGateError) as info:
        op.render_template_fields({})
    assert set(info.value.problems) == {field}
    assert problem in str(info.value)
