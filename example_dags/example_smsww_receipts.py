"""
### Delivery receipts: fall back to e-mail when an SMS is not delivered

Two DAGs. `example_smsww_receipts` texts the readers that the report is ready. With receipts switched on
in the `smsww_default` connection (its `receipts_url` and `receipts_secret` extras, docs/receipts.md), the
gateway reports each message's state to Airflow's API server, and each report becomes an event of the
asset `smsww_receipts`, its `extra` naming the message, its state and the task that sent it.

`example_smsww_receipts_fallback` is scheduled on that asset: each of its runs reads the events that
triggered it, and for every message that ended UNDELIVERABLE, EXPIRED or REJECTED, e-mails the report
link instead (`email_report_link` stands in for your e-mail step: it returns what it would send).

No sensor is needed: the receipt arrives as soon as the gateway knows. `make demo` runs both against the
embedded sandbox, which posts receipts the way the gateway does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Asset, Param, task

from airflow_provider_smsww.operators.smsww import SmsSendOperator

RECEIPTS = Asset("smsww_receipts")
NOT_DELIVERED = {"UNDELIVERABLE", "EXPIRED", "REJECTED"}

with DAG(
    dag_id="example_smsww_receipts",
    description="Text readers that the report is ready; receipts come back as asset events",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    render_template_as_native_obj=True,
    params={
        # The sandbox ends a message to +393330000001 UNDELIVERABLE: the fallback DAG then runs for it.
        "recipients": Param(["+393331234567", "+393330000001"], type="array", items={"type": "string"}),
    },
    doc_md=__doc__,
    tags=["smsww", "example"],
) as dag:
    SmsSendOperator(
        task_id="notify_readers",
        recipients="{{ params.recipients }}",
        sender="Reports",
        message="Your report is ready: https://reports.example.com/latest",
        fail_on_multiple_messages=True,
        max_total_price=5.0,
        price_per_part_if_unknown=0.10,
        retries=3,
    )

with DAG(
    dag_id="example_smsww_receipts_fallback",
    description="E-mail the report link to whoever an SMS did not reach",
    schedule=[RECEIPTS],
    start_date=datetime(2025, 1, 1),
    catchup=False,
    doc_md=__doc__,
    tags=["smsww", "example"],
) as fallback_dag:

    @task
    def email_report_link(triggering_asset_events: Any = None) -> list[dict[str, Any]]:
        """One e-mail per message that was not delivered; the receipt's ``extra`` says which (its number
        masked: look the reader up by ``message_id`` in your own records)."""
        undelivered = [
            event.extra
            for events in (triggering_asset_events or {}).values()
            for event in events
            if event.extra.get("state") in NOT_DELIVERED
        ]
        return [
            {"message_id": e["message_id"], "state": e["state"], "dag_id": e["dag_id"], "run_id": e["run_id"]}
            for e in undelivered
        ]

    email_report_link()
