"""Issue 12 item 8: arguments of the wrong type get the provider's error naming the parameter (at DAG
parse time where possible), not a raw TypeError or UnicodeEncodeError, and before any request."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_smsww.exceptions import SmsWwGateError, SmsWwValidationError
from airflow_provider_smsww.hooks.smsww import SmsWwHook
from airflow_provider_smsww.operators.smsww import SmsSendOperator
from airflow_provider_smsww.validation import check_message
from tests.fakes import FakeStore, task_context

ALICE = "+393331234567"
LONE_SURROGATE = "Your code is ready \ud83d"


def op(**kwargs: Any) -> SmsSendOperator:
    kwargs.setdefault("recipients", [ALICE])
    kwargs.setdefault("message", "Hello")
    return SmsSendOperator(task_id="send", **kwargs)


@pytest.mark.parametrize("bad", [393331234567, 3.9e11, True, None, {"to": ALICE}, b"+393331234567"])
def test_recipients_of_the_wrong_type_are_refused_at_parse_time(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"recipients must be an E\.164 string or a list"):
        op(recipients=bad)


@pytest.mark.parametrize("bad", ["20", 0, -1, True, 2.5, None])
def test_max_concurrency_must_be_a_positive_int(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_concurrency must be a positive integer"):
        op(max_concurrency=bad)


@pytest.mark.parametrize("bad", [12345, None, ["Hello"]])
def test_a_message_that_is_not_a_string_says_so(bad: Any) -> None:
    with pytest.raises(ValueError, match="message must be a string"):
        op(message=bad)
    problem = check_message(bad)
    assert not isinstance(problem, type(None))
    assert "must be a string" in getattr(problem, "message", "")


def test_templated_values_pass_at_parse_time() -> None:
    class Resolvable:  # what an XComArg looks like to the check: resolved before execute
        def resolve(self, context: Any) -> Any:
            return ALICE

    op(recipients=Resolvable(), message=Resolvable())


def test_recipients_rendered_to_a_number_are_refused_before_any_request(httpx_mock: Any) -> None:
    task = op()
    task.recipients = 393331234567  # type: ignore[assignment]  # e.g. an XComArg's value
    with pytest.raises(SmsWwGateError, match="recipients must be") as info:
        task.execute(task_context(FakeStore()))
    assert list(info.value.problems) == ["recipients"]
    assert httpx_mock.get_requests() == []


def test_a_lone_surrogate_is_refused_locally(httpx_mock: Any) -> None:
    with pytest.raises(SmsWwGateError, match="lone surrogate") as info:
        op(message=LONE_SURROGATE).execute(task_context(FakeStore()))
    assert list(info.value.problems) == ["message"]
    with pytest.raises(SmsWwValidationError, match=r"message: .*lone surrogate '\\ud83d' at position 19"):
        SmsWwHook().send_message(ALICE, LONE_SURROGATE)
    assert httpx_mock.get_requests() == []
