"""SmsVerifiedApprovalOperator: an Airflow human-in-the-loop approval (Airflow >= 3.1) that counts only
when the approver types the one-time code texted to their phone (how-to: docs/approval.md).

The code is never kept by Airflow: the task keeps the OTP message's id, and when a response comes back
it reads the code again from the gateway (``GET /messages/{id}``), masks it, and compares it in
constant time with what was typed. So the code is in no trigger argument, XCom, rendered field or task
state, and nothing stored can be tried offline against the code space.
"""

from __future__ import annotations

import copy
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_smsww import DEFAULT_CONN_ID
from airflow_provider_smsww.arguments import check_positive_int
from airflow_provider_smsww.compat import (
    HITL_SINCE,
    HITL_WAITS,
    AirflowFailException,
    conf,
    hitl_approval_operator,
    mask_secret,
    require,
)

if TYPE_CHECKING:
    from airflow.providers.standard.operators.hitl import ApprovalOperator
    from airflow.sdk import Context
else:
    ApprovalOperator = hitl_approval_operator()

__all__ = ["CODE_PARAM", "SmsVerifiedApprovalOperator"]

#: The form field the approver types the code into. "password" in the name makes Airflow's API server
#: mask the typed value in its audit log (the action log keeps request bodies, masked by key name).
CODE_PARAM = "one_time_password"
#: Arguments of ``ApprovalOperator`` the operator sets itself: a timeout default would approve unverified.
_OWN = ("defaults", "response_timeout")


def _refuse(problems: list[str]) -> None:
    if problems:
        raise ValueError(f"SmsVerifiedApprovalOperator: {'; '.join(problems)}")


