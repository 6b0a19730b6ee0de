"""A DAG for the rendered-fields integration test: the message comes from a Variable, rendered only when
the task runs (issue 23: a lone surrogate there must fail with the provider's error naming the field)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_smsww.operators.smsww import SmsSendOperator

with DAG(
    dag_id="smsww_it_rendered_fields", schedule=None, start_date=datetime(2025, 1, 1), catchup=False
) as dag:
    SmsSendOperator(task_id="send", recipients="+393331234567", message="{{ var.json.sms_text }}", retries=0)
