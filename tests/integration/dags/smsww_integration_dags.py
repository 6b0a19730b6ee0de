"""DAGs for the integration tests: send, then wait for delivery in each sensor mode.

``dag.test()`` needs its DAG in a bundle, so they live in this folder (tests/conftest.py makes it the
DAGs folder). Recipients come from the run's conf, so one DAG serves every outcome.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_smsww.operators.smsww import SmsSendOperator
from airflow_provider_smsww.sensors.smsww import SmsDeliverySensor

MODES = ("poke", "reschedule", "deferrable")


def send_and_wait(mode: str) -> DAG:
    with DAG(
        dag_id=f"smsww_it_{mode}",
        schedule=None,
        start_date=datetime(2025, 1, 1),
        catchup=False,
        render_template_as_native_obj=True,
        params={"recipients": Param(["+393331234567"], type="array"), "soft_fail": Param(False)},
    ) as dag:
        send = SmsSendOperator(
            task_id="send",
            recipients="{{ params.recipients }}",
            # Every run type: a run triggered through the REST API or the CLI has no logical date.
            message="Report for {{ (dag_run.logical_date or dag_run.run_after) | ds }} is ready",
            sender="Reports",
            fail_on_multiple_messages=True,
            max_total_price=5.0,
            price_per_part_if_unknown=0.10,
        )
        wait = SmsDeliverySensor(
            task_id="wait",
            message_ids=send.output,
            mode="reschedule" if mode == "reschedule" else "poke",
            deferrable=mode == "deferrable",
            poke_interval=0.2,
            timeout=60,
        )
        send >> wait
    return dag


for _mode in MODES:
    globals()[f"dag_{_mode}"] = send_and_wait(_mode)
