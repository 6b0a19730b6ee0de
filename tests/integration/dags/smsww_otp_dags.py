"""A DAG for the one-time-code integration test: a TaskFlow task sends a code with the hook and returns
only the message's summary, after logging the message (whose repr hides the code)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from airflow.sdk import dag, task

from airflow_provider_smsww.hooks.smsww import SmsWwHook

log = logging.getLogger(__name__)


@dag(dag_id="smsww_it_otp", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def smsww_it_otp() -> None:
    @task
    def send_code() -> dict[str, Any]:
        with SmsWwHook() as hook:
            message = hook.send_otp("+393331234567", length=8, alphanumeric=True)
        log.info("Sent %r", message)
        return message.summary()

    send_code()


dag_otp = smsww_it_otp()
