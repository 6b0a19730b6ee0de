"""SmsWwNotifier: SMS alerts from task and DAG callbacks and from deadline alerts.

Import cost: DAG files import this module at parse time (a notifier is built in the DAG file), so the
hook, the client (httpx) and the phone-number checks are imported only when an alert is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from airflow_provider_smsww import DEFAULT_CONN_ID
from airflow_provider_smsww.exceptions import SmsWwError, describe_problems

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.models import Estimate
    from airflow_provider_smsww.sending.batch import Batch
    from airflow_provider_smsww.validation import Recipient

#: Marks a text cut to fit one SMS part. Three dots, not an ellipsis: "…" is not GSM-7 and would turn
#: the whole text into UCS-2, where one part holds 70 characters instead of 160.
TRUNCATION_MARK = "..."


def fit_one_part(text: str) -> str:
    """``text`` unchanged if it fits one SMS part, else cut (at a character boundary) to fit one part
    with :data:`TRUNCATION_MARK` at the end. Counting follows the gateway: GSM-7 extension characters
    count two, UCS-2 counts UTF-16 units, so an emoji is never split in half."""
    from airflow_provider_smsww.segments import GSM7_EXTENSION, analyse

    info = analyse(text)
    if info.parts <= 1:
        return text
    budget = info.single_part_limit - len(TRUNCATION_MARK)
    used = 0
    cut = 0
    for index, char in enumerate(text):
        if info.encoding == "GSM-7":
            cost = 2 if char in GSM7_EXTENSION else 1
        else:
            cost = len(char.encode("utf-16-le")) // 2
        if used + cost > budget:
            break
        used += cost
        cut = index + 1
    return text[:cut].rstrip() + TRUNCATION_MARK


class SmsWwNotifier(BaseNotifier):
    """Send an SMS alert through the SMS Worldwide API.

    Works as ``on_failure_callback`` / ``on_success_callback`` (task or DAG level; sync :meth:`notify`)
    and as a deadline alert callback run in the triggerer (``AsyncCallback(SmsWwNotifier, kwargs=...)``;
    async :meth:`async_notify`). ``recipients``, ``message`` and ``sender`` are templates rendered with
    the callback's context, e.g. ``"FAILED {{ dag.dag_id }}.{{ ti.task_id }} run {{ run_id }}
    {{ ti.log_url }}"``. Deadline alerts get a smaller context: use ``{{ dag_run.dag_id }}``,
    ``{{ dag_run.run_id }}`` and ``{{ deadline.deadline_time }}`` there. The templates are rendered
    afresh on every call, so one notifier shared through ``default_args`` alerts correctly for every
    task.

    **Local checks first, no money on bad input.** Sender, region and text are checked before any
    request; a bad recipient number is refused locally (and reported) while the valid ones still get
    the alert.

    **One dry run before any send.** Forbidden words in the text or the sender get the message blocked
    and the whole account blocklisted, with a 1 EUR penalty per part; every later send (the
    operator's too) then fails with 403 code 2020. A rendered dag id, task id or log URL can contain
    such a word. What the gateway refuses for that reason depends only on the text and the sender, so
    the final text (after truncation) and sender are dry-run once (``options.dryRun``, free) to the
    first valid recipient before anything is sent. If the API refuses that dry run (e.g. 422 code
    2044, forbidden content), the alert is sent to nobody and every recipient is reported as failed
    with the API's reason. If the dry run itself fails (refused credentials, no credit, the API out of
    reach after the client's retries), nobody is sent the alert either and that error is reported the
    same way: a text the API has not checked is never sent. The price is one extra round trip per
    alert.

    **One part by default.** Alerts are read on a lock screen and a rendered log URL can push a text
    past 160 characters; a second part doubles the cost and arrives out of order. With
    ``fail_on_multiple_messages=True`` (default) a longer text is cut to one part with ``...`` at the
    end (``truncate=True``, default), and the gateway is told to refuse multi-part messages as a
    second guard. Put what matters first (DAG and task), the log URL last. ``truncate=False`` refuses
    a long text instead; ``fail_on_multiple_messages=False`` sends it in as many parts as it needs.

    **Failures are loud, never silent.** Every recipient is tried even when one fails; each failure is
    logged with the recipient and the reason (never a token); then, with ``raise_on_failure=True``
    (default), an :class:`~airflow_provider_smsww.exceptions.SmsWwError` names every failed recipient.
    Airflow runs each callback in its own ``try`` and logs the traceback, so raising does not stop the
    other callbacks or change the task's state, while it marks a deadline alert's callback as failed.
    A send whose outcome is unknown (connection lost after the request was written) is reported as
    such and not resent, as the operator does: the SMS may already be on its way.

    :param recipients: one E.164 number, a comma-separated string or a list (templated).
    :param message: the text (templated).
    :param sender: alias of 3-11 letters, digits or spaces, not all digits (templated); default
        "Openapi".
    :param region: ``WW`` (default), ``IT`` or ``ES``.
    :param smsww_conn_id: the ``smsww`` connection.
    :param fail_on_multiple_messages: keep the alert to one SMS part (see above).
    :param truncate: cut a long text to one part instead of refusing it.
    :param raise_on_failure: raise after trying everyone if any recipient did not get the alert.
    :param max_concurrency: sends in flight at once in :meth:`async_notify`.
    """

    template_fields: Sequence[str] = ("recipients", "message", "sender")

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
        # The unrendered templates: BaseNotifier renders in place, which would freeze the first
        # alert's text into a notifier shared by many tasks.
        self._templates = {"recipients": recipients, "message": message, "sender": sender}
        super().__init__(context=context)

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        for name, template in self._templates.items():
            setattr(self, name, template)
        super().render_template_fields(context, jinja_env)

    # -- preparing ------------------------------------------------------------------------------------

    def _prepare(self) -> tuple[Batch | None, dict[str, str]]:
        """Check everything locally. Returns the batch of valid recipients (None when nothing can be
        sent) and the recipients refused, with the reason."""
        from airflow_provider_smsww.exceptions import SmsWwGateError
        from airflow_provider_smsww.rendered import as_list
        from airflow_provider_smsww.sending.batch import check_locally
        from airflow_provider_smsww.validation import Problem, parse_recipient

        recipients = as_list(self.recipients)
        text = self.message if isinstance(self.message, str) else str(self.message or "")
        if self.fail_on_multiple_messages and self.truncate and text.strip():
            fitted = fit_one_part(text)
            if fitted != text:
                self.log.warning(
                    "SMS alert text cut from %d to %d characters to fit one SMS part", len(text), len(fitted)
                )
            text = fitted

        refused: dict[str, str] = {}
        valid: list[str] = []
        for raw in recipients:
            parsed = parse_recipient(raw, self.region)
            if isinstance(parsed, Problem):
                refused[str(raw)] = parsed.message
            else:
                valid.append(raw)
        try:
            batch = check_locally(
                valid,
                text,
                sender=self.sender or None,
                region=self.region,
                fail_on_multiple_messages=self.fail_on_multiple_messages,
            )
        except SmsWwGateError as exc:
            problems = dict(exc.problems)
            if refused:
                problems.pop("recipients", None)  # "no recipients given": say why instead
            # Nothing can be sent: every valid recipient is refused too, with the reason.
            reason = "; ".join(f"{k}: {v}" for k, v in problems.items())
            refused.update({r: f"not sent: {reason}" for r in valid})
            if not refused:
                refused["recipients"] = reason
            return None, refused
        return batch, refused

    # -- sending --------------------------------------------------------------------------------------

    def notify(self, context: Context) -> None:
        """Send the alert from a task or DAG callback (sync): the same path as :meth:`async_notify`, on
        an event loop of its own, with the connection read the sync way (as callbacks must)."""
        from airflow_provider_smsww.hooks.smsww import SmsWwHook

        hook = SmsWwHook(smsww_conn_id=self.smsww_conn_id)
        try:
            hook.open_async_client()
        except Exception as exc:  # no connection, unreadable connection: nobody gets the alert
            asyncio.run(self._alert(hook, unusable=exc))
            return
        asyncio.run(self._alert(hook))

    async def async_notify(self, context: Context) -> None:
        """Send the alert from a deadline alert in the triggerer (async)."""
        from airflow_provider_smsww.hooks.smsww import SmsWwHook

        await self._alert(SmsWwHook(smsww_conn_id=self.smsww_conn_id))

    async def _alert(self, hook: SmsWwHook, unusable: Exception | None = None) -> None:
        """The one alert path: local checks, one dry run of the final text, then every recipient
        concurrently on one pooled client; the first refusal of the account (credentials, credit)
        stops the rest. Every outcome is reported by :meth:`_report`."""
        from airflow_provider_smsww.concurrency import bounded
        from airflow_provider_smsww.sending.bulk import FATAL_ERRORS

        batch, failures = self._prepare()
        sent: dict[str, str] = {}
        if batch is None:
            self._report(sent, failures)
            return
        fatal: list[str] = []

        async def send(recipient: Recipient) -> None:
            if fatal:
                failures[recipient.e164] = f"not sent: {fatal[0]}"
                return
            try:
                message = await hook.asend_request(batch.request(recipient, dry_run=False), batch.region)
            except FATAL_ERRORS as exc:
                fatal.append(exc.message)
                failures[recipient.e164] = exc.message
            except Exception as exc:
                failures[recipient.e164] = self._reason(exc)
            else:
                sent[recipient.e164] = message.id

        try:
            if unusable is not None:
                raise unusable
            try:
                checked = await hook.aestimate(batch.request(batch.recipients[0], dry_run=True), batch.region)
            except SmsWwError as exc:
                self._dry_run_failed(batch, exc, failures)
            else:
                self._dry_run_passed(checked)
                await hook.awarn_if_credit_low()  # loud below the threshold; an alert still goes out
                await bounded(batch.recipients, send, self.max_concurrency)
        except Exception as exc:  # no connection, unreadable connection: nobody gets the alert
            for recipient in batch.recipients:
                if recipient.e164 not in sent:
                    failures.setdefault(recipient.e164, f"not sent: {self._reason(exc)}")
        finally:
            await hook.aclose()
        self._report(sent, failures)

    # -- the dry run ----------------------------------------------------------------------------------

    def _dry_run_passed(self, checked: Estimate) -> None:
        self.log.info(
            "SMS alert dry run accepted (%s part(s), %s): sending",
            checked.parts,
            checked.encoding or "encoding not reported",
        )

    def _dry_run_failed(self, batch: Batch, exc: SmsWwError, failures: dict[str, str]) -> None:
        """Nobody gets the alert: every recipient is reported with the reason (then :meth:`_report`)."""
        from airflow_provider_smsww.exceptions import SmsWwValidationError

        if isinstance(exc, SmsWwValidationError):
            self.log.error(
                "SMS alert dry run refused by the API, so the alert was sent to nobody: a real send of a "
                "text or sender the API refuses as forbidden content would blocklist the account. %s",
                exc.message,
            )
            reason = f"not sent: the API refused the dry run of this text and sender: {exc.message}"
        else:
            self.log.error("SMS alert dry run failed, so the alert was sent to nobody: %s", self._reason(exc))
            reason = f"not sent: the dry run failed: {self._reason(exc)}"
        for recipient in batch.recipients:
            failures.setdefault(recipient.e164, reason)

    @staticmethod
    def _reason(exc: BaseException) -> str:
        from airflow_provider_smsww.exceptions import SmsWwSendUncertainError

        if isinstance(exc, SmsWwSendUncertainError):
            return f"{exc.message} (not resent, to avoid a duplicate)"
        if isinstance(exc, SmsWwError):
            return exc.message
        return f"{type(exc).__name__}: {exc}"

    def _report(self, sent: dict[str, str], failures: dict[str, str]) -> None:
        for recipient, message_id in sent.items():
            self.log.info("SMS alert sent to %s (message id %s)", recipient, message_id)
        for recipient, reason in failures.items():
            self.log.error("SMS alert NOT sent to %s: %s", recipient, reason)
        if not failures:
            return
        total = len(sent) + len(failures)
        summary = describe_problems(
            f"SMS alert failed for {len(failures)} of {total} recipient(s):", failures
        )
        if self.raise_on_failure:
            raise SmsWwError(summary)


#: Functional-style alias, as Airflow's own providers offer (``send_slack_notification`` etc.).
send_smsww_notification = SmsWwNotifier
