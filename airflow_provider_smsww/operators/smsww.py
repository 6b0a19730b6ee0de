"""SmsSendOperator: send one text to one or many recipients, or a text per recipient, gated by a dry
run, never twice."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import time, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_smsww import DEFAULT_CONN_ID
from airflow_provider_smsww.arguments import (
    as_entries,
    as_seconds,
    check_mappable,
    check_send_arguments,
    check_send_rendered,
    rendered_recipients,
)
from airflow_provider_smsww.exceptions import SmsWwError
from airflow_provider_smsww.failures import SmsWwSpendingCapReachedError, failing_for_good
from airflow_provider_smsww.metrics import report_refused, report_send_cost
from airflow_provider_smsww.sending.refusals import MAX_REFUSED_FRACTION

__all__ = ["SmsSendOperator", "SmsWwSpendingCapReachedError"]

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.models import Callback
    from airflow_provider_smsww.sending.batch import Batch
    from airflow_provider_smsww.sending.ledger import Ledger
    from airflow_provider_smsww.sending.order import SendSpec, SendWait


class SmsSendOperator(BaseOperator):
    """Send an SMS to one or many recipients through ``POST /{region}-messages``.

    Nothing is spent unless every message passes: recipients, sender and text are checked locally,
    then every message is priced with ``dryRun`` (free), and only when all pass, within
    ``max_parts_per_message`` and ``max_total_price``, is anything sent. Each accepted id is recorded
    in the task state store, so a retried task sends only to the recipients not accepted before. The
    steps and the guarantees are told in ``docs/operator.md``.

    :param recipients: one E.164 number, a comma-separated string, or a list (templated; an XComArg
        works, as does ``.expand(recipients=[...])``). Duplicates, however written, are sent once.
    :param default_country: ISO 3166 alpha-2 code (``"IT"``): numbers without ``+`` are read as that
        country's (``"333 555 1000"``, ``"0044 7400 123456"``). None (default): they are refused.
    :param on_invalid: ``"fail"`` (default): one refused row (a bad number, an entry refused locally or,
        for its number, by the dry run) refuses the batch. ``"skip"``: those rows are left out, named in
        the XCom key ``refused`` (``{recipient, reason}`` each), the rest is sent. See ``docs/campaigns.md``.
    :param max_refused_fraction: with ``"skip"``, the share of rows that may be refused (default 0.1);
        above it nothing is sent and the task fails naming the share.
    :param message: the text (templated).
    :param messages: instead of ``recipients`` and ``message``, a text per recipient (templated; an
        XComArg works): a list of ``{"recipient": ..., "message": ..., "sender": ...}`` (``sender``
        optional, default the operator's). Each (number, sender, text) is sent once: the same number
        with two texts gets both, an exact duplicate is dropped. See ``docs/operator.md``.
    :param sender: alias of 3-11 letters, digits or spaces, not all digits (templated; default "Openapi").
    :param callback: the API's callback object (``url``, ``method``, ``retry``, ``headers``,
        ``custom``), templated. Header values are masked in logs and never returned.
    :param region: ``WW`` (worldwide, default), ``IT`` or ``ES``.
    :param dry_run: only run the checks and the dry-run gate; return the estimate, send nothing.
    :param gate: run the dry-run gate before sending (default True; without it local checks still run).
    :param fail_on_multiple_messages: refuse texts longer than one SMS part (locally and in the API).
    :param max_parts_per_message: refuse texts that need more parts than this.
    :param max_total_price: budget in EUR for the whole batch (a positive number) over every try of the
        task instance: a retry may spend only what the earlier tries left. Checked on the dry-run
        estimate; with an email + API key connection also enforced by the gateway through a per-try
        token capped at what is left (see ``docs/money.md``).
    :param price_per_part_if_unknown: EUR per part (a positive number) to assume when the API does
        not price a dry run (worldwide prices are final only after sending); required with a budget
        in that case, and used by the credit pre-flight (which otherwise assumes 1 EUR per part).
    :param max_concurrency: requests in flight at once.
    :param send_window: quiet hours: ``(opens, closes)``, two ``datetime.time`` in each recipient's local
        time (from the number; it may wrap past midnight). The others wait, deferred, for their window.
    :param deferrable: wait for unknown outcomes to settle in the triggerer, not in the worker
        (default: ``[operators] default_deferrable``). Quiet hours always defer.
    :param send_window_default_tz: the IANA zone of a number whose time zone the number does not
        tell; without it such a number is refused before any request.
    :param settle_time: the least time a send of unknown outcome (5xx, dropped connection) must be
        absent from ``GET /messages`` before it is sent again (seconds or a ``timedelta``). Default None:
        from the listing's observed lag (``docs/operator.md``); a longer observed lag lengthens it.
    :returns: (XCom) a list of ``{recipient, id, state, messageCount, encoding}``, one per message in
        recipient (entry) order, ready for :class:`~airflow_provider_smsww.sensors.smsww.SmsDeliverySensor`;
        with ``dry_run=True`` the estimate. A real send also pushes the XCom key ``cost`` (``docs/money.md``).
    """

    template_fields: Sequence[str] = ("recipients", "message", "messages", "sender", "callback")
    template_fields_renderers = {"callback": "json", "messages": "json"}
    ui_color = "#e0f2f1"

    def __init__(
        self,
        *,
        recipients: str | Sequence[str] | None = None,
        message: str | None = None,
        messages: Any = None,
        sender: str | None = None,
        callback: dict[str, Any] | Callback | None = None,
        region: str = "WW",
        default_country: str | None = None,
        on_invalid: str = "fail",
        max_refused_fraction: float = MAX_REFUSED_FRACTION,
        dry_run: bool = False,
        gate: bool = True,
        fail_on_multiple_messages: bool = False,
        max_parts_per_message: int | None = None,
        max_total_price: float | None = None,
        price_per_part_if_unknown: float | None = None,
        max_concurrency: int = 20,
        settle_time: float | timedelta | None = None,
        send_window: tuple[time, time] | None = None,
        send_window_default_tz: str | None = None,
        deferrable: bool | None = None,
        smsww_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from airflow_provider_smsww.sending.ledger_stores import clear_after_success
        from airflow_provider_smsww.sending.window import SendWindow

        # On Airflow < 3.3 the retry ledger lives in Variables, deleted once the task has succeeded.
        self.on_success_callback = [*(self.on_success_callback or ()), clear_after_success]
        check_mappable(
            max_total_price, price_per_part_if_unknown, default_country, on_invalid, max_refused_fraction
        )
        budgeted = max_total_price is not None or price_per_part_if_unknown is not None
        check_send_arguments(
            recipients, message, messages, max_concurrency, gate=gate, dry_run=dry_run, budgeted=budgeted
        )
        self.recipients, self.message, self.messages = recipients, message, messages
        self.sender, self.callback, self.region = sender, callback, region
        # Stored under another name: BaseOperator.dry_run() is a method of its own.
        self.dry_run_only, self.gate = dry_run, gate
        self.fail_on_multiple_messages = fail_on_multiple_messages
        self.max_parts_per_message = max_parts_per_message
        self.max_total_price = max_total_price
        self.price_per_part_if_unknown = price_per_part_if_unknown
        self.max_concurrency, self.default_country = max_concurrency, default_country
        self.on_invalid, self.max_refused_fraction = on_invalid, max_refused_fraction
        self.settle_time = None if settle_time is None else as_seconds("settle_time", settle_time)
        self.send_window = SendWindow.of(send_window, send_window_default_tz)
        if deferrable is None:
            from airflow_provider_smsww.compat import conf

            deferrable = conf.getboolean("operators", "default_deferrable", fallback=False)
        self.deferrable = deferrable
        self.smsww_conn_id = smsww_conn_id

    @classmethod
    def partial(cls, **kwargs: Any) -> Any:
        """Check a mapped operator's arguments when the DAG is parsed, as ``__init__`` does a plain one's."""
        check_mappable(**kwargs)
        return super().partial(**kwargs)

    def execute(self, context: Context) -> Any:
        return self._send(context)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after a wait (a window opening, unknown outcomes settling): the same order again, which
        skips who the ledger shows sent, sends only what is proven unsent, and waits again if it must."""
        return self._send(context, rounds=int((event or {}).get("rounds", 0)))

    def _send(self, context: Context, rounds: int = 0) -> Any:
        """Run the send order (or only its estimate, with ``dry_run``), report its cost, then defer for
        what it left to wait for; ``rounds``: the settle waits this try has deferred for so far."""
        from airflow_provider_smsww.hooks.smsww import SmsWwHook
        from airflow_provider_smsww.sending import order

        self._mask_callback_headers()
        ledger, spec = self._prepare(context, rounds)
        map_index = getattr(context.get("ti"), "map_index", -1)
        batch = order.check(spec, self.dag_id, self.task_id, context.get("run_id", ""), map_index)
        self.log.info("%s", batch.summary())
        hook = SmsWwHook(smsww_conn_id=self.smsww_conn_id)
        # An ignored dry run, a spending cap, 401 or 403: no retry can cure it, and a retry could cost
        # money; the ledger is read inside the event loop of the send, as the task state store expects.
        with failing_for_good():
            batch = self._with_receipts(hook, batch, context.get("run_id", ""), map_index)
            if self.dry_run_only:
                return hook.run_async(lambda: order.estimate(hook, batch, ledger, spec))
            outcome = hook.run_async(lambda: order.send(hook, batch, ledger, spec))
            if outcome.error is None:
                self.log.info(
                    "%d message(s) accepted (%d from an earlier try)", len(outcome.records), outcome.reused
                )
            report_send_cost(self, context, outcome.cost, failed=len(outcome.failures))
            if spec.skips_invalid:
                report_refused(self, context, outcome.refused)
            if outcome.error is not None:
                raise outcome.error
        if (wait := outcome.next_wait()) is not None:
            self._wait_until(wait, rounds + 1 if wait.settles else rounds)
        return outcome.records

    def _with_receipts(self, hook: SmsWwHook, batch: Batch, run_id: str, map_index: int) -> Batch:
        """The batch with receipts when the connection switches them on (docs/receipts.md)."""
        from airflow_provider_smsww.sending.batch import with_receipts

        stamp = hook.receipts_for(self.dag_id, run_id, self.task_id, map_index)
        if stamp is not None and batch.callback is not None:
            self.log.info("Receipts are on, but this task's own callback is kept: no receipts for it")
        elif stamp is not None:
            self.log.info("Receipts on: events of asset %r", stamp.settings.asset)
        return with_receipts(batch, stamp)

    def _prepare(self, context: Context, rounds: int) -> tuple[Ledger, SendSpec]:
        """The task's ledger, and the rendered arguments as the send order takes them. A ledger that
        dies with this call cannot carry a deferral: outside a task runner the task settles in place,
        and quiet hours (which must defer) are refused before anything is sent."""
        from airflow_provider_smsww.sending.ledger import MemoryLedger
        from airflow_provider_smsww.sending.ledger_stores import ledger_for_task
        from airflow_provider_smsww.sending.order import SendSpec, settles_in_place

        personalised = self.messages is not None
        recipients = [] if personalised else rendered_recipients(self.recipients)
        ledger = ledger_for_task(context)
        lasting = not isinstance(ledger, MemoryLedger)
        if self.send_window is not None and not lasting and not self.dry_run_only:
            raise SmsWwError("send_window needs an Airflow task runner: its ledger must outlive the deferral")
        timeout = self.execution_timeout
        return ledger, SendSpec.of(
            self,
            recipients=recipients,
            message=self.message or "",
            messages=as_entries(self.messages) if personalised else None,
            token_ttl=int(timeout.total_seconds()) + 60 if timeout else 3600,
            settle_in_place=settles_in_place(self.deferrable and lasting, rounds),
        )

    def _wait_until(self, wait: SendWait, rounds: int) -> None:
        """The one way this operator waits: deferred to the triggerer (the worker slot is freed) until
        ``wait.until``, or until every unknown outcome of ``wait.lookup`` is listed, then resumed in
        :meth:`execute_complete` with ``rounds``, the settle waits of this try, this one included."""
        from airflow_provider_smsww.triggers.send_wait import SmsSendWaitTrigger

        self.log.info("Deferring until %s: %s", wait.until.isoformat(timespec="seconds"), wait.reason)
        trigger = SmsSendWaitTrigger(
            wait.until, wait.reason, wait.lookup, smsww_conn_id=self.smsww_conn_id, rounds=rounds
        )
        self.defer(trigger=trigger, method_name="execute_complete")

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Mask the callback's header values as soon as they are rendered, and check every rendered field:
        the task runner stores the rendered fields (the UI's Rendered Template tab, and a DEBUG log line)
        before ``execute`` runs, and a lone surrogate would fail that store with a bare
        ``UnicodeEncodeError``. Raises :class:`SmsWwGateError` naming each bad field; nothing is sent."""
        super().render_template_fields(context, jinja_env)
        self._mask_callback_headers()
        check_send_rendered({name: getattr(self, name) for name in self.template_fields})

    def _mask_callback_headers(self) -> None:
        """Header values usually carry credentials; execute() calls this too, for direct callers."""
        if not isinstance(self.callback, dict):
            return
        from airflow_provider_smsww.compat import mask_secret

        for value in (self.callback.get("headers") or {}).values():
            if value:
                mask_secret(str(value))
