"""The argument checks of ``arguments.py``: arguments of the wrong type get the provider's error naming the
parameter (at DAG parse time where possible), not a raw TypeError or UnicodeEncodeError, and before any
request; templated values are checked as Airflow renders them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_provider_smsww.arguments import as_list
from airflow_provider_smsww.exceptions import SmsWwGateError, SmsWwValidationError
from airflow_provider_smsww.hooks.smsww import SmsWwHook
from airflow_provider_smsww.operators.smsww import SmsSendOperator
from airflow_provider_smsww.validation import check_message
from tests.fakes import FakeStore, task_context

TEXT = "Report ready"
ALICE, BOB = "+393331234567", "+393331234568"
SINCE = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LONE_SURROGATE = "Your code is ready \ud83d"


def send_task(**kwargs: Any) -> SmsSendOperator:
    kwargs.setdefault("recipients", [ALICE])
    kwargs.setdefault("message", "Hello")
    return SmsSendOperator(task_id="send", **kwargs)


@pytest.mark.parametrize("bad", [393331234567, 3.9e11, True, None, {"to": ALICE}, b"+393331234567"])
def test_recipients_of_the_wrong_type_are_refused_at_parse_time(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"recipients must be an E\.164 string or a list"):
        send_task(recipients=bad)


@pytest.mark.parametrize("bad", ["20", 0, -1, True, 2.5, None])
def test_max_concurrency_must_be_a_positive_int(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_concurrency must be a positive integer"):
        send_task(max_concurrency=bad)


@pytest.mark.parametrize("bad", [12345, None, ["Hello"]])
def test_a_message_that_is_not_a_string_says_so(bad: Any) -> None:
    with pytest.raises(ValueError, match="message must be a string"):
        send_task(message=bad)
    problem = check_message(bad)
    assert not isinstance(problem, type(None))
    assert "must be a string" in getattr(problem, "message", "")


def test_templated_values_pass_at_parse_time() -> None:
    class Resolvable:  # what an XComArg looks like to the check: resolved before execute
        def resolve(self, context: Any) -> Any:
            return ALICE

    send_task(recipients=Resolvable(), message=Resolvable())


def test_recipients_rendered_to_a_number_are_refused_before_any_request(httpx_mock: Any) -> None:
    task = send_task()
    task.recipients = 393331234567  # type: ignore[assignment]  # e.g. an XComArg's value
    with pytest.raises(SmsWwGateError, match="recipients must be") as info:
        task.execute(task_context(FakeStore()))
    assert list(info.value.problems) == ["recipients"]
    assert httpx_mock.get_requests() == []


def test_a_lone_surrogate_is_refused_locally(httpx_mock: Any) -> None:
    with pytest.raises(SmsWwGateError, match="lone surrogate") as info:
        send_task(message=LONE_SURROGATE).execute(task_context(FakeStore()))
    assert list(info.value.problems) == ["message"]
    with pytest.raises(SmsWwValidationError, match=r"message: .*lone surrogate '\\ud83d' at position 19"):
        SmsWwHook().send_message(ALICE, LONE_SURROGATE)
    assert httpx_mock.get_requests() == []


# -- templated values as Airflow renders them --------------------------------------------------------


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
