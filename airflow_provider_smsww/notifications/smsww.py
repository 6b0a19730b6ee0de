"""SmsWwNotifier: SMS alerts from task and DAG callbacks and from deadline alerts.

Import cost: DAG files import this module at parse time (a notifier is built in the DAG file), so the
hook, the client (httpx) and the phone-number checks are imported only when an alert is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_smsww import DEFAULT_CONN_ID
from airflow_provider_smsww.alerting import DEFAULT_DEDUPE_KEY, check_cooldown, check_dedupe_key
from airflow_provider_smsww.compat import BaseNotifier
from airflow_provider_smsww.exceptions import SmsWwError
from airflow_provider_smsww.notifications.fallback import TRUNCATION_MARK, fit_one_part

__all__ = ["TRUNCATION_MARK", "SmsWwNotifier", "fit_one_part", "send_smsww_notification"]

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_smsww.alerting import StormGuard, Verdict
    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.sending.batch import Batch
    from airflow_provider_smsww.validation import Recipient


@dataclass
class _Plan:
    """One alert, checked locally: the batch to send (None when nothing can be sent), the recipients
    refused with the reason, and the fallback text to use if the API refuses the rendered one."""

    batch: Batch | None
    refused: dict[str, str]
    fallback: str
    on_fallback: bool


class SmsWwNotifier(BaseNotifier):
    """Send an SMS alert through the SMS Worldwide API (how-to: docs/notifier.md).

    Works as ``on_failure_callback`` / ``on_success_callback`` (task or DAG level; sync :meth:`notify`)
    and as a deadline alert callback run in the triggerer (``AsyncCallback(SmsWwNotifier, kwargs=...)``;
    async :meth:`async_notify`). ``recipients``, ``message``, ``sender`` and ``dedupe_key`` are templates
    rendered afresh for every alert, so one notifier shared through ``default_args`` serves every task.

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
    after it starts with "(+7 more failures since 14:02 UTC)". See :mod:`airflow_provider_smsww.alerting`.

    **One part by default; failures are loud.** A long text is cut to one part with ``...``. Every
    recipient is tried; then an :class:`~airflow_provider_smsww.exceptions.SmsWwError` names each one
    that did not get the alert. An unknown outcome (connection lost after sending) is not resent.

    :param recipients: one E.164 number, a comma-separated string or a list (templated).
    :param message: the text (templated).
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
        message: str,
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

    # -- preparing ------------------------------------------------------------------------------------

    def _plan(self, context: Context, summary: str = "") -> _Plan:
        """The text, sender and recipients after every fallback, checked locally."""
        from airflow_provider_smsww.notifications.fallback import fallback_text

        fallback = fallback_text(context)
        if summary:
            fallback = fit_one_part(f"({summary}) {fallback}")
        for name, problem in self.render_problems.items():
            if name != "dedupe_key":
                self.log.warning("SMS alert: the %s template failed to render (%s)", name, problem)
        text = self.message if isinstance(self.message, str) else str(self.message or "")
        if "message" in self.render_problems or not text.strip():
            self.log.warning("SMS alert: sending the fallback text %r instead of the message", fallback)
            text = fallback
        elif summary:
            text = f"({summary}) {text}"
        sender = None if "sender" in self.render_problems else self.sender
        batch, refused = self._prepare(text, sender)
        if batch is None and (text, sender) != (fallback, None):
            self.log.warning(
                "SMS alert refused locally (%s): sending the fallback text %r from the default sender",
                "; ".join(refused.values()),
                fallback,
            )
            batch, refused = self._prepare(fallback, None)
            return _Plan(batch, refused, fallback, on_fallback=True)
        return _Plan(batch, refused, fallback, on_fallback=(text, sender) == (fallback, None))

    def _recipients(self) -> list[str]:
        from airflow_provider_smsww.rendered import as_list

        recipients = as_list(self.recipients)
        if not recipients and self.fallback_recipients:
            self.log.warning("SMS alert: recipients rendered to nobody, sending to fallback_recipients")
            recipients = as_list(self.fallback_recipients)
        return recipients

    def _prepare(self, text: str, sender: str | None) -> tuple[Batch | None, dict[str, str]]:
        """Check everything locally. Returns the batch of valid recipients (None when nothing can be
        sent) and the recipients refused, with the reason."""
        from airflow_provider_smsww.exceptions import SmsWwGateError
        from airflow_provider_smsww.sending.batch import check_locally
        from airflow_provider_smsww.validation import Problem, parse_recipient

        if self.fail_on_multiple_messages and self.truncate and text.strip():
            fitted = fit_one_part(text)
            if fitted != text:
                self.log.warning(
                    "SMS alert text cut from %d to %d characters to fit one SMS part", len(text), len(fitted)
                )
            text = fitted

        refused: dict[str, str] = {}
        valid: list[str] = []
        for raw in self._recipients():
            parsed = parse_recipient(raw, self.region)
            if isinstance(parsed, Problem):
                refused[str(raw)] = parsed.message
            else:
                valid.append(raw)
        try:
            batch = check_locally(
                valid,
                text,
                sender=sender or None,
                region=self.region,
                fail_on_multiple_messages=self.fail_on_multiple_messages,
            )
        except SmsWwGateError as exc:
            problems = dict(exc.problems)
            if refused:
                problems.pop("recipients", None)  # "no recipients given": say why instead
            elif "recipients" in problems and (failed := self.render_problems.get("recipients")):
                problems["recipients"] += f" (the recipients template failed to render: {failed})"
            # Nothing can be sent: every valid recipient is refused too, with the reason.
            reason = "; ".join(f"{k}: {v}" for k, v in problems.items())
            refused.update({r: f"not sent: {reason}" for r in valid})
            if not refused:
                refused["recipients"] = reason
            return None, refused
        return batch, refused

    # -- the storm guard ------------------------------------------------------------------------------

    def _claim(self, context: Context) -> tuple[StormGuard, Verdict] | None:
        """Ask the storm guard (only with a ``cooldown``); sync, as Variables are read the sync way."""
        from airflow_provider_smsww.alerting import StormGuard, resolve_key
        from airflow_provider_smsww.notifications.fallback import dag_id_of, fallback_text

        if self.cooldown is None:
            return None
        problem = self.render_problems.get("dedupe_key")
        dag_id = dag_id_of(context) or "unknown DAG"
        guard = StormGuard(
            resolve_key(self.dedupe_key, problem, self._templates["dedupe_key"], dag_id), self.cooldown
        )
        return guard, guard.claim(fallback_text(context))

    def _summary(self, claim: tuple[StormGuard, Verdict] | None, context: Context) -> str | None:
        """None to hold the alert back, else the "+N more" text for it (possibly empty)."""
        from airflow_provider_smsww.alerting import alert_kind, describe

        if claim is None:
            return ""
        guard, verdict = claim
        if not verdict.send:
            self.log.info("%s", describe(verdict, guard.dedupe_key))
            return None
        return verdict.summary(alert_kind(context))

    @staticmethod
    def _settle(claim: tuple[StormGuard, Verdict] | None, sent: dict[str, str]) -> None:
        if claim is not None:
            claim[0].done(claim[1], delivered=bool(sent))

    # -- sending --------------------------------------------------------------------------------------

    def notify(self, context: Context) -> None:
        """Send the alert from a task or DAG callback (sync): the same path as :meth:`async_notify`, on
        an event loop of its own, with the connection read the sync way (as callbacks must)."""
        from airflow_provider_smsww.hooks.smsww import SmsWwHook

        claim = self._claim(context)
        summary = self._summary(claim, context)
        if summary is None:
            return
        plan = self._plan(context, summary)
        hook = SmsWwHook(smsww_conn_id=self.smsww_conn_id)
        try:
            hook.open_async_client()
        except Exception as exc:  # no connection, unreadable connection: nobody gets the alert
            sent, failures = asyncio.run(self._alert(hook, plan, unusable=exc))
        else:
            sent, failures = asyncio.run(self._alert(hook, plan))
        self._settle(claim, sent)
        self._report(sent, failures)

    async def async_notify(self, context: Context) -> None:
        """Send the alert from a deadline alert in the triggerer (async); the storm guard's Variable
        calls run in a thread, off the triggerer's event loop."""
        from airflow_provider_smsww.hooks.smsww import SmsWwHook

        claim = await asyncio.to_thread(self._claim, context)
        summary = self._summary(claim, context)
        if summary is None:
            return
        sent, failures = await self._alert(
            SmsWwHook(smsww_conn_id=self.smsww_conn_id), self._plan(context, summary)
        )
        await asyncio.to_thread(self._settle, claim, sent)
        self._report(sent, failures)

    async def _alert(
        self, hook: SmsWwHook, plan: _Plan, unusable: Exception | None = None
    ) -> tuple[dict[str, str], dict[str, str]]:
        """The one alert path: one dry run of the final text, then every recipient concurrently on one
        pooled client; the first refusal of the account (credentials, credit) stops the rest. Returns
        who got the alert (with the message id) and who did not (with the reason)."""
        from airflow_provider_smsww.concurrency import bounded
        from airflow_provider_smsww.notifications.outcome import reason
        from airflow_provider_smsww.sending.bulk import FATAL_ERRORS

        batch, failures = plan.batch, dict(plan.refused)
        sent: dict[str, str] = {}
        if batch is None:
            return sent, failures
        fatal: list[str] = []

        async def send(recipient: Recipient) -> None:
            assert batch is not None
            if fatal:
                failures[recipient.e164] = f"not sent: {fatal[0]}"
                return
            try:
                message = await hook.asend_request(batch.request(recipient, dry_run=False), batch.region)
            except FATAL_ERRORS as exc:
                fatal.append(exc.message)
                failures[recipient.e164] = exc.message
            except Exception as exc:
                failures[recipient.e164] = reason(exc)
            else:
                sent[recipient.e164] = message.id

        try:
            if unusable is not None:
                raise unusable
            batch = await self._dry_run(hook, batch, plan, sent, failures)
            if batch is not None:
                await hook.awarn_if_credit_low()  # loud below the threshold; an alert still goes out
                await bounded(batch.recipients, send, self.max_concurrency)
        except Exception as exc:  # no connection, unreadable connection: nobody gets the alert
            for recipient in (plan.batch or batch).recipients:  # type: ignore[union-attr]
                if recipient.e164 not in sent:
                    failures.setdefault(recipient.e164, f"not sent: {reason(exc)}")
        finally:
            await hook.aclose()
        return sent, failures

    async def _dry_run(
        self, hook: SmsWwHook, batch: Batch, plan: _Plan, sent: dict[str, str], failures: dict[str, str]
    ) -> Batch | None:
        """Dry-run the text once; if the API refuses it, dry-run the fallback text once. Returns the
        batch to send, or None when nothing more may be sent (every outcome is in sent/failures)."""
        from airflow_provider_smsww.exceptions import SmsWwDryRunIgnoredError, SmsWwValidationError
        from airflow_provider_smsww.notifications import outcome

        on_fallback = plan.on_fallback
        while True:
            try:
                checked = await hook.aestimate(batch.request(batch.recipients[0], dry_run=True), batch.region)
            except SmsWwDryRunIgnoredError as exc:
                outcome.dry_run_ignored(self.log, batch, exc, sent, failures)
                return None
            except SmsWwValidationError as exc:
                fallback = None if on_fallback else self._prepare(plan.fallback, None)[0]
                if fallback is None:
                    outcome.dry_run_failed(self.log, batch, exc, failures)
                    return None
                self.log.warning(
                    "SMS alert dry run refused the rendered text or sender (%s): trying the fallback text "
                    "%r from the default sender",
                    exc.message,
                    plan.fallback,
                )
                batch, on_fallback = fallback, True
            except SmsWwError as exc:
                outcome.dry_run_failed(self.log, batch, exc, failures)
                return None
            else:
                outcome.dry_run_passed(self.log, checked)
                return batch

    def _report(self, sent: dict[str, str], failures: dict[str, str]) -> None:
        from airflow_provider_smsww.notifications.outcome import report

        report(self.log, sent, failures, raise_on_failure=self.raise_on_failure)


#: Functional-style alias, as Airflow's own providers offer (``send_smsww_notification`` etc.).
send_smsww_notification = SmsWwNotifier
