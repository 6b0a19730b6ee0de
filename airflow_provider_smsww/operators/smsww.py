"""SmsSendOperator: send one text to one or many recipients, gated by a dry run, never twice."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_smsww import DEFAULT_CONN_ID
from airflow_provider_smsww.exceptions import SmsWwError

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_smsww.batch import Batch, Ledger
    from airflow_provider_smsww.client import AsyncSmsWwClient
    from airflow_provider_smsww.models import Callback

LEDGER_PREFIX = "smsww"


class TaskStateLedger:
    """A :class:`~airflow_provider_smsww.batch.Ledger` on Airflow 3.3's ``task_state_store``.

    The store is scoped to (dag, run, task, map index) and survives task retries. One small key per
    recipient, so recording an id costs one small write however long the list is.

    Writes come from worker threads (the bulk send keeps its event loop free while the supervisor
    answers), so one lock serialises them: the worker's socket comms are thread-safe, but the in-process
    comms of ``dag.test()`` are not (it unsets ``SUPERVISOR_COMMS`` while it handles a request, and a
    concurrent write then fails).
    """

    def __init__(self, store: Any) -> None:
        self._store = store
        self._lock = threading.Lock()
        # What this try has read or written: a retry reads each recipient once (for the gate), not
        # once more for the send; nothing else writes these keys while the task runs.
        self._seen: dict[str, dict[str, Any] | None] = {}

    def get(self, recipient: str) -> dict[str, Any] | None:
        with self._lock:
            if recipient not in self._seen:
                value = self._store.get(f"{LEDGER_PREFIX}:sent:{recipient}")
                self._seen[recipient] = value if isinstance(value, dict) else None
            return self._seen[recipient]

    def record(self, recipient: str, record: dict[str, Any]) -> None:
        with self._lock:
            self._store.set(f"{LEDGER_PREFIX}:sent:{recipient}", record)
            self._seen[recipient] = record

    def started_at(self) -> datetime | None:
        with self._lock:
            value = self._store.get(f"{LEDGER_PREFIX}:started_at")
        return datetime.fromisoformat(value) if isinstance(value, str) else None

    def mark_started(self, when: datetime) -> None:
        with self._lock:
            self._store.set(f"{LEDGER_PREFIX}:started_at", when.isoformat())


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
        smsww_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
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
        self.smsww_conn_id = smsww_conn_id

    def execute(self, context: Context) -> Any:
        from airflow_provider_smsww.batch import as_list, check_locally, idempotency_key

        self._mask_callback_headers()
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
        return asyncio.run(self._run(batch, context))

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

    def _ledger(self, context: Context) -> Ledger:
        from airflow_provider_smsww.batch import MemoryLedger

        store = context.get("task_state_store")
        if store is not None:
            return TaskStateLedger(store)
        ti = context.get("ti")
        try_number = getattr(ti, "try_number", 1) or 1
        self.log.warning(
            "No task_state_store in the context (Airflow < 3.3, or a run outside a worker): accepted ids "
            "are not persisted across retries."
        )
        if try_number > 1:
            # Fall back to reconciling against the account's messages since the run started.
            dag_run = context.get("dag_run")
            started = getattr(dag_run, "start_date", None) or datetime.now(UTC) - timedelta(hours=1)
            self.log.warning("Try %d: checking GET /messages since %s before sending.", try_number, started)
            return MemoryLedger(started=started)
        return MemoryLedger()

    async def _run(self, batch: Batch, context: Context) -> Any:
        from airflow_provider_smsww.batch import gate, not_yet_recorded
        from airflow_provider_smsww.hooks.smsww import SmsWwHook

        hook = SmsWwHook(smsww_conn_id=self.smsww_conn_id)
        client = hook.async_client
        ledger = None if self.dry_run_only else self._ledger(context)
        try:
            # On a retry only the recipients an earlier try did not record need the gate: the others
            # passed it then and will not be sent again (and re-pricing them could fail on credit).
            to_gate = batch if ledger is None else not_yet_recorded(batch, ledger)
            if (self.gate or self.dry_run_only) and to_gate.recipients:
                estimate = await gate(
                    client,
                    to_gate,
                    concurrency=self.max_concurrency,
                    max_parts_per_message=self.max_parts_per_message,
                    max_total_price=self.max_total_price,
                    price_per_part_if_unknown=self.price_per_part_if_unknown,
                )
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
            assert ledger is not None
            return await self._send(client, batch, ledger)
        finally:
            await hook.aclose()

    async def _send(self, client: AsyncSmsWwClient, batch: Batch, ledger: Ledger) -> list[dict[str, Any]]:
        from airflow_provider_smsww.batch import send_all

        async def record_async(recipient: str, record: dict[str, Any]) -> None:
            # The store talks to the supervisor synchronously: keep the event loop free meanwhile.
            await asyncio.to_thread(ledger.record, recipient, record)

        report = await send_all(
            client,
            batch,
            ledger,
            now=lambda: datetime.now(UTC),
            concurrency=self.max_concurrency,
            record_async=record_async,
        )
        if report.failures:
            by_reason: dict[str, list[str]] = {}
            for who, why in report.failures.items():
                by_reason.setdefault(why, []).append(who)
            lines = "\n".join(f"  - {', '.join(who)}: {why}" for why, who in by_reason.items())
            raise SmsWwError(
                f"{len(report.records)} of {len(batch.recipients)} message(s) accepted; "
                f"{len(report.failures)} failed (a retry sends only to these):\n{lines}"
            )
        self.log.info("%d message(s) accepted (%d from an earlier try)", len(report.records), report.reused)
        return report.records
