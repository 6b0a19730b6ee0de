"""A DAG for the receipts integration test (tests/integration/test_receipt_events.py): a send to three numbers
(the sandbox makes the last one UNDELIVERABLE) and a failing task whose alert goes through the notifier.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

from airflow_provider_smsww.notifications.smsww import SmsWwNotifier
from airflow_provider_smsww.operators.smsww import SmsSendOperator

REPORT_TO = ["+393331234567", "+393337654321", "+393330000001"]
ON_CALL = "+393339998888"

with DAG(dag_id="smsww_receipts", schedule=None, start_date=datetime(2025, 1, 1), catchup=False) as dag:
    send = SmsSendOperator(task_id="send", recipients=REPORT_TO, message="Report ready", sender="Reports")

    @task(on_failure_callback=SmsWwNotifier(recipients=[ON_CALL], message="load failed"), retries=0)
    def load() -> None:
        raise RuntimeError("warehouse down")

    send >> load()
