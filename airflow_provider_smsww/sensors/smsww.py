"""SmsDeliverySensor: wait until sent SMS are delivered, in poke, reschedule or deferrable mode.

Import cost: DAG files import this module at parse time, so the hook, the client (httpx), the models
and the trigger are imported inside the methods that run on a worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator

from airflow_provider_smsww import DEFAULT_CONN_ID
from airflow_provider_smsww.compat import AirflowSkipException, conf
from airflow_provider_smsww.exceptions import SmsWwError
from airflow_provider_smsww.failures import SmsDeliveryFailedError, failing_for_good

if TYPE_CHECKING:
    from airflow.sdk import Context, PokeReturnValue

    from airflow_provider_smsww.models import Message


class SmsDeliverySensor(BaseSensorOperator):
    """Wait until SMS sent through the SMS Worldwide API are delivered.

    Succeeds when every message is DELIVERED (or ``min_delivered`` are); fails at once, without
    retries, when one reaches UNDELIVERABLE, EXPIRED or REJECTED or is blocklisted, naming each; counts
    transient API trouble as "not yet". Works in poke, reschedule and deferrable mode (the wait then
    runs in :class:`~airflow_provider_smsww.triggers.smsww.SmsDeliveryTrigger`). Returns one record per
    message: ``{id, recipient, state, messageCount, encoding, totalPrice, blocklisted}``. The verdicts
    and modes are told in ``docs/sensor.md``; credentials refused (401/403) and malformed ids fail
    without retries.

    :param message_ids: the messages to watch (templated): one id, a list of ids, or the output of
        :class:`~airflow_provider_smsww.operators.smsww.SmsSendOperator` (an XComArg such as
        ``send.output``, also inside ``.expand(message_ids=...)``); a JSON or Python-literal string of
        these works too, for templates rendered without ``render_template_as_native_obj``.
    :param min_delivered: succeed once this many are delivered (bulk campaigns, where some numbers are
        always out of service). Capped at the number of messages, with a warning, so that a mapped
        campaign's smaller last batch waits for all of its messages instead of failing.
    :param smsww_conn_id: the ``smsww`` connection.
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    :param check_before_defer: in deferrable mode, poke once before deferring.
    :param max_concurrency: reads in flight at once (pages or GETs), in a poke and in the trigger.
    """

    template_fields: Sequence[str] = ("message_ids",)
    template_fields_renderers = {"message_ids": "json"}
    ui_color = "#b2dfdb"

    def __init__(
        self,
        *,
        message_ids: Any,
        min_delivered: int | None = None,
        smsww_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        check_before_defer: bool = True,
        max_concurrency: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if min_delivered is not None and (
            isinstance(min_delivered, bool) or not isinstance(min_delivered, int) or min_delivered < 1
        ):
            raise ValueError(f"min_delivered must be a positive integer or None, not {min_delivered!r}")
        self.message_ids = message_ids
        self.min_delivered = min_delivered
        self.smsww_conn_id = smsww_conn_id
        self.deferrable = deferrable
        self.check_before_defer = check_before_defer
        self.max_concurrency = max_concurrency
        # Final messages seen by earlier pokes of this try (poke mode); empty after a reschedule.
        self._final: dict[str, Message] = {}

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Check ``message_ids`` as rendered, before the task runner stores it: a lone surrogate would
        fail that store with a bare ``UnicodeEncodeError``; the provider's error names the field."""
        super().render_template_fields(context, jinja_env)
        from airflow_provider_smsww.arguments import check_rendered
        from airflow_provider_smsww.exceptions import SmsWwValidationError

        if problem := check_rendered("message_ids", self.message_ids):
            raise SmsWwValidationError(f"Templated field refused once rendered: {problem}")

    def _ids(self) -> list[str]:
        from airflow_provider_smsww.delivery import normalize_message_ids

        return normalize_message_ids(self.message_ids)

    def _required(self, ids: Sequence[str]) -> int:
        from airflow_provider_smsww.delivery import required_count

        if self.min_delivered is not None and self.min_delivered > len(ids):
            self.log.warning(
                "min_delivered=%d but there are only %d message id(s): waiting for all of them",
                self.min_delivered,
                len(ids),
            )
        return required_count(len(ids), self.min_delivered)

    def _fail(self, message: str) -> None:
        """A delivery failure: skip under ``soft_fail``/``never_fail``, else fail without retries."""
        if self.soft_fail or self.never_fail:
            raise AirflowSkipException(f"{message} (skipped: soft_fail)")
        raise SmsDeliveryFailedError(message)

    def poke(self, context: Context) -> PokeReturnValue:
        from airflow.sdk import PokeReturnValue

        from airflow_provider_smsww.delivery import DeliveryProgress, read_messages
        from airflow_provider_smsww.hooks.smsww import SmsWwHook

        ids = self._ids()
        required = self._required(ids)
        messages: dict[str, Message] = {i: m for i, m in self._final.items() if i in ids}
        todo = [i for i in ids if i not in messages]
        hook = SmsWwHook(smsww_conn_id=self.smsww_conn_id)
        # Concurrent reads, as in the trigger: 1,000 ids one after another would hold the worker slot
        # for 1,000 round trips.
        trouble = hook.run_async(
            lambda: read_messages(hook, todo, messages, max_concurrency=self.max_concurrency)
        )
        self._final.update({i: messages[i] for i in todo if i in messages and messages[i].is_final})

        progress = DeliveryProgress(ids, messages, required)
        self.log.info("SMS delivery: %s", progress.counts())
        if progress.succeeded:
            from airflow_provider_smsww.metrics import report_actual_cost

            report_actual_cost(self, context, records := progress.records())
            return PokeReturnValue(is_done=True, xcom_value=records)
        if progress.impossible:
            self._fail(progress.failure_message())
        if trouble is not None:
            self.log.warning("SMS API trouble, counted as not yet delivered: %s", trouble.message)
        return PokeReturnValue(is_done=False)

    @failing_for_good(invalid_input=True)  # 401/403 or a malformed id: no retry reads otherwise
    def execute(self, context: Context) -> Any:
        ids = self._ids()  # bad input fails here, before any request or deferral
        if not self.deferrable:
            return super().execute(context)
        not_before = None
        if self.check_before_defer:
            first = self.poke(context)
            if first.is_done:
                self.log.info("Success criteria met before deferring.")
                return first.xcom_value
            # The trigger's first look comes one interval after this one (docs/sensor.md, "Deferrable mode").
            not_before = datetime.now(UTC) + timedelta(seconds=self.poke_interval)
        from airflow_provider_smsww.triggers.smsww import SmsDeliveryTrigger

        self.defer(
            trigger=SmsDeliveryTrigger(
                message_ids=ids,
                smsww_conn_id=self.smsww_conn_id,
                poll_interval=self.poke_interval,
                min_delivered=self.min_delivered,
                max_concurrency=self.max_concurrency,
                not_before=not_before,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    @failing_for_good(invalid_input=True)
    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Turn the trigger's event into the same outcome a poke would have had."""
        if not event:
            raise SmsWwError("The SMS delivery trigger ended without an event.")
        status = event.get("status")
        message = str(event.get("message") or "no detail")
        if status == "success":
            from airflow_provider_smsww.metrics import report_actual_cost

            self.log.info(message)
            report_actual_cost(self, context, records := event.get("messages", []))
            return records
        if status == "failure":
            self._fail(message)
        raise _error_from_event(event.get("error_type"), message)


def _error_from_event(error_type: Any, message: str) -> SmsWwError:
    """The provider exception the trigger caught, rebuilt from its class name (only provider classes)."""
    from airflow_provider_smsww import exceptions

    cls = getattr(exceptions, str(error_type), None) if error_type else None
    if isinstance(cls, type) and issubclass(cls, SmsWwError):
        try:
            return cls(message)
        except TypeError:  # a class that needs more than a message
            pass
    return SmsWwError(f"SMS delivery wait failed: {message}")
