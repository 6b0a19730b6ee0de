"""What differs between Airflow 3.0, 3.1, 3.2 and 3.3, in one place: the rest of the package imports
these names from here and never checks a version itself.

Each name is taken from where the newest Airflow keeps it, falling back to where the older ones do, as
``apache-airflow-providers-common-compat``'s ``sdk`` module does. That module is not used because it arrived
after Airflow 3.0.6's constraints were cut (they pin common-compat 1.7.3, which has no ``sdk``): depending on
it would make a user on 3.0 upgrade a provider to install this one. A feature that needs a newer Airflow is
refused when the DAG is parsed (:func:`require`). Nothing here rules out Airflow 2.11 later: it would be one
more fallback per name.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from airflow import __version__ as AIRFLOW_VERSION_STRING

try:  # Airflow >= 3.1
    from airflow.sdk import BaseHook
except ImportError:  # Airflow 3.0
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined]

try:  # Airflow >= 3.2
    from airflow.sdk.exceptions import (
        AirflowFailException,
        AirflowRescheduleException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )
except ImportError:  # Airflow 3.0, 3.1
    from airflow.exceptions import (  # type: ignore[no-redef]
        AirflowFailException,
        AirflowRescheduleException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )

try:  # Airflow >= 3.2
    from airflow.sdk.configuration import conf
except ImportError:  # Airflow 3.0, 3.1
    from airflow.configuration import conf

try:  # Airflow >= 3.1
    from airflow.sdk.log import mask_secret, redact
except ImportError:  # Airflow 3.0
    from airflow.sdk.execution_time.secrets_masker import mask_secret, redact  # type: ignore[no-redef]


def _release(version: str) -> tuple[int, int]:
    major, minor = (int("".join(c for c in part if c.isdigit()) or 0) for part in version.split(".")[:2])
    return major, minor


#: The running Airflow's (major, minor).
AIRFLOW_VERSION = _release(AIRFLOW_VERSION_STRING)

if AIRFLOW_VERSION >= (3, 1):
    from airflow.sdk import BaseNotifier
else:
    from airflow.sdk import BaseNotifier as _Airflow30Notifier

    class BaseNotifier(_Airflow30Notifier):  # type: ignore[no-redef]
        """Airflow 3.0's notifier as 3.1 mended it: a failed notification is logged and raised (3.0
        swallowed it, so ``raise_on_failure`` meant nothing), and a context without ``dag`` renders
        (3.0 failed every template with a KeyError)."""

        def _render(self, template: Any, context: Any, dag: Any = None) -> Any:
            return super(_Airflow30Notifier, self)._render(template, context, dag or context.get("dag"))

        def __call__(self, *args: Any) -> None:
            if len(args) == 1:
                context = args[0]
            else:  # a DAG's SLA-miss signature
                context = dict(
                    zip(("dag", "task_list", "blocking_task_list", "blocking_tis"), args, strict=False)
                )
            self._update_context(context)
            self.render_template_fields(context)
            try:
                self.notify(context)
            except Exception as exc:
                self.log.error("Failed to send notification (sync): %s", exc)
                raise


def require(feature: str, needs: tuple[int, int]) -> None:
    """Refuse, when the DAG is parsed, a feature the running Airflow lacks, naming the release it needs.

    :param feature: what the DAG author used, as they wrote it (e.g. ``SmsApprovalOperator``).
    :param needs: the (major, minor) release of Airflow that brought what the feature stands on.
    """
    if needs > AIRFLOW_VERSION:
        raise RuntimeError(
            f"{feature} needs Airflow {needs[0]}.{needs[1]} or newer; "
            f"this is Airflow {AIRFLOW_VERSION_STRING}"
        )


#: The release that brought human-in-the-loop operators (the standard provider's ``HITLOperator``).
HITL_SINCE = (3, 1)


def hitl_approval_operator() -> Any:
    """The standard provider's ``ApprovalOperator`` (Airflow >= 3.1), else ``BaseOperator``: a class
    built on it must call :func:`require` with :data:`HITL_SINCE` first thing in ``__init__``, so that
    the DAG fails when it is parsed, naming the release it needs."""
    if AIRFLOW_VERSION >= HITL_SINCE:
        from airflow.providers.standard.operators.hitl import ApprovalOperator

        return ApprovalOperator
    from airflow.sdk import BaseOperator

    return BaseOperator


def hitl_operator() -> Any:
    """The standard provider's ``HITLOperator`` (the base of every human-in-the-loop operator), or
    None before Airflow 3.1, which has none."""
    if AIRFLOW_VERSION < HITL_SINCE:
        return None
    from airflow.providers.standard.operators.hitl import HITLOperator

    return HITLOperator


try:  # Airflow >= 3.3: a human-in-the-loop task waits in AWAITING_INPUT, with no trigger
    from airflow.sdk.exceptions import TaskAwaitingInput

    #: What a human-in-the-loop operator raises to wait for the response: a deferral to the standard
    #: provider's ``HITLTrigger`` (Airflow 3.1, 3.2), or ``TaskAwaitingInput`` (Airflow >= 3.3).
    HITL_WAITS: tuple[type[BaseException], ...] = (TaskDeferred, TaskAwaitingInput)
except ImportError:  # Airflow < 3.3
    HITL_WAITS = (TaskDeferred,)


async def aget_connection(conn_id: str) -> Any:
    """The Airflow connection ``conn_id``, fetched without blocking the event loop (the triggerer's).

    :param conn_id: the connection id.
    """
    if hasattr(BaseHook, "aget_connection"):  # Airflow >= 3.1
        return await BaseHook.aget_connection(conn_id)
    from asgiref.sync import sync_to_async  # Airflow 3.0: the sync call in a thread, as its triggers do

    return await sync_to_async(BaseHook.get_connection)(conn_id)


def stats() -> Any:
    """Airflow's ``Stats`` (StatsD, Datadog or OpenTelemetry, as configured); imported when first used,
    since it is heavy for a DAG file to import."""
    try:  # Airflow >= 3.2
        from airflow.sdk.observability.stats import Stats
    except ImportError:  # Airflow 3.0, 3.1
        from airflow.stats import Stats
    return Stats


try:  # Airflow >= 3.3
    from airflow.sdk.log import amask_secret
except ImportError:  # Airflow < 3.3

    async def amask_secret(secret: Any, name: str | None = None) -> None:  # type: ignore[misc]
        """``mask_secret`` for async code, as Airflow 3.3 has it: the supervisor is told through
        ``asend``, since a sync ``send`` from the triggerer's event loop can deadlock against it."""
        from airflow.sdk.execution_time import task_runner

        comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
        if comms is None or not hasattr(comms, "asend"):
            mask_secret(secret, name)
            return
        try:  # Airflow 3.1, 3.2
            from airflow.sdk._shared.secrets_masker import _secrets_masker
        except ImportError:  # Airflow 3.0
            from airflow.sdk.execution_time.secrets_masker import _secrets_masker  # type: ignore[no-redef]

        _secrets_masker().add_mask(secret, name)
        with suppress(Exception):  # a supervisor that does not take the message: masked locally
            from airflow.sdk.execution_time.comms import MaskSecret

            await comms.asend(MaskSecret(value=secret, name=name))


__all__ = [
    "AIRFLOW_VERSION",
    "HITL_SINCE",
    "HITL_WAITS",
    "AirflowFailException",
    "AirflowRescheduleException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "BaseHook",
    "BaseNotifier",
    "TaskDeferred",
    "aget_connection",
    "amask_secret",
    "conf",
    "hitl_approval_operator",
    "hitl_operator",
    "mask_secret",
    "redact",
    "require",
    "stats",
]
