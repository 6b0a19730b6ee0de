"""SmsSendOperator: send one text to one or many recipients, gated by a dry run, never twice."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_smsww import DEFAULT_CONN_ID
from airflow_provider_smsww.arguments import check_message_type, check_positive_int, check_recipients_type
from airflow_provider_smsww.exceptions import (
    SmsWwAuthError,
    SmsWwDryRunIgnoredError,
    SmsWwError,
    SmsWwGateError,
    describe_problems,
)
from airflow_provider_smsww.failures import SmsWwDryRunIgnoredFailure, failing_for_good

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.models import Callback
    from airflow_provider_smsww.sending.batch import Batch
    from airflow_provider_smsww.sending.ledger import Ledger


class SmsSendOperator(BaseOperator):
    """Send an SMS to one or many recipients through ``POST /{region}-messages``.

    Nothing is spent unless every message passes: recipients, sender and text are checked locally,
    then every message is priced with ``dryRun`` (free), and only when all pass, within
    ``max_parts_per_message`` and ``max_total_price``, is anything sent. Sends run concurrently
    (``max_concurrency`` in flight) and each accepted id is recorded in the task state store, so a
    retried task sends only to the recipients that were not accepted before.

    :param recipients: one E.164 number, a comma-separated string, or a list (templated; an XComArg
        works, as does ``.expand(recipients=[...])``). Spaces and dashes are allowed; duplicates are
        sent once.
    :param message: the text (templated).
    :param sender: alias of 3-11 letters, digits or spaces, not all digits (templated); default
        "Openapi".
    :param callback: the API's callback object (``url``, ``method``, ``retry``, ``headers``,
        ``custom``), templated. Header values are masked in logs and never returned.
    :param region: ``WW`` (worldwide, default), ``IT`` or ``ES``.
    :param dry_run: only run the checks and the dry-run gate; return the estimate, send nothing.
    :param gate: run the dry-run gate before sending (default True). Turning it off saves one request
        per recipient; local checks still run.
    :param fail_on_multiple_messages: refuse texts longer than one SMS part (locally and in the API).
    :param max_parts_per_message: refuse texts that need more parts than this.
    :param max_total_price: budget in EUR for the whole batch, checked on the dry-run estimate.
    :param price_per_part_if_unknown: EUR per part to assume when the API does not price a dry run
        (worldwide prices are final only after sending); required with a budget in that case.
    :param max_concurrency: requests in flight at once.
    :param settle_time: how long a send whose outcome is unknown (5xx, dropped connection) must be
        absent from ``GET /messages``, since it was made, before it is sent again (seconds or a
        ``timedelta``; default 5 minutes). The task looks it up every few seconds meanwhile, holding
        its worker slot; see ``docs/operator.md``.
    :returns: (XCom) a list of ``{recipient, id, state, messageCount, encoding}``, ready for
        :class:`~airflow_provider_smsww.sensors.smsww.SmsDeliverySensor`; with ``dry_run=True`` the
        estimate ``{dry_run, recipients, total_parts, estimated_total_price}``.
    """

    template_fields: Sequence[str] = ("recipients", "message", "sender", "callback")
    template_fields_renderers = {"callback": "json"}
    ui_color = "#e0f2f1"

    def __init__(
        self,
        *,
        recipients: str | Sequence[str],
        message: str,
        sender: str | None = None,
        callback: dict[str, Any] | Callback | None = None,
        region: str = "WW",
        dry_run: bool = False,
        gate: bool = True,
        fail_on_multiple_messages: bool = False,
        max_parts_per_message: int | None = None,
        max_total_price: float | None = None,
        price_per_part_if_unknown: float | None = None,
        max_concurrency: int = 20,
        settle_time: float | timedelta = timedelta(minutes=5),
        smsww_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_arguments(recipients, message, max_concurrency)
        if (
            not gate
            and not dry_run
            and (max_total_price is not None or price_per_part_if_unknown is not None)
        ):
            raise ValueError(
                "max_total_price is checked on the dry-run estimate: it needs gate=True (the default), "
                "or it would be ignored and the batch sent whatever it costs"
            )
        self.recipients = recipients
        self.message = message
        self.sender = sender
        self.callback = callback
        self.region = region
        # Stored under another name: BaseOperator.dry_run() is a method of its own.
        self.dry_run_only = dry_run
        self.gate = gate
        self.fail_on_multiple_messages = fail_on_multiple_messages
        self.max_parts_per_message = max_parts_per_message
        self.max_total_price = max_total_price
        self.price_per_part_if_unknown = price_per_part_if_unknown
        self.max_concurrency = max_concurrency
        self.settle_time = _seconds("settle_time", settle_time)
        self.smsww_conn_id = smsww_conn_id

    def execute(self, context: Context) -> Any:
        from airflow_provider_smsww.hooks.smsww import SmsWwHook
        from airflow_provider_smsww.rendered import as_list
        from airflow_provider_smsww.sending.batch import check_locally, idempotency_key

        self._mask_callback_headers()
        if problem := check_recipients_type(self.recipients):  # rendered: an XComArg's value
            raise SmsWwGateError(problem, problems={"recipients": problem})
        batch = check_locally(
            as_list(self.recipients),
            self.message,
            sender=self.sender,
            region=self.region,
            callback=self.callback,
            fail_on_multiple_messages=self.fail_on_multiple_messages,
            max_parts_per_message=self.max_parts_per_message,
        )
        ti = context.get("ti")
        run_id = context.get("run_id", "")
        map_index = getattr(ti, "map_index", -1)
        keys = {
            r.e164: idempotency_key(self.dag_id, self.task_id, run_id, map_index, r.e164)
            for r in batch.recipients
        }
        batch = dataclasses.replace(batch, keys=keys)
        self.log.info(
            "%d recipient(s), %d %s part(s) each, region %s",
            len(batch.recipients),
            batch.segments.parts,
            batch.segments.encoding,
            batch.region,
        )
        hook = SmsWwHook(smsww_conn_id=self.smsww_conn_id)
        # An ignored dry run, 401 or 403: no retry can cure it, and a retry could cost money.
        with failing_for_good():
            return hook.run_async(lambda: self._run(hook, batch, context))

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Mask the callback's header values as soon as they are rendered: the task runner stores the
        rendered fields (the UI's Rendered Template tab, and a DEBUG log line) before ``execute`` runs."""
        super().render_template_fields(context, jinja_env)
        self._mask_callback_headers()

    def _mask_callback_headers(self) -> None:
        """Header values usually carry credentials; execute() calls this too, for direct callers."""
        if not isinstance(self.callback, dict):
            return
        from airflow.sdk.log import mask_secret

        for value in (self.callback.get("headers") or {}).values():
            if value:
                mask_secret(str(value))

    async def _run(self, hook: SmsWwHook, batch: Batch, context: Context) -> Any:
        from airflow_provider_smsww.sending.gate import gate
        from airflow_provider_smsww.sending.ledger import ledger_for_task, not_yet_recorded

        ledger = ledger_for_task(context)
        if (why := ledger.dry_run_ignored()) is not None:
            # Any further dry run through this gateway would be one more real SMS.
            raise SmsWwDryRunIgnoredFailure(f"An earlier try of this task stopped for good: {why}")
        # On a retry only the recipients an earlier try did not record need the gate: the others
        # passed it then and will not be sent again (and re-pricing them could fail on credit).
        to_gate = batch if self.dry_run_only else not_yet_recorded(batch, ledger)
        if (self.gate or self.dry_run_only) and to_gate.recipients:
            try:
                estimate = await gate(
                    hook,
                    to_gate,
                    concurrency=self.max_concurrency,
                    max_parts_per_message=self.max_parts_per_message,
                    max_total_price=self.max_total_price,
                    price_per_part_if_unknown=self.price_per_part_if_unknown,
                )
            except SmsWwDryRunIgnoredError as exc:
                ledger.mark_dry_run_ignored(exc.message)  # so that no retry dry-runs again
                raise
            total = estimate.total_price
            self.log.info(
                "Dry-run gate passed: %d message(s), %d part(s), estimated %s EUR",
                len(estimate.estimates),
                estimate.total_parts,
                "unknown (priced after sending)" if total is None else f"{total:.4f}",
            )
            if self.dry_run_only:
                return estimate.as_dict()
        elif self.gate:
            self.log.info("Every recipient was accepted by an earlier try: no dry-run gate needed.")
        return await self._send(hook, batch, ledger)

    async def _send(self, hook: SmsWwHook, batch: Batch, ledger: Ledger) -> list[dict[str, Any]]:
        from airflow_provider_smsww.sending.bulk import send_all

        report = await send_all(
            hook,
            batch,
            ledger,
            now=lambda: datetime.now(UTC),
            concurrency=self.max_concurrency,
            settle_time=self.settle_time,
        )
        if report.failures:
            by_reason: dict[str, list[str]] = {}
            for who, why in report.failures.items():
                by_reason.setdefault(why, []).append(who)
            head = (
                f"{len(report.records)} of {len(batch.recipients)} message(s) accepted; "
                f"{len(report.failures)} failed (a retry sends only to these):"
            )
            # After a 401/403 the same class, so that the task fails without retries (see execute).
            error = type(report.fatal) if isinstance(report.fatal, SmsWwAuthError) else SmsWwError
            raise error(describe_problems(head, {", ".join(w): why for why, w in by_reason.items()}))
        self.log.info("%d message(s) accepted (%d from an earlier try)", len(report.records), report.reused)
        return report.records


def _seconds(name: str, value: float | timedelta) -> float:
    """A duration given as seconds or a ``timedelta``, checked at DAG parse time."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds < float("inf"):
        raise ValueError(f"{name} must be a number of seconds >= 0 or a timedelta, not {value!r}")
    return float(seconds)


def _check_arguments(recipients: Any, message: Any, max_concurrency: Any) -> None:
    """Refuse, when the DAG file is parsed, what no rendering can make right."""
    problems = [
        problem
        for problem in (
            check_recipients_type(recipients),
            check_message_type(message, at_parse_time=True),
            check_positive_int("max_concurrency", max_concurrency),
        )
        if problem
    ]
    if problems:
        raise ValueError("; ".join(problems))
