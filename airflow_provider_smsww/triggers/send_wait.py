"""SmsSendWaitTrigger: the one way :class:`~airflow_provider_smsww.operators.smsww.SmsSendOperator` waits
without holding a worker slot. The operator defers to it

- when recipients are outside their send window (quiet hours): it fires when the earliest window opens;
- when sends of unknown outcome must settle (``deferrable=True``): it looks them up in
  ``GET /messages`` every few seconds (:mod:`airflow_provider_smsww.sending.lookup`) and fires when
  all are listed or the first may be resent.

The resumed task runs its send order again: the ledger skips whoever was sent, the unknown outcomes are
looked up once more, and only what is proven unsent (and inside its window) is sent. The trigger itself
records and sends nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_smsww import DEFAULT_CONN_ID
from airflow_provider_smsww.triggers import seconds_until

CLASSPATH = "airflow_provider_smsww.triggers.send_wait.SmsSendWaitTrigger"


class SmsSendWaitTrigger(BaseTrigger):
    """Fire once ``moment`` has come (at once when it is past), or earlier once every unknown outcome
    of ``lookup`` is listed.

    :param moment: when the task should resume (timezone-aware).
    :param reason: why the task waits, for the triggerer's log (no recipients, no text).
    :param lookup: the unknown outcomes to look up meanwhile
        (:func:`~airflow_provider_smsww.sending.lookup.lookup_of`), or None to only wait.
    :param smsww_conn_id: the ``smsww`` connection of the look-ups.
    :param poll_interval: seconds between look-ups.
    :param rounds: how many settle waits this try has deferred for so far (handed back in the event).
    :param not_before: no look-up and no event before this (timezone-aware); by default one
        ``poll_interval`` after the trigger is made, that is after the task deferred. The task has just
        looked itself, and an event fired moments after the deferral can meet Airflow's race between
        the deferral's executor event and the trigger's (docs/sensor.md, "Deferrable mode").
    """

    def __init__(
        self,
        moment: datetime,
        reason: str = "",
        lookup: dict[str, Any] | None = None,
        smsww_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 3.0,
        rounds: int = 0,
        not_before: datetime | None = None,
    ) -> None:
        super().__init__()
        if moment.tzinfo is None:
            raise ValueError(f"moment must be timezone-aware, not {moment!r}")
        self.moment = moment
        self.reason = reason
        self.lookup = lookup
        self.smsww_conn_id = smsww_conn_id
        self.poll_interval = float(poll_interval)
        self.rounds = rounds
        self.not_before = not_before or datetime.now(UTC) + timedelta(seconds=self.poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return CLASSPATH, {
            "moment": self.moment,
            "reason": self.reason,
            "lookup": self.lookup,
            "smsww_conn_id": self.smsww_conn_id,
            "poll_interval": self.poll_interval,
            "rounds": self.rounds,
            "not_before": self.not_before,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        self.log.info("Waiting until %s: %s", self.moment.isoformat(), self.reason)
        settled = await self._wait()
        yield TriggerEvent({"status": "resume", "settled": settled, "rounds": self.rounds})

    async def _wait(self) -> bool:
        """Wait until ``moment``; True when the look-ups found every unknown outcome before it."""
        if self.lookup is None:
            # Early or late by the clocks' drift at most: the resumed task reads its own clock and
            # waits again for whoever is still outside a window.
            await asyncio.sleep(seconds_until(max(self.moment, self.not_before)))
            return False
        await asyncio.sleep(seconds_until(self.not_before))
        from airflow_provider_smsww.exceptions import SmsWwError
        from airflow_provider_smsww.hooks.smsww import SmsWwHook
        from airflow_provider_smsww.sending.lookup import batch_of, look_up

        hook = SmsWwHook(smsww_conn_id=self.smsww_conn_id)
        batch = batch_of(self.lookup)  # once: every look-up reads the same batch
        wanted = {r.key for r in batch.recipients}
        try:
            while True:
                try:
                    wanted -= await look_up(hook, batch, self.lookup, wanted)
                except SmsWwError as exc:  # the resumed task looks again, and fails closed if it must
                    self.log.warning("Look-up failed, trying again: %s", exc.message)
                if not wanted:
                    self.log.info("Every send of unknown outcome is listed: resuming to record them")
                    return True
                if (left := seconds_until(self.moment)) <= 0:
                    self.log.info("%d send(s) still unlisted at the end of the settle window", len(wanted))
                    return False
                await asyncio.sleep(min(self.poll_interval, left))
        finally:
            await hook.aclose()
