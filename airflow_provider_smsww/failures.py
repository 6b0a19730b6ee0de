"""Provider errors that a task retry cannot cure, as failures Airflow does not retry.

The provider's own modules (client, hook, ``sending/``, ``delivery.py``) stay free of Airflow's task
machinery and raise plain :class:`~airflow_provider_smsww.exceptions.SmsWwError` subclasses; the
operator, sensor and trigger layer passes what it catches through :func:`no_retry`, which turns the
errors that would only repeat (or, for an ignored dry run, spend money again) into their twin that is
also an ``AirflowFailException``. Catching the provider class still works: each twin derives from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from airflow_provider_smsww.compat import AirflowFailException
from airflow_provider_smsww.exceptions import (
    SmsWwAuthError,
    SmsWwBlocklistedError,
    SmsWwDeliveryError,
    SmsWwDryRunIgnoredError,
    SmsWwError,
    SmsWwSpendingCapError,
    SmsWwValidationError,
)


class SmsWwDryRunIgnoredFailure(SmsWwDryRunIgnoredError, AirflowFailException):  # type: ignore[misc]
    """The gateway (or something in front of it) answered a dry run as a real send: every further
    try would send one more real SMS, so the task fails for good."""


class SmsWwBlocklistedFailure(SmsWwBlocklistedError, AirflowFailException):  # type: ignore[misc]
    """403 code 2020: the account is blocklisted; no retry can send."""


class SmsWwAuthFailure(SmsWwAuthError, AirflowFailException):  # type: ignore[misc]
    """401/403: the credentials are wrong or lack the scope; a retry meets the same answer."""


class SmsWwInvalidInputFailure(SmsWwValidationError, AirflowFailException):  # type: ignore[misc]
    """Input that is malformed for good (e.g. a message id that is not one): a retry reads the same."""


class SmsWwSpendingCapReachedError(SmsWwSpendingCapError, AirflowFailException):  # type: ignore[misc]
    """The per-task token's spending cap stopped the batch. An ``AirflowFailException`` too, so the
    task fails without retries: a retry would mint a fresh cap and could spend the budget again."""


class SmsDeliveryFailedError(SmsWwDeliveryError, AirflowFailException):  # type: ignore[misc]
    """Delivery failed for good (a final failure state, a blocklisted message, or ``min_delivered`` out
    of reach). It is an ``AirflowFailException`` too, so the task fails without retries: a retry would
    read the same final states again. (Both bases define ``status_code``; the provider's, the HTTP
    status or None, wins, and the task runner does not read it.)"""


#: Most specific first: a blocklisted account is an auth error too.
_TWINS: tuple[tuple[type[SmsWwError], type[SmsWwError]], ...] = (
    (SmsWwDryRunIgnoredError, SmsWwDryRunIgnoredFailure),
    (SmsWwSpendingCapError, SmsWwSpendingCapReachedError),
    (SmsWwBlocklistedError, SmsWwBlocklistedFailure),
    (SmsWwAuthError, SmsWwAuthFailure),
)


def no_retry(exc: SmsWwError, *, invalid_input: bool = False) -> SmsWwError:
    """``exc`` as a failure Airflow does not retry when no retry can cure it (an ignored dry run, a
    per-task spending cap, 401, 403, and with ``invalid_input`` a validation error); else ``exc`` itself.

    :param exc: the provider error caught by the operator, sensor or trigger layer.
    :param invalid_input: treat a :class:`SmsWwValidationError` as final too (input that no retry
        changes, such as a malformed message id).
    """
    if isinstance(exc, AirflowFailException):
        return exc
    twins = _TWINS + (((SmsWwValidationError, SmsWwInvalidInputFailure),) if invalid_input else ())
    for cls, twin in twins:
        if isinstance(exc, cls):
            failure = twin(exc.message, status_code=exc.status_code, code=exc.code)
            return failure
    return exc


@contextmanager
def failing_for_good(*, invalid_input: bool = False) -> Iterator[None]:
    """Re-raise a provider error from the block through :func:`no_retry` (chained to the original)."""
    try:
        yield
    except SmsWwError as exc:
        failure = no_retry(exc, invalid_input=invalid_input)
        if failure is exc:
            raise
        raise failure from exc