class SmsVerifiedApprovalOperator(ApprovalOperator):
    """An ``ApprovalOperator`` whose "Approve" needs the one-time code texted to ``approver``.

    ``execute`` texts a code (``POST /otp``, from "OTP MOBILE") to the approver's number and opens
    Airflow's human-in-the-loop request with a ``one_time_password`` field. "Approve" with the right
    code approves (downstream tasks run); "Approve" with a wrong or empty code does not: the request is
    opened again in the same task (the ``notifiers`` are called again) until ``max_attempts`` wrong
    codes or ``code_valid_for`` has passed, and then the task fails for good, without retries. "Reject"
    needs no code and behaves as ``ApprovalOperator``'s. The returned response (XCom) has the code field
    emptied. Needs Airflow 3.1: on older releases the DAG fails when it is parsed.

    :param approver: the approver's E.164 number (templated).
    :param subject: the request's headline (templated), as for ``ApprovalOperator``.
    :param code_length: characters of the code, 4 to 10 (default 6); Airflow's secrets masker hides
        nothing shorter than ``[logging] min_length_masked_secret`` (5), so a shorter code is refused
        before anything is sent.
    :param alphanumeric: digits and capital letters instead of digits only.
    :param max_attempts: wrong codes allowed before the task fails (default 3).
    :param code_valid_for: how long the code may be used after it is sent (default 15 minutes);
        each request waits only as long as the code is still valid.
    :param smsww_conn_id: the ``smsww`` connection.
    :param kwargs: ``ApprovalOperator``'s other arguments (``body``, ``notifiers``, ``params``,
        ``assigned_users``, ``fail_on_reject``, ...); not ``defaults`` nor ``response_timeout``.
    """

    template_fields = (*ApprovalOperator.template_fields, "approver")
    #: In a request opened again after a wrong code, what the approver reads first in the text the
    #: provider's notifier sends again (:func:`wrong_code_notice`); None in the first request.
    request_notice: str | None = None

    def __init__(
        self,
        *,
        approver: str,
        subject: str,
        code_length: int = 6,
        alphanumeric: bool = False,
        max_attempts: int = 3,
        code_valid_for: timedelta = timedelta(minutes=15),
        smsww_conn_id: str = DEFAULT_CONN_ID,
        params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        require("SmsVerifiedApprovalOperator", HITL_SINCE)
        from airflow.sdk import Param
        from airflow.sdk.definitions.param import ParamsDict

        from airflow_provider_smsww.validation import check_otp_length

        problems = [f"{name} is set by the operator (from code_valid_for)" for name in _OWN if name in kwargs]
        if length_problem := check_otp_length(code_length):
            problems.append(f"code_length {length_problem.message}")
        if attempts_problem := check_positive_int("max_attempts", max_attempts):
            problems.append(attempts_problem)
        if not isinstance(code_valid_for, timedelta) or code_valid_for <= timedelta(0):
            problems.append(f"code_valid_for must be a positive timedelta, not {code_valid_for!r}")
        if not isinstance(approver, str):
            problems.append(f"approver must be an E.164 string, not {type(approver).__name__}")
        if params and CODE_PARAM in params:
            problems.append(f"params may not hold {CODE_PARAM!r}: the operator adds that field")
        _refuse(problems)
        field = Param(
            None,
            type=["null", "string"],
            title="One-time code",
            description="The code texted to you. Needed to approve, not to reject.",
        )
        # A ParamsDict keeps the user's Param definitions (unpacking one would give their values).
        form = copy.copy(params) if isinstance(params, ParamsDict) else ParamsDict(dict(params or {}))
        form[CODE_PARAM] = field
        # response_timeout: each request waits as long as the code is valid (set again per request);
        # given here, it also keeps HITLOperator from taking execution_timeout for it.
        super().__init__(subject=subject, params=form, response_timeout=code_valid_for, **kwargs)
        self.approver = approver
        self.code_length = code_length
        self.alphanumeric = alphanumeric
        self.max_attempts = max_attempts
        self.code_valid_for = code_valid_for
        self.smsww_conn_id = smsww_conn_id

    # -- the first request ------------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        """Text the code, then open the request (returns only through :meth:`execute_complete`)."""
        from airflow_provider_smsww.hooks.smsww import SmsWwHook

        shortest = conf.getint("logging", "min_length_masked_secret", fallback=5)
        if self.code_length < shortest:
            raise AirflowFailException(
                f"code_length {self.code_length} is shorter than [logging] min_length_masked_secret "
                f"({shortest}): Airflow could not mask the code in the logs. Nothing was sent."
            )
        with SmsWwHook(smsww_conn_id=self.smsww_conn_id) as hook:
            message = hook.send_otp(self.approver, length=self.code_length, alphanumeric=self.alphanumeric)
        expires_at = datetime.now(UTC) + self.code_valid_for
        self.log.info(
            "One-time code texted to %s (message %s), valid until %s for %d attempt(s)",
            self.approver,
            message.id,
            expires_at.isoformat(timespec="seconds"),
            self.max_attempts,
        )
        self._ask(context, message_id=message.id, attempt=1, expires_at=expires_at)

    def _ask(
        self,
        context: Context,
        *,
        message_id: str,
        attempt: int,
        expires_at: datetime,
        notice: str | None = None,
    ) -> None:
        """Open (or open again) the request and wait for it, with this operator's state in the wait's
        kwargs: the message id, the attempt and the expiry (never the code).

        :param notice: why the request opens again (:func:`wrong_code_notice`); None the first time.
        """
        remaining = expires_at - datetime.now(UTC)
        if remaining <= timedelta(0):
            raise AirflowFailException(self._expired(attempt - 1, expires_at))
        self.response_timeout = remaining
        if notice is not None:  # asked again after a wrong code: the text the notifiers send again says
            # so, and the body too, which Airflow 3.1-3.3 do not show: they keep a task's first request's
            # text (apache/airflow#73235 would refresh it)
            self.request_notice = notice
            self.body = f"**{notice}**" + (f"\n\n{self.body}" if self.body else "")
        try:
            super().execute(context)
        except HITL_WAITS as wait:
            state = {"message_id": message_id, "attempt": attempt, "expires_at": expires_at.isoformat()}
            wait.kwargs = {**(getattr(wait, "kwargs", None) or {}), **state}  # type: ignore[attr-defined]
            trigger = getattr(wait, "trigger", None)
            if trigger is not None:  # Airflow 3.1, 3.2: the triggerer masks the typed code
                from airflow_provider_smsww.triggers.approval import SmsApprovalTrigger

                wait.trigger = SmsApprovalTrigger(mask_params=[CODE_PARAM], **trigger.serialize()[1])  # type: ignore[attr-defined]
            raise
        raise AirflowFailException("the human-in-the-loop request did not wait for a response")

    # -- a response ---------------------------------------------------------------------------------------

    def execute_complete(
        self,
        context: Context,
        event: dict[str, Any],
        message_id: str | None = None,
        attempt: int = 1,
        expires_at: str | None = None,
    ) -> Any:
        """Check a response: "Approve" counts only with the right code; a wrong one asks again.

        :param event: the human-in-the-loop response (or a timeout error).
        :param message_id: the OTP message whose code the approver must type.
        :param attempt: which request this response answers (1 for the first).
        :param expires_at: when the code stops being accepted (ISO 8601).
        """
        if message_id is None or expires_at is None:
            raise AirflowFailException("resumed without the one-time code's message id: not approved")
        deadline = datetime.fromisoformat(expires_at)
        if "error" in event:
            if event.get("error_type") == "timeout":
                raise AirflowFailException(self._expired(attempt - 1, deadline))
            return super().execute_complete(context, event)
        typed_input = dict(event.get("params_input") or {})
        typed = typed_input.get(CODE_PARAM)
        if isinstance(typed, str) and typed.strip():
            mask_secret(typed)
            mask_secret(typed.strip())
        typed_input[CODE_PARAM] = None  # the response returned (XCom) never holds what was typed
        event = {**event, "params_input": typed_input}
        if list(event.get("chosen_options") or []) == [self.APPROVE]:
            responded = event.get("responded_at")
            responded_at = responded if isinstance(responded, datetime) else datetime.now(UTC)
            if responded_at.tzinfo is None:
                responded_at = responded_at.replace(tzinfo=UTC)
            if responded_at > deadline:
                raise AirflowFailException(self._expired(attempt - 1, deadline))
            if not self._code_matches(typed, message_id):
                if attempt >= self.max_attempts:
                    raise AirflowFailException(
                        f"Not approved: {attempt} wrong one-time code(s) typed for message {message_id}, "
                        f"the most max_attempts={self.max_attempts} allows"
                    )
                notice = wrong_code_notice(self.max_attempts - attempt, deadline)
                self.log.warning(
                    "Not approved: the one-time code typed (attempt %d of %d) is wrong; asking again: %s",
                    attempt,
                    self.max_attempts,
                    notice,
                )
                self._ask(
                    context, message_id=message_id, attempt=attempt + 1, expires_at=deadline, notice=notice
                )
            self.log.info("One-time code verified (attempt %d): approval accepted", attempt)
        return super().execute_complete(context, event)

    def _code_matches(self, typed: object, message_id: str) -> bool:
        """Whether ``typed`` is the code of ``message_id``, read again from the gateway (and masked by
        the hook as it is read), compared in constant time; spaces and letter case do not count."""
        from airflow_provider_smsww.hooks.smsww import SmsWwHook

        if not isinstance(typed, str) or not typed.strip():
            return False
        with SmsWwHook(smsww_conn_id=self.smsww_conn_id) as hook:
            code = hook.get_message(message_id).otp_code()
        if code is None:
            raise AirflowFailException(
                f"The gateway returned no one-time code for message {message_id}: the typed code "
                "cannot be checked, so the request is not approved"
            )
        given = "".join(typed.split()).upper().encode()
        return hmac.compare_digest(given, code.upper().encode())

    def _expired(self, wrong: int, deadline: datetime) -> str:
        return (
            f"Not approved: no right one-time code before it expired at "
            f"{deadline.isoformat(timespec='seconds')} (code_valid_for={self.code_valid_for}; "
            f"{wrong} wrong code(s) typed)"
        )


def wrong_code_notice(tries_left: int, expires_at: datetime) -> str:
    """``"Wrong code: 2 tries left; the same code is valid until 14:32 UTC."``: what a request opened
    again after a wrong code says first (the date too when the code outlives the day).

    :param tries_left: codes the approver may still type.
    :param expires_at: when the code stops being accepted (timezone-aware).
    """
    until = expires_at.astimezone(UTC)
    when = f"{until:%H:%M} UTC" if until.date() == datetime.now(UTC).date() else f"{until:%Y-%m-%d %H:%M} UTC"
    tries = "1 try" if tries_left == 1 else f"{tries_left} tries"
    return f"Wrong code: {tries} left; the same code is valid until {when}."
