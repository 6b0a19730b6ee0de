"""SmsDeliveryTrigger: waits for SMS delivery in the triggerer, so a deferred sensor holds no worker slot.

The delivery rules it shares with the sensor live in :mod:`airflow_provider_smsww.delivery`. Import
cost: the hook (and with it httpx) is imported inside :meth:`SmsDeliveryTrigger.run`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_smsww import DEFAULT_CONN_ID
from airflow_provider_smsww.delivery import DeliveryProgress, read_messages, required_count
from airflow_provider_smsww.exceptions import SmsWwError
from airflow_provider_smsww.triggers import seconds_until

if TYPE_CHECKING:
    from airflow_provider_smsww.models import Message

CLASSPATH = "airflow_provider_smsww.triggers.smsww.SmsDeliveryTrigger"


class SmsDeliveryTrigger(BaseTrigger):
    """Poll a set of SMS (listing pages, then ``GET /messages/{id}`` for what they miss) until they are
    delivered, one fails, or ``min_delivered`` is met or out of reach; then fire exactly one event.

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
    :param min_delivered: succeed once this many are delivered (see
        :class:`~airflow_provider_smsww.delivery.DeliveryProgress`).
    :param max_concurrency: requests in flight at once within a round.
    :param not_before: no round before this (timezone-aware), or None for at once. The sensor sets it
        one ``poll_interval`` after its own check: looking again at once would repeat that check, and an
        event fired moments after the deferral can meet Airflow's race between the deferral's executor
        event and the trigger's (docs/sensor.md, "Deferrable mode").
    """

    def __init__(
        self,
        message_ids: Sequence[str],
        smsww_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 60.0,
        min_delivered: int | None = None,
        max_concurrency: int = 10,
        not_before: datetime | None = None,
    ) -> None:
        super().__init__()
        self.message_ids = list(dict.fromkeys(message_ids))
        self.smsww_conn_id = smsww_conn_id
        self.poll_interval = float(poll_interval)
        self.min_delivered = min_delivered
        self.max_concurrency = max(1, int(max_concurrency))
        self.not_before = not_before

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            CLASSPATH,
            {
                "message_ids": list(self.message_ids),
                "smsww_conn_id": self.smsww_conn_id,
                "poll_interval": self.poll_interval,
                "min_delivered": self.min_delivered,
                "max_concurrency": self.max_concurrency,
                "not_before": self.not_before,
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

        if self.not_before is not None:
            await asyncio.sleep(seconds_until(self.not_before))
        hook = SmsWwHook(smsww_conn_id=self.smsww_conn_id)
        messages: dict[str, Message] = {}
        required = required_count(len(self.message_ids), self.min_delivered)
        try:
            while True:
                todo = [i for i in self.message_ids if i not in messages or not messages[i].is_final]
                trouble = await read_messages(hook, todo, messages, max_concurrency=self.max_concurrency)
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
