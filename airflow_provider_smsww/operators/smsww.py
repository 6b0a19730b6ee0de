"""SmsSendOperator: send one text to one or many recipients, gated by a dry run, never twice."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_smsww import DEFAULT_CONN_ID
from airflow_provider_smsww.arguments import check_message_type, check_positive_int, check_recipients_type
from airflow_provider_smsww.compat import AirflowFailException
from airflow_provider_smsww.exceptions import (
    SmsWwAuthError,
    SmsWwDryRunIgnoredError,
    SmsWwError,
    SmsWwGateError,
    SmsWwSpendingCapError,
    describe_problems,
)
from airflow_provider_smsww.failures import SmsWwDryRunIgnoredFailure, failing_for_good

if TYPE_CHECKING:
    from decimal import Decimal

    from airflow.sdk import Context

    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.models import Callback, Estimate
    from airflow_provider_smsww.sending.batch import Batch
    from airflow_provider_smsww.sending.ledger import Ledger


class SmsSendOperator(BaseOperator):
    """Send an SMS to one or many recipients through ``POST /{region}-messages``.

    Nothing is spent unless every message passes: recipients, sender and text are checked locally,
    then every message is priced with ``dryRun`` (free), and only when all pass, within
    ``max_parts_per_message`` and ``max_total_price``, is anything sent. Each accepted id is recorded
    in the task state store, so a retried task sends only to the recipients not accepted before. The
    steps and the guarantees are told in ``docs/operator.md``.

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
    :param max_total_price: budget in EUR for the whole batch (a positive number), checked on the
        dry-run estimate; with an email + API key connection also enforced by the gateway through a
        per-task token capped at this amount (see ``docs/money.md``).
    :param price_per_part_if_unknown: EUR per part (a positive number) to assume when the API does
        not price a dry run (worldwide prices are final only after sending); required with a budget
        in that case, and used by the credit pre-flight (which otherwise assumes 1 EUR per part).
    :param max_concurrency: requests in flight at once.
    :param settle_time: how long a send whose outcome is unknown (5xx, dropped connection) must be
        absent from ``GET /messages``, since it was made, before it is sent again (seconds or a
        ``timedelta``; default 5 minutes). The task looks it up every few seconds meanwhile, holding
        its worker slot; see ``docs/operator.md``.
    :returns: (XCom) a list of ``{recipient, id, state, messageCount, encoding}``, ready for
        :class:`~airflow_provider_smsww.sensors.smsww.SmsDeliverySensor`; with ``dry_run=True`` the
        estimate ``{dry_run, recipients, total_parts, estimated_total_price, credit}``. A real send
        also pushes the XCom key ``cost``: ``{currency, messages, parts, estimated_total_price,
        from_earlier_try, credit_before, spending_cap}``, and its last log line says the same.
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
        from airflow_provider_smsww.sending.credit import positive_amount
        from airflow_provider_smsww.sending.ledger import clear_after_success

        # On Airflow < 3.3 the retry ledger lives in Variables, deleted once the task has succeeded.
        self.on_success_callback = [*(self.on_success_callback or ()), clear_after_success]

        positive_amount("max_total_price", max_total_price)
        positive_amount("price_per_part_if_unknown", price_per_part_if_unknown)
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

    @classmethod
    def partial(cls, **kwargs: Any) -> Any:
        """Check the budget inputs of a mapped operator when the DAG is parsed, as ``__init__`` does
        for a plain one (a mapped task's ``__init__`` runs only when it is expanded)."""
        from airflow_provider_smsww.sending.credit import positive_amount

        for name in ("max_total_price", "price_per_part_if_unknown"):
            positive_amount(name, kwargs.get(name))
        return super().partial(**kwargs)

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
        from airflow_provider_smsww.compat import mask_secret

        for value in (self.callback.get("headers") or {}).values():
            if value:
                mask_secret(str(value))

    async def _run(self, hook: SmsWwHook, batch: Batch, context: Context) -> Any:
        from airflow_provider_smsww.sending.credit import local_estimates, preflight
        from airflow_provider_smsww.sending.gate import gate
        from airflow_provider_smsww.sending.ledger import ledger_for_task, not_yet_recorded

        ledger = ledger_for_task(context)
        if (why := ledger.dry_run_ignored()) is not None:
            # Any further dry run through this gateway would be one more real SMS.
            raise SmsWwDryRunIgnoredFailure(f"An earlier try of this task stopped for good: {why}")
        # On a retry only the recipients an earlier try did not record need the gate: the others
        # passed it then and will not be sent again (and re-pricing them could fail on credit).
        to_gate = batch if self.dry_run_only else not_yet_recorded(batch, ledger)
        estimates = local_estimates(to_gate)
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
            estimates = estimate.estimates
            total = estimate.total_price
            self.log.info(
                "Dry-run gate passed: %d message(s), %d part(s), estimated %s EUR",
                len(estimate.estimates),
                estimate.total_parts,
                "unknown (priced after sending)" if total is None else f"{total:.4f}",
            )
        elif self.gate:
            self.log.info("Every recipient was accepted by an earlier try: no dry-run gate needed.")
        credit = None
        if to_gate.recipients:
            credit = await preflight(hook, estimates, batch.region, self.price_per_part_if_unknown)
        if self.dry_run_only:
            return {**estimate.as_dict(), "credit": None if credit is None else float(credit)}
        return await self._send(hook, batch, ledger, to_gate, estimates, credit, context)

    async def _send(
        self,
        hook: SmsWwHook,
        batch: Batch,
        ledger: Ledger,
        to_send: Batch,
        estimates: list[Estimate],
        credit: Decimal | None,
        context: Context,
    ) -> list[dict[str, Any]]:
        from contextlib import nullcontext

        from airflow_provider_smsww.metrics import cents, emit
        from airflow_provider_smsww.sending.bulk import send_all
        from airflow_provider_smsww.sending.credit import cost_summary

        cap = hook.scoped(
            budget=self.max_total_price,
            requests=len(to_send.recipients),
            region=batch.region,
            ttl=int(self.execution_timeout.total_seconds()) + 60 if self.execution_timeout else 3600,
        )
        async with cap if to_send.recipients else nullcontext(hook) as sender:
            report = await send_all(
                sender,
                batch,
                ledger,
                now=lambda: datetime.now(UTC),
                concurrency=self.max_concurrency,
                settle_time=self.settle_time,
            )
        cost = cost_summary(
            estimates,
            report.records,
            price_per_part_if_unknown=self.price_per_part_if_unknown,
            credit=credit,
            cap=self.max_total_price,
        )
        emit(
            {
                "sent": cost["messages"],
                "failed": len(report.failures),
                "parts": cost["parts"],
                "cost_estimated_cents": cents(cost["estimated_total_price"]),
            },
            dag_id=self.dag_id,
            task_id=self.task_id,
        )
        if push := getattr(context.get("ti"), "xcom_push", None):
            push(key="cost", value=cost)
        total = cost["estimated_total_price"]
        cost_line = (
            f"Cost: {cost['messages']} message(s) accepted now ({cost['from_earlier_try']} by an earlier "
            f"try), {cost['parts']} part(s), estimated total "
            f"{'unknown' if total is None else f'{total:.4f}'} EUR"
            + ("" if credit is None else f" (credit before {credit:.2f} EUR)")
        )
        if report.failures:
            by_reason: dict[str, list[str]] = {}
            for who, why in report.failures.items():
                by_reason.setdefault(why, []).append(who)
            head = (
                f"{len(report.records)} of {len(batch.recipients)} message(s) accepted; "
                f"{len(report.failures)} failed (a retry sends only to these):"
            )
            summary = describe_problems(head, {", ".join(w): why for why, w in by_reason.items()})
            self.log.info("%s", cost_line)
            if isinstance(report.fatal, SmsWwSpendingCapError):
                raise SmsWwSpendingCapReachedError(
                    f"{summary}\nThe per-task spending cap (max_total_price {self.max_total_price} EUR) "
                    "stopped the batch: real prices are above the estimate. Not retried, since a retry "
                    "would get a fresh cap; check the prices, raise max_total_price, then clear the task "
                    "to send the rest."
                )
            # After a 401/403 the same class, so that the task fails without retries (see execute).
            raise (type(report.fatal) if isinstance(report.fatal, SmsWwAuthError) else SmsWwError)(summary)
        self.log.info("%d message(s) accepted (%d from an earlier try)", len(report.records), report.reused)
        self.log.info("%s", cost_line)
        return report.records


class SmsWwSpendingCapReachedError(SmsWwSpendingCapError, AirflowFailException):  # type: ignore[misc]
    """The per-task token's spending cap stopped the batch. An ``AirflowFailException`` too, so the
    task fails without retries: a retry would mint a fresh cap and could spend the budget again."""


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
