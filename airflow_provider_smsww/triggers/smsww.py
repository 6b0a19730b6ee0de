"""SmsDeliveryTrigger: waits for SMS delivery in the triggerer, so a deferred sensor holds no worker slot.

The module also holds the delivery rules the sensor shares (:class:`DeliveryProgress`): what counts as
delivered, failed or still in flight, when ``min_delivered`` is met and when it can no longer be met.
One implementation of those rules keeps poke, reschedule and deferrable mode in agreement.

Import cost: the hook (and with it httpx) is imported inside :meth:`SmsDeliveryTrigger.run`; the models
and exceptions imported here need only pydantic, which Airflow has already loaded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_smsww import DEFAULT_CONN_ID
from airflow_provider_smsww.exceptions import (
    SmsWwError,
    SmsWwNotFoundError,
    SmsWwRateLimitError,
    SmsWwServerError,
    SmsWwTransportError,
)
from airflow_provider_smsww.models import MessageState

if TYPE_CHECKING:
    from airflow_provider_smsww.client import AsyncSmsWwClient
    from airflow_provider_smsww.models import Message

CLASSPATH = "airflow_provider_smsww.triggers.smsww.SmsDeliveryTrigger"

#: Errors that say nothing about the messages, only that the API could not answer right now (after the
#: client's own retries): a poll round that meets one counts as "not yet" and the next round tries
#: again. Everything else (401/403, 404, a host that does not speak the API) will not heal by waiting.
TRANSIENT_ERRORS: tuple[type[SmsWwError], ...] = (SmsWwServerError, SmsWwTransportError, SmsWwRateLimitError)

#: State reported for an id that could not be read yet (only in a ``min_delivered`` success).
UNKNOWN_STATE = "UNKNOWN"
#: How many failed messages a failure message names before it summarises the rest.
MAX_NAMED = 20


def required_count(total: int, min_delivered: int | None) -> int:
    """How many of ``total`` messages must be delivered: all of them, or ``min_delivered`` capped at
    ``total`` (a mapped campaign's last batch may be smaller than the batch size the bar was set for)."""
    if min_delivered is None:
        return total
    return min(min_delivered, total)


def describe(message: Message) -> str:
    """``id=… recipient=… state=…`` plus the blocklist reason: enough to act on, nothing secret."""
    text = f"id={message.id} recipient={message.recipient or '?'} state={message.state_name}"
    if message.blocklisted:
        reason = f": {message.blocklisted_reason}" if message.blocklisted_reason else ""
        text += f" (blocklisted{reason})"
    return text


def not_found_error(message_id: str, conn_id: str) -> SmsWwNotFoundError:
    """404 on ``GET /messages/{id}``: the id is wrong or belongs to another account (or host)."""
    return SmsWwNotFoundError(
        f"SMS message {message_id} was not found (404): check the id and that connection {conn_id!r} "
        "points at the account and host (production or sandbox) that sent it.",
        status_code=404,
    )


@dataclass(frozen=True)
class DeliveryProgress:
    """Where a set of messages stands, and the verdict.

    Without ``min_delivered`` every message must be delivered, so the first failed one decides.
    With it, the wait succeeds once ``required`` are delivered and fails as soon as fewer than
    ``required`` can still be (``total - failed < required``): waiting longer cannot change the outcome.
    A message counts as failed when its state is UNDELIVERABLE, EXPIRED or REJECTED, or when it is
    blocklisted (whatever its state). An unknown state, or an id not read yet, counts as pending.
    """

    ids: Sequence[str]
    messages: Mapping[str, Message]
    required: int

    @property
    def delivered(self) -> list[Message]:
        return [m for m in self._known() if not m.is_failure and m.state == MessageState.DELIVERED]

    @property
    def failed(self) -> list[Message]:
        return [m for m in self._known() if m.is_failure]

    @property
    def pending_ids(self) -> list[str]:
        done = {m.id for m in self.delivered} | {m.id for m in self.failed}
        return [i for i in self.ids if i not in done]

    @property
    def succeeded(self) -> bool:
        return len(self.delivered) >= self.required

    @property
    def impossible(self) -> bool:
        """True when the success condition can no longer be met."""
        return len(self.ids) - len(self.failed) < self.required

    @property
    def done(self) -> bool:
        return self.succeeded or self.impossible

    def _known(self) -> list[Message]:
        return [m for i in self.ids if (m := self.messages.get(i)) is not None]

    def counts(self) -> str:
        """One log line: ``3/10 delivered, 6 pending, 1 failed (need 9)``."""
        need = f" (need {self.required})" if self.required < len(self.ids) else ""
        return (
            f"{len(self.delivered)}/{len(self.ids)} delivered, {len(self.pending_ids)} pending, "
            f"{len(self.failed)} failed{need}"
        )

    def failure_message(self) -> str:
        """Why the wait failed, naming each failed message (id, recipient, state)."""
        failed = self.failed
        named = "; ".join(describe(m) for m in failed[:MAX_NAMED])
        if len(failed) > MAX_NAMED:
            named += f"; and {len(failed) - MAX_NAMED} more"
        if self.required < len(self.ids):
            head = (
                f"SMS delivery cannot reach min_delivered={self.required}: {len(failed)} of "
                f"{len(self.ids)} message(s) failed, so at most {len(self.ids) - len(failed)} can be delivered"
            )
        else:
            head = f"{len(failed)} of {len(self.ids)} SMS message(s) will not be delivered"
        return f"{head}: {named}"

    def records(self) -> list[dict[str, Any]]:
        """The messages as JSON-safe records (no text, no callback headers), in id order."""
        out: list[dict[str, Any]] = []
        for message_id in self.ids:
            message = self.messages.get(message_id)
            if message is None:
                out.append({"id": message_id, "recipient": None, "state": UNKNOWN_STATE})
            else:
                out.append(message.summary())
        return out

    def event(self) -> dict[str, Any]:
        """The trigger event payload for a finished wait."""
        status = "success" if self.succeeded else "failure"
        message = f"SMS delivery complete: {self.counts()}" if self.succeeded else self.failure_message()
        return {
            "status": status,
            "message": message,
            "messages": self.records(),
            "delivered": len(self.delivered),
            "failed": len(self.failed),
            "pending": len(self.pending_ids),
        }


async def read_messages(
    client: AsyncSmsWwClient,
    ids: Sequence[str],
    messages: dict[str, Message],
    *,
    max_concurrency: int,
    conn_id: str,
) -> SmsWwError | None:
    """Read ``ids`` into ``messages``, ``max_concurrency`` at a time (the API has no bulk read by id);
    return the transient error that cut the round short, if any. Used by the trigger and by the
    sensor's pokes, so both read the same way.

    After a transient error no new request starts in this round: the client has already retried
    with backoff, so the API is struggling and hammering it for every other id would only slow the
    recovery. A non-transient error cancels the round and propagates (a 404 names the id).
    """
    semaphore = asyncio.Semaphore(max(1, max_concurrency))
    trouble: list[SmsWwError] = []

    async def read(message_id: str) -> None:
        async with semaphore:
            if trouble:
                return
            try:
                messages[message_id] = await client.get_message(message_id)
            except SmsWwNotFoundError:
                raise not_found_error(message_id, conn_id) from None
            except TRANSIENT_ERRORS as exc:
                trouble.append(exc)

    try:
        async with asyncio.TaskGroup() as group:
            for message_id in ids:
                group.create_task(read(message_id))
    except ExceptionGroup as errors:
        raise errors.exceptions[0] from None
    return trouble[0] if trouble else None


class SmsDeliveryTrigger(BaseTrigger):
    """Poll ``GET /messages/{id}`` for a set of SMS until they are delivered, one fails, or
    ``min_delivered`` is met or out of reach; then fire exactly one event.

    All ids share one pooled async client; each round reads only the ids not final yet, at most
    ``max_concurrency`` at a time, and rounds are ``poll_interval`` seconds apart. There is no timeout
    here: Airflow enforces the sensor's ``timeout`` through the deferral and cancels the trigger, which
    closes the client on its way out.

    Event payload: ``{"status": "success" | "failure" | "error", "message": str, "messages": [record],
    ...}``. ``failure`` means a delivery failure (the messages are named); ``error`` means the wait
    itself failed (no credentials, an id unknown on the account, an API that is not the SMS API), with
    ``error_type`` naming the provider exception class. Transient API trouble (5xx, 429, network) is not
    an error: the round counts as "not yet" and the next round tries again.

    :param message_ids: the ids to watch (already validated by the sensor).
    :param smsww_conn_id: the ``smsww`` connection.
    :param poll_interval: seconds between rounds.
    :param min_delivered: succeed once this many are delivered (see :class:`DeliveryProgress`).
    :param max_concurrency: requests in flight at once within a round.
    """

    def __init__(
        self,
        message_ids: Sequence[str],
        smsww_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 60.0,
        min_delivered: int | None = None,
        max_concurrency: int = 10,
    ) -> None:
        super().__init__()
        self.message_ids = list(dict.fromkeys(message_ids))
        self.smsww_conn_id = smsww_conn_id
        self.poll_interval = float(poll_interval)
        self.min_delivered = min_delivered
        self.max_concurrency = max(1, int(max_concurrency))

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            CLASSPATH,
            {
                "message_ids": list(self.message_ids),
                "smsww_conn_id": self.smsww_conn_id,
                "poll_interval": self.poll_interval,
                "min_delivered": self.min_delivered,
                "max_concurrency": self.max_concurrency,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # The wait runs to completion (client closed) before the event is yielded: the triggerer may
        # drop the generator right after the first event, and a finally block around a yield would then
        # run only when the generator is garbage-collected.
        payload = await self._wait()
        yield TriggerEvent(payload)

    async def _wait(self) -> dict[str, Any]:
        from airflow_provider_smsww.hooks.smsww import SmsWwHook

        hook = SmsWwHook(smsww_conn_id=self.smsww_conn_id)
        messages: dict[str, Message] = {}
        required = required_count(len(self.message_ids), self.min_delivered)
        try:
            client = await hook.get_async_conn()
            while True:
                todo = [i for i in self.message_ids if i not in messages or not messages[i].is_final]
                trouble = await read_messages(
                    client, todo, messages, max_concurrency=self.max_concurrency, conn_id=self.smsww_conn_id
                )
                progress = DeliveryProgress(self.message_ids, messages, required)
                self.log.info("SMS delivery: %s", progress.counts())
                if progress.done:
                    return progress.event()
                if trouble is not None:
                    self.log.warning(
                        "SMS API trouble, will poll again in %.0fs: %s", self.poll_interval, trouble.message
                    )
                await asyncio.sleep(self.poll_interval)
        except SmsWwError as exc:
            return self._error(exc, messages, required)
        except Exception as exc:  # the event must tell the task why, not a bare "trigger failure"
            self.log.exception("SMS delivery trigger failed")
            return self._error(exc, messages, required)
        finally:
            await hook.aclose()

    def _error(self, exc: Exception, messages: Mapping[str, Message], required: int) -> dict[str, Any]:
        text = exc.message if isinstance(exc, SmsWwError) else f"{type(exc).__name__}: {exc}"
        return {
            "status": "error",
            "message": text,
            "error_type": type(exc).__name__,
            "messages": DeliveryProgress(self.message_ids, messages, required).records(),
        }
