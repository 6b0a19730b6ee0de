"""Scale-out: 2,000 recipients in mapped batches, spread over the Celery workers.

Each mapped ``send_batch`` sends one batch; at most ``GATEWAY_SLOTS`` batches run at once because they
share the ``smsww_gateway`` pool, which bounds the batches in flight (the rate is the connection's
``rate_limit``, docs/campaigns.md). A retried batch (its worker died mid-send) skips what its ledger holds
and looks up the rest before sending: nobody gets it twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_provider_smsww.operators.smsww import SmsSendOperator

RECIPIENTS = [f"+39333{n:07d}" for n in range(2_000_000, 2_002_000)]
BATCH_SIZE = 250

with DAG(
    dag_id="smsww_scale_out",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["smsww", "deployment"],
) as dag:

    @task
    def batches() -> list[list[str]]:
        return [RECIPIENTS[i : i + BATCH_SIZE] for i in range(0, len(RECIPIENTS), BATCH_SIZE)]

    SmsSendOperator.partial(
        task_id="send_batch",
        message="Scale-out notice: your order has shipped.",
        fail_on_multiple_messages=True,
        max_total_price=50.0,
        price_per_part_if_unknown=0.10,
        max_concurrency=5,
        # The sandbox lists every accepted message at once: after the killed worker, the retry needs to
        # wait only a few seconds before it may resend what the crashed round left unrecorded.
        settle_time=5,
        pool="smsww_gateway",
        retries=3,
        retry_delay=timedelta(seconds=3),
    ).expand(recipients=batches())
