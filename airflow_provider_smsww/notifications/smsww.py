"""SmsWwNotifier: SMS alerts from task and DAG callbacks and from deadline alerts.

Import cost: DAG files import this module at parse time (a notifier is built in the DAG file), so the
hook, the client (httpx) and the phone-number checks are imported only when an alert is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_smsww import DEFAULT_CONN_ID
from airflow_provider_smsww.compat import BaseNotifier
from airflow_provider_smsww.notifications.storm_guard import (
    DEFAULT_DEDUPE_KEY,
    check_cooldown,
    check_dedupe_key,
)

__all__ = ["SmsWwNotifier", "send_smsww_notification"]

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.notifications.alert import Outcome, Plan, Rendered
    from airflow_provider_smsww.notifications.storm_guard import Claim
    from airflow_provider_smsww.receipts import ReceiptStamp
    from airflow_provider_smsww.sending.batch import Batch
    from airflow_provider_smsww.validation import Recipient


class SmsWwNotifier(BaseNotifier):
    """Send an SMS alert through the SMS Worldwide API (how-to: docs/notifier.md).

    Works as ``on_failure_callback`` / ``on_success_callback`` (task or DAG level; sync :meth:`notify`),
    as a deadline alert callback run in the triggerer (``AsyncCallback(SmsWwNotifier, kwargs=...)``;
    async :meth:`async_notify`), and in ``notifiers=`` of Airflow's human-in-the-loop operators (3.1+),
    where it texts the request's subject and the link to its response page. ``recipients``, ``message``,
    ``sender`` and ``dedupe_key`` are templates rendered afresh for every alert, so one notifier shared
    through ``default_args`` serves every task.

    **An alert is never lost.** A template that fails to render (``{{ ds }}`` in a run without a logical
    date), a text that renders empty or that the local checks or the API's dry run refuse (a forbidden
    word, too long) is replaced by a fallback text built from what every context has (DAG, task, run,
    state, try number, the first line of the exception), and the reason is logged as a warning. A sender
    that fails falls back to the default; recipients that fail fall back to ``fallback_recipients``.

    **One dry run before any send.** Forbidden words get the account blocklisted, so the final text and
    sender are dry-run once (free) to the first valid recipient before anything is sent. If the API
    refuses even the fallback text, or the dry run fails (credentials, credit, network), nobody is sent
    the alert and every recipient is reported with the reason. If the gateway answers the dry run as a
    real send (``options.dryRun`` false: a proxy dropped the option), that first recipient did get the
    alert: it is reported as sent and nothing more is sent, since every later "dry run" would be a real,
    unchecked SMS.

    **Storm guard.** With ``cooldown``, the first alert of a ``dedupe_key`` (default: the DAG id) is sent;
    later ones within the cooldown are held back and counted in Airflow Variables, and the first alert
    after it starts with "(+7 more failures since 14:02 UTC)". See
    :mod:`~airflow_provider_smsww.notifications.storm_guard`.

    **One part by default; failures are loud.** A long text is cut to one part with ``...``. Every
    recipient is tried; then an :class:`~airflow_provider_smsww.exceptions.SmsWwError` names each one
    that did not get the alert. An unknown outcome (connection lost after sending) is not resent.

    :param recipients: one E.164 number, a comma-separated string or a list (templated).
    :param message: the text (templated); None (the default) sends the fallback text described above,
        or, in ``notifiers=`` of a human-in-the-loop operator, the request's subject and link.
    :param sender: alias of 3-11 letters, digits or spaces, not all digits (templated); default
        "Openapi".
    :param region: ``WW`` (default), ``IT`` or ``ES``.
    :param smsww_conn_id: the ``smsww`` connection.
    :param fail_on_multiple_messages: keep the alert to one SMS part (see above).
    :param truncate: cut a long text to one part instead of refusing it.
    :param raise_on_failure: raise after trying everyone if any recipient did not get the alert.
    :param max_concurrency: sends in flight at once.
    :param cooldown: hold back further alerts of the same ``dedupe_key`` for this long after one is
        sent (a positive ``timedelta``); None (default) sends every alert.
    :param dedupe_key: which alerts share a cooldown (templated); default ``"{{ dag.dag_id }}"``. A key
        that fails to render falls back to the DAG id, with a warning.
    :param fallback_recipients: numbers (not templated) used when ``recipients`` fails to render or
        renders to nothing.
    """

    template_fields: Sequence[str] = ("recipients", "message", "sender", "dedupe_key")

    def __init__(
        self,
        *,
        recipients: str | Sequence[str],
        message: str | None = None,
        sender: str | None = None,
        region: str = "WW",
        smsww_conn_id: str = DEFAULT_CONN_ID,
        fail_on_multiple_messages: bool = True,
        truncate: bool = True,
        raise_on_failure: bool = True,
        max_concurrency: int = 10,
        cooldown: timedelta | None = None,
        dedupe_key: str = DEFAULT_DEDUPE_KEY,
        fallback_recipients: str | Sequence[str] | None = None,
        context: Context | None = None,
    ) -> None:
        self.recipients = recipients
        self.message = message
        self.sender = sender
        self.region = region
        self.smsww_conn_id = smsww_conn_id
        self.fail_on_multiple_messages = fail_on_multiple_messages
        self.truncate = truncate
        self.raise_on_failure = raise_on_failure
        self.max_concurrency = max(1, max_concurrency)
        self.cooldown = check_cooldown(cooldown)
        self.dedupe_key = check_dedupe_key(dedupe_key)
        self.fallback_recipients = fallback_recipients
        #: Each template that failed to render in the last rendering, with the error.
        self.render_problems: dict[str, str] = {}
        # The unrendered templates: BaseNotifier renders in place, which would freeze the first
        # alert's text into a notifier shared by many tasks.
        self._templates = dict(recipients=recipients, message=message, sender=sender, dedupe_key=dedupe_key)
        super().__init__()  # Airflow 3.0 takes no context; 3.1+ keeps it as self.context, as set below
        self.context = context or {}

    # -- rendering: each template on its own, a failure is replaced (see the fallbacks) ---------------

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        if jinja_env is None:
            try:
                jinja_env = self.get_template_env(dag=context.get("dag"))
            except Exception:  # dag.test() hands DAG callbacks a SerializedDAG, which has no env
                jinja_env = self.get_template_env()
        self.render_problems = {}
        for name, template in self._templates.items():
            if name == "recipients" and template is not None and not isinstance(template, str):
                rendered = (
                    self._render_one(f"recipients[{i}]", t, context, jinja_env)
                    for i, t in enumerate(template)
                )
                value: Any = [item for item in rendered if item is not None]
            else:
                value = self._render_one(name, template, context, jinja_env)
            setattr(self, name, value)

    def _render_one(self, name: str, template: Any, context: Context, jinja_env: Any) -> Any:
        try:
            return self.render_template(template, context, jinja_env)
        except Exception as exc:
            self.render_problems[name] = f"{type(exc).__name__}: {exc}"
            return None

    # -- one alert -------------------------------------------------------------------------------------

    def _rendered(self, context: Context) -> Rendered:
        """This alert's rendered templates and settings, with its fallback text (built once). In
        ``notifiers=`` of a human-in-the-loop operator the text carries the link to the response page
        (:mod:`~airflow_provider_smsww.notifications.hitl`), and is never cut through the link."""
        from airflow_provider_smsww.notifications import hitl
        from airflow_provider_smsww.notifications.alert import Rendered
        from airflow_provider_smsww.notifications.fallback import fallback_text
        from airflow_provider_smsww.segments import analyse

        message, one_part, truncate = self.message, self.fail_on_multiple_messages, self.truncate
        request = hitl.request_of(context)
        fallback = fallback_text(context) if request is None else hitl.default_text(context, request)
        if self._templates["message"] is None and "message" not in self.render_problems:
            message = fallback  # no message given: the default text, without a warning
        elif request is not None and isinstance(message, str) and message.strip():
            message, fits = hitl.with_link(hitl.with_notice(message, request), request.answer_at)
            one_part = one_part and fits
        if request is not None:
            truncate = False  # cutting would cut the link: a text too long goes to the fallback
            one_part = one_part and analyse(fallback).parts <= 1  # a link longer than one part
            if request.problem:
                self.log.warning(
                    "SMS approval request: no link to the response page (%s): %s",
                    request.problem,
                    hitl.SET_BASE_URL,
                )
        return Rendered(
            message=message,
            sender=self.sender,
            recipients=self.recipients,
            fallback_recipients=self.fallback_recipients,
            problems=dict(self.render_problems),
            fallback=fallback,
            region=self.region,
            fail_on_multiple_messages=one_part,
            truncate=truncate,
        )

    def _claim(self, context: Context, alert: Rendered) -> Claim | None:
        """Ask the storm guard (only with a ``cooldown``); sync, as Variables are read the sync way."""
        from airflow_provider_smsww.notifications.storm_guard import claim

        if self.cooldown is None:
            return None
        problem = self.render_problems.get("dedupe_key")
        return claim(
            self.cooldown, self.dedupe_key, problem, self._templates["dedupe_key"], context, alert.fallback
        )

    def notify(self, context: Context) -> None:
        """Send the alert from a task or DAG callback (sync): the same path as :meth:`async_notify`, on
        an event loop of its own, with the connection read the sync way (as callbacks must)."""
        from airflow_provider_smsww.concurrency import run_in_new_loop
        from airflow_provider_smsww.hooks.smsww import SmsWwHook
        from airflow_provider_smsww.notifications.alert import plan
        from airflow_provider_smsww.notifications.fallback import run_place

        alert = self._rendered(context)
        claim = self._claim(context, alert)
        summary = "" if claim is None else claim.summary(context, self.log)
        if summary is None:
            return
        planned = plan(alert, self.log, summary)
        hook = SmsWwHook(smsww_conn_id=self.smsww_conn_id)
        unusable, stamp = None, None
        try:
            hook.open_async_client()
        except Exception as exc:  # no connection, unreadable connection: nobody gets the alert
            unusable = exc
        else:
            try:
                stamp = hook.receipts_for(*run_place(context))
            except Exception as exc:
                stamp = self._receipts_off(exc)
        outcome = run_in_new_loop(self._send(hook, planned, alert, unusable, stamp))
        if claim is not None:
            claim.done(outcome.sent)
        outcome.report(self.log, raise_on_failure=self.raise_on_failure)

    async def async_notify(self, context: Context) -> None:
        """Send the alert from a deadline alert in the triggerer (async); the storm guard's Variable
        calls run in a thread, off the triggerer's event loop."""
        from airflow_provider_smsww.hooks.smsww import SmsWwHook
        from airflow_provider_smsww.notifications.alert import plan

        alert = self._rendered(context)
        claim = await asyncio.to_thread(self._claim, context, alert)
        summary = "" if claim is None else claim.summary(context, self.log)
        if summary is None:
            return
        planned = plan(alert, self.log, summary)
        hook = SmsWwHook(smsww_conn_id=self.smsww_conn_id)
        stamp = await self._areceipts(hook, context)
        outcome = await self._send(hook, planned, alert, stamp=stamp)
        if claim is not None:
            await asyncio.to_thread(claim.done, outcome.sent)
        outcome.report(self.log, raise_on_failure=self.raise_on_failure)

    async def _areceipts(self, hook: SmsWwHook, context: Context) -> ReceiptStamp | None:
        """The receipt stamp of the alert's messages, the connection read the async way (a deadline
        alert in the triggerer)."""
        from airflow_provider_smsww.notifications.fallback import run_place

        try:
            return await hook.areceipts_for(*run_place(context))
        except Exception as exc:
            return self._receipts_off(exc)

    def _receipts_off(self, exc: Exception) -> ReceiptStamp | None:
        """Unusable receipt settings: the alert goes out without receipts rather than not at all."""
        self.log.warning("Receipts are off for this alert: %s", exc)
        return None

    async def _send(
        self,
        hook: SmsWwHook,
        planned: Plan,
        alert: Rendered,
        unusable: Exception | None = None,
        stamp: ReceiptStamp | None = None,
    ) -> Outcome:
        """One dry run of the planned text, then every recipient through one fan-out; the hook's client
        is closed after.

        :param unusable: why the hook cannot be used at all (no connection): nobody gets the alert.
        :param stamp: the receipts of the alert's messages (None: receipts off).
        :return: who got the alert (with the message id) and who did not (with the reason).
        """
        from airflow_provider_smsww.notifications.alert import Outcome, dry_run
        from airflow_provider_smsww.sending.batch import with_receipts

        outcome = Outcome(failures=dict(planned.refused))
        if planned.batch is None:  # nothing passed the local checks: every recipient is in ``refused``
            await hook.aclose()
            return outcome
        try:
            if unusable is not None:
                raise unusable
            batch = await dry_run(hook, planned, alert, self.log, outcome)
            if batch is not None:
                batch = with_receipts(batch, stamp)
                await hook.awarn_if_credit_low()  # loud below the threshold; an alert still goes out
                await self._fan_out(hook, batch, outcome)
        except Exception as exc:  # no connection, unreadable connection: nobody else gets the alert
            outcome.not_sent(planned.batch.recipients, exc)
        finally:
            await hook.aclose()
        return outcome

    async def _fan_out(self, hook: SmsWwHook, batch: Batch, outcome: Outcome) -> None:
        """Every recipient concurrently on one pooled client, through the fan-out the operator uses:
        the first refusal of the account (credentials, credit) stops the sends not yet started."""
        from airflow_provider_smsww.hooks.fanout import FanOut

        fanout = FanOut(hook, batch, self.max_concurrency, outcome.failures)

        async def send(recipient: Recipient) -> None:
            if fanout.stopped(recipient):
                return
            try:
                message = await fanout.send(recipient)
            except Exception as exc:  # an unknown outcome too: reported, never resent
                outcome.missed(recipient, exc)
            else:
                if message is not None:
                    outcome.got(recipient, message.id)

        await fanout.run(batch.recipients, send)


#: Functional-style alias, as Airflow's own providers offer (``send_smsww_notification`` etc.).
send_smsww_notification = SmsWwNotifier
