"""SmsSendWaitTrigger: the one way :class:`~airflow_provider_smsww.operators.smsww.SmsSendOperator` waits
without holding a worker slot. The operator defers to it when recipients are outside their send window
(quiet hours) and resumes when the earliest window opens; the resumed task sends what the ledger shows
unsent and may be sent now, and defers again for the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

CLASSPATH = "airflow_provider_smsww.triggers.send_wait.SmsSendWaitTrigger"


class SmsSendWaitTrigger(BaseTrigger):
    """Fire once ``moment`` has come (at once when it is past).

    :param moment: when the task should resume (timezone-aware).
    :param reason: why the task waits, for the triggerer's log and the event (no recipients, no text).
    """

    def __init__(self, moment: datetime, reason: str = "") -> None:
        super().__init__()
        if moment.tzinfo is None:
            raise ValueError(f"moment must be timezone-aware, not {moment!r}")
        self.moment = moment
        self.reason = reason

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return CLASSPATH, {"moment": self.moment, "reason": self.reason}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        self.log.info("Waiting until %s: %s", self.moment.isoformat(), self.reason)
        # Early or late by the clocks' drift at most: the resumed task reads its own clock and waits
        # again for whoever is still outside a window.
        await asyncio.sleep(max((self.moment - datetime.now(UTC)).total_seconds(), 0.0))
        yield TriggerEvent({"status": "resume", "moment": self.moment.isoformat(), "reason": self.reason})
